"""Celery executor benchmark, measured in one run and printed as ratios.

The case: real apply jobs (the apply engine against the release store) of generated quilt patch
sets over a generated git feed of ten releases (tests/integration/conftest_celery.py), results in
a private PostgreSQL database, a private redis-server as the broker, ``ktrack worker`` processes
with one pool process each, each with its own data dir and release store (as on separate hosts).

1. Throughput of ``ktrack run --executor celery --stages apply`` with one worker, then with two
   (jobs per second, wall time of the whole command); printed: the ratio two / one (goal: > 1.5 on
   two cores).
2. Overhead per job of the celery executor against the local one: the same jobs with
   ``--executor local -j 1`` (a process pool of one) and with one celery worker;
   printed: (celery - local) / jobs in milliseconds.

Every measurement starts from an empty schema (``releases sync`` is not timed) and warm stores;
the time is the run's own, from its ``run`` row (start after planning, end after the last job).
Run: ``.venv/bin/python bench/bench_celery.py [--sets N] [--repeat N]`` (PostgreSQL on
127.0.0.1:5432 or $KTRACK_TEST_PG; redis-server installed).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest_celery import (  # noqa: E402
    PG_BASE,
    RedisServer,
    fresh_database,
    make_feed,
    make_patchsets,
)


def ktrack(ws: Path, home: str, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--home", str(ws / home), *args],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if r.returncode != 0:
        raise SystemExit(f"ktrack {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


class Workers:
    def __init__(self, ws: Path, logs: Path) -> None:
        self.ws, self.logs = ws, logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, n: int) -> None:
        for i in range(len(self.procs), n):
            argv = [sys.executable, "-m", "tracker.cli", "--home", str(self.ws / f"host{i}")]
            argv += ["worker", "-c", "1", "--name", f"bench{i}@local", "--loglevel", "WARNING"]
            with (self.logs / f"worker{i}.log").open("ab") as fh:
                self.procs.append(
                    subprocess.Popen(
                        argv, cwd=self.ws, stdout=fh, stderr=fh, start_new_session=True
                    )
                )
        time.sleep(3.0)  # let them connect

    def stop(self, keep: int = 0) -> None:
        while len(self.procs) > keep:
            p = self.procs.pop()
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def timed_run(ws: Path, db_name: str, *run_args: str) -> float:
    fresh_database(db_name)
    ktrack(ws, "coord", "releases", "sync")
    r = ktrack(ws, "coord", "run", "--stages", "apply", *run_args)
    if "0 reused" not in r.stdout:
        raise SystemExit(f"expected a cold run:\n{r.stdout}")
    return run_seconds(url_of(db_name))


def url_of(db_name: str) -> str:
    return PG_BASE.rsplit("/", 1)[0] + "/" + db_name


def run_seconds(url: str) -> float:
    """The run's own time as recorded in the database (planning and interpreter start excluded)."""
    from sqlalchemy import select

    from tracker.results.db import Database
    from tracker.results.models import Run

    db = Database(url, migrate=False)
    try:
        with db.session() as s:
            run = s.scalars(select(Run).order_by(Run.id.desc())).first()
            assert run is not None and run.started_at and run.finished_at
            return (run.finished_at - run.started_at).total_seconds()
    finally:
        db.dispose()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", type=int, default=4, help="patch sets (x10 releases = jobs)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (worker logs)")
    args = ap.parse_args()
    jobs = args.sets * 10
    db_name = "ktrack_celery_bench"
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp_s:
        tmp = Path(args.keep or tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        redis = RedisServer(tmp / "redis")
        redis.start()
        url = fresh_database(db_name)
        ws = tmp / "ws"
        ws.mkdir()
        feed = make_feed(tmp / "feed")
        make_patchsets(ws, args.sets)
        (ws / "ktrack.toml").write_text(
            f'[database]\nurl = "{url}"\n[celery]\nbroker = "{redis.url}"\n'
            f'[store]\nartifacts = "{tmp / "artifacts"}"\n'
            f'[feeds.local]\nkind = "git"\nurl = "{feed}"\ntags = "v6.*"\n'
            '[patchsets]\npaths = ["patches"]\n'
        )
        workers = Workers(ws, tmp)
        try:
            # warm every store (coordinator's and both workers') once, untimed
            timed_run(ws, db_name, "--executor", "local", "-j", "1")
            workers.start(2)
            timed_run(ws, db_name, "--executor", "celery")

            def measure(*run_args: str) -> float:
                took = statistics.median(
                    timed_run(ws, db_name, *run_args) for _ in range(args.repeat)
                )
                print(
                    f"  {' '.join(run_args)} ({len(workers.procs)} worker(s) up): {took:.2f} s",
                    flush=True,
                )
                return took

            local1 = measure("--executor", "local", "-j", "1")
            local2 = measure("--executor", "local", "-j", "2")
            two = measure("--executor", "celery")
            workers.stop(keep=1)
            one = measure("--executor", "celery")
        finally:
            workers.stop()
            redis.kill()
    print(f"jobs per run: {jobs} real apply jobs (2 patches each), {os.cpu_count()} CPUs")
    print(f"local -j 1:           {local1:7.2f} s  {jobs / local1:6.1f} jobs/s")
    print(f"local -j 2:           {local2:7.2f} s  {jobs / local2:6.1f} jobs/s")
    print(f"celery, 1 worker:     {one:7.2f} s  {jobs / one:6.1f} jobs/s")
    print(f"celery, 2 workers:    {two:7.2f} s  {jobs / two:6.1f} jobs/s")
    print(f"ratio 2 workers / 1 worker (throughput): {one / two:.2f}x")
    print(f"ratio celery 2 workers / local -j 2 (throughput): {local2 / two:.2f}x")
    print(
        f"celery overhead per job vs local (1 process each): {(one - local1) / jobs * 1000:+.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
