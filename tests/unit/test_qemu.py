"""QEMU command lines per arch, and boot_and_test against a fake qemu-system-x86_64 on PATH.

The fake prints a console given by the test, where ``@M@`` stands for this boot's marker
prefix: it reads the token out of the initramfs it is given, as only the guest could.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from tracker.arches.target import Target
from tracker.boot.qemu import QemuArm64, QemuX86_64, boot_and_test, machine_for
from tracker.sandbox import SandboxMode
from tracker.vocab import Cause, Status

X86 = Target.parse("x86_64:tinyconfig")
NONE = SandboxMode.NONE

FAKE_QEMU = """#!{python}
import gzip, json, os, re, sys, time
with open(os.environ["FAKE_QEMU_ARGV"], "w") as fh:
    json.dump(sys.argv, fh)
initrd = gzip.decompress(open(sys.argv[sys.argv.index("-initrd") + 1], "rb").read())
token = re.search(rb"M='KTRACK:([0-9a-f]{{32}})'", initrd).group(1).decode()
console = open(os.environ["FAKE_QEMU_CONSOLE"]).read()
sys.stdout.write(console.replace("@M@", "KTRACK:" + token))
sys.stdout.flush()
sys.stderr.write(os.environ.get("FAKE_QEMU_STDERR", ""))
sys.stderr.flush()
time.sleep(float(os.environ.get("FAKE_QEMU_SLEEP", "0")))
sys.exit(int(os.environ.get("FAKE_QEMU_RC", "0")))
"""


def test_x86_64_command_line_exact() -> None:
    assert QemuX86_64().argv(Path("/o/bzImage"), Path("/w/initramfs.cpio.gz")) == [
        "qemu-system-x86_64",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-no-reboot", "-m", "256", "-accel", "tcg",
        "-kernel", "/o/bzImage", "-initrd", "/w/initramfs.cpio.gz",
        "-append", "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 oops=panic",
    ]  # fmt: skip


def test_arm64_virt_command_line_exact() -> None:
    assert QemuArm64(memory=512).argv(Path("/o/Image"), Path("/w/i.gz"), append="quiet") == [
        "qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a57",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-no-reboot", "-m", "512", "-accel", "tcg",
        "-kernel", "/o/Image", "-initrd", "/w/i.gz",
        "-append", "console=ttyAMA0 earlycon=pl011,0x9000000 panic=-1 oops=panic quiet",
    ]  # fmt: skip


def test_machine_for_arch_and_accel() -> None:
    assert machine_for(X86) == QemuX86_64()
    assert machine_for(Target.parse("arm64:defconfig"), accel="kvm") == QemuArm64(accel="kvm")


@pytest.fixture
def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    exe = bindir / "qemu-system-x86_64"
    exe.write_text(FAKE_QEMU.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_QEMU_ARGV", str(tmp_path / "argv.json"))

    def run(
        console: str,
        *,
        tests: Path | None = None,
        timeout: float = 30,
        append: str = "",
        test_timeout: float = 60,
        **env: str,
    ):
        (tmp_path / "console.txt").write_text(console)
        monkeypatch.setenv("FAKE_QEMU_CONSOLE", str(tmp_path / "console.txt"))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return boot_and_test(
            tmp_path / "bzImage", X86, tests, work=tmp_path / "work", log=tmp_path / "boot.log",
            timeout=timeout, sandbox_mode=SandboxMode.NONE, append=append,
            test_timeout=test_timeout,
        )  # fmt: skip

    return run


def _tests(tmp_path: Path) -> Path:
    tests = tmp_path / "tests"
    tests.mkdir(exist_ok=True)
    (tests / "run").write_text("#!/bin/sh\n")
    return tests


BOOT = "Linux version 6.1.0 (ktrack@ktrack)\nRun /init as init process\n"


def test_clean_boot_and_passing_tests(tmp_path: Path, fake_qemu) -> None:
    console = BOOT + (
        "@M@ BOOT-OK\n@M@ TEST uname pass Linux 6.1\n@M@ TEST net skip no network\n"
        "@M@ TESTS-DONE rc=0\nreboot: Power down\n"
    )
    boot, test = fake_qemu(console, tests=_tests(tmp_path))
    assert (boot.status, boot.summary) == (Status.PASS, "booted")
    assert (test.status, test.summary) == (Status.PASS, "1 passed, 0 failed, 1 skipped")
    assert test.detail["tests"] == [
        {"name": "uname", "status": "pass", "message": "Linux 6.1"},
        {"name": "net", "status": "skip", "message": "no network"},
    ]
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert (
        argv[1:] == QemuX86_64().argv(tmp_path / "bzImage", tmp_path / "work/initramfs.cpio.gz")[1:]
    )
    assert boot.log == tmp_path / "boot.log" and " BOOT-OK" in boot.log.read_text()
    assert boot.artifacts["initramfs"] == tmp_path / "work/initramfs.cpio.gz"


def test_no_tests_folder_gives_test_skip(tmp_path: Path, fake_qemu) -> None:
    boot, test = fake_qemu(BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n")
    assert boot.status is Status.PASS
    assert test.status is Status.SKIP


def test_failing_test_and_nonzero_rc(tmp_path: Path, fake_qemu) -> None:
    console = BOOT + "@M@ BOOT-OK\n@M@ TEST vinfo fail /proc/vinfo missing\n@M@ TESTS-DONE rc=1\n"
    boot, test = fake_qemu(console, tests=_tests(tmp_path))
    assert boot.status is Status.PASS
    assert (test.status, test.summary) == (
        Status.FAIL,
        "vinfo failed: /proc/vinfo missing (0 passed, 1 failed, 0 skipped)",
    )
    boot, test = fake_qemu(
        BOOT + "@M@ BOOT-OK\n@M@ TEST a pass\n@M@ TESTS-DONE rc=3\n",
        tests=_tests(tmp_path),
    )
    assert (test.status, test.summary) == (
        Status.FAIL,
        "tests/run exited 3 (1 passed, 0 failed, 0 skipped)",
    )


def test_panic_before_init_is_boot_fail_with_the_panic_line(tmp_path: Path, fake_qemu) -> None:
    console = BOOT + "Kernel panic - not syncing: ktrack: boom\nRebooting in -1 seconds..\n"
    boot, test = fake_qemu(console, tests=_tests(tmp_path))
    assert (boot.status, boot.summary) == (Status.FAIL, "Kernel panic - not syncing: ktrack: boom")
    assert test.status is Status.SKIP


def test_kernel_dying_mid_test_fails_both(tmp_path: Path, fake_qemu) -> None:
    console = BOOT + (
        "@M@ BOOT-OK\n@M@ TEST first pass\n"
        "BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "Oops: 0002 [#1] PREEMPT\nRIP: 0010:proc_vinfo_show+0x5/0x20\n"
        "Kernel panic - not syncing: Fatal exception\n"
    )
    boot, test = fake_qemu(console, tests=_tests(tmp_path))
    crash = (
        "BUG: kernel NULL pointer dereference, address: 0000000000000000 at "
        "proc_vinfo_show+0x5/0x20 (then: Kernel panic - not syncing: Fatal exception)"
    )
    assert (boot.status, boot.summary) == (Status.FAIL, crash)
    assert test.status is Status.FAIL
    assert test.summary == f"kernel died during the tests: {crash}"
    assert test.detail["tests"] == [{"name": "first", "status": "pass", "message": ""}]


def test_warning_is_boot_warn(tmp_path: Path, fake_qemu) -> None:
    console = BOOT + (
        "WARNING: CPU: 0 PID: 1 at init/main.c:1500 kernel_init+0x1/0x2\n"
        "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n"
    )
    boot, _ = fake_qemu(console)
    assert (boot.status, boot.summary) == (
        Status.WARN,
        "WARNING: CPU: 0 PID: 1 at init/main.c:1500 kernel_init+0x1/0x2",
    )


def test_hung_kernel_with_console_is_our_timeout_not_a_verdict(tmp_path: Path, fake_qemu) -> None:
    boot, test = fake_qemu(BOOT, timeout=2, FAKE_QEMU_SLEEP="30")
    assert (boot.status, boot.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert boot.summary == (
        "no BOOT-OK marker within 2s (our timeout); last console line: Run /init as init process"
    )
    assert boot.detail["timeout"] == {"point": "boot", "limit": 2}
    timing = boot.detail["timing"]
    assert timing["reached"] is None and timing["limit"] == 2 and 2 <= timing["seconds"] < 10
    assert timing["host"] == socket.gethostname()
    assert test.status is Status.SKIP


def test_tests_that_hang_past_our_timeout_are_error(tmp_path: Path, fake_qemu) -> None:
    boot, test = fake_qemu(
        BOOT + "@M@ BOOT-OK\n", tests=_tests(tmp_path), timeout=2, FAKE_QEMU_SLEEP="30"
    )
    assert boot.status is Status.PASS and boot.detail["timing"]["reached"] == "boot"
    assert (test.status, test.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert test.summary.startswith("tests did not finish within 2s (our timeout, no verdict)")


def test_each_boot_has_its_own_token_only_in_the_initramfs(tmp_path: Path, fake_qemu) -> None:
    tokens = []
    for _ in range(2):
        boot, _ = fake_qemu(BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n")
        assert boot.status is Status.PASS
        initrd = gzip.decompress((tmp_path / "work/initramfs.cpio.gz").read_bytes())
        (token,) = re.findall(rb"M='KTRACK:([0-9a-f]{32})'", initrd)
        tokens.append(token.decode())
        argv = json.loads((tmp_path / "argv.json").read_text())
        assert not any(token.decode() in a for a in argv)  # never on the kernel command line
        assert f"KTRACK:{token.decode()} BOOT-OK" in boot.log.read_text()
    assert tokens[0] != tokens[1]


def test_a_kernel_printing_the_markers_gets_no_pass(tmp_path: Path, fake_qemu) -> None:
    forged = (
        "[    0.912345] KTRACK-BOOT-OK\n[    0.912346] KTRACK-TEST vinfo pass\n"
        "[    0.912347] KTRACK-TESTS-DONE rc=0\n"
    )
    boot, test = fake_qemu(BOOT + forged + "reboot: Power down\n", tests=_tests(tmp_path))
    assert boot.status is Status.FAIL and test.status is Status.SKIP
    assert boot.detail["untrusted_markers"]["count"] == 3
    # booted for real, the tests then fail: printed results do not turn it into a pass
    boot, test = fake_qemu(
        BOOT + "@M@ BOOT-OK\n" + forged + "@M@ TEST vinfo fail missing\n@M@ TESTS-DONE rc=1\n",
        tests=_tests(tmp_path),
    )
    assert boot.status is Status.PASS
    assert (test.status, test.summary) == (
        Status.FAIL,
        "vinfo failed: missing (0 passed, 1 failed, 0 skipped)",
    )


def test_append_and_test_timeout_reach_the_command_line_and_init(tmp_path: Path, fake_qemu) -> None:
    fake_qemu(
        BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n", tests=_tests(tmp_path),
        append="ktrack_fault=warn", test_timeout=7.5,
    )  # fmt: skip
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[-1] == (
        "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 oops=panic ktrack_fault=warn"
    )
    initrd = gzip.decompress((tmp_path / "work/initramfs.cpio.gz").read_bytes())
    assert b'/bin/ktrack-run-tests "$M" 8 /tests /tmp' in initrd


def test_no_console_at_all_is_error_with_the_command_line(tmp_path: Path, fake_qemu) -> None:
    boot, test = fake_qemu("", FAKE_QEMU_RC="1")
    assert boot.status is Status.ERROR
    assert boot.summary.startswith(
        "no console output (QEMU exited 1); QEMU: qemu-system-x86_64 -nodefaults"
    )
    assert test.status is Status.SKIP


def test_qemu_messages_are_not_console(tmp_path: Path, fake_qemu) -> None:
    msg = "qemu-system-x86_64: could not load kernel '/x/bzImage': No such file or directory\n"
    boot, test = fake_qemu("", FAKE_QEMU_RC="1", FAKE_QEMU_STDERR=msg)
    assert boot.status is Status.ERROR
    assert boot.summary.startswith(
        "no console output (QEMU exited 1: qemu-system-x86_64: could not load kernel"
    )
    # on a timeout the console comes back from the log, without QEMU's own lines
    boot, _ = fake_qemu(BOOT, timeout=2, FAKE_QEMU_SLEEP="30", FAKE_QEMU_RC="0")
    assert boot.summary.endswith("last console line: Run /init as init process")


def test_missing_qemu_is_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    boot, test = boot_and_test(
        tmp_path / "bzImage", X86, None, work=tmp_path / "w", log=tmp_path / "log",
        timeout=5, sandbox_mode=SandboxMode.NONE,
    )  # fmt: skip
    assert boot.status is Status.ERROR and "qemu-system-x86_64" in boot.summary
    assert test.status is Status.SKIP


def test_test_program_that_does_not_compile_fails_the_test_stage(tmp_path: Path, fake_qemu) -> None:
    tests = _tests(tmp_path)
    (tests / "bad.c").write_text("int main(void) { return }\n")
    boot, test = fake_qemu(BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n", tests=tests)
    assert boot.status is Status.PASS
    assert test.status is Status.FAIL and test.summary.startswith("bad.c does not compile: ")


def test_auto_accel_uses_kvm_only_when_the_probe_boots(
    tmp_path: Path, fake_qemu, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.boot import qemu

    ok = BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n"
    (tmp_path / "console.txt").write_text(ok)
    monkeypatch.setenv("FAKE_QEMU_CONSOLE", str(tmp_path / "console.txt"))
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    assert (
        qemu.probe_kvm(tmp_path / "bzImage", X86, work=tmp_path / "p1", sandbox_mode=NONE) is False
    )
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    assert (
        qemu.probe_kvm(tmp_path / "bzImage", X86, work=tmp_path / "p2", sandbox_mode=NONE) is True
    )
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[argv.index("-accel") + 1] == "kvm"
    # a KVM guest that crawls (no marker before the probe's timeout) means TCG
    (tmp_path / "console.txt").write_text(BOOT)
    monkeypatch.setenv("FAKE_QEMU_SLEEP", "30")
    boot, _ = qemu.boot_and_test(
        tmp_path / "bzImage", X86, None, work=tmp_path / "w", log=tmp_path / "l",
        timeout=3, accel="auto", sandbox_mode=SandboxMode.NONE,
    )  # fmt: skip
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv[argv.index("-accel") + 1] == "tcg"


def test_missing_static_libc_is_a_boot_error_of_ours(
    tmp_path: Path, fake_qemu, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault table's "missing static libc": the smoke tests cannot be compiled at all, so
    the boot stage is ``error`` (infrastructure), never a ``fail`` of the patch set's tests."""
    tests = _tests(tmp_path)
    (tests / "probe.c").write_text("int main(void) { return 0; }\n")
    bindir = tmp_path / "nolibc"
    bindir.mkdir()
    (bindir / "gcc").write_text(
        "#!/bin/sh\necho '/usr/bin/ld: cannot find -lc: No such file or directory' >&2\nexit 1\n"
    )
    (bindir / "gcc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    boot, test = fake_qemu(BOOT + "@M@ BOOT-OK\n@M@ TESTS-DONE rc=0\n", tests=tests)
    assert (boot.status, boot.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    assert boot.summary.startswith("the host cannot build static programs for x86_64")
    assert test.status is Status.SKIP
    assert not (tmp_path / "argv.json").exists()  # QEMU never ran
