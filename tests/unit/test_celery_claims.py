"""Database claims on jobs (SQLite here; PostgreSQL in the Celery integration tests): one holder
at a time, takeover only of a dead or ended holder, and the write fence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tracker.commands.worker import build_argv
from tracker.pipeline import claims
from tracker.pipeline.celery_app import APPLY_QUEUE, HEAVY_QUEUE, backoff, queue_for
from tracker.pipeline.plan import JobSpec
from tracker.results.db import Database

KEY = "k" * 32


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'c.db'}")


def _acquire(
    db: Database, token: str, lease: float = 30.0, previous: str | None = None
) -> claims.Acquired:
    with db.session() as s:
        return claims.acquire(s, KEY, token, run_id=1, lease=lease, previous=previous)


def test_one_holder_at_a_time(db: Database) -> None:
    assert _acquire(db, "a") is claims.Acquired.ACQUIRED
    assert _acquire(db, "b") is claims.Acquired.BUSY
    with db.session() as s:
        (view,) = claims.claims(s, [KEY, "other"]).values()
    assert (view.owner, view.state, view.attempts) == ("a", "running", 1)
    assert view.live(claims.now())


def test_a_dead_holder_is_taken_over_after_its_lease(db: Database) -> None:
    assert _acquire(db, "a", lease=0.2) is claims.Acquired.ACQUIRED
    assert _acquire(db, "b") is claims.Acquired.BUSY
    time.sleep(0.3)
    assert _acquire(db, "b") is claims.Acquired.ACQUIRED
    with db.session() as s:
        assert claims.claims(s, [KEY])[KEY].attempts == 2


def test_a_retry_takes_over_its_previous_attempt_at_once(db: Database) -> None:
    assert _acquire(db, "a") is claims.Acquired.ACQUIRED
    assert _acquire(db, "a2", previous="zzz") is claims.Acquired.BUSY
    assert _acquire(db, "a2", previous="a") is claims.Acquired.ACQUIRED


def test_released_and_failed_claims_are_free(db: Database) -> None:
    for state in (claims.RELEASED, claims.FAILED):
        assert _acquire(db, f"x-{state}") is claims.Acquired.ACQUIRED
        with db.session() as s:
            claims.release(s, KEY, f"x-{state}", state=state, note="why")
            view = claims.claims(s, [KEY])[KEY]
        assert (view.state, view.note) == (state, "why")
        assert not view.live(claims.now())


def test_fence_stops_writes_once_taken_over(db: Database) -> None:
    assert _acquire(db, "a", lease=0.2) is claims.Acquired.ACQUIRED
    holder = claims.Holder(db, KEY, "a", 0.2)
    with db.session() as s:
        holder.fence(s)  # still ours: renews
    time.sleep(0.3)
    assert _acquire(db, "b") is claims.Acquired.ACQUIRED
    with pytest.raises(claims.ClaimLost), db.session() as s:
        holder.fence(s)
    assert holder.lost


def test_heartbeat_keeps_a_live_holder(db: Database) -> None:
    assert _acquire(db, "a", lease=0.3) is claims.Acquired.ACQUIRED
    with claims.Holder(db, KEY, "a", 0.3):
        time.sleep(0.8)  # well past the first lease
        assert _acquire(db, "b") is claims.Acquired.BUSY


def test_queue_routing_and_backoff() -> None:
    def spec(stages: tuple[str, ...]) -> JobSpec:
        return JobSpec("p", "1", "0" * 64, "m", "6.1", "x86_64:tinyconfig", stages)

    assert queue_for(spec(("apply",))) == APPLY_QUEUE
    assert queue_for(spec(("apply", "build"))) == HEAVY_QUEUE
    assert queue_for(spec(("boot",))) == HEAVY_QUEUE
    assert [backoff(n) for n in (0, 1, 2, 6, 7, 20)] == [1, 2, 4, 60, 60, 60]


def test_worker_argv() -> None:
    assert build_argv(concurrency=2, queues=[APPLY_QUEUE], name="w@h", loglevel="INFO") == [
        "worker",
        "--concurrency=2",
        "--queues=ktrack.apply",
        "--hostname=w@h",
        "--loglevel=INFO",
        "--pool=prefork",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def test_the_coordinator_collects_only_what_stands_for_its_run(tmp_path: Path) -> None:
    """Before publishing, a finished job of another run is reused only when the reuse rule
    (``--rerun``, toolchain) accepts it; afterwards, what the workers computed or reused for this
    run (linked to it) is collected."""
    from conftest_report import World, make_db

    from tracker.pipeline import record
    from tracker.pipeline.celery_app import _collect
    from tracker.results.models import RunJob
    from tracker.vocab import Status

    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        old_run, run = w.run(), w.run()
        job = w.job(old_run, w.psv("demo"), "6.1", status="fail", stage="apply", stages="apply")
        job.toolchain = "tc-1"
        keys = [job.key]

        def rule(rerun: tuple[Status, ...], toolchain: str) -> bool:
            return bool(
                _collect(s, run.id, keys, lambda j: record.reusable(j, run.id, rerun, toolchain))
            )

        assert rule((), "tc-1")  # the same judgement stands: reused, no task
        s.delete(s.get_one(RunJob, (run.id, job.id)))
        s.flush()
        assert not rule((Status.FAIL,), "tc-1")  # --rerun fail: published
        assert not rule((), "tc-2")  # another toolchain: published
        assert _collect(s, run.id, keys) == {}  # nobody has done it for this run yet
        # a worker reused it for this run (its toolchain matched): collected as reused
        s.add(RunJob(run_id=run.id, job_id=job.id, reused=True))
        s.flush()
        assert _collect(s, run.id, keys) == {job.key: (job, True)}
