"""The ``culprit`` rows a bisect leaves: one per exact break and target."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tracker.bisect.model import BisectResult, Break
from tracker.bisect.probe import ProbeJob
from tracker.errors import UserError
from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.results.db import Database
from tracker.results.models import Culprit


def store(
    db: Database, result: BisectResult, job: ProbeJob, good_version: str, bad_version: str
) -> int:
    """Record one Culprit row per exact break and target (replacing an earlier bisect of the
    same pair); returns the number of rows."""
    with db.session() as session:
        psv = _patchset_version(session, job)
        good = _release(session, good_version)
        bad = _release(session, bad_version)
        now = datetime.now(UTC)
        n = 0
        for target in job.targets or (job.target,):
            session.execute(
                delete(Culprit).where(
                    Culprit.patchset_version_id == psv,
                    Culprit.target == target,
                    Culprit.stage == result.stage,
                    Culprit.good_release_id == good,
                    Culprit.bad_release_id == bad,
                )
            )
            for i, b in enumerate(result.breaks):
                if b.commit is None:
                    continue
                session.add(
                    Culprit(
                        patchset_version_id=psv,
                        target=target,
                        stage=result.stage,
                        good_release_id=good,
                        bad_release_id=bad,
                        commit=b.commit.hash,
                        subject=b.commit.subject,
                        author=b.commit.author,
                        committed_at=b.commit.committed_at,
                        detail=_detail(result, b, i),
                        found_at=now,
                    )
                )
                n += 1
        return n


def _detail(result: BisectResult, b: Break, i: int) -> dict[str, Any]:
    assert b.commit is not None
    return {
        "break": i + 1,
        "of": len(result.breaks),
        "date": b.commit.authored_at.isoformat(),
        "merge": b.commit.is_merge,
        "files": list(b.files),
        "hunks": [h.to_json() for h in b.hunks],
        "excerpt": b.excerpt,
        "later": [c.to_json() for c in b.later],
        "via_merge": b.via_merge,
        "checks": result.checks,
        "commits": result.commits,
        "candidates": result.candidates,
        "notes": list(b.notes),
    }


def _patchset_version(session: Session, job: ProbeJob) -> int:
    spec = JobSpec(
        patchset=job.name,
        version=job.version,
        content_hash=job.content_hash,
        manifest=job.manifest,
        release="",
        target=job.target,
        stages=(job.stage,),
    )
    return int(record.patchset_version(session, spec, job.base).id)


def _release(session: Session, version: str) -> int:
    try:
        return int(record.release(session, version).id)
    except UserError as exc:
        raise UserError(
            f"cannot record the culprit: {exc.message}",
            hint="run `ktrack releases sync`, or pass --no-store",
        ) from exc
