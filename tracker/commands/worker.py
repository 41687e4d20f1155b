"""``ktrack worker``: a Celery worker that runs the jobs ``ktrack run --executor celery`` publishes.

Every worker writes its results to the shared database (``[database] url``, PostgreSQL when the
workers are on several hosts) and its logs to the shared artifacts directory
(``[store] artifacts``); the broker is ``[celery] broker`` (Redis or RabbitMQ).
"""

from __future__ import annotations

import argparse
import os
import socket

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="jobs this worker runs at once (default: [run] jobs, else the number of CPUs)",
    )
    p.add_argument(
        "-Q",
        "--queues",
        default="ktrack.apply,ktrack.heavy",
        metavar="LIST",
        help="queues to serve: ktrack.apply (apply-only jobs), ktrack.heavy (builds and boots)",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a job's claim outlives a silent worker before another may take it over "
        "(default: 60)",
    )
    p.add_argument("--name", default=None, help="worker node name (default: ktrack-PID@HOST)")
    p.add_argument(
        "--loglevel", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper
    )


def build_argv(*, concurrency: int, queues: list[str], name: str, loglevel: str) -> list[str]:
    """The arguments handed to Celery's worker (pure: tests assert the list)."""
    return [
        "worker",
        f"--concurrency={concurrency}",
        f"--queues={','.join(queues)}",
        f"--hostname={name}",
        f"--loglevel={loglevel}",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.errors import UserError
    from tracker.pipeline.celery_app import DEFAULT_LEASE, QUEUES, make_app

    settings = ctx.settings
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = [q for q in queues if q not in QUEUES]
    if not queues or unknown:
        raise UserError(
            f"--queues: unknown queue(s) {', '.join(unknown) or '(none)'}",
            hint=f"known: {', '.join(QUEUES)}",
        )
    concurrency = args.concurrency or settings.jobs or os.cpu_count() or 1
    if concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    lease = args.lease if args.lease is not None else DEFAULT_LEASE
    if lease <= 0:
        raise UserError("--lease must be positive")
    ctx.db.dispose()  # the schema is checked (and upgraded) here; pool children open their own
    from tracker.pipeline.executors import clean_stale_work

    for stale in clean_stale_work(settings):  # left by a worker killed on this host
        ctx.debug(f"removed stale work dir {stale}")
    name = args.name or f"ktrack-{os.getpid()}@{socket.gethostname()}"
    ctx.info(
        f"ktrack worker {name}: broker {_redact(settings.celery_broker)}, queues {', '.join(queues)}, "
        f"concurrency {concurrency}, artifacts in {settings.artifacts}"
    )
    app = make_app(settings, lease=lease)
    app.worker_main(
        build_argv(concurrency=concurrency, queues=queues, name=name, loglevel=args.loglevel)
    )
    return 0


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
