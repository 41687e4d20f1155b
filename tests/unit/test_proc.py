"""The subprocess wrapper: list args, timeouts that kill the whole group, missing tools, logs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker import proc
from tracker.errors import InfraError


def test_runs_and_captures(tmp_path: Path) -> None:
    r = proc.run(["sh", "-c", "echo out; echo err >&2; exit 3"], cwd=tmp_path)
    assert r.returncode == 3 and r.stdout == "out\n" and r.stderr == "err\n" and not r.ok


def test_stdin_is_devnull(tmp_path: Path) -> None:
    r = proc.run(["cat"], cwd=tmp_path, timeout=10)
    assert r.ok and r.stdout == ""


def test_input_and_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "x.log"
    r = proc.run(["cat"], cwd=tmp_path, input=b"hello\n", log=log)
    assert r.stdout == "hello\n"
    text = log.read_text()
    assert text.startswith("$ cat\n") and "hello" in text


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    start = time.monotonic()
    with pytest.raises(InfraError, match="timed out"):
        proc.run(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], cwd=tmp_path, timeout=1)
    assert time.monotonic() - start < 15
    child = int(pidfile.read_text())
    time.sleep(0.3)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (PID 1 may not reap in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_missing_tool_is_infra_error(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="required tool not found: no-such-tool-ktrack"):
        proc.run(["no-such-tool-ktrack"], cwd=tmp_path)


def test_check_raises_with_tail(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="boom"):
        proc.run(["sh", "-c", "echo boom >&2; exit 1"], cwd=tmp_path, check=True)


def test_undecodable_output_is_replaced(tmp_path: Path) -> None:
    r = proc.run(["printf", "\\377ok"], cwd=tmp_path)
    assert r.stdout.endswith("ok") and "\ufffd" in r.stdout


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its new parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.parametrize("sig", ["", "signal.SIGTERM"])
def test_die_with_parent_ends_the_orphan(tmp_path: Path, sig: str) -> None:
    """A child spawned through proc (SIGKILL) or one that asks itself (a pool worker, SIGTERM)
    does not outlive the process that started it."""
    if sig:  # the child is Python and arms itself
        child = (
            "import signal, time; from tracker import proc; "
            f"proc.die_with_parent({sig}); time.sleep(60)"
        )
        body = f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {child!r}])"
    else:
        body = "from tracker import proc; p = proc.spawn(['sleep', '60'], cwd='.')"
    script = f"{body}\nimport time; time.sleep(0.5); print(p.pid, flush=True)"
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_big_pipe_grows_a_spawned_pipe(tmp_path: Path) -> None:
    import fcntl

    p = proc.spawn(["cat"], cwd=tmp_path)
    try:
        assert p.stdin is not None
        get = getattr(fcntl, "F_GETPIPE_SZ", 1032)
        assert fcntl.fcntl(p.stdin.fileno(), get) < proc.PIPE_SIZE
        proc.big_pipe(p.stdin)
        assert fcntl.fcntl(p.stdin.fileno(), get) == proc.PIPE_SIZE
    finally:
        proc.stop(p)
