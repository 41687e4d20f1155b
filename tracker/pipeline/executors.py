"""Executors: run planned jobs inline or on a local process pool, and record every result.

``execute_job`` is the unit of work every executor calls (Celery workers too): it takes the job's
lock, reuses a finished result, or runs the stages and records each one as it completes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from tracker.config import Settings
from tracker.errors import InfraError, UserError
from tracker.pipeline import record
from tracker.pipeline.locks import file_lock, is_locked
from tracker.pipeline.plan import JobSpec
from tracker.pipeline.stages import JobState, run_stages
from tracker.results import artifacts
from tracker.results.db import Database
from tracker.vocab import Stage, Status


@dataclass(frozen=True)
class JobDone:
    """What an executor reports back for one job."""

    key: str
    label: str
    status: str
    stage: str | None
    summary: str
    reused: bool


def work_root(settings: Settings) -> Path:
    return settings.home / "work"


def lock_path(settings: Settings, key: str) -> Path:
    return settings.home / "locks" / f"{key}.lock"


WORK_ENV = "KTRACK_WORK"


def _processes_of(work: Path) -> list[int]:
    """PIDs whose environment says they work for ``work`` (children inherit KTRACK_WORK)."""
    needle = f"{WORK_ENV}={work}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def clean_stale_work(settings: Settings) -> list[Path]:
    """Remove work dirs left by killed runs (their job lock is free), and kill any process still
    working in one (a make or QEMU orphaned by ``kill -9``)."""
    removed: list[Path] = []
    root = work_root(settings)
    if not root.is_dir():
        return removed
    for child in root.iterdir():
        if is_locked(lock_path(settings, child.name)):
            continue
        for pid in _processes_of(child):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(child, ignore_errors=True)
        removed.append(child)
    return removed


def _store_log(settings: Settings, path: Path | None) -> tuple[str | None, str | None]:
    if path is None or not path.exists():
        return None, None
    return artifacts.put_file(settings.artifacts, path), artifacts.excerpt(path)


Fence = Callable[[Session], None]


def execute_job(
    settings: Settings,
    db: Database,
    spec: JobSpec,
    run_id: int | None,
    fence: Fence | None = None,
) -> JobDone:
    """Run (or reuse) one job and record it. Never raises for a verdict; InfraError only when the
    database itself is unusable.

    ``fence``, when given, is called first in every session that writes the job's results, inside
    the same transaction; it raises to abort the write (the Celery executor checks there that its
    database claim on the job is still its own, so a redelivered task never writes twice).
    """
    with file_lock(lock_path(settings, spec.key)):
        with db.session() as s:
            if fence is not None:
                fence(s)
            job, reused = record.claim_job(s, spec, run_id)
            job_id = job.id
            if reused:
                return JobDone(
                    spec.key, spec.label, job.status, job.furthest_stage, job.summary or "", True
                )
        work = work_root(settings) / spec.key
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        state = JobState(settings=settings, db=db, spec=spec, work=work)
        previous_env = os.environ.get(WORK_ENV)
        os.environ[WORK_ENV] = str(work)  # inherited by make, QEMU...: the janitor finds orphans
        interrupted: str | None = None
        current = Stage(spec.stages[0]) if spec.stages else Stage.APPLY
        stages = run_stages(state)
        try:
            while True:
                t0 = time.monotonic()
                started = record.now()
                try:
                    stage, outcome = next(stages)
                except StopIteration:
                    break
                current = stage
                duration = time.monotonic() - t0
                try:
                    log_hash, excerpt = _store_log(settings, outcome.log)
                except InfraError as exc:
                    outcome.status, outcome.summary = Status.ERROR, str(exc)
                    log_hash, excerpt = None, None
                for name, path in list(outcome.artifacts.items()):
                    if isinstance(path, Path) and path.is_file() and name in ("config", "image"):
                        try:
                            outcome.detail.setdefault("artifacts", {})[name] = artifacts.put_file(
                                settings.artifacts, path
                            )
                        except InfraError as exc:
                            outcome.status, outcome.summary = Status.ERROR, str(exc)
                with db.session() as s:
                    if fence is not None:
                        fence(s)
                    job = s.get_one(record.Job, job_id)
                    record.record_stage(
                        s,
                        job,
                        stage,
                        outcome,
                        started_at=started,
                        duration=duration,
                        log_hash=log_hash,
                        log_excerpt=excerpt,
                    )
        except BaseException as exc:
            interrupted = f"interrupted during {current.value} ({type(exc).__name__})"
            raise
        finally:
            stages.close()
            try:
                with db.session() as s:
                    if fence is not None:
                        fence(s)
                    job = s.get_one(record.Job, job_id)
                    record.finish_job(s, job, interrupted=interrupted)
                    done = JobDone(
                        spec.key,
                        spec.label,
                        job.status,
                        job.furthest_stage,
                        job.summary or "",
                        False,
                    )
            finally:
                if previous_env is None:
                    os.environ.pop(WORK_ENV, None)
                else:
                    os.environ[WORK_ENV] = previous_env
                shutil.rmtree(work, ignore_errors=True)
    return done


# --- process pool -----------------------------------------------------------------------------

_WORKER: dict[str, object] = {}


def _worker_init(settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    _term_with_parent()
    _WORKER["settings"] = settings
    _WORKER["db"] = Database(settings.db_url, migrate=False)


def _term_with_parent() -> None:
    """A pool worker gets SIGTERM when the ktrack process dies, even by ``kill -9``: it then marks
    its job interrupted and kills its children instead of building on as an orphan."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the prctl took effect
        raise KeyboardInterrupt("parent died")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _worker_job(spec: JobSpec, run_id: int | None) -> JobDone:
    settings = _WORKER["settings"]
    db = _WORKER["db"]
    assert isinstance(settings, Settings) and isinstance(db, Database)
    return execute_job(settings, db, spec, run_id)


Callback = Callable[[JobDone], None]


def run_inline(
    settings: Settings, db: Database, jobs: Sequence[JobSpec], run_id: int | None, on_done: Callback
) -> None:
    for spec in jobs:
        on_done(execute_job(settings, db, spec, run_id))


def run_local(
    settings: Settings,
    db: Database,
    jobs: Sequence[JobSpec],
    run_id: int | None,
    on_done: Callback,
    workers: int,
) -> None:
    if workers <= 1 or len(jobs) <= 1:
        run_inline(settings, db, jobs, run_id, on_done)
        return
    db.dispose()
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(settings,)
    ) as pool:
        pending: set[Future[JobDone]] = {pool.submit(_worker_job, spec, run_id) for spec in jobs}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
        except BaseException:
            for fut in pending:
                fut.cancel()
            # interrupt the workers: each marks its job interrupted and kills its children
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def default_workers(settings: Settings) -> int:
    return settings.jobs or os.cpu_count() or 1


__all__ = ["JobDone", "execute_job", "run_inline", "run_local", "clean_stale_work", "UserError"]
