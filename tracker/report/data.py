"""Everything a report shows, read from the database once: the matrix and the rows behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.errors import UserError
from tracker.report.matrix import Matrix, build_matrix
from tracker.results import queries
from tracker.results.models import Patchset, PatchsetVersion, Run
from tracker.results.queries import (
    AttemptRow,
    CulpritRow,
    JobRow,
    PatchRow,
    RegressionRow,
    StageRow,
)


@dataclass(frozen=True)
class ReportData:
    matrix: Matrix
    stages: dict[int, list[StageRow]]  # job id -> stage rows in pipeline order
    patches: dict[int, list[PatchRow]]  # job id -> patch rows in series order
    culprits: dict[tuple[int, str, str], list[CulpritRow]]  # (psv, target, bad release)
    regressions: list[RegressionRow]
    homepages: dict[str, str]  # patch set name -> homepage
    content_hashes: dict[tuple[str, str], str]  # (patch set, version) -> recorded content hash
    attempts: dict[int, list[AttemptRow]] = field(default_factory=dict)  # earlier, newest first

    def culprits_for(self, job: JobRow) -> list[CulpritRow]:
        return self.culprits.get((job.psv_id, job.target, job.release), [])


def check_selection(
    session: Session, *, patchsets: Sequence[str] | None = None, run_id: int | None = None
) -> None:
    """A UserError when ``run_id`` or a ``--patchset NAME[@VER]`` names nothing the database has:
    a report (or matrix) of nothing that was asked for is a typo, not an empty result."""
    if run_id is not None and session.get(Run, run_id) is None:
        last = session.scalar(select(Run.id).order_by(Run.id.desc()).limit(1))
        known = f"the last run is {last}" if last is not None else "no run is recorded yet"
        raise UserError(f"--run: no run {run_id} ({known})")
    if not patchsets:
        return
    versions: dict[str, set[str]] = {}
    for name, version in session.execute(
        select(Patchset.name, PatchsetVersion.version).join(
            PatchsetVersion, PatchsetVersion.patchset_id == Patchset.id
        )
    ):
        versions.setdefault(name, set()).add(version)
    for wanted in patchsets:
        name, at, version = wanted.partition("@")
        if name not in versions:
            known = ", ".join(sorted(versions)) or "none recorded yet"
            raise UserError(f"--patchset: no results for patch set {name!r} (known: {known})")
        if at and version not in versions[name]:
            known = ", ".join(sorted(versions[name]))
            raise UserError(f"--patchset: no results for {name}@{version} (versions: {known})")


def load_report_data(
    session: Session,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
) -> ReportData:
    check_selection(session, patchsets=patchsets, run_id=run_id)
    m = build_matrix(session, patchsets=patchsets, run_id=run_id)
    ids = list(m.jobs)
    homepages = {
        name: home
        for name, home in session.execute(select(Patchset.name, Patchset.homepage))
        if home
    }
    psvs = {r.psv_id for r in m.rows}
    hashes = {
        (name, version): content
        for pid, name, version, content in session.execute(
            select(
                PatchsetVersion.id,
                Patchset.name,
                PatchsetVersion.version,
                PatchsetVersion.content_hash,
            ).join(Patchset, PatchsetVersion.patchset_id == Patchset.id)
        )
        if pid in psvs
    }
    return ReportData(
        matrix=m,
        stages=queries.stage_results(session, ids),
        patches=queries.patch_results(session, ids),
        culprits=queries.culprits(session),
        regressions=[r for r in queries.regressions(session) if r.psv_id in psvs],
        homepages=homepages,
        content_hashes=hashes,
        attempts=queries.attempts(session, ids),
    )
