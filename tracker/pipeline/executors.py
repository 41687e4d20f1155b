"""Executors: run planned jobs inline or on a local process pool, and record every result.

``execute_job`` is the unit of work every executor calls (Celery workers too): it takes the job's
lock, reuses a finished result, or runs the stages and records each one as it completes.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import signal
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from tracker import proc
from tracker.config import Settings
from tracker.errors import InfraError, KtrackError, UserError
from tracker.locks import file_lock, is_locked
from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.pipeline.stages import JobState, closed_stages, run_stages
from tracker.results import artifacts
from tracker.results.db import Database
from tracker.vocab import Cause, Outcome, Status


@dataclass(frozen=True)
class JobDone:
    """What an executor reports back for one job: its status, the furthest stage it reached, and
    the cause of its status (``vocab.Cause`` value; None for pass and skip)."""

    key: str
    label: str
    status: str
    stage: str | None
    summary: str
    reused: bool
    cause: str | None = None

    @classmethod
    def of(cls, spec: JobSpec, job: record.Job, reused: bool) -> JobDone:
        return cls(
            spec.key,
            spec.label,
            job.status,
            job.furthest_stage,
            job.summary or "",
            reused,
            job.cause,
        )


def job_toolchain(spec: JobSpec) -> str | None:
    """The fingerprint of the tools that judge ``spec``'s stages on its target. An apply-only job
    depends on the stage logic's version alone: no tool is asked for its version."""
    from tracker.arches.target import Target
    from tracker.build.toolchain import fingerprint

    stages = closed_stages(spec.stages)
    try:
        target = Target.parse(spec.target, Path(spec.manifest).parent)
    except UserError:
        return None  # the stages say so, as bad input; nothing to compare
    return fingerprint(target, stages)


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
ARTIFACTS = ("config", "image", "baseline-log")  # files of an outcome kept in the artifacts store


def execute_job(
    settings: Settings,
    db: Database,
    spec: JobSpec,
    run_id: int | None,
    fence: Fence | None = None,
    *,
    rerun: Collection[Status] = (),
) -> JobDone:
    """Run (or reuse) one job and record it. Never raises for a verdict; InfraError only when the
    database itself is unusable.

    A finished job is reused unless ``rerun`` names its status or the toolchain that judged it
    differs from this host's (see ``record.claim_job``).

    ``fence``, when given, is called first in every session that writes the job's results, inside
    the same transaction; it raises to abort the write (the Celery executor checks there that its
    database claim on the job is still its own, so a redelivered task never writes twice).
    """
    with file_lock(lock_path(settings, spec.key)):
        with db.session() as s:
            if fence is not None:
                fence(s)
            job, reused = record.claim_job(
                s, spec, run_id, rerun=rerun, toolchain=job_toolchain(spec)
            )
            job_id = job.id
            if reused:
                return JobDone.of(spec, job, True)
        work = work_root(settings) / spec.key
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        state = JobState(settings=settings, db=db, spec=spec, work=work)
        previous_env = os.environ.get(WORK_ENV)
        os.environ[WORK_ENV] = str(work)  # inherited by make, QEMU...: the janitor finds orphans
        interrupted: str | None = None
        stages = run_stages(state)
        try:
            while True:
                t0 = time.monotonic()
                started = record.now()
                try:
                    stage, outcome = next(stages)
                except StopIteration:
                    break
                duration = time.monotonic() - t0
                try:
                    log_hash, excerpt = _store_log(settings, outcome.log)
                except InfraError as exc:
                    _infra(outcome, exc)
                    log_hash, excerpt = None, None
                for name, path in list(outcome.artifacts.items()):
                    if isinstance(path, Path) and path.is_file() and name in ARTIFACTS:
                        try:
                            outcome.detail.setdefault("artifacts", {})[name] = artifacts.put_file(
                                settings.artifacts, path
                            )
                        except InfraError as exc:
                            _infra(outcome, exc)
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
            current = state.current.value if state.current else "setup"
            interrupted = f"interrupted during {current} ({type(exc).__name__})"
            raise
        finally:
            stages.close()
            try:
                with db.session() as s:
                    if fence is not None:
                        fence(s)
                    job = s.get_one(record.Job, job_id)
                    record.finish_job(s, job, interrupted=interrupted)
                    done = JobDone.of(spec, job, False)
            finally:
                if previous_env is None:
                    os.environ.pop(WORK_ENV, None)
                else:
                    os.environ[WORK_ENV] = previous_env
                shutil.rmtree(work, ignore_errors=True)
    return done


def _infra(outcome: Outcome, exc: InfraError) -> None:
    """Our artifacts store failed while keeping a stage's files: no verdict."""
    outcome.status, outcome.summary = Status.ERROR, f"infrastructure: {exc}"
    outcome.cause = Cause.INFRASTRUCTURE


# --- process pool -----------------------------------------------------------------------------
#
# A small explicit pool rather than concurrent.futures: on Ctrl-C or SIGTERM every worker must
# mark its job interrupted and kill its children, and the parent must then return promptly;
# ProcessPoolExecutor can hang when its workers are interrupted.


def _already_interrupted(signum: int, frame: object) -> None:
    """Further SIGINT/SIGTERM after the first: nothing to do, cleanup is under way."""


def interrupt_once(signum: int, frame: object) -> None:
    """Signal handler: raise KeyboardInterrupt once, then ignore further SIGINT/SIGTERM so that
    the cleanup it starts (killing children, recording the interruption) is not cut short.

    "Ignore" is a handler that does nothing, not ``SIG_IGN``: a Ctrl-C reaches a pool worker
    together with the parent's SIGTERM, and a signal already pending when its handler becomes
    ``SIG_IGN`` makes Python print "OSError: Signal 15 ignored due to race condition" with a
    traceback. A Python-level no-op consumes it silently."""
    signal.signal(signal.SIGINT, _already_interrupted)
    signal.signal(signal.SIGTERM, _already_interrupted)
    raise KeyboardInterrupt(f"signal {signum}")


def _worker_main(
    settings: Settings,
    tasks: mp.Queue,
    results: mp.Queue,
    run_id: int | None,
    rerun: Collection[Status] = (),
) -> None:
    signal.signal(signal.SIGINT, interrupt_once)
    signal.signal(signal.SIGTERM, interrupt_once)
    # SIGTERM, not SIGKILL: the worker then marks its job interrupted and kills its children
    proc.die_with_parent(signal.SIGTERM)
    try:
        if os.getppid() == 1:  # the parent died before the prctl took effect
            return
        db = Database(settings.db_url, migrate=False)
        while True:
            spec = tasks.get()
            if spec is None:
                break
            try:
                results.put(("done", execute_job(settings, db, spec, run_id, rerun=rerun)))
            except UserError as exc:  # bad input outside the stages (a release not in the catalog)
                results.put(("user-error", f"{spec.label}: {exc}"))
            except KtrackError as exc:
                results.put(("error", f"{spec.label}: {exc}"))
        db.dispose()
    except KeyboardInterrupt:
        pass


Callback = Callable[[JobDone], None]


def run_inline(
    settings: Settings,
    db: Database,
    jobs: Sequence[JobSpec],
    run_id: int | None,
    on_done: Callback,
    *,
    rerun: Collection[Status] = (),
) -> None:
    for spec in jobs:
        on_done(execute_job(settings, db, spec, run_id, rerun=rerun))


def run_local(
    settings: Settings,
    db: Database,
    jobs: Sequence[JobSpec],
    run_id: int | None,
    on_done: Callback,
    workers: int,
    *,
    rerun: Collection[Status] = (),
) -> None:
    """Run ``jobs`` on ``workers`` processes; ``on_done`` is called in this process as each ends."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        run_inline(settings, db, jobs, run_id, on_done, rerun=rerun)
        return
    db.dispose()
    ctx = mp.get_context("fork")
    tasks: mp.Queue = ctx.Queue()
    results: mp.Queue = ctx.Queue()
    for spec in jobs:
        tasks.put(spec)
    for _ in range(workers):
        tasks.put(None)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(settings, tasks, results, run_id, tuple(rerun)),
            daemon=False,
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    remaining = len(jobs)
    try:
        while remaining:
            try:
                kind, payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise InfraError("every local worker exited before the run was done") from None
                continue
            remaining -= 1
            if kind == "done":
                on_done(payload)
            elif kind == "user-error":
                raise UserError(str(payload))
            else:
                raise InfraError(str(payload))
    except BaseException:
        # interrupt the workers: each marks its job interrupted and kills its children
        for p in procs:
            if p.is_alive() and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        raise
    finally:
        for p in procs:
            p.join(timeout=30)
        tasks.cancel_join_thread()
        results.cancel_join_thread()


def default_workers(settings: Settings) -> int:
    return settings.jobs or os.cpu_count() or 1


__all__ = [
    "JobDone",
    "execute_job",
    "run_inline",
    "run_local",
    "clean_stale_work",
    "interrupt_once",
]
