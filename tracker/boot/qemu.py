"""Boot a kernel in QEMU (the machine of each architecture is read from its arch file) and run the
smoke tests.

The machine has no network device (``-nodefaults``) and runs inside the sandbox. TCG is the
default accelerator: KVM is used only when asked for and ``kvm_usable`` says it works. Each
machine turns on its early console (``Arch.early_args``), so a kernel that dies before its console
driver is up is still heard (the Kconfig options it needs are the arch's ``boot_options``).
Each boot has its own secret token for the smoke-test markers (``initramfs.new_token``).
"""

from __future__ import annotations

import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tracker import proc, sandbox
from tracker.arches import loader
from tracker.arches.model import Arch
from tracker.arches.target import Target
from tracker.boot import console
from tracker.boot.initramfs import DEFAULT_TEST_TIMEOUT, build_initramfs, new_token
from tracker.errors import InfraError
from tracker.vocab import Cause, Outcome, Status

KERNEL_ARGS = ("panic=-1", "oops=panic")


class Machine(Protocol):
    @property
    def binary(self) -> str: ...

    def argv(self, image: Path, initrd: Path, *, append: str = "") -> list[str]: ...


def _common(memory: int, accel: str) -> list[str]:
    return [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-m",
        str(memory),
        "-accel",
        accel,
    ]


@dataclass(frozen=True)
class Qemu:
    """The QEMU machine of one architecture (its board, CPU, firmware, console: the arch file)."""

    arch: Arch
    memory: int = 256
    accel: str = "tcg"

    @property
    def binary(self) -> str:
        return self.arch.qemu

    def argv(self, image: Path, initrd: Path, *, append: str = "") -> list[str]:
        console = f"console={self.arch.console}"
        cmdline = " ".join([console, *self.arch.early_args, *KERNEL_ARGS, append]).strip()
        return [
            self.binary,
            *self.arch.qemu_machine_args(self.accel),
            *_common(self.memory, self.accel),
            "-kernel",
            os.fspath(image),
            "-initrd",
            os.fspath(initrd),
            "-append",
            cmdline,
        ]


def QemuX86_64(*, memory: int = 256, accel: str = "tcg") -> Qemu:
    """Shorthand for the x86_64 machine (tests and benchmarks)."""
    return Qemu(loader.get("x86_64"), memory=memory, accel=accel)


def QemuArm64(*, memory: int = 256, accel: str = "tcg") -> Qemu:
    """Shorthand for the arm64 machine (tests)."""
    return Qemu(loader.get("arm64"), memory=memory, accel=accel)


def machine_for(target: Target, *, accel: str = "tcg", memory: int = 256) -> Machine:
    return Qemu(target.arch_info, memory=memory, accel=accel)


def kvm_usable() -> bool:
    """Whether /dev/kvm can be opened read-write. Not enough alone: on some hosts KVM guests
    crawl (see REFERENCE.md), so ``accel="kvm"`` is opt-in and never the default."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def probe_kvm(
    image: Path,
    target: Target,
    *,
    work: Path,
    timeout: float = 15.0,
    sandbox_mode: sandbox.SandboxMode | None = None,
) -> bool:
    """Whether KVM boots ``image`` to the boot marker within ``timeout`` (it opens /dev/kvm
    but crawls on some hosts). Slow when it fails: callers keep the answer for the run."""
    if not kvm_usable():
        return False
    boot, _ = boot_and_test(
        image,
        target,
        None,
        work=work,
        log=work / "kvm-probe.log",
        timeout=timeout,
        accel="kvm",
        sandbox_mode=sandbox_mode,
    )
    return boot.status in (Status.PASS, Status.WARN)


@dataclass(frozen=True)
class QemuRun:
    """How one QEMU run went: the console, QEMU's own messages, whether our timeout ended it,
    its exit code (None on our timeout), and its wall time on this host."""

    console: str
    messages: str
    timed_out: bool
    returncode: int | None
    seconds: float


def run_qemu(
    argv: list[str],
    *,
    work: Path,
    log: Path,
    timeout: float,
    mode: sandbox.SandboxMode,
    readable: tuple[Path, ...] = (),
) -> QemuRun:
    """Run QEMU. Both streams are appended to ``log`` as they come. On our timeout the console
    is read back from the log (QEMU's messages, which start with its binary name, left out).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    start_size = log.stat().st_size if log.exists() else 0
    start = time.monotonic()
    try:
        result = proc.run(
            sandbox.wrap(argv, mode, writable=[work], readable=readable),
            cwd=work,
            timeout=timeout,
            log=log,
        )
        seconds = time.monotonic() - start
        return QemuRun(result.stdout, result.stderr, False, result.returncode, seconds)
    except InfraError:
        if time.monotonic() - start < timeout - 1:
            raise
    seconds = time.monotonic() - start
    with log.open("rb") as fh:
        fh.seek(start_size)
        lines = fh.read().decode("utf-8", "replace").splitlines(keepends=True)
    binary = os.path.basename(argv[0]) + ":"
    if lines and lines[0].startswith("$ "):  # proc.run's command header
        lines = lines[1:]
    console_lines = [ln for ln in lines if not ln.startswith(binary)]
    messages = [ln for ln in lines if ln.startswith(binary)]
    return QemuRun("".join(console_lines), "".join(messages), True, None, seconds)


def boot_and_test(
    image: Path,
    target: Target,
    tests: Path | None,
    *,
    work: Path,
    log: Path,
    timeout: float,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    accel: str = "tcg",
    sandbox_mode: sandbox.SandboxMode | None = None,
    append: str = "",
) -> tuple[Outcome, Outcome]:
    """Boot ``image`` with a busybox initramfs holding ``tests``; (boot outcome, test outcome).

    ``accel``: "tcg" (default), "kvm", or "auto" (KVM when ``probe_kvm`` proves it works).
    ``test_timeout``: seconds each smoke test may take inside the guest. ``append``: extra
    kernel arguments (tests use it to pick a behaviour of a test kernel). The boot outcome's
    ``detail["timing"]`` says how long QEMU ran on this host and which point the guest reached
    (``boot``: this boot's boot marker, ``done``: its tests-done marker), for control boots.
    """
    work.mkdir(parents=True, exist_ok=True)
    if accel == "auto":
        probe = probe_kvm(
            image,
            target,
            work=work / "kvm-probe",
            timeout=min(15.0, timeout),
            sandbox_mode=sandbox_mode,
        )
        accel = "kvm" if probe else "tcg"
    token = new_token()
    try:
        machine = machine_for(target, accel=accel)
        proc.which(machine.binary)
        mode = sandbox_mode if sandbox_mode is not None else sandbox.detect()
        initrd, failures = build_initramfs(
            target, tests, work=work, log=log, token=token, test_timeout=test_timeout
        )
        argv = machine.argv(image, initrd, append=append)
        ran = run_qemu(
            argv, work=work, log=log, timeout=timeout, mode=mode, readable=(image.parent,)
        )
    except InfraError as exc:
        return Outcome(Status.ERROR, str(exc), {}, {}, log), Outcome(Status.SKIP, "boot error")
    report = console.parse(ran.console, token=token)
    boot, test = console.judge(
        report,
        timed_out=ran.timed_out,
        timeout=timeout,
        tests_requested=tests is not None,
        qemu_cmdline=shlex.join(argv),
        qemu_rc=ran.returncode,
        qemu_messages=ran.messages,
    )
    reached = "done" if report.done_rc is not None else "boot" if report.booted else None
    boot.detail["timing"] = {
        "seconds": round(ran.seconds, 3),
        "reached": reached,
        "limit": timeout,
        "host": socket.gethostname(),
    }
    boot.log = log
    boot.artifacts["initramfs"] = initrd
    if failures and test.status is not Status.SKIP:
        first = failures[0]
        test.status, test.cause = Status.FAIL, Cause.VERDICT
        test.summary = f"{first.source} does not compile: {first.message}"
        test.detail["compile_failures"] = [
            {"source": f.source, "message": f.message} for f in failures
        ]
    test.log = log
    return boot, test
