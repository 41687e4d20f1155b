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
from tracker.vocab import Cause, Stage, Status

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
        cause: str | None = None,
    ) -> Job:
        n = next(self._n)
        implied = Cause.default_for(Status(status))
        cause = cause or (implied.value if implied is not None else None)
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
            cause=cause,
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
                    cause=cause if final else None,
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


XSS_PATCH = "<script>alert(1)</script>.patch"
HTML_LOG = '<img src=x onerror="alert(2)"> <b>bold</b> &amp; </pre><script>alert(3)</script>'
PATCH_SHA = [hashlib.sha256(f"patch {i}\n".encode()).hexdigest() for i in range(3)]


def populate_sample(session: Session) -> dict[str, Any]:
    """A small but complete world: two patch sets, three series, two targets, every stage and
    status, a hostile patch name and a log full of HTML."""
    w = World(session)
    alpha = w.psv("alpha", "1.0")
    beta = w.psv("beta", "0.3")
    r1 = w.run()
    names = ["0001-first.patch", XSS_PATCH, "0003-third.patch"]

    def apply_detail(klasses: list[str], with_conflict: bool = False) -> dict[str, Any]:
        patches = []
        for i, (n, k) in enumerate(zip(names, klasses, strict=True)):
            hunk: dict[str, Any] = {"index": 1, "class": k, "offset": 3 * i, "fuzz": 0, "line": 10}
            if k == "conflict" and with_conflict:
                hunk = {
                    "index": 1,
                    "class": "conflict",
                    "expected_line": 120,
                    "hunk_text": "-\told_call(<vma>);\n+\tnew_call(&vma);",
                    "release_text": "\tother_call(<vma>); /* </pre> */",
                }
            patches.append(
                {
                    "name": n,
                    "class": k,
                    "sha256": PATCH_SHA[i],
                    "files": [{"path": f"mm/file{i}.c", "class": k, "hunks": [hunk]}],
                }
            )
        return {"schema": "ktrack.check/1", "patches": patches}

    def patch_rows(klasses: list[str], offset: int = 0, fuzz: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "name": n,
                "class": k,
                "hunks": 2,
                "hunks_failed": int(k == "conflict"),
                "offset": offset * (i + 1),
                "fuzz": fuzz if i == 2 else 0,
            }
            for i, (n, k) in enumerate(zip(names, klasses, strict=True))
        ]

    clean = ["clean", "clean", "clean"]
    for n, v in enumerate(("6.1", "6.1.5", "6.1.9")):
        for target in ("x86_64:tinyconfig", "arm64:defconfig"):
            w.job(
                r1,
                alpha,
                v,
                target=target,
                status="pass",
                stage="test",
                stages="apply,configure,build,boot,test",
                detail={"tests": [{"name": "smoke/proc", "status": "pass", "message": "ok"}]},
                patches=patch_rows(clean, offset=n),
            )
    w.job(
        r1,
        alpha,
        "6.6",
        status="warn",
        stage="apply",
        stages="apply",
        summary="applies with fuzz 1",
        detail=apply_detail(["clean", "offset", "fuzz"]),
        patches=patch_rows(["clean", "offset", "fuzz"], offset=5, fuzz=1),
    )
    w.job(
        r1,
        alpha,
        "6.12",
        status="fail",
        stage="apply",
        stages="apply",
        summary=f"{XSS_PATCH} conflicts in mm/file1.c",
        detail=apply_detail(["clean", "conflict", "clean"], True),
        log_excerpt=HTML_LOG,
        patches=patch_rows(["clean", "conflict", "clean"], offset=9),
    )
    w.job(
        r1,
        alpha,
        "6.12",
        target="arm64:defconfig",
        status="error",
        stage="build",
        summary="build infrastructure failed: No space left on device",
    )
    w.job(
        r1,
        beta,
        "6.6",
        status="fail",
        stage="build",
        summary="error: implicit declaration of 'foo'",
        detail={
            "errors": ["mm/x.c:12: error: implicit declaration of 'foo' <stdio.h>"],
            "returncode": 2,
        },
        log_excerpt="mm/x.c:12:3: error: implicit declaration\n\x1b[1m\x07bell",
    )
    w.job(
        r1,
        beta,
        "6.1",
        status="fail",
        stage="boot",
        stages="apply,configure,build,boot",
        attempts=2,
        summary="Kernel panic - not syncing: VFS",
        detail={
            "events": [
                {"kind": "panic", "line": "Kernel panic - not syncing: <VFS>", "console_line": 88}
            ]
        },
        log_excerpt="[    1.0] Kernel panic - not syncing: <VFS>\n",
    )
    w.job(r1, beta, "6.1.9", status="pass", stage="build")
    w.culprit(alpha, "6.6", "6.12")
    return {"world": w, "alpha": alpha, "beta": beta, "run": r1}
