"""Everything a report shows, read from the database once: the matrix and the rows behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.report.matrix import Matrix, build_matrix
from tracker.results import queries
from tracker.results.models import Patchset, PatchsetVersion
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


def load_report_data(
    session: Session,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
) -> ReportData:
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
