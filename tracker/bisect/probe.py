"""What bisect checks at one upstream commit: the apply stage, or a later stage by building it.

``apply``: the real apply engine on a TreeView of the commit (no checkout), cached per tree in
memory. ``configure``/``build``/``boot``/``test``: the pipeline's own stage functions on the
commit's tree with the series applied; each verdict is cached on disk by the commit's tree hash
(and the patch set content, target and stage), so a second bisect of the same range builds
nothing twice. The stages run through ``stages.run_stages``, the loop ``ktrack run`` uses, so
every rule of ``run`` holds here too. A commit where the series does not apply, or an earlier
stage does not pass, cannot tell the later stage's verdict: it is ``skip`` (skipped by the
search, never guessed); so is a commit whose outcome's cause is ``upstream`` (it fails without
the patch set too) or ``infrastructure`` (``error``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.apply.check import check_series
from tracker.apply.report import ApplyReport
from tracker.bisect.history import tree_of
from tracker.bisect.model import HunkRef, Probe, Verdict
from tracker.bisect.search import ProbeCache
from tracker.config import Settings
from tracker.errors import InfraError, UserError
from tracker.patchsets.diff import Series
from tracker.patchsets.formats import content_hash, load_series
from tracker.patchsets.manifest import Manifest, VersionSpec, resolve
from tracker.pipeline.plan import JobSpec
from tracker.pipeline.stages import JobState, run_stages
from tracker.results.db import Database
from tracker.sources.store import ReleaseStore, TreeView
from tracker.vocab import Cause, Outcome, Stage, Status


@dataclass
class ProbeJob:
    """The patch set version being bisected and the cached check for one stage."""

    name: str
    version: str
    content_hash: str
    manifest: str
    base: str | None
    target: str
    stage: str
    cache: ProbeCache
    targets: tuple[str, ...] = ()  # the targets a culprit is recorded for (matrix cells)


def parse_stage(stage: str) -> Stage:
    try:
        return Stage(stage)
    except ValueError:
        known = ", ".join(s.value for s in Stage)
        raise UserError(f"unknown stage {stage!r} (known: {known})") from None


def make_probe(
    settings: Settings,
    patchset_spec: str,
    *,
    stage: str = "apply",
    target: str | None = None,
    db: Database | None = None,
) -> ProbeJob:
    st = parse_stage(stage)
    manifest, vspec = resolve(settings.patchset_paths, patchset_spec)
    series = load_series(vspec)
    chash = content_hash(vspec)
    git_dir = ReleaseStore.open(settings).git_dir()
    # the apply verdict is the same for every target: record it for each tracked one, so that
    # every matrix cell of the pair finds it
    targets = (target,) if target else tuple(manifest.track.targets) or ("any",)
    if target is None:
        target = manifest.track.targets[0] if manifest.track.targets else "x86_64:tinyconfig"
    if st is not Stage.APPLY:
        targets = (target,)
    probe: Probe
    if st is Stage.APPLY:
        probe = apply_probe(git_dir, series, vspec.fuzz)
        cache = ProbeCache(probe)  # commits differ in the files checked: a tree key costs more
    else:
        cache_file = settings.cache / "bisect" / f"{st.value}-{chash[:16]}-{_slug(target)}.json"
        probe = stage_probe(
            settings, db, git_dir, series, manifest, vspec, chash, target, st, cache_file
        )
        cache = ProbeCache(probe)
    return ProbeJob(
        name=manifest.name,
        version=vspec.version,
        content_hash=chash,
        manifest=str(manifest.path),
        base=vspec.base,
        target=targets[0],
        stage=st.value,
        cache=cache,
        targets=targets,
    )


def verdict_from_report(report: ApplyReport) -> Verdict:
    """A Verdict from an ``ApplyReport`` (``tracker.apply``): every failing hunk or file."""
    failing: list[HunkRef] = []
    for patch in report.patches:
        for f in patch.files:
            if not f.klass.is_failure:
                continue
            old = f.old_path
            bad_hunks = [h for h in f.hunks if h.klass.is_failure]
            if not bad_hunks:
                failing.append(HunkRef(patch.name, f.path, 0, f.klass.value, old_path=old))
            for h in bad_hunks:
                failing.append(
                    HunkRef(
                        patch.name,
                        f.path,
                        int(h.index),
                        h.klass.value,
                        expected_line=h.expected_line,
                        want=h.want,
                        old_path=old,
                    )
                )
    return Verdict(report.status, report.summary, tuple(failing))


def apply_probe(git_dir: Path, series: Series, fuzz: int) -> Probe:
    """The apply stage at a commit, read straight from the store."""

    def probe(commit: str) -> Verdict:
        with TreeView(git_dir, commit) as tree:
            report = check_series(series, tree, fuzz=fuzz)
        return verdict_from_report(report)

    return probe


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:64]


@dataclass
class TreeCache:
    """Verdicts by tree hash in one JSON file (written atomically after every new verdict)."""

    path: Path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, tree: str) -> Verdict | None:
        entry = self.load().get(tree)
        if not isinstance(entry, dict):
            return None
        try:
            return Verdict.from_json(entry)
        except (KeyError, ValueError, TypeError):
            return None

    def put(self, tree: str, verdict: Verdict) -> None:
        data = self.load()
        data[tree] = verdict.to_json()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            raise InfraError(f"cannot write the bisect cache {self.path}: {exc.strerror}") from exc


def stage_probe(
    settings: Settings,
    db: Database | None,
    git_dir: Path,
    series: Series,
    manifest: Manifest,
    vspec: VersionSpec,
    chash: str,
    target: str,
    stage: Stage,
    cache_file: Path,
) -> Probe:
    """Configure/build/boot a commit with the series applied, through ``run``'s own stage loop
    (``stages.run_stages``: the same control runs, causes and timeouts); the apply stage is the
    verdict already computed on the commit's tree."""
    disk = TreeCache(cache_file)

    def probe(commit: str) -> Verdict:
        tree = tree_of(git_dir, commit)
        cached = disk.get(tree)
        if cached is not None:
            return cached
        with TreeView(git_dir, commit) as tv:
            report = check_series(series, tv, fuzz=vspec.fuzz)
        if report.status is Status.FAIL:
            return Verdict(Status.SKIP, f"the patch set does not apply here: {report.summary}")
        work = settings.cache / "bisect" / "work" / commit[:16]
        shutil.rmtree(work, ignore_errors=True)
        spec = JobSpec(
            patchset=manifest.name,
            version=vspec.version,
            content_hash=chash,
            manifest=str(manifest.path),
            release=commit,
            target=target,
            stages=(stage.value,),
        )
        state = JobState(
            settings=settings,
            db=db,  # type: ignore[arg-type]  # only the apply stage reads it, and it is given
            spec=spec,
            work=work,
            rev=commit,
            report=report,
            version=vspec,
            extra={"culprit_bisect": False},  # the upstream bisect needs the verdict only
        )
        applied = Outcome(report.status, report.summary, detail=report.to_json())
        outcomes = run_stages(state, {Stage.APPLY: lambda _state: applied})
        try:
            verdict = probe_verdict(outcomes, stage)
        finally:
            outcomes.close()
            with contextlib.suppress(OSError):
                shutil.rmtree(work, ignore_errors=True)
        if verdict.known:
            disk.put(tree, verdict)
        return verdict

    return probe


def probe_verdict(outcomes: Iterable[tuple[Stage, Outcome]], stage: Stage) -> Verdict:
    """What the stage loop's outcomes tell bisect about ``stage`` at one commit, read from each
    outcome's cause: a verdict (``pass``/``warn``/``fail``) only when the patch set is judged
    there. A failure the commit has without the patch set too (``upstream``) is ``skip``: an
    upstream commit that does not build (or boot) by itself cannot tell whether the patch set
    broke there, and blaming it would name the wrong culprit. Our own failure
    (``infrastructure``) or invalid input is ``error``; an earlier stage that did not pass is
    ``skip``. Neither is ever named."""
    for st, outcome in outcomes:
        judged = outcome.cause in (None, Cause.VERDICT)
        if st is stage:
            if outcome.cause is Cause.UPSTREAM:
                return Verdict(Status.SKIP, outcome.summary)
            if not judged or outcome.status is Status.ERROR:
                return Verdict(Status.ERROR, outcome.summary)
            return Verdict(outcome.status, outcome.summary)
        if not outcome.status.proceeds:
            status = Status.SKIP if judged or outcome.cause is Cause.UPSTREAM else Status.ERROR
            return Verdict(status, f"{st.value}: {outcome.summary}")
    return Verdict(Status.SKIP, "not reached")
