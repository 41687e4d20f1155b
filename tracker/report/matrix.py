"""The compatibility matrix: patch set versions by releases, per target.

Rows are patch set versions (by name, then version); columns are releases grouped by series, newest
first. A cell is the latest finished job for its (patch set version, release, target): the job's
status (the worst of its stages'), the furthest stage it reached, the cause of that status, and
the reason in one line. Cells whose cause is not ``verdict`` (``upstream``, ``infrastructure``,
``bad-input``) are kept apart from breaks: they judge nothing.

``ktrack.matrix/1`` cells: ``patchset``, ``patchset_version``, ``release``, ``target``, ``status``
(the job's worst), ``stage`` (the furthest reached), ``cause`` (``vocab.Cause`` value, null for pass
and skip), ``reason`` (one line) and ``job`` (its key).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tracker.results import queries
from tracker.results.queries import JobRow, one_line, version_key
from tracker.vocab import Cause, Stage, Status

SCHEMA = "ktrack.matrix/1"


@dataclass(frozen=True)
class Cell:
    status: Status
    furthest_stage: Stage | None
    reason: str
    job_key: str
    job_id: int
    finished_at: datetime | None = None
    cause: Cause | None = None

    @property
    def label(self) -> str:
        """``build:fail``; ``none:skip`` when no stage ran."""
        stage = self.furthest_stage.value if self.furthest_stage else "none"
        return f"{stage}:{self.status.value}"

    @property
    def gives_verdict(self) -> bool:
        return self.cause is None or self.cause is Cause.VERDICT

    @property
    def cause_note(self) -> str:
        """`` (upstream)`` after the label when the cause is not a verdict, else ``""``."""
        return "" if self.gives_verdict or self.cause is None else f" ({self.cause.value})"

    @property
    def is_break(self) -> bool:
        return self.status is Status.FAIL and self.gives_verdict

    @property
    def passes(self) -> bool:
        return self.status in (Status.PASS, Status.WARN)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "stage": self.furthest_stage.value if self.furthest_stage else None,
            "cause": self.cause.value if self.cause is not None else None,
            "reason": self.reason,
            "job": self.job_key,
        }


@dataclass(frozen=True)
class Row:
    """One patch set version."""

    psv_id: int
    patchset: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.patchset}@{self.version}"


@dataclass(frozen=True)
class Release:
    id: int
    version: str
    series: str
    moniker: str


@dataclass(frozen=True)
class SeriesGroup:
    series: str
    releases: tuple[Release, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[Row, ...]
    releases: tuple[Release, ...]  # newest first, grouped by series
    targets: tuple[str, ...]
    cells: dict[tuple[int, int, str], Cell] = field(default_factory=dict)  # (psv, release, target)
    jobs: dict[int, JobRow] = field(default_factory=dict)  # job id -> row
    run_id: int | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def series_groups(self) -> tuple[SeriesGroup, ...]:
        groups: list[SeriesGroup] = []
        for rel in self.releases:
            if groups and groups[-1].series == rel.series:
                last = groups.pop()
                groups.append(SeriesGroup(last.series, (*last.releases, rel)))
            else:
                groups.append(SeriesGroup(rel.series, (rel,)))
        return tuple(groups)

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(g.series for g in self.series_groups)

    def cell(self, row: Row, release: Release, target: str) -> Cell | None:
        return self.cells.get((row.psv_id, release.id, target))

    def iter_cells(self) -> Iterator[tuple[Row, Release, str, Cell]]:
        for row in self.rows:
            for target in self.targets:
                for rel in self.releases:
                    c = self.cells.get((row.psv_id, rel.id, target))
                    if c is not None:
                        yield row, rel, target, c

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for c in self.cells.values():
            out[c.status.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "generated_at": self.generated_at.isoformat(),
            "run": self.run_id,
            "targets": list(self.targets),
            "series": [
                {"series": g.series, "releases": [r.version for r in g.releases]}
                for g in self.series_groups
            ],
            "releases": [
                {"version": r.version, "series": r.series, "moniker": r.moniker}
                for r in self.releases
            ],
            "patchset_versions": [
                {"patchset": r.patchset, "version": r.version} for r in self.rows
            ],
            "counts": self.counts(),
            "cells": [
                {
                    "patchset": row.patchset,
                    "patchset_version": row.version,
                    "release": rel.version,
                    "target": target,
                    **cell.to_json(),
                }
                for row, rel, target, cell in self.iter_cells()
            ],
        }


def cell_of(job: JobRow) -> Cell:
    return Cell(
        status=job.status,
        furthest_stage=job.furthest_stage,
        reason=one_line(job.summary),
        job_key=job.key,
        job_id=job.id,
        finished_at=job.finished_at,
        cause=job.cause,
    )


def matrix_from_jobs(jobs: Sequence[JobRow], *, run_id: int | None = None) -> Matrix:
    """Build the matrix from job rows (the latest per cell wins)."""
    latest = queries.latest_per_cell(jobs)
    rows = {(j.psv_id): Row(j.psv_id, j.patchset, j.psv_version) for j in latest.values()}
    rels = {
        j.release_id: Release(j.release_id, j.release, j.series, j.moniker) for j in latest.values()
    }
    targets = sorted({j.target for j in latest.values()})
    ordered_rows = sorted(
        rows.values(), key=lambda r: (r.patchset, version_key(r.version), r.psv_id)
    )
    ordered_rels = _order_releases(list(rels.values()))
    cells = {k: cell_of(j) for k, j in latest.items()}
    return Matrix(
        rows=tuple(ordered_rows),
        releases=tuple(ordered_rels),
        targets=tuple(targets),
        cells=cells,
        jobs={j.id: j for j in latest.values()},
        run_id=run_id,
    )


def _order_releases(rels: list[Release]) -> list[Release]:
    """Series newest first, releases newest first within their series."""
    by_series: dict[str, list[Release]] = {}
    for r in rels:
        by_series.setdefault(r.series, []).append(r)
    for group in by_series.values():
        group.sort(key=lambda r: version_key(r.version), reverse=True)
    # a series ranks by its newest release
    order = sorted(by_series.values(), key=lambda g: version_key(g[0].version), reverse=True)
    return [r for g in order for r in g]


def build_matrix(
    session: Session,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
) -> Matrix:
    """The matrix of the latest finished job per (patch set version, release, target).

    ``patchsets`` keeps names (``vcontext``) or versions (``vcontext@0.3``); ``run_id`` keeps the
    jobs that run covered (including reused ones).
    """
    jobs = queries.finished_jobs(session, patchsets=patchsets, run_id=run_id)
    return matrix_from_jobs(jobs, run_id=run_id)
