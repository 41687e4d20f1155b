"""The console parser on real serial logs of Debian's 6.1 kernel booted in QEMU (fixtures/logs).

The boot-*.log fixtures were captured from real boots; their marker lines carry ``TOKEN``, the
secret of the boot they pretend to be. The signature-*.log fixtures put one kernel report each,
in the 6.1 kernel's own format, into such a log (see tracker/boot/signatures.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.boot import signatures
from tracker.boot.console import EventKind, clean, judge, parse
from tracker.vocab import Cause, Status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
TOKEN = "5f0c2a7e9b1d4c3e8a6f2b0d9c7e1a43"
M = f"KTRACK:{TOKEN}"


def _judge(name: str, *, tests: bool = False, timed_out: bool = False):
    report = parse((FIXTURES / name).read_text(), token=TOKEN)
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


def test_real_clean_riscv64_boot_on_virt() -> None:
    """A riscv64 tinyconfig kernel on qemu-system-riscv64 -machine virt -bios default: OpenSBI's
    banner first, an 8250 early console, and a syscon-poweroff probe error that is no event."""
    text = (FIXTURES / "boot-clean-riscv64.log").read_text()
    assert "OpenSBI v" in text and "probe of poweroff failed with error -16" in text
    report, boot, test = _judge("boot-clean-riscv64.log", tests=True)
    assert report.booted and report.done_rc == 0 and report.events == ()
    assert (boot.status, test.status) == (Status.PASS, Status.PASS)
    assert test.detail["tests"] == [{"name": "machine", "status": "pass", "message": "riscv64"}]


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
    report = parse(cut, token=TOKEN)
    boot, test = judge(
        report, timed_out=True, timeout=60, tests_requested=True, qemu_cmdline="q", qemu_rc=None
    )
    # our timeout is no verdict by itself: error, infrastructure, and which point was missed
    assert (boot.status, boot.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert boot.summary == (
        "no BOOT-OK marker within 60s (our timeout); last console line: "
        "Freeing unused kernel image (rodata/data gap) memory: 1564K"
    )
    assert boot.detail["timeout"] == {"point": "boot", "limit": 60}
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
    (event,) = parse(f"boot\n{line}\n", token=TOKEN).events
    assert event.kind is kind
    assert event.line == clean(line).strip()


def test_no_output_is_error_and_rc_of_run_is_honoured() -> None:
    boot, test = judge(
        parse("", token=TOKEN),
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
    report = parse(f"{M} BOOT-OK\r\n\x1b[0m{M} TEST a pass\n{M} TESTS-DONE rc=2\n", token=TOKEN)
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


# --- the signature table: one fixture log (or more) for each signature -------------------------


def _fixtures_of(name: str) -> list[Path]:
    return sorted(
        p for p in FIXTURES.glob("signature-*.log") if p.stem.split("--")[0] == f"signature-{name}"
    )


def test_every_signature_has_a_fixture_and_every_fixture_a_signature() -> None:
    names = [s.name for s in signatures.SIGNATURES]
    assert len(set(names)) == len(names)
    for name in names:
        assert _fixtures_of(name), f"no tests/fixtures/logs/signature-{name}.log"
    for path in FIXTURES.glob("signature-*.log"):
        assert path.stem.removeprefix("signature-").split("--")[0] in names, path.name


def _signature_cases() -> list[tuple[str, Path]]:
    return [(s.name, p) for s in signatures.SIGNATURES for p in _fixtures_of(s.name)]


@pytest.mark.parametrize(("name", "path"), _signature_cases(), ids=lambda v: getattr(v, "name", v))
def test_signature_fixture_is_judged_by_its_kind(name: str, path: Path) -> None:
    sig = next(s for s in signatures.SIGNATURES if s.name == name)
    report, boot, _ = _judge(path.name)
    mine = [e for e in report.events if e.signature == name]
    assert mine, [(e.signature, e.line) for e in report.events]
    assert all(e.kind is sig.kind for e in mine)
    assert boot.status is sig.kind.status and boot.cause is Cause.VERDICT
    if sig.kind.status is Status.WARN:
        # the first such line is the reason, the boot went on and the markers count
        assert report.booted and report.done_rc == 0
        assert boot.summary == mine[0].line
        assert not report.crashes()
    else:
        assert boot.summary.startswith(report.crashes()[0].line)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu-stall"),
        ("INFO: rcu_tasks detected stalls on tasks:", "rcu-stall"),
        ("INFO: task swapper/0:1 blocked for more than 120 seconds.", "hung-task"),
        ("UBSAN: array-index-out-of-bounds in fs/proc/base.c:3301:12", "ubsan"),
        ("list_del corruption. prev->next should be ffff8880, but was ffff8881. (prev=ffff8882)",
         "list-del-corruption"),
        ("list_add corruption. next is NULL.", "list-add-corruption"),
        ("WARNING: bad unlock balance detected!", "lockdep"),
        ("WARNING: swapper/1 still has locks held!", "lockdep"),
        ("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", "lockdep"),
        ("BUG: key ffff888003a1e0c8 has not been registered!", "lockdep-limit"),
        ("[ BUG: Invalid wait context ]", "lockdep-limit"),
        ("BUG: KASAN: use-after-free in proc_vinfo_show+0x1c/0x50", "kasan"),
        ("BUG: unable to handle page fault for address: ffffffffff600000", "bug"),
        ("BUG: soft lockup - CPU#0 stuck for 22s! [swapper:1]", "bug"),
        ("------------[ cut here ]------------", None),
        ("INFO: Stall ended before state dump start", None),
        ("Warning: Processor Platform Limit event detected", None),
    ],
)  # fmt: skip
def test_signature_table_names_each_report(line: str, name: str | None) -> None:
    sig = signatures.match(clean(f"[    3.141592] {line}"))
    assert (sig.name if sig else None) == name


def test_warn_reports_do_not_hide_a_crash_and_the_first_warning_is_the_reason() -> None:
    text = (
        "INFO: task kworker/0:1:23 blocked for more than 122 seconds.\n"
        "WARNING: CPU: 0 PID: 1 at init/main.c:1 kernel_init+0x1/0x2\n"
        f"{M} BOOT-OK\n{M} TESTS-DONE rc=0\n"
    )
    boot, _ = judge(
        parse(text, token=TOKEN), timed_out=False, timeout=5, tests_requested=False,
        qemu_cmdline="q", qemu_rc=0,
    )  # fmt: skip
    assert (boot.status, boot.summary) == (
        Status.WARN,
        "INFO: task kworker/0:1:23 blocked for more than 122 seconds.",
    )
    text = "UBSAN: shift-out-of-bounds in a.c:1:2\nkernel BUG at mm/slub.c:1!\n" + text
    boot, _ = judge(
        parse(text, token=TOKEN), timed_out=False, timeout=5, tests_requested=False,
        qemu_cmdline="q", qemu_rc=0,
    )  # fmt: skip
    assert (boot.status, boot.summary) == (Status.FAIL, "kernel BUG at mm/slub.c:1!")


# --- markers only this boot can print -----------------------------------------------------------


def _run(text: str, *, tests: bool = True, timed_out: bool = False):
    report = parse(text, token=TOKEN)
    return report, *judge(
        report, timed_out=timed_out, timeout=60, tests_requested=tests, qemu_cmdline="q",
        qemu_rc=None if timed_out else 0,
    )  # fmt: skip


def test_markers_without_this_boots_token_are_ignored() -> None:
    forged = (
        "[    1.000000] KTRACK-BOOT-OK\n"
        "[    1.000001] KTRACK-TEST fake pass\n"
        "[    1.000002] KTRACK-TESTS-DONE rc=0\n"
        f"[    1.000003] KTRACK:{'0' * 32} BOOT-OK\n"
        f"[    1.000004] KTRACK:{TOKEN}0 TESTS-DONE rc=0\n"  # a longer token is another token
        "[    1.000005] reboot: Power down\n"
    )
    report, boot, test = _run(forged)
    assert not report.booted and report.done_rc is None and report.tests == ()
    assert report.untrusted_count == 5
    assert report.untrusted[0] == "KTRACK-BOOT-OK"
    assert (boot.status, boot.summary) == (
        Status.FAIL,
        "kernel stopped before init ran; last console line: reboot: Power down",
    )
    assert boot.detail["untrusted_markers"]["count"] == 5
    assert test.status is Status.SKIP
    # the same lines after a real boot marker add no test and no finish
    report, boot, test = _run(f"{M} BOOT-OK\n" + forged)
    assert report.booted and report.tests == () and report.done_rc is None
    assert (test.status, boot.status) == (Status.FAIL, Status.PASS)


def test_duplicate_test_name_is_a_parse_error_naming_it() -> None:
    _, _, test = _run(f"{M} BOOT-OK\n{M} TEST a pass\n{M} TEST a fail x\n{M} TESTS-DONE rc=0\n")
    assert (test.status, test.summary) == (
        Status.FAIL,
        "test output does not parse: duplicate test name 'a'",
    )
    _, _, test = _run(f"{M} BOOT-OK\n{M} TEST a weird\n{M} TESTS-DONE rc=0\n")
    assert test.summary == "test output does not parse: malformed marker line 'TEST a weird'"


def test_all_tests_skipped_is_skip_not_pass() -> None:
    _, _, test = _run(f"{M} BOOT-OK\n{M} TEST a skip no\n{M} TEST b skip\n{M} TESTS-DONE rc=0\n")
    assert (test.status, test.summary) == (
        Status.SKIP,
        "every test skipped (0 passed, 0 failed, 2 skipped)",
    )
    _, _, test = _run(f"{M} BOOT-OK\n{M} TEST a skip\n{M} TEST b pass\n{M} TESTS-DONE rc=0\n")
    assert (test.status, test.summary) == (Status.PASS, "1 passed, 0 failed, 1 skipped")


def test_tests_cut_by_our_timeout_are_error_never_fail() -> None:
    _, boot, test = _run(f"{M} BOOT-OK\n{M} TEST a pass\nstill going\n", timed_out=True)
    assert boot.status is Status.PASS
    assert (test.status, test.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert test.summary == (
        "tests did not finish within 60s (our timeout, no verdict); last console line: still going"
    )
    assert test.detail["timeout"] == {"point": "tests", "limit": 60}
    # a crash on the console is a verdict whatever ended QEMU
    _, boot, test = _run(f"{M} BOOT-OK\nKernel panic - not syncing: ktrack: boom\n", timed_out=True)
    assert (boot.status, test.status) == (Status.FAIL, Status.FAIL)


def test_in_guest_test_timeout_fails_that_test_only() -> None:
    text = (
        f"{M} BOOT-OK\n{M} TEST a pass\n"
        f"{M} TEST sleep fail timed out after 60s (killed: sleep 1000)\n"
        f"{M} TEST b pass\n{M} TESTS-DONE rc=1\n"
    )
    _, _, test = _run(text)
    assert test.status is Status.FAIL
    assert test.summary == (
        "sleep failed: timed out after 60s (killed: sleep 1000) (2 passed, 1 failed, 0 skipped)"
    )


def test_qemu_dying_by_itself_is_ours_not_the_kernels() -> None:
    """The guest ends QEMU with exit 0 (-no-reboot: poweroff, reboot, panic=-1); QEMU killed
    (out of memory, a signal) or failing by itself is infrastructure, never a verdict."""
    cut = "Linux version 6.1.192\nRun /init as init process\n"
    boot, test = judge(
        parse(cut, token=TOKEN), timed_out=False, timeout=60, tests_requested=True,
        qemu_cmdline="q", qemu_rc=-9,
    )  # fmt: skip
    assert (boot.status, boot.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert boot.summary == "QEMU exited -9; last console line: Run /init as init process"
    assert test.status is Status.SKIP
    boot, test = judge(
        parse(cut + f"{M} BOOT-OK\n{M} TEST a pass\n", token=TOKEN), timed_out=False,
        timeout=60, tests_requested=True, qemu_cmdline="q", qemu_rc=1,
        qemu_messages="qemu-system-x86_64: terminating on signal 15 from pid 1\n",
    )  # fmt: skip
    assert boot.status is Status.PASS
    assert (test.status, test.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert test.summary == (
        "QEMU exited 1: qemu-system-x86_64: terminating on signal 15 from pid 1; "
        f"last console line: {M} TEST a pass"
    )
    # a crash printed before QEMU died is still the kernel's
    boot, _ = judge(
        parse(cut + "Kernel panic - not syncing: x\n", token=TOKEN), timed_out=False,
        timeout=60, tests_requested=False, qemu_cmdline="q", qemu_rc=-9,
    )  # fmt: skip
    assert boot.status is Status.FAIL
