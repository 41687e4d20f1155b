"""Writing a job's results as it goes: the job row first, each stage row as soon as it is known,
and the job's final status in a ``finally`` so a killed run leaves a truthful partial record.

A job's status is the worst of its stages' (with that stage's cause and summary) and its furthest
stage the last one that ran (:func:`job_verdict`). A finished job is reused while its judgement
stands (:func:`reusable`: not an error, not asked to be judged again, same toolchain); a job judged
again keeps its earlier attempt in ``job_attempt`` (:func:`archive_attempt`)."""

from __future__ import annotations

import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.errors import UserError
from tracker.pipeline.plan import JobSpec
from tracker.results.models import (
    Job,
    JobAttempt,
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


def reusable(
    job: Job,
    run_id: int | None,
    rerun: Collection[Status] = (),
    toolchain: str | None = None,
) -> bool:
    """Whether ``job``'s finished result stands for this run instead of being judged again.

    Never an unfinished job (a killed run) or an ``error`` (no verdict). A job this same run
    finished is always kept (a task delivered twice computes nothing twice). Otherwise a job whose
    status ``rerun`` names is judged again, and so is one judged by another toolchain than
    ``toolchain`` (``None``: not compared), or by an unknown one (results from before 0004)."""
    if not job.finished or job.status == Status.ERROR.value:
        return False
    if run_id is not None and job.run_id == run_id:
        return True
    if job.status in {s.value for s in rerun}:
        return False
    return toolchain is None or job.toolchain == toolchain


def claim_job(
    session: Session,
    spec: JobSpec,
    run_id: int | None,
    *,
    rerun: Collection[Status] = (),
    toolchain: str | None = None,
) -> tuple[Job, bool]:
    """The job row for ``spec``; True when a finished result exists and must be reused (see
    :func:`reusable`). Otherwise the job is reset for a new attempt; the previous attempt, if
    any, is kept in ``job_attempt`` first.
    """
    job = session.scalars(select(Job).where(Job.key == spec.key)).first()
    if job is not None and reusable(job, run_id, rerun, toolchain):
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
        archive_attempt(session, job)
    job.run_id = run_id
    job.status = Status.SKIP.value
    job.cause = None
    job.furthest_stage = None
    job.summary = "running"
    job.finished = False
    job.started_at = now()
    job.finished_at = None
    job.toolchain = toolchain
    job.attempts = (job.attempts or 0) + 1
    if run_id is not None:
        _link(session, run_id, job.id, reused=False)
    session.flush()
    return job, False


def archive_attempt(session: Session, job: Job) -> JobAttempt | None:
    """Move the job's current result (its row's verdict and its stage rows) into
    ``job_attempt`` and clear its stage and patch rows, ready for a new attempt."""
    stage_rows = list(session.scalars(select(StageResult).where(StageResult.job_id == job.id)))
    kept = None
    if stage_rows or job.finished:
        last = session.scalar(
            select(func.max(JobAttempt.attempt)).where(JobAttempt.job_id == job.id)
        )
        kept = JobAttempt(
            job_id=job.id,
            attempt=(last or 0) + 1,
            run_id=job.run_id,
            status=job.status,
            cause=job.cause,
            furthest_stage=job.furthest_stage,
            summary=job.summary,
            finished=bool(job.finished),
            toolchain=job.toolchain,
            started_at=job.started_at,
            finished_at=job.finished_at,
            archived_at=now(),
            stages=[
                {
                    "stage": sr.stage,
                    "status": sr.status,
                    "cause": sr.cause,
                    "summary": sr.summary,
                    "duration": sr.duration,
                    "log_hash": sr.log_hash,
                }
                for sr in sorted(stage_rows, key=lambda r: _stage_index(r.stage))
            ],
        )
        session.add(kept)
    session.execute(delete(StageResult).where(StageResult.job_id == job.id))
    session.execute(delete(PatchResult).where(PatchResult.job_id == job.id))
    session.flush()
    session.expire(job)
    return kept


def _stage_index(name: str) -> int:
    try:
        return Stage(name).index
    except ValueError:
        return len(Stage)


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
    session.flush()
    rows = session.execute(
        select(StageResult.stage, StageResult.status, StageResult.cause, StageResult.summary).where(
            StageResult.job_id == job.id
        )
    )
    set_verdict(job, job_verdict(rows))


def set_verdict(job: Job, verdict: JobVerdict) -> None:
    """Write a job's verdict (its worst stage's status, cause and summary, its furthest stage)."""
    job.status = verdict.status.value
    job.cause = verdict.cause.value if verdict.cause is not None else None
    job.furthest_stage = verdict.furthest.value if verdict.furthest is not None else None
    job.summary = (
        unsurrogate(verdict.summary)[:4000] if verdict.furthest is not None else job.summary
    )


@dataclass(frozen=True)
class JobVerdict:
    """A job's status: the worst of its stages' (fail > error > warn > pass > skip), the cause and
    summary of that worst stage (the earliest among equals), and the furthest stage that ran."""

    status: Status
    cause: Cause | None
    stage: Stage | None  # the stage the status comes from
    furthest: Stage | None
    summary: str


def job_verdict(rows: Iterable[Any]) -> JobVerdict:
    """The verdict of a job from its stage rows, each ``(stage, status, cause, summary)`` as
    stored (strings; unknown stages or statuses are ignored)."""
    ran: list[tuple[Stage, Status, Cause | None, str]] = []
    for stage_text, status_text, cause_text, summary in rows:
        try:
            stage, status = Stage(stage_text), Status(status_text)
            cause = Cause(cause_text) if cause_text else Cause.default_for(status)
        except ValueError:
            continue
        if status is not Status.SKIP:
            ran.append((stage, status, cause, summary or ""))
    if not ran:
        return JobVerdict(Status.SKIP, None, None, None, "")
    ran.sort(key=lambda r: r[0].index)
    worst = max(status for _, status, _, _ in ran)
    stage, status, cause, summary = next(r for r in ran if r[1] is worst)
    return JobVerdict(status, cause, stage, ran[-1][0], summary)


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
