"""Infrastructure signatures in configure and build logs: one fixture log per signature, each
judged ``error`` (cause infrastructure) by the build judgement and by the configure stage."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_kbuild import fake_kernel

from tracker.arches.target import Target
from tracker.build import signatures
from tracker.build.kbuild import judge
from tracker.build.kconfig import configure
from tracker.sandbox import SandboxMode
from tracker.vocab import Cause, Status

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "logs" / "infra"

# fixture -> (signature, the line it must name)
CASES = {
    "disk-full.log": ("disk-full", "/usr/bin/ld: final link failed: No space left on device"),
    "disk-quota.log": (
        "disk-full",
        "{standard input}: Fatal error: can't write 412 bytes to section .text of "
        "mm/slab_common.o: 'Disk quota exceeded'",
    ),
    "memory.log": (
        "memory",
        "cc1: out of memory allocating 4064 bytes after a total of 1163919360 bytes",
    ),
    "memory-exhausted.log": ("memory", "virtual memory exhausted: Cannot allocate memory"),
    "memory-fork.log": ("memory", "make[3]: fork: Resource temporarily unavailable"),
    "killed.log": ("killed", "gcc: fatal error: Killed signal terminated program cc1"),
    "killed-137.log": (
        "killed",
        "make[2]: *** [scripts/Makefile.vmlinux_o:61: vmlinux.o] Error 137",
    ),
    "ice.log": (
        "internal-compiler-error",
        "kernel/fork.c:2014:1: internal compiler error: Segmentation fault",
    ),
    "ice-signal.log": (
        "internal-compiler-error",
        "gcc: internal compiler error: Segmentation fault signal terminated program cc1",
    ),
    "ccache-readonly.log": (
        "ccache",
        "ccache: error: Failed to create directory /root/.cache/ktrack/ccache/tmp: "
        "Read-only file system",
    ),
    "read-only.log": (
        "read-only",
        "/bin/sh: 1: cannot create include/generated/autoconf.h: Read-only file system",
    ),
    "missing-tool.log": ("missing-tool", "/bin/sh: 1: flex: not found"),
    "missing-compiler.log": (
        "missing-tool",
        "make[1]: aarch64-linux-gnu-gcc: No such file or directory",
    ),
    "missing-cc1.log": (
        "missing-tool",
        "gcc: fatal error: cannot execute 'cc1': execvp: No such file or directory",
    ),
}


def test_every_signature_has_a_fixture() -> None:
    assert {sig for sig, _ in CASES.values()} == {s.name for s in signatures.SIGNATURES}
    assert sorted(p.name for p in LOGS.glob("*.log")) == sorted([*CASES, "not-infrastructure.log"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_signature_names_its_line(name: str) -> None:
    text = (LOGS / name).read_text()
    match = signatures.find(text)
    assert match is not None
    want_sig, want_line = CASES[name]
    assert (match.signature.name, match.line) == (want_sig, want_line)
    assert text.splitlines()[match.number - 1].strip() == want_line
    assert match.describe() == f"{match.signature.what}: {want_line}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_build_with_a_signature_is_infrastructure_not_fail(name: str, tmp_path: Path) -> None:
    text = (LOGS / name).read_text()
    outcome = judge(2, text, src=tmp_path / "src", out=tmp_path / "out", image=tmp_path / "none")
    want_sig, want_line = CASES[name]
    assert (outcome.status, outcome.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    what = {s.name: s.what for s in signatures.SIGNATURES}[want_sig]
    assert outcome.summary == f"infrastructure: {what}: {want_line}"
    assert outcome.detail["infrastructure"]["signature"] == want_sig
    assert outcome.detail["infrastructure"]["line"] == want_line


def test_a_real_compile_error_quoting_scary_words_is_not_infrastructure(tmp_path: Path) -> None:
    """Quoted source lines, comments, a script the patch forgot and a missing header are the
    patch set's own: no signature, and the build is judged ``fail`` on the first error."""
    text = (LOGS / "not-infrastructure.log").read_text()
    assert signatures.find(text) is None
    for line in text.splitlines():
        assert signatures.classify(line) is None, line
    outcome = judge(2, text, src=tmp_path / "src", out=tmp_path / "out", image=tmp_path / "none")
    assert (outcome.status, outcome.cause) == (Status.FAIL, Cause.VERDICT)
    assert outcome.summary == "kernel/fork.c:42: 'vx_count' undeclared (first use in this function)"


def test_signatures_look_only_at_tool_messages() -> None:
    assert signatures.classify("\x1b[01mcc1: out of memory allocating 8 bytes\x1b[m") is not None
    assert signatures.classify("   12 | /* No space left on device: ENOSPC */") is None
    assert signatures.classify("      |  ^~~~ internal compiler error:") is None
    assert signatures.classify("\tcc1: out of memory allocating 8 bytes") is None  # indented
    assert signatures.classify("/bin/sh: 1: ld.lld: not found") is not None
    assert signatures.classify("bash: line 1: bc: command not found") is not None
    assert signatures.classify("/bin/sh: 1: scripts/vx.sh: not found") is None
    assert signatures.classify("make[2]: *** [Makefile:9: x.o] Error 139") is None  # a segfault
    assert signatures.classify("make[2]: *** [Makefile:9: x.o] Killed") is not None


X86 = Target.parse("x86_64:tinyconfig")


@pytest.mark.parametrize("name", ["disk-full.log", "ice-signal.log", "missing-tool.log"])
def test_configure_make_failure_with_a_signature_is_infrastructure(
    name: str, tmp_path: Path
) -> None:
    """``make olddefconfig`` failing for a full disk (or a crashed compiler, a missing tool)
    is ``error`` with the line named, not a ``fail`` of the patch set."""
    src = fake_kernel(tmp_path / "src")
    (src / "CONFIG_STDERR").write_text((LOGS / name).read_text())
    (src / "CONFIG_RC").write_text("2")
    outcome = configure(
        src, tmp_path / "out", X86, None, log=tmp_path / "c.log",
        ccache_dir=tmp_path / "cc", sandbox_mode=SandboxMode.NONE,
    )  # fmt: skip
    want_sig, want_line = CASES[name]
    assert (outcome.status, outcome.cause) == (Status.ERROR, Cause.INFRASTRUCTURE)
    what = {s.name: s.what for s in signatures.SIGNATURES}[want_sig]
    assert outcome.summary == f"infrastructure: make olddefconfig failed: {what}: {want_line}"
    assert outcome.detail["infrastructure"]["signature"] == want_sig


def test_configure_make_failure_without_a_signature_is_fail(tmp_path: Path) -> None:
    src = fake_kernel(tmp_path / "src")
    (src / "CONFIG_STDERR").write_text("Kconfig:3: syntax error\nKconfig:3: invalid statement\n")
    (src / "CONFIG_RC").write_text("1")  # make reports it as Error 1 and exits 2
    outcome = configure(
        src, tmp_path / "out", X86, None, log=tmp_path / "c.log",
        ccache_dir=tmp_path / "cc", sandbox_mode=SandboxMode.NONE,
    )  # fmt: skip
    assert (outcome.status, outcome.cause) == (Status.FAIL, Cause.VERDICT)
    assert outcome.summary == (
        "make olddefconfig failed (2): Kconfig:3: syntax error Kconfig:3: invalid statement "
        "make: *** [Makefile:9: olddefconfig] Error 1"
    )
