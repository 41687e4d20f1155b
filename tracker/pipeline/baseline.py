"""The unpatched release as a control: is a configure, build or boot failure the patch set's?

A patched kernel can fail for reasons the patch set has no part in: the release does not build
with this compiler (an old kernel and a new gcc), the base config does not boot under this QEMU,
a boot option is gone from this release. Before such a failure is recorded as ``fail`` ("the
patch set is broken here"), the same stages run on the release without the patch set, with the
same target. The configure control leaves the fragment out (it is the patch set's own: a symbol
it asks for that the release cannot give is the set's failure); the build and boot controls take
the part of the fragment that the release knows (symbols the patch set adds are left out), and
the config they get even when a symbol did not survive. When the release fails there too, the
stage becomes ``error`` (no verdict), naming the release's own failure; when the control cannot
run, the failure is not confirmed either.

Results are kept per (release, target, fragment, stage, toolchain) in ``<cache>/baseline``, so one
control build serves every version of a patch set (and every set with the same fragment) on that
release. The toolchain is ``tracker.build.toolchain.fingerprint`` of the stages the control ran
(compiler, binutils and make version lines, QEMU's for a boot control, and the stage logic's
version): a new gcc or QEMU makes the control run again instead of confirming a failure the new
tool caused. A control ``fail`` is cached only when a second control run (in the same O= dir:
make redoes what failed) fails the same stage (a hung boot or a full disk at one moment must not
turn every later failure on that release into "no verdict"); two runs that disagree are ``error``
(no verdict, nothing cached). An ``error`` is
never cached. Entries expire after ``[run] baseline_max_age_days`` (default 7): the control then
runs again. ``ktrack cache clear baseline`` empties the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker.arches.target import Target
from tracker.errors import InfraError, UserError
from tracker.vocab import Cause, Outcome, Stage, Status

CHECKED = (Stage.CONFIGURE, Stage.BUILD, Stage.BOOT)
_REFUSED = " without the patch set too: "
CACHE_VERSION = 3  # 2: build controls keep their warnings; 3: keyed on the toolchain too
DEFAULT_MAX_AGE = 7 * 24 * 3600.0  # seconds a cached control answers for


@dataclass(frozen=True)
class Control:
    """How the unpatched release did: the stage it stopped at (or reached) and its outcome."""

    stage: Stage
    status: Status
    summary: str
    log: Path | None = field(default=None, compare=False)  # this run's log, not cached
    warnings: tuple[str, ...] = field(default=(), compare=False)  # build warnings, file: message
    # a boot control's QEMU wall time, the marker it reached ("boot", "done") and the host
    timing: dict[str, Any] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage.value,
            "status": self.status.value,
            "summary": self.summary,
        }
        if self.timing is not None:
            data["timing"] = self.timing
        return data


def known_fragment(fragment_text: str | None, src: Path, target: Target) -> str:
    """The fragment's assignments for symbols that ``src``'s Kconfig files define."""
    from tracker.build.kconfig import find_definitions, parse_config, render

    if not fragment_text:
        return ""
    values = parse_config(fragment_text, origin="fragment")
    defs = find_definitions(src, values, srcarch=target.arch_info.srcarch)
    return render({sym: val for sym, val in values.items() if defs.get(sym)})


def control_stages(stage: Stage) -> tuple[Stage, ...]:
    """The stages a control run up to ``stage`` runs (whose tools judge it)."""
    return tuple(s for s in CHECKED if s.index <= stage.index)


def cache_key(rev: str, target: Target, fragment: str, stage: Stage, toolchain: str) -> str:
    """The cache key of a control: release commit, target, fragment, stage and the toolchain
    fingerprint of ``control_stages(stage)`` (``toolchain.fingerprint``)."""
    raw = json.dumps([CACHE_VERSION, rev, str(target), fragment, stage.value, toolchain])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class ControlCache:
    """Control outcomes on disk, one small JSON file each, written atomically.

    An entry older than ``max_age`` seconds is not returned (the control runs again and
    overwrites it); nor is an ``error``, which is never written.
    """

    def __init__(self, root: Path, *, max_age: float = DEFAULT_MAX_AGE) -> None:
        self.root = root
        self.max_age = max_age

    def get(self, key: str, *, now: float | None = None) -> Control | None:
        try:
            data = json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))
            at = float(data["at"])
            if (now if now is not None else time.time()) - at > self.max_age:
                return None
            warnings = tuple(str(w) for w in data.get("warnings", ()))
            stage, status = Stage(data["stage"]), Status(data["status"])
            if status is Status.ERROR:
                return None
            timing = _timing(data.get("timing"))
            return Control(stage, status, str(data["summary"]), warnings=warnings, timing=timing)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, control: Control, *, toolchain: dict[str, str] | None = None) -> None:
        if control.status is Status.ERROR:
            return  # an infrastructure failure is tried again next time
        doc = {
            **control.to_json(),
            "warnings": list(control.warnings),
            "at": round(time.time(), 3),
            "toolchain": toolchain or {},
        }
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
            os.replace(tmp, self.root / f"{key}.json")
        except OSError:
            pass  # a cache that cannot be written only costs time


def run_control(state: Any, upto: Stage) -> Control:
    """Run configure .. ``upto`` on the unpatched release of ``state`` (a JobState).

    A cached answer (same release, target, fragment and toolchain, younger than the maximum
    age) is used when there is one; a fresh ``fail`` is confirmed by a second run first.
    """
    from tracker.build import toolchain
    from tracker.sources.store import ReleaseStore

    settings = state.settings
    target: Target = state.target
    version = state.version
    assert state.rev is not None
    cache = ControlCache(settings.cache / "baseline", max_age=settings.baseline_max_age)
    work = state.work / "baseline"
    try:
        fragment_text = None
        if version is not None and version.kconfig is not None:
            fragment_text = Path(version.kconfig).read_text(encoding="utf-8")
        store = ReleaseStore.open(settings)
        # keyed by the release's commit (two stores may tag different trees alike); the fragment
        # the control uses is a function of the release and the whole fragment
        commit = store.resolve(state.rev) or state.rev
        tools = {s: toolchain.identity(target, control_stages(s)) for s in CHECKED}
        prints = {s: toolchain.fingerprint(target, control_stages(s)) for s in CHECKED}
        key = {s: cache_key(commit, target, fragment_text or "", s, prints[s]) for s in CHECKED}
        key[Stage.CONFIGURE] = cache_key(  # no fragment
            commit, target, "", Stage.CONFIGURE, prints[Stage.CONFIGURE]
        )
        for stage in control_stages(upto):  # an earlier failure answers too
            hit = cache.get(key[stage])
            if hit is not None and hit.status is Status.FAIL:
                return hit
        if (hit := cache.get(key[upto])) is not None:
            return hit
        shutil.rmtree(work, ignore_errors=True)
        store.materialize(state.rev, work / "src")
        first = _control_once(state, upto, work, fragment_text)
        if first.control.status is not Status.FAIL:
            _keep(cache, key, tools, first)
            return first.control
        second = _control_once(state, upto, work, fragment_text, again=True)
        return _confirmed(cache, key, tools, first, second)
    except (InfraError, UserError, OSError) as exc:
        return Control(upto, Status.ERROR, f"infrastructure: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class _Attempt:
    """One control run: its answer and every stage result it produced, by cache key slot."""

    control: Control
    records: list[tuple[Stage, Control]]


def _control_once(
    state: Any, upto: Stage, work: Path, fragment_text: str | None, *, again: bool = False
) -> _Attempt:
    """Configure (and build, and boot) the materialised release in ``work/src`` once."""
    from tracker.boot.qemu import boot_and_test
    from tracker.build.kbuild import build
    from tracker.build.kconfig import configure

    settings = state.settings
    target: Target = state.target
    src, out = work / "src", work / "out"
    if not again:  # the second run reuses the O= dir: make redoes what failed, ccache the rest
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(work / "boot", ignore_errors=True)
    logs = state.work / "logs"
    names = {s: logs / f"baseline-{s.value}.log" for s in CHECKED}
    if again:
        for stage in control_stages(upto):
            _note(names[stage], "ktrack: the control failed; running it again to confirm")
    records: list[tuple[Stage, Control]] = []

    def record(slot: Stage, stage: Stage, outcome: Outcome) -> _Attempt:
        records.append((slot, _control(stage, outcome, names[stage])))
        return _Attempt(records[-1][1], records)

    ccache = settings.cache / "ccache"
    if upto is Stage.CONFIGURE:
        # the fragment is the patch set's own: can the release configure this target at all?
        conf = configure(src, out, target, None, log=names[Stage.CONFIGURE], ccache_dir=ccache)
        return record(Stage.CONFIGURE, Stage.CONFIGURE, conf)
    # builds and boots with as much of the set's configuration as the release accepts
    fragment = known_fragment(fragment_text, src, target)
    frag_path = None
    if fragment:
        frag_path = work / "kconfig"
        frag_path.write_text(fragment, encoding="utf-8")
    conf = configure(src, out, target, frag_path, log=names[Stage.CONFIGURE], ccache_dir=ccache)
    if conf.status is Status.ERROR or (
        conf.status is Status.FAIL and not conf.detail.get("missing")
    ):  # make itself failed (a symbol that did not survive still leaves a usable .config)
        return record(upto, Stage.CONFIGURE, conf)
    built = build(
        src, out, target, jobs=settings.jobs or os.cpu_count() or 1,
        log=names[Stage.BUILD], ccache_dir=ccache, timeout=settings.build_timeout,
    )  # fmt: skip
    result = record(Stage.BUILD, Stage.BUILD, built)
    if upto is Stage.BUILD or not built.status.proceeds:
        return result
    boot, _ = boot_and_test(
        built.artifacts["image"], target, None, work=work / "boot",
        log=names[Stage.BOOT], timeout=settings.boot_timeout, accel=settings.boot_accel,
    )  # fmt: skip
    return record(Stage.BOOT, Stage.BOOT, boot)


def _confirmed(
    cache: ControlCache,
    key: dict[Stage, str],
    tools: dict[Stage, dict[str, str]],
    first: _Attempt,
    second: _Attempt,
) -> Control:
    """The answer of two control runs of which the first failed: the failure when the second
    fails the same stage (then cached), else ``error`` (nothing cached: no verdict from a
    control that does not repeat itself)."""
    a, b = first.control, second.control
    if b.status is Status.FAIL and b.stage is a.stage:
        _keep(cache, key, tools, second)
        return b
    if b.status is Status.ERROR:
        return b
    return Control(
        a.stage,
        Status.ERROR,
        f"infrastructure: the control run did not repeat itself: it failed {a.stage.value} "
        f"({a.summary}), then {b.stage.value} gave {b.status.value} ({b.summary})",
        b.log,
    )


def _keep(
    cache: ControlCache,
    key: dict[Stage, str],
    tools: dict[Stage, dict[str, str]],
    attempt: _Attempt,
) -> None:
    for slot, control in attempt.records:
        cache.put(key[slot], control, toolchain=tools[slot])


def _note(log: Path, line: str) -> None:
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass  # the note only explains the log


def _control(stage: Stage, outcome: Outcome, log: Path) -> Control:
    warnings = tuple(str(w) for w in outcome.detail.get("warning_keys", ()))
    return Control(
        stage, outcome.status, outcome.summary, log if log.is_file() else None, warnings,
        _timing(outcome.detail.get("timing")),
    )  # fmt: skip


def judge(stage: Stage, outcome: Outcome, control: Control, release: str) -> Outcome:
    """The patched ``outcome`` (a ``fail`` at ``stage``) in the light of the control run."""
    detail = dict(outcome.detail)
    detail["baseline"] = control.to_json()
    artifacts = dict(outcome.artifacts)
    if control.log is not None:
        artifacts["baseline-log"] = control.log  # kept with the job's artifacts
    if control.status is Status.ERROR:
        detail["unconfirmed"] = {"status": outcome.status.value, "summary": outcome.summary}
        summary = (
            f"no verdict: {outcome.summary} (not confirmed: the unpatched {release} could "
            f"not be checked: {control.summary})"
        )
        return Outcome(
            Status.ERROR, summary, detail, artifacts, outcome.log, cause=Cause.INFRASTRUCTURE
        )
    if control.status is Status.FAIL:
        detail["unconfirmed"] = {"status": outcome.status.value, "summary": outcome.summary}
        summary = f"no verdict: {release} fails {control.stage.value}{_REFUSED}{control.summary}"
        return Outcome(Status.ERROR, summary, detail, artifacts, outcome.log, cause=Cause.UPSTREAM)
    return Outcome(
        outcome.status, outcome.summary, detail, artifacts, outcome.log, cause=outcome.cause
    )


def judge_warnings(outcome: Outcome, control: Control) -> Outcome:
    """A build that warned in patched files, against a control build of the release: only
    warnings the release does not have by itself (same file and message, any line) count."""
    detail = dict(outcome.detail)
    detail["baseline"] = control.to_json()
    if control.stage is not Stage.BUILD or not control.status.proceeds:
        return Outcome(outcome.status, outcome.summary, detail, outcome.artifacts, outcome.log)
    old = Counter(control.warnings)
    new: list[str] = []
    keys = list(outcome.detail.get("touched_warning_keys", ()))
    described = list(outcome.detail.get("touched_warnings", ()))
    for i, key in enumerate(keys):
        if old[key] > 0:
            old[key] -= 1
        else:
            new.append(described[i] if i < len(described) else key)
    detail["new_warnings"] = new[:20]
    if not new:
        summary = f"built; the {len(keys)} warning(s) in patched files are there without the patch set too"
        return Outcome(Status.PASS, summary, detail, outcome.artifacts, outcome.log)
    summary = f"{len(new)} new warning(s) in patched files; first: {new[0]}"
    return Outcome(Status.WARN, summary, detail, outcome.artifacts, outcome.log)


def _timing(data: Any) -> dict[str, Any] | None:
    """A boot's ``detail["timing"]`` (see ``qemu.boot_and_test``), checked, or None."""
    if not isinstance(data, dict):
        return None
    seconds, reached, host = data.get("seconds"), data.get("reached"), data.get("host")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    if reached not in (None, "boot", "done") or not isinstance(host, str):
        return None
    return {"seconds": float(seconds), "reached": reached, "host": host}


# A boot that ran into our timeout is the patch set's hang only when the control boot of the
# same release and target reached the same point within this share of the same limit, here.
HANG_EVIDENCE = 0.5
_REACHES = {"boot": ("boot", "done")}  # the control boot runs no smoke tests: "tests" has none


def judge_timeout(outcome: Outcome, control: Control, release: str) -> Outcome:
    """A boot ``outcome`` that ran into our timeout (``detail["timeout"]``) in the light of the
    control boot: ``fail`` (the patch set hangs) when the unpatched release reached the same
    point in at most ``HANG_EVIDENCE`` of the limit on this host, else ``error`` saying why
    there is no verdict (never ``fail`` without that evidence)."""
    timeout = outcome.detail.get("timeout")
    if outcome.status is not Status.ERROR or not isinstance(timeout, dict):
        return outcome
    limit = float(timeout["limit"])
    point = str(timeout.get("point"))
    detail = {**outcome.detail, "baseline": control.to_json()}
    artifacts = dict(outcome.artifacts)
    if control.log is not None:
        artifacts["baseline-log"] = control.log
    timing = control.timing or {}
    seconds = float(timing.get("seconds") or 0.0)
    reached = (
        control.stage is Stage.BOOT
        and control.status.proceeds
        and timing.get("reached") in _REACHES.get(point, ())
    )
    here = timing.get("host") == socket.gethostname()
    if reached and here and seconds <= limit * HANG_EVIDENCE:
        summary = (
            f"hung: the unpatched {release} reached the {point} marker in {seconds:.1f}s on "
            f"this host, the patched kernel not in {limit:g}s: {outcome.summary}"
        )
        return Outcome(Status.FAIL, summary, detail, artifacts, outcome.log, cause=Cause.VERDICT)
    if control.status is Status.FAIL:
        summary = (
            f"no verdict: {release} fails {control.stage.value}{_REFUSED}{control.summary} "
            f"(patched: {outcome.summary})"
        )
        return Outcome(Status.ERROR, summary, detail, artifacts, outcome.log, cause=Cause.UPSTREAM)
    if control.status is Status.ERROR:
        why = f"the unpatched {release} could not be booted either: {control.summary}"
    elif point not in _REACHES:
        why = f"the control boot of {release} runs no smoke tests to compare with"
    elif not reached:
        why = f"no time for the unpatched {release} to reach the {point} marker"
    elif not here:
        why = f"the unpatched {release} was timed on another host ({timing.get('host')})"
    else:
        why = (
            f"the unpatched {release} took {seconds:.1f}s of the {limit:g}s limit too "
            f"(more than {HANG_EVIDENCE:.0%})"
        )
    summary = f"{outcome.summary}; no verdict: {why}"
    return Outcome(
        Status.ERROR, summary, detail, artifacts, outcome.log, cause=Cause.INFRASTRUCTURE
    )
