"""The console parser on real serial logs of Debian's 6.1 kernel booted in QEMU (fixtures/logs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.boot.console import EventKind, clean, judge, parse
from tracker.vocab import Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"


def _judge(name: str, *, tests: bool = False, timed_out: bool = False):
    report = parse((FIXTURES / name).read_text())
    return report, *judge(
        report,
        timed_out=timed_out,
        timeout=60,
        tests_requested=tests,
        qemu_cmdline="qemu",
        qemu_rc=0,
    )


def test_clean_boot_with_smoke_tests() -> None:
    report, boot, test = _judge("boot-clean.log", tests=True)
    assert report.booted and report.done_rc == 0 and report.events == ()
    assert (boot.status, boot.summary) == (Status.PASS, "booted")
    assert (test.status, test.summary) == (Status.PASS, "2 passed, 0 failed, 1 skipped")
    assert test.detail["tests"][0] == {
        "name": "uname",
        "status": "pass",
        "message": "Linux 6.1.192",
    }
    # "Warning: Processor Platform Limit event detected" is not a kernel WARNING
    assert "Warning: Processor Platform Limit" in (FIXTURES / "boot-clean.log").read_text()


def test_real_clean_arm64_boot_on_virt() -> None:
    """An arm64 tinyconfig kernel on qemu-system-aarch64 -machine virt (PL011 console, PSCI)."""
    report, boot, test = _judge("boot-clean-arm64.log", tests=True)
    assert report.booted and report.done_rc == 0 and report.events == ()
    assert (boot.status, test.status) == (Status.PASS, Status.PASS)
    assert test.detail["tests"] == [{"name": "machine", "status": "pass", "message": "aarch64"}]


def test_real_oops_names_the_bug_line_and_the_panic() -> None:
    report, boot, test = _judge("boot-oops.log")
    kinds = [e.kind for e in report.events]
    assert kinds[:2] == [EventKind.BUG, EventKind.OOPS] and kinds[-1] is EventKind.PANIC
    assert not report.booted
    assert boot.status is Status.FAIL
    assert boot.summary == (
        "BUG: kernel NULL pointer dereference, address: 0000000000000000 at "
        "kernel_init+0x11/0x102 (then: Kernel panic - not syncing: Fatal exception)"
    )
    assert test.status is Status.SKIP


def test_a_hung_boot_from_a_real_log_cut_before_init() -> None:
    text = (FIXTURES / "boot-clean.log").read_text()
    cut = text[: text.index("Run /init as init process")]
    report = parse(cut)
    boot, test = judge(
        report, timed_out=True, timeout=60, tests_requested=True, qemu_cmdline="q", qemu_rc=None
    )
    assert boot.status is Status.FAIL and boot.summary.startswith(
        "hung: no KTRACK-BOOT-OK within 60s"
    )
    assert test.status is Status.SKIP


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (
            "[    1.234567] Kernel panic - not syncing: VFS: Unable to mount root fs",
            EventKind.PANIC,
        ),
        ("kernel BUG at mm/slub.c:123!", EventKind.BUG),
        ("BUG: scheduling while atomic: swapper/0/1/0x00000002", EventKind.BUG),
        ("Internal error: Oops: 96000005 [#1] PREEMPT SMP", EventKind.OOPS),
        (
            "general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
            EventKind.OOPS,
        ),
        (
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
            EventKind.BUG,
        ),
        ("WARNING: CPU: 0 PID: 1 at init/main.c:1488 kernel_init+0x1c/0x130", EventKind.WARNING),
    ],
)
def test_event_patterns(line: str, kind: EventKind) -> None:
    (event,) = parse(f"boot\n{line}\n").events
    assert event.kind is kind
    assert event.line == clean(line).strip()


def test_no_output_is_error_and_rc_of_run_is_honoured() -> None:
    boot, test = judge(
        parse(""),
        timed_out=False,
        timeout=5,
        tests_requested=True,
        qemu_cmdline="qemu -x",
        qemu_rc=1,
    )
    assert (boot.status, boot.summary) == (
        Status.ERROR,
        "no console output (QEMU exited 1); QEMU: qemu -x",
    )
    report = parse("KTRACK-BOOT-OK\r\n\x1b[0mKTRACK-TEST a pass\nKTRACK-TESTS-DONE rc=2\n")
    assert report.tests[0].name == "a"
    _, test = judge(
        report, timed_out=False, timeout=5, tests_requested=True, qemu_cmdline="q", qemu_rc=0
    )
    assert test.status is Status.FAIL and test.summary.startswith("tests/run exited 2")


def test_real_panic_is_boot_fail_with_the_panic_line() -> None:
    report, boot, test = _judge("boot-panic.log", tests=True)
    assert [e.kind for e in report.events] == [EventKind.PANIC]
    assert (boot.status, boot.summary) == (
        Status.FAIL,
        "Kernel panic - not syncing: ktrack: deliberate panic at boot",
    )
    assert boot.detail["events"][0]["console_line"] == 157
    assert test.status is Status.SKIP


def test_real_warning_is_boot_warn_and_the_boot_goes_on() -> None:
    report, boot, test = _judge("boot-warning.log")
    assert [e.kind for e in report.events] == [EventKind.WARNING]
    assert report.booted and report.done_rc == 0
    assert (boot.status, boot.summary) == (
        Status.WARN,
        "WARNING: CPU: 0 PID: 1 at ../src/init/main.c:1488 kernel_init+0x1d/0x105",
    )
    assert test.status is Status.SKIP  # no tests folder in that run
