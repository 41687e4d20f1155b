"""Builders of result rows for the report, matrix and regression tests (imported explicitly)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tracker.results.db import Database
from tracker.results.models import (
    Culprit,
    Job,
    KernelRelease,
    PatchResult,
    Patchset,
    PatchsetVersion,
    Run,
    RunJob,
    StageResult,
)
from tracker.versions import KernelVersion
from tracker.vocab import Stage

STAGES = ("apply", "configure", "build", "boot", "test")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class World:
    """Creates releases, patch set versions, runs and jobs with their stage rows."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self._releases: dict[str, KernelRelease] = {}
        self._patchsets: dict[str, Patchset] = {}
        self._psvs: dict[tuple[str, str], PatchsetVersion] = {}
        self._n = itertools.count(1)

    def release(self, version: str) -> KernelRelease:
        if version not in self._releases:
            v = KernelVersion.parse(version)
            rel = KernelRelease(
                version=version, series=v.series, moniker=v.moniker.value, feed="test"
            )
            self.s.add(rel)
            self.s.flush()
            self._releases[version] = rel
        return self._releases[version]

    def psv(self, name: str, version: str = "1.0") -> PatchsetVersion:
        if name not in self._patchsets:
            ps = Patchset(name=name, summary=f"{name} patches")
            self.s.add(ps)
            self.s.flush()
            self._patchsets[name] = ps
        if (name, version) not in self._psvs:
            pv = PatchsetVersion(
                patchset_id=self._patchsets[name].id,
                version=version,
                base="6.1",
                content_hash=hashlib.sha256(f"{name}@{version}".encode()).hexdigest(),
            )
            self.s.add(pv)
            self.s.flush()
            self._psvs[(name, version)] = pv
        return self._psvs[(name, version)]

    def run(self) -> Run:
        n = next(self._n)
        r = Run(trigger="test", started_at=T0 + timedelta(hours=n), status="done")
        self.s.add(r)
        self.s.flush()
        return r

    def job(
        self,
        run: Run | None,
        psv: PatchsetVersion,
        release: str,
        *,
        target: str = "x86_64:tinyconfig",
        status: str = "pass",
        stage: str = "build",
        stages: str = "apply,configure,build",
        attempts: int = 1,
        summary: str | None = None,
        detail: dict[str, Any] | None = None,
        log_excerpt: str | None = None,
        patches: list[dict[str, Any]] | None = None,
        finished: bool = True,
    ) -> Job:
        n = next(self._n)
        rel = self.release(release)
        job = Job(
            key=hashlib.sha256(f"{psv.id}/{release}/{target}/{stages}/{n}".encode()).hexdigest(),
            run_id=run.id if run else None,
            patchset_version_id=psv.id,
            release_id=rel.id,
            target=target,
            stages=stages,
            status=status,
            furthest_stage=stage,
            summary=summary if summary is not None else f"{stage} {status}",
            finished=finished,
            started_at=T0 + timedelta(minutes=n),
            finished_at=T0 + timedelta(minutes=n, seconds=30),
            attempts=attempts,
        )
        self.s.add(job)
        self.s.flush()
        last = Stage(stage).index
        for st in STAGES[: last + 1]:
            final = st == stage
            self.s.add(
                StageResult(
                    job_id=job.id,
                    stage=st,
                    status=status if final else "pass",
                    summary=(summary or f"{st} {status}") if final else f"{st} ok",
                    detail=(detail or {}) if final else {},
                    started_at=job.started_at,
                    duration=1.5,
                    log_excerpt=log_excerpt if final else None,
                )
            )
        for i, p in enumerate(patches or [], 1):
            self.s.add(
                PatchResult(
                    job_id=job.id,
                    position=i,
                    name=p["name"],
                    klass=p.get("class", "clean"),
                    hunks=p.get("hunks", 1),
                    hunks_failed=p.get("hunks_failed", 0),
                    max_fuzz=p.get("fuzz", 0),
                    total_offset=p.get("offset", 0),
                    depends_on_failed=p.get("depends_on_failed", False),
                )
            )
        if run is not None:
            self.s.add(RunJob(run_id=run.id, job_id=job.id, reused=False))
        self.s.flush()
        return job

    def reuse(self, run: Run, job: Job) -> None:
        self.s.add(RunJob(run_id=run.id, job_id=job.id, reused=True))
        self.s.flush()

    def culprit(
        self, psv: PatchsetVersion, good: str, bad: str, *, target: str = "x86_64:tinyconfig"
    ) -> Culprit:
        c = Culprit(
            patchset_version_id=psv.id,
            target=target,
            stage="apply",
            good_release_id=self.release(good).id,
            bad_release_id=self.release(bad).id,
            commit="0123456789abcdef0123456789abcdef01234567",
            subject="mm: rework <vma> & friends",
            author="A. Hacker <a@example.org>",
        )
        self.s.add(c)
        self.s.flush()
        return c


def make_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'results.db'}")
