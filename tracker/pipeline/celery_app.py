"""The Celery executor: workers on many hosts share one PostgreSQL (the source of truth).

``make_app(settings)`` builds the Celery app (broker from ``[celery] broker``: Redis or RabbitMQ);
``ktrack worker`` runs it. The planner's jobs become one task each, routed by their heaviest stage:
apply-only jobs go to the ``ktrack.apply`` queue, jobs that configure, build or boot go to
``ktrack.heavy``, so a host can serve only the quick queue or only the heavy one. A job's stages
stay in one task and are recorded one by one as they complete: they hand each other a working tree
(the materialised release, the patched files, the ``O=`` build dir; over a gigabyte for a real
kernel) that cannot move between hosts cheaply.

Safety: tasks are acknowledged late (a task whose worker dies is delivered again) and every
attempt first takes a database claim on the job key (``tracker.pipeline.claims``), renews it while
it works and re-checks it inside each transaction that writes the job's results, so a redelivered
or duplicated task never writes a result twice. Infrastructure errors (database unreachable) make
the task retry itself with backoff, handing its claim to the retry.

``run_celery`` is the coordinator behind ``ktrack run --executor celery``: it publishes the jobs,
follows the database until every job is done or failed for good, and publishes again any job that
nobody holds once the queues ran dry (a broker restarted without persistence loses its queue; a
killed worker's claim runs out).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from celery import Celery, Task
from celery.exceptions import MaxRetriesExceededError, Retry
from kombu import Exchange, Queue
from sqlalchemy import select

from tracker.config import Settings
from tracker.errors import InfraError, UserError
from tracker.pipeline import claims, record
from tracker.pipeline.executors import JobDone, execute_job, job_toolchain
from tracker.pipeline.plan import JobSpec
from tracker.pipeline.stages import closed_stages
from tracker.results.db import Database
from tracker.results.models import Job, RunJob
from tracker.vocab import Cause, Stage, Status

APPLY_QUEUE = "ktrack.apply"
HEAVY_QUEUE = "ktrack.heavy"
QUEUES = (APPLY_QUEUE, HEAVY_QUEUE)
TASK_NAME = "ktrack.job"
DEFAULT_LEASE = 60.0
MAX_TASK_RETRIES = 8
NO_WORKER_HINT = 30.0  # seconds without progress before the coordinator says so


class KtrackCelery(Celery):
    """A Celery app that knows ktrack's settings and opens one database per worker process."""

    ktrack_settings: Settings
    ktrack_lease: float

    def ktrack_db(self) -> Database:
        pid = os.getpid()
        cached: tuple[int, Database] | None = getattr(self, "_ktrack_db", None)
        if cached is None or cached[0] != pid:  # a forked pool child opens its own connections
            cached = (pid, Database(self.ktrack_settings.db_url, migrate=False))
            self._ktrack_db = cached
        return cached[1]


def queue_for(spec: JobSpec) -> str:
    """``ktrack.apply`` for apply-only jobs, ``ktrack.heavy`` for the rest."""
    return (
        APPLY_QUEUE
        if max(closed_stages(spec.stages), key=lambda s: s.index) is Stage.APPLY
        else HEAVY_QUEUE
    )


def make_app(settings: Settings, *, lease: float = DEFAULT_LEASE) -> KtrackCelery:
    """The Celery app for ``settings`` (broker ``settings.celery_broker``; results go to the database)."""
    app = KtrackCelery("ktrack", broker=settings.celery_broker, set_as_current=False)
    app.ktrack_settings = settings
    app.ktrack_lease = lease
    # Redis redelivers an unacknowledged message after the visibility timeout even when its worker
    # is alive: keep it above the longest job; the coordinator covers dead workers sooner.
    visibility = int(settings.build_timeout + settings.boot_timeout + 3600)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": visibility},
        task_default_queue=APPLY_QUEUE,
        task_default_exchange=APPLY_QUEUE,
        task_default_routing_key=APPLY_QUEUE,
        # one direct exchange per queue: a message lands in exactly one queue
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in QUEUES],
        task_publish_retry_policy={
            "max_retries": 3,
            "interval_start": 0.2,
            "interval_step": 0.5,
            "interval_max": 2.0,
        },
    )
    app.task(bind=True, name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)(job_task)
    return app


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries`` + 1: 1, 2, 4, … capped at 60."""
    return float(min(60, 2**retries))


def job_task(
    task: Task,
    spec_json: dict[str, Any],
    run_id: int | None,
    previous: str | None = None,
    rerun: Sequence[str] = (),
) -> dict[str, Any]:
    """One job on a worker: claim it, run (or reuse) it, record it. Returns what happened.
    ``rerun`` names the statuses of finished jobs to judge again (``run --rerun``)."""
    app = task.app
    assert isinstance(app, KtrackCelery)
    settings, lease = app.ktrack_settings, app.ktrack_lease
    db = app.ktrack_db()
    spec = JobSpec.from_json(spec_json)
    token = claims.new_token()
    try:
        with db.session() as s:
            row = s.scalars(select(Job).where(Job.key == spec.key)).first()
            if row is not None and row.finished and run_id is not None and row.run_id == run_id:
                return {"key": spec.key, "outcome": "done-before"}  # a duplicate of this run's task
            got = claims.acquire(s, spec.key, token, run_id=run_id, lease=lease, previous=previous)
    except InfraError as exc:
        _retry(task, spec_json, run_id, token, exc, rerun)
    if got is claims.Acquired.BUSY:
        return {"key": spec.key, "outcome": "busy"}
    try:
        with claims.Holder(db, spec.key, token, lease) as holder:
            done = execute_job(
                settings, db, spec, run_id, fence=holder.fence, rerun=[Status(r) for r in rerun]
            )
    except claims.ClaimLost:
        return {"key": spec.key, "outcome": "lost"}
    except InfraError as exc:
        _try_release(db, spec.key, token, claims.RELEASED, f"retrying: {exc}")
        _retry(task, spec_json, run_id, token, exc, rerun)
    except Exception as exc:  # bad input (release not in the catalog) or a bug: no retry helps
        cause = Cause.BAD_INPUT if isinstance(exc, UserError) else Cause.INFRASTRUCTURE
        note = f"{type(exc).__name__}: {exc}"
        _try_release(db, spec.key, token, claims.FAILED, note, cause)
        return {"key": spec.key, "outcome": "failed", "error": str(exc)}
    _try_release(db, spec.key, token, claims.RELEASED, "")
    return {"key": spec.key, "outcome": "done", "status": done.status, "reused": done.reused}


def _retry(
    task: Task,
    spec_json: dict[str, Any],
    run_id: int | None,
    token: str,
    exc: Exception,
    rerun: Sequence[str] = (),
) -> NoReturn:
    retries = task.request.retries or 0
    try:
        raise task.retry(
            args=(spec_json, run_id),
            kwargs={"previous": token, "rerun": list(rerun)},
            countdown=backoff(retries),
            max_retries=MAX_TASK_RETRIES,
            exc=exc,
        )
    except Retry:
        raise
    except (MaxRetriesExceededError, InfraError):
        db = task.app.ktrack_db()
        key = JobSpec.from_json(spec_json).key
        _try_release(db, key, token, claims.FAILED, f"gave up: {exc}", Cause.INFRASTRUCTURE)
        raise


def _try_release(
    db: Database, key: str, token: str, state: str, note: str, cause: Cause | None = None
) -> None:
    try:
        with db.session() as s:
            claims.release(
                s, key, token, state=state, note=note, cause=cause.value if cause else None
            )
    except InfraError:
        pass  # the lease runs out on its own


# --- the coordinator ------------------------------------------------------------------------


@dataclass
class _Track:
    spec: JobSpec
    queue: str
    published: float | None = None  # monotonic time of the last publish
    last_live: float = 0.0  # monotonic time a live claim was last seen
    publishes: int = 0


def _collect(
    session: Any,
    run_id: int,
    keys: Sequence[str],
    reuse: Callable[[Job], bool] | None = None,
) -> dict[str, tuple[Job, bool]]:
    """The jobs among ``keys`` this run has a result for, each linked to the run: those it
    computed (any status), those a worker reused for it (linked to the run), and, with
    ``reuse``, those that rule accepts from other runs (before anything is published)."""
    out: dict[str, tuple[Job, bool]] = {}
    for i in range(0, len(keys), 500):
        rows = list(
            session.scalars(
                select(Job).where(Job.key.in_(keys[i : i + 500]), Job.finished.is_(True))
            )
        )
        linked = set(
            session.scalars(
                select(RunJob.job_id).where(
                    RunJob.run_id == run_id, RunJob.job_id.in_([j.id for j in rows])
                )
            )
        )
        for job in rows:
            if not (job.run_id == run_id or job.id in linked or (reuse and reuse(job))):
                continue
            reused = job.run_id != run_id
            link = session.get(RunJob, (run_id, job.id))
            if link is None:
                session.add(RunJob(run_id=run_id, job_id=job.id, reused=reused))
            elif link.reused != reused:
                link.reused = reused
            out[job.key] = (job, reused)
    return out


def queue_depth(app: Celery, queues: Sequence[str]) -> int | None:
    """Messages waiting in ``queues`` (not those reserved by workers); None when the broker is away."""
    from kombu.exceptions import ChannelError

    total = 0
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for q in queues:
                try:
                    total += channel.queue_declare(queue=q, passive=True).message_count
                except ChannelError:  # Redis: an empty queue does not exist
                    continue
    except Exception:
        return None
    return total


def run_celery(
    settings: Settings,
    db: Database,
    jobs: Sequence[JobSpec],
    run_id: int | None,
    on_done: Callable[[JobDone], None],
    ctx: Any,
    *,
    poll: float = 0.5,
    grace: float = 15.0,
    max_publishes: int = 4,
    rerun: Collection[Status] = (),
) -> None:
    """Publish ``jobs`` to the workers and return when every one is done or failed for good.

    Jobs finished by earlier runs are reused without a task. A job that nobody holds ``grace``
    seconds after its last publish (or after its holder's claim ran out), once the queues have
    been empty for ``grace`` seconds, is published again (at most ``max_publishes`` times; then it
    is reported as an infrastructure error). The database being briefly away only delays the
    progress.
    """
    if run_id is None:
        raise InfraError("the celery executor needs a run to follow")
    app = make_app(settings)
    info: Callable[[str], None] = getattr(ctx, "info", lambda message: None)
    if settings.db_url.startswith("sqlite"):
        info("ktrack: the results database is SQLite: only workers on this host can share it")
    track: dict[str, _Track] = {}
    for spec in jobs:
        track.setdefault(spec.key, _Track(spec, queue_for(spec)))
    toolchains = {key: job_toolchain(t.spec) for key, t in track.items()}

    def reuse(job: Job) -> bool:  # the workers compare with their own toolchain again
        return record.reusable(job, run_id, rerun, toolchains.get(job.key))

    with db.session() as s:
        for key, (job, reused) in _collect(s, run_id, list(track), reuse).items():
            on_done(_done(track.pop(key).spec, job, reused))
    rerun_names = [r.value for r in rerun]
    if not _publish_all(app, list(track.values()), run_id, rerun_names):
        info("ktrack: the broker is not answering; publishing when it is back")
    db_away = False
    empty_since: float | None = None  # since when the queues were seen empty with idle jobs
    last_progress, hinted = time.monotonic(), False
    while track:
        time.sleep(poll)
        try:
            with db.session() as s:
                finished = _collect(s, run_id, list(track))
                held = claims.claims(s, [k for k in track if k not in finished])
        except InfraError as exc:
            if not db_away:
                info(f"ktrack: {exc}; waiting for the database")
            db_away = True
            continue
        if db_away:
            info("ktrack: the database is back")
            db_away = False
        mono = time.monotonic()
        for key, (job, was_reused) in finished.items():
            on_done(_done(track.pop(key).spec, job, was_reused))
            last_progress = mono
        at = claims.now()
        if any(c.live(at) for c in held.values()):
            last_progress = mono
        elif not hinted and mono - last_progress > NO_WORKER_HINT:
            info("ktrack: no worker has taken a job for a while; start one with `ktrack worker`")
            hinted = True
        idle: list[_Track] = []
        for key, t in list(track.items()):
            c = held.get(key)
            if c is not None and c.state == claims.FAILED and c.run_id == run_id:
                del track[key]
                on_done(_gave_up(t.spec, c.note or "failed", c.cause or Cause.INFRASTRUCTURE.value))
                continue
            if c is not None and c.live(at):
                t.last_live = mono
                continue
            since = max(t.published or 0.0, t.last_live)
            if t.published is None or mono - since > grace:
                idle.append(t)
        if not idle:
            empty_since = None
            continue
        depth = queue_depth(app, QUEUES)
        if depth is None or depth > 0:
            empty_since = None  # queued messages will reach the workers; an absent broker can't
            continue
        if empty_since is None:
            empty_since = mono
        if mono - empty_since <= grace:
            continue  # a message taken from the queue a moment ago is not claimed yet
        empty_since = None
        for t in idle:
            if t.publishes >= max_publishes:
                del track[t.spec.key]
                on_done(
                    _gave_up(
                        t.spec,
                        f"no worker finished the job after {t.publishes} publishes",
                        Cause.INFRASTRUCTURE.value,
                    )
                )
                continue
        again = [t for t in idle if t.spec.key in track]
        if any(t.published is not None for t in again):
            info(f"ktrack: publishing {len(again)} job(s) again (queues empty, nobody holds them)")
        _publish_all(app, again, run_id, rerun_names)


def _publish_all(
    app: Celery, tracks: Sequence[_Track], run_id: int, rerun: Sequence[str] = ()
) -> bool:
    """Publish each job; stop at the first broker error (the loop tries again later)."""
    try:
        with app.producer_or_acquire() as producer:
            for t in tracks:
                app.send_task(
                    TASK_NAME,
                    args=(t.spec.to_json(), run_id),
                    kwargs={"rerun": list(rerun)},
                    queue=t.queue,
                    producer=producer,
                    retry=True,
                )
                t.published = time.monotonic()
                t.publishes += 1
    except Exception:
        return False
    return True


def _gave_up(spec: JobSpec, why: str, cause: str) -> JobDone:
    """A job no worker could finish: ``error`` with no verdict, and whose fault it was."""
    return JobDone(spec.key, spec.label, Status.ERROR.value, None, why, False, cause)


def _done(spec: JobSpec, job: Job, reused: bool) -> JobDone:
    return JobDone.of(spec, job, reused)


__all__ = ["make_app", "run_celery", "job_task", "queue_for", "queue_depth"]
