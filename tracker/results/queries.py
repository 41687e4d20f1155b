"""Read-side queries over the results database, shaped for reports.

Everything returns small frozen dataclasses rather than ORM objects: the reports read tens of
thousands of rows, and plain rows keep that fast and keep the session out of the renderers.
Versions are ordered in Python with :class:`~tracker.versions.KernelVersion`, never in SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from tracker.results.models import (
    Culprit,
    Job,
    JobAttempt,
    KernelRelease,
    PatchResult,
    Patchset,
    PatchsetVersion,
    Regression,
    Run,
    RunJob,
    StageResult,
)
from tracker.versions import KernelVersion
from tracker.vocab import Cause, Stage, Status

_CHUNK = 500  # ids per IN (...) list: SQLite allows 999 parameters


_STATUSES = {s.value: s for s in Status}
_STAGES = {s.value: s for s in Stage}


def parse_status(text: str | None) -> Status:
    """A stored status string as the enum; unknown or empty reads as ``skip``."""
    return _STATUSES.get(text or "", Status.SKIP)


def parse_stage(text: str | None) -> Stage | None:
    return _STAGES.get(text or "")


_CAUSES = {c.value: c for c in Cause}


def parse_cause(text: str | None, status: Status) -> Cause | None:
    """A stored cause as the enum; a row without one (or an unknown one) gets the cause its
    status implies (``Cause.default_for``); pass and skip have none."""
    if status in (Status.PASS, Status.SKIP):
        return None
    return _CAUSES.get(text or "") or Cause.default_for(status)


def _decode(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not raw or raw in ("{}", "null"):
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def one_line(text: str | None, width: int = 160) -> str:
    """The first non-empty line of ``text``, whitespace collapsed, shortened to ``width``."""
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


@lru_cache(maxsize=8192)
def version_key(text: str) -> tuple[Any, ...]:
    """Sort key for a release version string; unparsable ones sort first, by text."""
    v = KernelVersion.try_parse(text)
    return (1, v.sort_key(), text) if v is not None else (0, (), text)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class JobRow:
    """One job with the names a report shows."""

    id: int
    key: str
    run_id: int | None
    psv_id: int
    patchset: str
    psv_version: str
    release_id: int
    release: str
    series: str
    moniker: str
    target: str
    stages: str
    status: Status
    furthest_stage: Stage | None
    summary: str
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    cause: Cause | None = None  # the cause of the job's (worst) status

    @property
    def gives_verdict(self) -> bool:
        """Whether the status judges the patch set (False: upstream, infrastructure, bad input)."""
        return self.cause is None or self.cause is Cause.VERDICT

    @property
    def arch(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def config(self) -> str:
        return self.target.split(":", 1)[1] if ":" in self.target else ""

    @property
    def label(self) -> str:
        """``build:fail``: the furthest stage and its status."""
        stage = self.furthest_stage.value if self.furthest_stage else "none"
        return f"{stage}:{self.status.value}"

    @property
    def order_key(self) -> tuple[datetime, int]:
        """Later finished first when sorted descending; the id breaks ties."""
        return (self.finished_at or datetime.min.replace(tzinfo=UTC), self.id)


@dataclass(frozen=True)
class StageRow:
    """A stage result; its JSON ``detail`` is decoded on first use (reports skip most of them)."""

    job_id: int
    stage: Stage
    status: Status
    summary: str
    raw_detail: str | dict[str, Any] | None
    started_at: datetime | None
    duration: float | None
    log_hash: str | None
    log_excerpt: str | None
    cause: Cause | None = None

    @cached_property
    def detail(self) -> dict[str, Any]:
        return _decode(self.raw_detail)


@dataclass(frozen=True)
class PatchRow:
    job_id: int
    position: int
    name: str
    klass: str
    hunks: int
    hunks_failed: int
    max_fuzz: int
    total_offset: int
    depends_on_failed: bool


@dataclass(frozen=True)
class CulpritRow:
    psv_id: int
    target: str
    stage: str
    good_release: str
    bad_release: str
    commit: str
    subject: str | None
    author: str | None
    committed_at: datetime | None


@dataclass(frozen=True)
class RegressionRow:
    id: int
    psv_id: int
    patchset: str
    psv_version: str
    target: str
    kind: str
    stage: str | None
    last_good_release: str | None
    first_bad_release: str
    opened_run_id: int | None
    closed_run_id: int | None
    summary: str
    opened_at: datetime | None
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_run_id is None and self.closed_at is None

    def __str__(self) -> str:
        return f"{self.patchset}@{self.psv_version} {self.target} ({self.kind}): {self.summary}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "patchset": self.patchset,
            "patchset_version": self.psv_version,
            "target": self.target,
            "kind": self.kind,
            "stage": self.stage,
            "last_good_release": self.last_good_release,
            "first_bad_release": self.first_bad_release,
            "opened_run": self.opened_run_id,
            "closed_run": self.closed_run_id,
            "open": self.is_open,
            "summary": self.summary,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


def job_select() -> Any:
    return (
        select(
            Job.id,
            Job.key,
            Job.run_id,
            Job.patchset_version_id,
            Patchset.name,
            PatchsetVersion.version,
            Job.release_id,
            KernelRelease.version,
            KernelRelease.series,
            KernelRelease.moniker,
            Job.target,
            Job.stages,
            Job.status,
            Job.furthest_stage,
            Job.summary,
            Job.started_at,
            Job.finished_at,
            Job.attempts,
            Job.cause,
        )
        .join(PatchsetVersion, Job.patchset_version_id == PatchsetVersion.id)
        .join(Patchset, PatchsetVersion.patchset_id == Patchset.id)
        .join(KernelRelease, Job.release_id == KernelRelease.id)
    )


def job_row(r: Any) -> JobRow:
    return JobRow(
        id=r[0],
        key=r[1],
        run_id=r[2],
        psv_id=r[3],
        patchset=r[4],
        psv_version=r[5],
        release_id=r[6],
        release=r[7],
        series=r[8],
        moniker=r[9],
        target=r[10],
        stages=r[11] or "",
        status=parse_status(r[12]),
        furthest_stage=parse_stage(r[13]),
        summary=(r[14] or "").strip(),
        started_at=_utc(r[15]),
        finished_at=_utc(r[16]),
        attempts=r[17] or 0,
        cause=parse_cause(r[18], parse_status(r[12])),
    )


def finished_jobs(
    session: Session,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
) -> list[JobRow]:
    """Every finished job, or those a run covered (its own and the ones it reused)."""
    stmt = job_select().where(Job.finished.is_(True))
    if patchsets:
        names = {p.split("@", 1)[0] for p in patchsets}
        stmt = stmt.where(Patchset.name.in_(sorted(names)))
    if run_id is not None:
        stmt = stmt.join(RunJob, RunJob.job_id == Job.id).where(RunJob.run_id == run_id)
    rows = [job_row(r) for r in session.execute(stmt)]
    if patchsets:
        wanted = {p for p in patchsets if "@" in p}
        if wanted:
            bare = {p for p in patchsets if "@" not in p}
            rows = [
                r for r in rows if r.patchset in bare or f"{r.patchset}@{r.psv_version}" in wanted
            ]
    return rows


def latest_per_cell(rows: Iterable[JobRow]) -> dict[tuple[int, int, str], JobRow]:
    """The latest finished job per (patch set version, release, target)."""
    out: dict[tuple[int, int, str], JobRow] = {}
    for r in rows:
        k = (r.psv_id, r.release_id, r.target)
        cur = out.get(k)
        if cur is None or r.order_key > cur.order_key:
            out[k] = r
    return out


def latest_jobs(
    session: Session,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
) -> list[JobRow]:
    return list(
        latest_per_cell(finished_jobs(session, patchsets=patchsets, run_id=run_id)).values()
    )


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


def stage_results(session: Session, job_ids: Sequence[int]) -> dict[int, list[StageRow]]:
    """Stage rows per job, in pipeline order."""
    out: dict[int, list[StageRow]] = {}
    cols = (
        StageResult.job_id,
        StageResult.stage,
        StageResult.status,
        StageResult.summary,
        cast(StageResult.detail, Text),
        StageResult.started_at,
        StageResult.duration,
        StageResult.log_hash,
        StageResult.log_excerpt,
        StageResult.cause,
    )
    for chunk in _chunks(job_ids):
        for r in session.execute(select(*cols).where(StageResult.job_id.in_(chunk))):
            stage = parse_stage(r[1])
            if stage is None:
                continue
            status = parse_status(r[2])
            out.setdefault(r[0], []).append(
                StageRow(
                    job_id=r[0],
                    stage=stage,
                    status=status,
                    summary=(r[3] or "").strip(),
                    raw_detail=r[4],
                    started_at=_utc(r[5]),
                    duration=r[6],
                    log_hash=r[7],
                    log_excerpt=r[8],
                    cause=parse_cause(r[9], status),
                )
            )
    for rows in out.values():
        rows.sort(key=lambda s: s.stage.index)
    return out


@dataclass(frozen=True)
class AttemptRow:
    """An earlier attempt of a job (the job row holds the newest): what it said and when."""

    job_id: int
    attempt: int
    run_id: int | None
    status: Status
    cause: Cause | None
    furthest_stage: Stage | None
    summary: str
    toolchain: str | None
    finished_at: datetime | None


def attempts(session: Session, job_ids: Sequence[int]) -> dict[int, list[AttemptRow]]:
    """Earlier attempts per job, newest first."""
    out: dict[int, list[AttemptRow]] = {}
    for chunk in _chunks(job_ids):
        for a in session.scalars(select(JobAttempt).where(JobAttempt.job_id.in_(chunk))):
            status = parse_status(a.status)
            out.setdefault(a.job_id, []).append(
                AttemptRow(a.job_id, a.attempt, a.run_id, status, parse_cause(a.cause, status),
                           parse_stage(a.furthest_stage), (a.summary or "").strip(), a.toolchain,
                           _utc(a.finished_at))
            )  # fmt: skip
    for rows in out.values():
        rows.sort(key=lambda a: a.attempt, reverse=True)
    return out


def patch_results(session: Session, job_ids: Sequence[int]) -> dict[int, list[PatchRow]]:
    out: dict[int, list[PatchRow]] = {}
    cols = (
        PatchResult.job_id,
        PatchResult.position,
        PatchResult.name,
        PatchResult.klass,
        PatchResult.hunks,
        PatchResult.hunks_failed,
        PatchResult.max_fuzz,
        PatchResult.total_offset,
        PatchResult.depends_on_failed,
    )
    for chunk in _chunks(job_ids):
        for r in session.execute(select(*cols).where(PatchResult.job_id.in_(chunk))):
            out.setdefault(r[0], []).append(
                PatchRow(
                    job_id=r[0],
                    position=r[1],
                    name=r[2],
                    klass=r[3],
                    hunks=r[4] or 0,
                    hunks_failed=r[5] or 0,
                    max_fuzz=r[6] or 0,
                    total_offset=r[7] or 0,
                    depends_on_failed=bool(r[8]),
                )
            )
    for rows in out.values():
        rows.sort(key=lambda p: p.position)
    return out


def culprits(session: Session) -> dict[tuple[int, str, str], list[CulpritRow]]:
    """Culprits keyed by (patch set version id, target, first bad release version)."""
    good = KernelRelease.__table__.alias("good")
    bad = KernelRelease.__table__.alias("bad")
    stmt = (
        select(
            Culprit.patchset_version_id,
            Culprit.target,
            Culprit.stage,
            good.c.version,
            bad.c.version,
            Culprit.commit,
            Culprit.subject,
            Culprit.author,
            Culprit.committed_at,
        )
        .join(good, Culprit.good_release_id == good.c.id)
        .join(bad, Culprit.bad_release_id == bad.c.id)
    )
    out: dict[tuple[int, str, str], list[CulpritRow]] = {}
    for r in session.execute(stmt):
        row = CulpritRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _utc(r[8]))
        out.setdefault((row.psv_id, row.target, row.bad_release), []).append(row)
    return out


def regressions(
    session: Session, *, open_only: bool = False, since_run: int | None = None
) -> list[RegressionRow]:
    """Regressions, newest first; ``since_run`` keeps those opened or closed after that run."""
    good = KernelRelease.__table__.alias("good")
    bad = KernelRelease.__table__.alias("bad")
    stmt = (
        select(
            Regression.id,
            Regression.patchset_version_id,
            Patchset.name,
            PatchsetVersion.version,
            Regression.target,
            Regression.kind,
            Regression.stage,
            good.c.version,
            bad.c.version,
            Regression.opened_run_id,
            Regression.closed_run_id,
            Regression.summary,
            Regression.opened_at,
            Regression.closed_at,
        )
        .join(PatchsetVersion, Regression.patchset_version_id == PatchsetVersion.id)
        .join(Patchset, PatchsetVersion.patchset_id == Patchset.id)
        .join(bad, Regression.first_bad_release_id == bad.c.id)
        .outerjoin(good, Regression.last_good_release_id == good.c.id)
    )
    rows = [
        RegressionRow(
            id=r[0],
            psv_id=r[1],
            patchset=r[2],
            psv_version=r[3],
            target=r[4],
            kind=r[5],
            stage=r[6],
            last_good_release=r[7],
            first_bad_release=r[8],
            opened_run_id=r[9],
            closed_run_id=r[10],
            summary=r[11] or "",
            opened_at=_utc(r[12]),
            closed_at=_utc(r[13]),
        )
        for r in session.execute(stmt)
    ]
    if open_only:
        rows = [r for r in rows if r.is_open]
    if since_run is not None:
        rows = [
            r
            for r in rows
            if (r.opened_run_id or 0) > since_run or (r.closed_run_id or 0) > since_run
        ]
    rows.sort(key=lambda r: r.id, reverse=True)
    return rows


def latest_run_id(session: Session) -> int | None:
    return session.execute(select(Run.id).order_by(Run.id.desc()).limit(1)).scalar()
