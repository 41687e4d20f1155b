"""The control run's pure parts: the fragment the unpatched release knows, and the judgement."""

from __future__ import annotations

from pathlib import Path

from tracker.arches.target import Target
from tracker.pipeline.baseline import (
    Control,
    ControlCache,
    judge,
    known_fragment,
)
from tracker.vocab import Cause, Outcome, Stage, Status

TARGET = Target.parse("x86_64:tinyconfig")


def test_known_fragment_drops_symbols_the_release_does_not_define(tmp_path: Path) -> None:
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "Kconfig").write_text(
        'config PROC_SYSCTL\n\tbool "sysctl"\n\nconfig LOG_BUF_SHIFT\n\tint "shift"\n'
    )
    (tmp_path / "arch" / "arm64").mkdir(parents=True)
    (tmp_path / "arch" / "arm64" / "Kconfig").write_text('config ARM64_ONLY\n\tbool "x"\n')
    fragment = (
        "CONFIG_PROC_SYSCTL=y\nCONFIG_VSERVER=y\n# CONFIG_LOG_BUF_SHIFT is not set\n"
        "CONFIG_ARM64_ONLY=y\n"
    )
    assert known_fragment(fragment, tmp_path, TARGET) == (
        "CONFIG_PROC_SYSCTL=y\n# CONFIG_LOG_BUF_SHIFT is not set\n"
    )
    assert known_fragment(None, tmp_path, TARGET) == ""


FAILED = Outcome(Status.FAIL, "init/main.c:12: expected ';'", {"errors": ["x"]})


def test_a_passing_control_confirms_the_failure() -> None:
    out = judge(Stage.BUILD, FAILED, Control(Stage.BUILD, Status.PASS, "built"), "6.1.5")
    assert (out.status, out.summary) == (Status.FAIL, FAILED.summary)
    assert out.detail == {"errors": ["x"], "baseline": {"stage": "build", "status": "pass",
                                                       "summary": "built"}}  # fmt: skip
    assert out.cause is Cause.VERDICT


def test_a_failing_control_is_no_verdict_naming_the_release_failure() -> None:
    control = Control(Stage.CONFIGURE, Status.FAIL, "CONFIG_ACPI=y did not survive")
    out = judge(Stage.BUILD, FAILED, control, "4.19.300")
    assert out.status is Status.ERROR
    assert out.summary == (
        "no verdict: 4.19.300 fails configure without the patch set too: "
        "CONFIG_ACPI=y did not survive"
    )
    assert out.detail["unconfirmed"] == {"status": "fail", "summary": FAILED.summary}
    assert out.cause is Cause.UPSTREAM


def test_a_control_that_could_not_run_leaves_the_failure_unconfirmed() -> None:
    control = Control(Stage.BUILD, Status.ERROR, "infrastructure: no space left on device")
    out = judge(Stage.BUILD, FAILED, control, "6.1.5")
    assert out.status is Status.ERROR
    assert out.summary.startswith("no verdict: init/main.c:12: expected ';' (not confirmed")
    assert out.cause is Cause.INFRASTRUCTURE  # retried, exit 3


def test_cache_keeps_verdicts_not_errors_and_survives_garbage(tmp_path: Path) -> None:
    cache = ControlCache(tmp_path / "c")
    cache.put("a", Control(Stage.BUILD, Status.FAIL, "x"))
    cache.put("b", Control(Stage.BUILD, Status.ERROR, "y"))
    assert cache.get("a") == Control(Stage.BUILD, Status.FAIL, "x")
    assert cache.get("b") is None
    (tmp_path / "c" / "d.json").write_text("{not json")
    (tmp_path / "c" / "e.json").write_text('{"stage": "nope", "status": "fail", "summary": ""}')
    assert cache.get("d") is None and cache.get("e") is None


def test_warnings_are_new_only_beyond_what_the_release_has() -> None:
    from tracker.pipeline.baseline import judge_warnings

    warned = Outcome(
        Status.WARN,
        "2 warning(s) in patched files",
        {
            "touched_warning_keys": ["fs/a.c: unused variable 'x'", "fs/a.c: unused variable 'x'"],
            "touched_warnings": [
                "fs/a.c:10: unused variable 'x'",
                "fs/a.c:20: unused variable 'x'",
            ],
        },
    )
    once = Control(Stage.BUILD, Status.PASS, "built", warnings=("fs/a.c: unused variable 'x'",))
    out = judge_warnings(warned, once)  # the release has one of the two: the other is new
    assert out.status is Status.WARN
    assert out.summary == "1 new warning(s) in patched files; first: fs/a.c:20: unused variable 'x'"
    twice = Control(
        Stage.BUILD, Status.PASS, "built", warnings=("fs/a.c: unused variable 'x'",) * 2
    )
    assert judge_warnings(warned, twice).status is Status.PASS
    broken = Control(Stage.BUILD, Status.FAIL, "does not build")  # nothing to compare with
    assert judge_warnings(warned, broken).status is Status.WARN
    assert judge_warnings(warned, broken).summary == warned.summary
