"""Writing a job's results as it goes: the job row first, each stage row as soon as it is known,
and the job's final status in a ``finally`` so a killed run leaves a truthful partial record."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.errors import UserError
from tracker.pipeline.plan import JobSpec
from tracker.results.models import (
    Job,
    KernelRelease,
    PatchResult,
    Patchset,
    PatchsetVersion,
    Run,
    RunJob,
    StageResult,
)
from tracker.safetext import unsurrogate
from tracker.versions import KernelVersion
from tracker.vocab import Cause, Outcome, Stage, Status


def now() -> datetime:
    return datetime.now(UTC)


def start_run(session: Session, arguments: dict[str, Any], trigger: str = "manual") -> Run:
    run = Run(
        trigger=trigger,
        host=socket.gethostname(),
        arguments=arguments,
        started_at=now(),
        status="running",
    )
    session.add(run)
    session.flush()
    return run


def _get_or_create(
    session: Session, model: Any, defaults: dict[str, Any] | None = None, **keys: Any
) -> Any:
    row = session.scalars(select(model).filter_by(**keys)).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = model(**keys, **(defaults or {}))
            session.add(row)
            session.flush()
    except IntegrityError:
        row = session.scalars(select(model).filter_by(**keys)).one()
    return row


def patchset_version(session: Session, spec: JobSpec, base: str | None = None) -> PatchsetVersion:
    ps = _get_or_create(session, Patchset, name=spec.patchset)
    row: PatchsetVersion = _get_or_create(
        session,
        PatchsetVersion,
        defaults={"base": base, "created_at": now()},
        patchset_id=ps.id,
        version=spec.version,
        content_hash=spec.content_hash,
    )
    return row


def release(session: Session, version: str) -> KernelRelease:
    canonical = str(KernelVersion.parse(version))
    row = session.scalars(select(KernelRelease).where(KernelRelease.version == canonical)).first()
    if row is None:
        raise UserError(
            f"release {version} is not in the catalog", hint="run `ktrack releases sync`"
        )
    return row


def claim_job(session: Session, spec: JobSpec, run_id: int | None) -> tuple[Job, bool]:
    """The job row for ``spec``; True when a finished result exists and must be reused.

    A job that never finished (killed run) or ended in ``error`` (no verdict) is reset for redo.
    """
    job = session.scalars(select(Job).where(Job.key == spec.key)).first()
    if job is not None and job.finished and job.status != Status.ERROR.value:
        if run_id is not None:
            _link(session, run_id, job.id, reused=True)
        return job, True
    if job is None:
        psv = patchset_version(session, spec)
        rel = release(session, spec.release)
        job = Job(
            key=spec.key,
            patchset_version_id=psv.id,
            release_id=rel.id,
            target=spec.target,
            stages=",".join(spec.stages),
        )
        try:
            with session.begin_nested():
                session.add(job)
                session.flush()
        except IntegrityError:
            job = session.scalars(select(Job).where(Job.key == spec.key)).one()
    else:
        session.execute(delete(StageResult).where(StageResult.job_id == job.id))
        session.execute(delete(PatchResult).where(PatchResult.job_id == job.id))
        session.expire(job)
    job.run_id = run_id
    job.status = Status.SKIP.value
    job.cause = None
    job.furthest_stage = None
    job.summary = "running"
    job.finished = False
    job.started_at = now()
    job.finished_at = None
    job.attempts = (job.attempts or 0) + 1
    if run_id is not None:
        _link(session, run_id, job.id, reused=False)
    session.flush()
    return job, False


def _link(session: Session, run_id: int, job_id: int, *, reused: bool) -> None:
    link = session.get(RunJob, (run_id, job_id))
    if link is None:
        session.add(RunJob(run_id=run_id, job_id=job_id, reused=reused))
    else:
        link.reused = reused


def record_stage(
    session: Session,
    job: Job,
    stage: Stage,
    outcome: Outcome,
    *,
    started_at: datetime,
    duration: float,
    log_hash: str | None,
    log_excerpt: str | None,
) -> None:
    session.add(
        StageResult(
            job_id=job.id,
            stage=stage.value,
            status=outcome.status.value,
            cause=outcome.cause.value if outcome.cause is not None else None,
            summary=unsurrogate(outcome.summary or "")[:4000],
            detail=outcome.detail,
            started_at=started_at,
            duration=duration,
            log_hash=log_hash,
            log_excerpt=log_excerpt,
        )
    )
    if stage is Stage.APPLY:
        for position, patch in enumerate(outcome.detail.get("patches", []), start=1):
            hunks = [h for f in patch.get("files", []) for h in f.get("hunks", [])]
            session.add(
                PatchResult(
                    job_id=job.id,
                    position=position,
                    name=str(patch.get("name", "")),
                    klass=str(patch.get("class", "")),
                    hunks=len(hunks),
                    hunks_failed=sum(1 for h in hunks if h.get("class") == "conflict"),
                    max_fuzz=max((int(h.get("fuzz") or 0) for h in hunks), default=0),
                    total_offset=sum(abs(int(h.get("offset") or 0)) for h in hunks),
                    depends_on_failed=bool(patch.get("depends_on_failed", False)),
                )
            )
    if outcome.status is not Status.SKIP:
        job.furthest_stage = stage.value
        job.status = outcome.status.value
        job.cause = outcome.cause.value if outcome.cause is not None else None
        job.summary = unsurrogate(outcome.summary or "")[:4000]


def finish_job(session: Session, job: Job, *, interrupted: str | None = None) -> None:
    job.finished_at = now()
    if interrupted:
        job.status = Status.ERROR.value
        job.cause = Cause.INFRASTRUCTURE.value
        job.summary = interrupted
        job.finished = False
    else:
        job.finished = True


def finish_run(session: Session, run: Run, status: str) -> None:
    run.finished_at = now()
    run.status = status
