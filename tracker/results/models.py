"""The results database: SQLAlchemy 2.0 typed ORM models.

Every change here is an Alembic migration in ``db/versions``; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class KernelRelease(Base):
    """A kernel release known to the catalog."""

    __tablename__ = "kernel_release"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    series: Mapped[str] = mapped_column(String(32), index=True)
    moniker: Mapped[str] = mapped_column(String(16))
    released_at: Mapped[datetime | None]
    eol: Mapped[bool] = mapped_column(Boolean, default=False)
    feed: Mapped[str] = mapped_column(String(64))
    source_url: Mapped[str | None] = mapped_column(Text)
    pgp_url: Mapped[str | None] = mapped_column(Text)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str | None] = mapped_column(String(64))
    store_ref: Mapped[str | None] = mapped_column(String(128))
    discovered_at: Mapped[datetime | None]


class Patchset(Base):
    __tablename__ = "patchset"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    summary: Mapped[str | None] = mapped_column(Text)
    homepage: Mapped[str | None] = mapped_column(Text)

    versions: Mapped[list[PatchsetVersion]] = relationship(back_populates="patchset")


class PatchsetVersion(Base):
    """One version of a patch set, identified by its content hash."""

    __tablename__ = "patchset_version"
    __table_args__ = (UniqueConstraint("patchset_id", "version", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patchset_id: Mapped[int] = mapped_column(ForeignKey("patchset.id"))
    version: Mapped[str] = mapped_column(String(64))
    base: Mapped[str | None] = mapped_column(String(32))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime | None]

    patchset: Mapped[Patchset] = relationship(back_populates="versions")


class Run(Base):
    """One invocation of ``ktrack run``."""

    __tablename__ = "run"

    id: Mapped[int] = mapped_column(primary_key=True)
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    host: Mapped[str | None] = mapped_column(String(255))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")


class Job(Base):
    """One (patch set version, release, target) with its stage list; ``key`` makes it idempotent."""

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"), index=True)
    patchset_version_id: Mapped[int] = mapped_column(ForeignKey("patchset_version.id"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("kernel_release.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))
    stages: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="skip")
    cause: Mapped[str | None] = mapped_column(String(16))  # vocab.Cause of the worst stage
    furthest_stage: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # tracker.build.toolchain.fingerprint of the tools that judged it: a job judged by other
    # tools (or an older stage logic) is judged again, not reused
    toolchain: Mapped[str | None] = mapped_column(String(32))

    patchset_version: Mapped[PatchsetVersion] = relationship()
    release: Mapped[KernelRelease] = relationship()
    stage_results: Mapped[list[StageResult]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="StageResult.id"
    )
    patch_results: Mapped[list[PatchResult]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="PatchResult.position"
    )


class JobAttempt(Base):
    """An earlier attempt at a job, kept when the job is judged again (``run --rerun``, a new
    toolchain, an error retried): what it said, stage by stage. The job row and its stage rows
    always hold the newest attempt."""

    __tablename__ = "job_attempt"
    __table_args__ = (UniqueConstraint("job_id", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    status: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str | None] = mapped_column(String(16))
    furthest_stage: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    toolchain: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]
    # [{stage, status, cause, summary, duration, log_hash}] in pipeline order
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class RunJob(Base):
    """Which jobs a run covered, including the ones it reused from earlier runs."""

    __tablename__ = "run_job"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), primary_key=True)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)


class StageResult(Base):
    __tablename__ = "stage_result"
    __table_args__ = (UniqueConstraint("job_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"))
    stage: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str | None] = mapped_column(String(16))  # vocab.Cause; None for pass/skip
    summary: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime | None]
    duration: Mapped[float | None]
    log_hash: Mapped[str | None] = mapped_column(String(64))
    log_excerpt: Mapped[str | None] = mapped_column(Text)

    job: Mapped[Job] = relationship(back_populates="stage_results")


class PatchResult(Base):
    __tablename__ = "patch_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    klass: Mapped[str] = mapped_column("class", String(24))
    hunks: Mapped[int] = mapped_column(Integer, default=0)
    hunks_failed: Mapped[int] = mapped_column(Integer, default=0)
    max_fuzz: Mapped[int] = mapped_column(Integer, default=0)
    total_offset: Mapped[int] = mapped_column(Integer, default=0)
    depends_on_failed: Mapped[bool] = mapped_column(Boolean, default=False)

    job: Mapped[Job] = relationship(back_populates="patch_results")


class Culprit(Base):
    """The upstream commit bisect found to break a patch set version."""

    __tablename__ = "culprit"
    __table_args__ = (Index("ix_culprit_lookup", "patchset_version_id", "bad_release_id", "stage"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patchset_version_id: Mapped[int] = mapped_column(ForeignKey("patchset_version.id"))
    target: Mapped[str] = mapped_column(String(128))
    stage: Mapped[str] = mapped_column(String(16))
    good_release_id: Mapped[int] = mapped_column(ForeignKey("kernel_release.id"))
    bad_release_id: Mapped[int] = mapped_column(ForeignKey("kernel_release.id"))
    commit: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    committed_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    found_at: Mapped[datetime | None]


class Regression(Base):
    """A (patch set version, target) that passed and now fails; closed when it passes again."""

    __tablename__ = "regression"

    id: Mapped[int] = mapped_column(primary_key=True)
    patchset_version_id: Mapped[int] = mapped_column(ForeignKey("patchset_version.id"), index=True)
    target: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # "release" or "run"
    stage: Mapped[str | None] = mapped_column(String(16))
    last_good_release_id: Mapped[int | None] = mapped_column(ForeignKey("kernel_release.id"))
    first_bad_release_id: Mapped[int] = mapped_column(ForeignKey("kernel_release.id"))
    opened_run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    closed_run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    summary: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class JobClaim(Base):
    """Who is computing a job right now (Celery workers on many hosts share one database).

    A worker takes the claim with one atomic upsert and keeps it alive by pushing ``lease_until``
    forward; every write of the job's results checks, in the same transaction, that the claim is
    still its own, so a redelivered task never writes a result twice. ``state`` is ``running``,
    ``released`` (the holder ended) or ``failed`` (the holder gave up for good; ``note`` says why).
    """

    __tablename__ = "job_claim"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    claimed_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(String(16))  # vocab.Cause of a ``failed`` claim
