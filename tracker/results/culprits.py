"""The culprits ``ktrack bisect`` recorded, as ``ktrack check`` and the matrix look them up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.results.db import Database
from tracker.results.models import Culprit, KernelRelease, Patchset, PatchsetVersion
from tracker.versions import KernelVersion


def culprits_for(
    session: Session,
    patchset_version_id: int,
    bad_release_id: int,
    stage: str | None = None,
) -> list[Culprit]:
    """The culprits recorded for a failing (patch set version, release), newest bisect first;
    ``ktrack check`` and the matrix show them next to the failure."""
    q = select(Culprit).where(
        Culprit.patchset_version_id == patchset_version_id,
        Culprit.bad_release_id == bad_release_id,
    )
    if stage is not None:
        q = q.where(Culprit.stage == stage)
    return list(session.scalars(q.order_by(Culprit.found_at.desc(), Culprit.id)).all())


def culprits_at(
    db: Database, patchset: str, version: str, kernel: str, stage: str = "apply"
) -> list[tuple[Culprit, str]]:
    """The culprits recorded for ``PATCHSET@VERSION`` failing at ``kernel``: those of the newest
    bisected bad release at or before ``kernel`` (a later release fails for the same reason), one
    per commit, oldest commit first, each with that bad release's version."""
    want = KernelVersion.try_parse(kernel)
    if want is None:
        return []
    with db.session() as session:
        rows = session.execute(
            select(Culprit, KernelRelease.version)
            .join(PatchsetVersion, Culprit.patchset_version_id == PatchsetVersion.id)
            .join(Patchset, PatchsetVersion.patchset_id == Patchset.id)
            .join(KernelRelease, Culprit.bad_release_id == KernelRelease.id)
            .where(
                Patchset.name == patchset,
                PatchsetVersion.version == version,
                Culprit.stage == stage,
            )
        ).all()
    best: tuple[KernelVersion, str] | None = None
    for _row, bad in rows:
        kv = KernelVersion.try_parse(bad)
        if kv is not None and kv <= want and (best is None or kv > best[0]):
            best = (kv, bad)
    if best is None:
        return []
    out: dict[str, tuple[Culprit, str]] = {}
    for row, bad in rows:
        if bad == best[1] and row.commit not in out:
            out[row.commit] = (row, bad)
    return sorted(out.values(), key=lambda rb: str((rb[0].detail or {}).get("date") or ""))
