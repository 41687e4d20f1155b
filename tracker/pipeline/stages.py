"""The stage functions of one job (apply, configure, build, boot, test), and how they are chained.

Each stage returns an Outcome. A stage runs only when the one before it passed or warned; the
rest are recorded as ``skip``. An InfraError inside a stage becomes ``error``, never ``fail``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.config import Settings
from tracker.errors import InfraError, UserError
from tracker.pipeline import baseline
from tracker.pipeline.plan import JobSpec
from tracker.vocab import Cause, Outcome, Stage, Status

if TYPE_CHECKING:
    from tracker.results.db import Database


@dataclass
class JobState:
    """What the stages of one job hand each other."""

    settings: Settings
    db: Database
    spec: JobSpec
    work: Path
    rev: str | None = None
    report: Any = None  # tracker.apply ApplyReport
    version: Any = None  # tracker.patchsets.manifest VersionSpec
    src: Path | None = None
    out: Path | None = None
    image: Path | None = None
    boot_outcomes: tuple[Outcome, Outcome] | None = None
    current: Stage | None = None  # the stage running now (what an interruption reports)
    extra: dict[str, Any] = field(default_factory=dict)

    def log(self, stage: Stage) -> Path:
        path = self.work / "logs" / f"{stage.value}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def target(self) -> Any:
        from tracker.arches.target import Target

        return Target.parse(self.spec.target, Path(self.spec.manifest).parent)


def load_version(spec: JobSpec) -> Any:
    """The VersionSpec of a job, checked against the content hash it was planned with."""
    from tracker.patchsets.formats import content_hash
    from tracker.patchsets.manifest import load_manifest

    manifest = load_manifest(Path(spec.manifest))
    for version in manifest.versions:
        if version.version == spec.version:
            if content_hash(version) != spec.content_hash:
                raise UserError(
                    f"patch set {spec.patchset}@{spec.version} changed since the run was planned",
                    hint="plan the run again",
                )
            return version
    raise UserError(f"patch set {spec.patchset} has no version {spec.version}")


def stage_apply(state: JobState) -> Outcome:
    from tracker.apply.check import check_series
    from tracker.patchsets.formats import load_series
    from tracker.releases.service import ensure_release
    from tracker.sources.store import ReleaseStore

    state.version = load_version(state.spec)
    series = load_series(state.version)
    state.rev = ensure_release(state.settings, state.db, state.spec.release)
    with ReleaseStore.open(state.settings).tree(state.rev) as tree:
        report = check_series(
            series, tree, fuzz=state.version.fuzz, timeout=state.settings.apply_timeout
        )
    state.report = report
    log = state.log(Stage.APPLY)
    log.write_text(report.log_text(), encoding="utf-8")
    return Outcome(report.status, report.summary, detail=report.to_json(), log=log)


def write_patched_tree(state: JobState) -> Path:
    """Materialise the release and write the series' resulting files over it."""
    from tracker.apply.materialise import write_changes
    from tracker.sources.store import ReleaseStore

    assert state.rev is not None and state.report is not None
    src = state.work / "src"
    ReleaseStore.open(state.settings).materialize(state.rev, src)
    write_changes(src, state.report.changes, getattr(state.report, "modes", {}) or {})
    state.src = src
    return src


def stage_configure(state: JobState) -> Outcome:
    from tracker.build.kconfig import configure

    src = write_patched_tree(state)
    state.out = state.work / "out"
    state.out.mkdir(parents=True, exist_ok=True)
    fragment = state.version.kconfig if state.version is not None else None
    return configure(src, state.out, state.target, fragment, log=state.log(Stage.CONFIGURE))


def stage_build(state: JobState) -> Outcome:
    from tracker.build.kbuild import build

    assert state.src is not None and state.out is not None
    jobs = state.settings.jobs or os.cpu_count() or 1
    outcome = build(
        state.src,
        state.out,
        state.target,
        jobs=jobs,
        log=state.log(Stage.BUILD),
        touched=getattr(state.report, "touched", {}) or {},
        ccache_dir=state.settings.cache / "ccache",
        timeout=state.settings.build_timeout,
    )
    state.image = outcome.artifacts.get("image")
    if outcome.status is Status.FAIL and state.extra.get("culprit_bisect", True):
        outcome = _name_culprit(state, outcome, jobs)
    return outcome


def _name_culprit(state: JobState, outcome: Outcome, jobs: int) -> Outcome:
    """The build failure with the patch that caused it: inferred, or bisected over the series
    (tracker/build/culprit.py)."""
    from tracker.build.culprit import name_culprit, probe_builder
    from tracker.build.kbuild import build
    from tracker.sources.store import ReleaseStore

    steps = getattr(state.report, "steps", ())
    if not steps or state.src is None or state.out is None or state.rev is None:
        return outcome

    def build_at(src: Path, out: Path, log: Path) -> Outcome:
        return build(
            src, out, state.target, jobs=jobs, log=log,
            ccache_dir=state.settings.cache / "ccache", timeout=state.settings.build_timeout,
        )  # fmt: skip

    with ReleaseStore.open(state.settings).tree(state.rev) as base:
        build_k = probe_builder(
            patched=state.src, config=state.out / ".config", work=state.work / "culprit",
            steps=steps, base=base, build=build_at,
        )  # fmt: skip
        return name_culprit(outcome, steps, build_k=build_k)


def stage_boot(state: JobState) -> Outcome:
    """Boot and run the smoke tests (their outcome waits for ``stage_test``). A ``fail`` is
    retried once before it counts. Running into our ``[boot] timeout`` is ``error``; a boot that
    did is the patch set's ``fail`` only when the control boot proves the release boots well
    within that limit here (``baseline.judge_timeout``)."""
    from tracker.boot.qemu import boot_and_test

    if state.image is None:
        raise InfraError("the build stage left no kernel image")
    tests = state.version.tests if state.version is not None else None
    attempts = []
    for attempt in (1, 2):  # a boot or test failure is retried once before it counts
        boot, test = boot_and_test(
            state.image,
            state.target,
            tests,
            work=state.work / f"boot-{attempt}",
            log=state.log(Stage.BOOT),
            timeout=state.settings.boot_timeout,
            test_timeout=state.settings.test_timeout,
            accel=state.settings.boot_accel,
        )
        attempts.append(f"{boot.status.value}/{test.status.value}")
        if Status.FAIL not in (boot.status, test.status):
            break
    if len(attempts) > 1:
        boot.detail["attempts"] = attempts
        test.detail["attempts"] = attempts
    if boot.status is Status.ERROR and "timeout" in boot.detail and state.settings.baseline:
        control = baseline.run_control(state, Stage.BOOT)
        boot = baseline.judge_timeout(boot, control, state.spec.release)
    state.boot_outcomes = (boot, test)
    return boot


def stage_test(state: JobState) -> Outcome:
    if state.boot_outcomes is None:
        return Outcome(Status.SKIP, "boot did not run")
    return state.boot_outcomes[1]


STAGE_FUNCS: dict[Stage, Callable[[JobState], Outcome]] = {
    Stage.APPLY: stage_apply,
    Stage.CONFIGURE: stage_configure,
    Stage.BUILD: stage_build,
    Stage.BOOT: stage_boot,
    Stage.TEST: stage_test,
}


def closed_stages(names: tuple[str, ...]) -> tuple[Stage, ...]:
    """Every stage up to the furthest one asked for: ``build`` means apply, configure, build."""
    furthest = max(Stage(n).index for n in names)
    return tuple(s for s in Stage if s.index <= furthest)


def run_stages(
    state: JobState, funcs: Mapping[Stage, Callable[[JobState], Outcome]] | None = None
) -> Generator[tuple[Stage, Outcome], None, None]:
    """Run the job's stages in order, yielding each outcome as soon as it is known.

    This is the one stage loop: ``run`` and bisect's probes both use it, so the rules here (what
    an exception means, the control run of a failure) hold for both. ``funcs`` replaces some
    stage functions (bisect gives the apply verdict it already computed on the commit's tree).
    """
    chosen = {**STAGE_FUNCS, **(funcs or {})}
    proceed = True
    for stage in closed_stages(state.spec.stages):
        if not proceed:
            yield stage, Outcome(Status.SKIP, "an earlier stage did not pass")
            continue
        state.current = stage
        try:
            outcome = chosen[stage](state)
        except InfraError as exc:
            outcome = Outcome(
                Status.ERROR,
                f"infrastructure: {exc}",
                log=_maybe(state.log(stage)),
                cause=Cause.INFRASTRUCTURE,
            )
        except UserError as exc:
            outcome = Outcome(
                Status.ERROR,
                f"bad input: {exc}",
                log=_maybe(state.log(stage)),
                cause=Cause.BAD_INPUT,
            )
        except OSError as exc:
            outcome = Outcome(
                Status.ERROR,
                f"infrastructure: {exc}",
                log=_maybe(state.log(stage)),
                cause=Cause.INFRASTRUCTURE,
            )
        if outcome.status is Status.FAIL and stage in baseline.CHECKED and state.settings.baseline:
            control = baseline.run_control(state, stage)
            outcome = baseline.judge(stage, outcome, control, state.spec.release)
        elif (
            stage is Stage.BUILD
            and outcome.status is Status.WARN
            and outcome.detail.get("touched_warning_keys")
            and state.settings.baseline
        ):
            control = baseline.run_control(state, stage)
            outcome = baseline.judge_warnings(outcome, control)
        proceed = outcome.status.proceeds
        yield stage, outcome


def _maybe(path: Path) -> Path | None:
    return path if path.exists() else None
