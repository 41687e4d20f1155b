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


def test_cache_entries_expire_after_the_maximum_age(tmp_path: Path) -> None:
    import json
    import time

    cache = ControlCache(tmp_path / "c", max_age=3600)
    cache.put("a", Control(Stage.BOOT, Status.PASS, "booted"), toolchain={"qemu": "QEMU 7.2"})
    doc = json.loads((tmp_path / "c" / "a.json").read_text())
    assert doc["toolchain"] == {"qemu": "QEMU 7.2"} and abs(doc["at"] - time.time()) < 60
    assert cache.get("a", now=doc["at"] + 3599) == Control(Stage.BOOT, Status.PASS, "booted")
    assert cache.get("a", now=doc["at"] + 3601) is None  # too old: the control runs again
    # an entry without a date (an older ktrack's) or one saying error is never an answer
    (tmp_path / "c" / "b.json").write_text('{"stage": "build", "status": "fail", "summary": ""}')
    (tmp_path / "c" / "e.json").write_text(
        json.dumps({"stage": "build", "status": "error", "summary": "", "at": time.time()})
    )
    assert cache.get("b") is None and cache.get("e") is None


def test_cache_key_changes_with_the_toolchain_and_only_boot_sees_qemu(monkeypatch) -> None:
    from tracker.build import toolchain
    from tracker.pipeline.baseline import cache_key, control_stages

    versions = {"gcc": "gcc (Debian 12.2.0-14) 12.2.0", "ld": "GNU ld 2.40", "make": "GNU Make 4.3",
                "qemu-system-x86_64": "QEMU emulator version 7.2.0"}  # fmt: skip
    monkeypatch.setattr(toolchain, "tool_version", lambda tool: versions[tool])

    def keys() -> dict[Stage, str]:
        return {
            s: cache_key("abc", TARGET, "", s, toolchain.fingerprint(TARGET, control_stages(s)))
            for s in (Stage.CONFIGURE, Stage.BUILD, Stage.BOOT)
        }

    assert control_stages(Stage.BOOT) == (Stage.CONFIGURE, Stage.BUILD, Stage.BOOT)
    before = keys()
    versions["qemu-system-x86_64"] = "QEMU emulator version 8.0.0"
    after_qemu = keys()
    assert after_qemu[Stage.BOOT] != before[Stage.BOOT]
    assert after_qemu[Stage.BUILD] == before[Stage.BUILD]  # QEMU does not judge a build
    versions["gcc"] = "gcc (Debian 13.1.0-1) 13.1.0"
    after_gcc = keys()
    assert all(after_gcc[s] != after_qemu[s] for s in after_gcc)
