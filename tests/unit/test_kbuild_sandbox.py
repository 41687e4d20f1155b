"""The network-isolation prefix for builds and QEMU (tracker/sandbox.py)."""

from __future__ import annotations

from pathlib import Path

from tracker import proc
from tracker.sandbox import SandboxMode, detect, wrap


def test_wrap_exact_command_lines() -> None:
    argv = ["make", Path("/w/src")]
    assert wrap(argv, SandboxMode.NONE) == ["make", "/w/src"]
    assert wrap(argv, SandboxMode.UNSHARE) == ["unshare", "--net", "--", "make", "/w/src"]
    assert wrap(argv, SandboxMode.UNSHARE_USER) == [
        "unshare", "--map-root-user", "--net", "--", "make", "/w/src",
    ]  # fmt: skip
    bw = wrap(
        argv, SandboxMode.BWRAP, writable=[Path("/data/job"), Path("/cache/cc")],
        readable=[Path("/tmp/src")],
    )  # fmt: skip
    assert bw == [
        "bwrap", "--unshare-net", "--die-with-parent",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--ro-bind", "/tmp/src", "/tmp/src",
        "--bind", "/data/job", "/data/job", "--bind", "/cache/cc", "/cache/cc",
        "--", "make", "/w/src",
    ]  # fmt: skip


def test_detected_sandbox_has_only_loopback() -> None:
    mode = detect()
    assert mode is not SandboxMode.NONE
    result = proc.run(wrap(["cat", "/proc/net/dev"], mode), cwd="/", timeout=30, check=True)
    names = sorted(line.split(":")[0].strip() for line in result.stdout.splitlines()[2:])
    assert names == ["lo"]


def test_bwrap_confines_writes(tmp_path: Path) -> None:
    """bubblewrap is installed by scripts/setup; without it detect() falls back to unshare."""
    (tmp_path / "ro").mkdir()
    (tmp_path / "rw").mkdir()
    argv = ["sh", "-c", f"touch {tmp_path}/rw/a; touch {tmp_path}/ro/b; cat {tmp_path}/rw/a"]
    proc.run(
        wrap(argv, SandboxMode.BWRAP, writable=[tmp_path / "rw"], readable=[tmp_path / "ro"]),
        cwd="/",
        timeout=30,
    )
    assert (tmp_path / "rw" / "a").exists()
    assert not (tmp_path / "ro" / "b").exists()
