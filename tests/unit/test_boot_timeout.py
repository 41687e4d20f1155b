"""Our own timeout is not a verdict: a boot that runs into ``[boot] timeout`` is ``error``
unless the control boot of the same release reached the boot marker well within that limit on
this host (``baseline.judge_timeout``), and ``stage_boot`` asks for that control only then."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tracker.config import Settings
from tracker.pipeline import baseline, stages
from tracker.pipeline.baseline import Control, ControlCache, judge_timeout
from tracker.vocab import Cause, Outcome, Stage, Status

HOST = socket.gethostname()
HUNG = Outcome(
    Status.ERROR,
    "no BOOT-OK marker within 120s (our timeout); last console line: Run /init as init process",
    {"timeout": {"point": "boot", "limit": 120.0}},
    cause=Cause.INFRASTRUCTURE,
)


def control(seconds: float, *, reached: str = "done", host: str = HOST, status=Status.PASS):
    timing = {"seconds": seconds, "reached": reached, "host": host}
    return Control(Stage.BOOT, status, "booted", timing=timing)


def test_a_control_that_booted_well_within_the_limit_makes_the_hang_a_fail() -> None:
    out = judge_timeout(HUNG, control(2.4), "6.1.192")
    assert (out.status, out.cause) == (Status.FAIL, Cause.VERDICT)
    assert out.summary == (
        "hung: the unpatched 6.1.192 reached the boot marker in 2.4s on this host, the patched "
        f"kernel not in 120s: {HUNG.summary}"
    )
    assert out.detail["baseline"]["timing"] == {"seconds": 2.4, "reached": "done", "host": HOST}
    assert judge_timeout(HUNG, control(60.0), "6.1.192").status is Status.FAIL  # exactly half


@pytest.mark.parametrize(
    ("ctrl", "why", "cause"),
    [
        (control(61.0), "the unpatched 6.1.192 took 61.0s of the 120s limit too (more than 50%)",
         Cause.INFRASTRUCTURE),
        (Control(Stage.BOOT, Status.ERROR, "no BOOT-OK marker within 120s (our timeout)"),
         "the unpatched 6.1.192 could not be booted either: no BOOT-OK marker within 120s "
         "(our timeout)", Cause.INFRASTRUCTURE),
        (control(2.0, host="elsewhere"), "the unpatched 6.1.192 was timed on another host "
         "(elsewhere)", Cause.INFRASTRUCTURE),
        (Control(Stage.BOOT, Status.PASS, "booted"),  # cached before boots were timed
         "no time for the unpatched 6.1.192 to reach the boot marker", Cause.INFRASTRUCTURE),
        (Control(Stage.BUILD, Status.PASS, "built", timing=None),
         "no time for the unpatched 6.1.192 to reach the boot marker", Cause.INFRASTRUCTURE),
        (control(2.0, reached=None), "no time for the unpatched 6.1.192 to reach the boot marker",
         Cause.INFRASTRUCTURE),
    ],
)  # fmt: skip
def test_without_that_evidence_a_timeout_stays_error(ctrl: Control, why: str, cause) -> None:
    out = judge_timeout(HUNG, ctrl, "6.1.192")
    assert (out.status, out.cause) == (Status.ERROR, cause)
    assert out.summary == f"{HUNG.summary}; no verdict: {why}"


def test_a_release_that_fails_alone_is_upstream() -> None:
    ctrl = Control(Stage.BOOT, Status.FAIL, "Kernel panic - not syncing: x")
    out = judge_timeout(HUNG, ctrl, "6.1.192")
    assert (out.status, out.cause) == (Status.ERROR, Cause.UPSTREAM)
    assert out.summary == (
        "no verdict: 6.1.192 fails boot without the patch set too: Kernel panic - not syncing: x "
        f"(patched: {HUNG.summary})"
    )


def test_tests_cut_by_our_timeout_have_no_control_to_compare_with() -> None:
    cut = Outcome(Status.ERROR, "tests did not finish", {"timeout": {"point": "tests", "limit": 9}})
    out = judge_timeout(cut, control(1.0), "6.1.192")
    assert out.status is Status.ERROR
    assert out.summary.endswith(
        "no verdict: the control boot of 6.1.192 runs no smoke tests to compare with"
    )


def test_only_timeouts_are_judged() -> None:
    crash = Outcome(Status.FAIL, "Kernel panic - not syncing: x")
    assert judge_timeout(crash, control(1.0), "6.1") is crash
    qemu = Outcome(Status.ERROR, "required tool not found: qemu-system-x86_64")
    assert judge_timeout(qemu, control(1.0), "6.1") is qemu


def test_control_boot_time_is_recorded_and_cached(tmp_path: Path) -> None:
    boot = Outcome(
        Status.PASS, "booted",
        {"timing": {"seconds": 2.345, "reached": "done", "limit": 120, "host": HOST}},
    )  # fmt: skip
    cache = ControlCache(tmp_path)
    recorded = baseline._control(Stage.BOOT, boot, tmp_path / "none.log")
    cache.put("k", recorded)
    assert recorded.timing == {"seconds": 2.345, "reached": "done", "host": HOST}
    again = cache.get("k")
    assert again is not None and again.timing == recorded.timing
    assert again.to_json()["timing"] == recorded.timing
    # garbage in the cache is no time at all, never an exception
    (tmp_path / "g.json").write_text(
        json.dumps(
            {
                "stage": "boot",
                "status": "pass",
                "summary": "b",
                "at": time.time(),
                "timing": {"seconds": "fast"},
            }
        )  # fmt: skip
    )
    assert cache.get("g") == Control(Stage.BOOT, Status.PASS, "b") and cache.get("g").timing is None


def _state(tmp_path: Path, *, baseline_on: bool = True) -> SimpleNamespace:
    settings = Settings(home=tmp_path, cache=tmp_path / "cache", boot_timeout=120.0,
                        test_timeout=30.0, baseline=baseline_on)  # fmt: skip
    state = SimpleNamespace(
        settings=settings, image=tmp_path / "bzImage", version=None, target="x86_64:tinyconfig",
        work=tmp_path / "job", spec=SimpleNamespace(release="6.1.192"), boot_outcomes=None,
    )  # fmt: skip
    state.log = lambda stage: tmp_path / f"{stage.value}.log"
    return state


def test_stage_boot_asks_the_control_only_for_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracker.boot.qemu as qemu

    calls: list[dict] = []
    results = iter([(HUNG, Outcome(Status.SKIP, "boot failed"))])

    def fake_boot(image, target, tests, **kw):
        calls.append(kw)
        return next(results)

    asked: list[Stage] = []

    def fake_control(state, upto):
        asked.append(upto)
        return control(3.0)

    monkeypatch.setattr(qemu, "boot_and_test", fake_boot)
    monkeypatch.setattr(baseline, "run_control", fake_control)
    out = stages.stage_boot(_state(tmp_path))
    assert (out.status, out.cause) == (Status.FAIL, Cause.VERDICT)
    assert asked == [Stage.BOOT] and len(calls) == 1  # a timeout is not retried
    assert calls[0]["timeout"] == 120.0 and calls[0]["test_timeout"] == 30.0
    # without the control setting, the timeout stays ours
    results = iter([(HUNG, Outcome(Status.SKIP, "boot failed"))])
    out = stages.stage_boot(_state(tmp_path, baseline_on=False))
    assert (out.status, out.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert asked == [Stage.BOOT]
    # a crash is retried once and never sent to the timeout judgement
    crash = Outcome(Status.FAIL, "Kernel panic - not syncing: x")
    results = iter([(crash, Outcome(Status.SKIP, "")), (crash, Outcome(Status.SKIP, ""))])
    out = stages.stage_boot(_state(tmp_path))
    assert out.status is Status.FAIL and out.detail["attempts"] == ["fail/skip", "fail/skip"]
    assert asked == [Stage.BOOT]
