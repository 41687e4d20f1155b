"""The one subprocess wrapper.

List arguments only (never a shell), ``stdin`` from /dev/null unless input is given, an explicit
``cwd``, a timeout, the child in its own process group that is killed as a whole on timeout or
Ctrl-C, and output optionally streamed to a log file as it comes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tracker.errors import InfraError

DEFAULT_TIMEOUT = 3600.0
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def cmdline(self) -> str:
        return shlex.join(self.argv)


def which(tool: str) -> str:
    """The path of ``tool`` or an InfraError telling what to install."""
    path = shutil.which(tool)
    if path is None:
        raise InfraError(
            f"required tool not found: {tool}", hint="install it or run `ktrack doctor`"
        )
    return path


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send this process ``sig`` when the one that started it dies (kill -9 of
    ktrack must not leave make, QEMU or a pool worker running). Run in the child: before exec
    for a tool, first thing in a worker. Best effort: only Linux has the prctl."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait()


def _pump(
    stream: IO[bytes], chunks: list[bytes], log: IO[bytes] | None, lock: threading.Lock
) -> None:
    for block in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
        chunks.append(block)
        if log is not None:
            with lock:
                try:
                    log.write(block)
                    log.flush()
                except (ValueError, OSError):  # log closed after an interruption, or disk full
                    log = None


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str],
    timeout: float | None = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    log: str | os.PathLike[str] | None = None,
    check: bool = False,
) -> Result:
    """Run ``argv`` in ``cwd``; return its Result.

    Raises InfraError when the tool is missing, on our own timeout, or (with ``check``) on a
    non-zero exit. Output is decoded as UTF-8 with replacement: logs are untrusted text.
    """
    args = tuple(os.fspath(a) for a in argv)
    if not args:
        raise ValueError("empty command")
    logf: IO[bytes] | None = None
    if log is not None:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        logf = open(log, "ab")  # noqa: SIM115 - closed in finally
        logf.write(f"$ {shlex.join(args)}\n".encode())
        logf.flush()
    start = time.monotonic()
    try:
        proc = spawn(
            args,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out: list[bytes] = []
        err: list[bytes] = []
        lock = threading.Lock()
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, out, logf, lock), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, logf, lock), daemon=True),
        ]
        for t in pumps:
            t.start()
        try:
            if input is not None:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(input)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc)
            raise InfraError(
                f"timed out after {timeout:.0f}s: {shlex.join(args)}",
                hint="raise the timeout in ktrack.toml",
            ) from exc
        except BaseException:
            _kill_group(proc)
            for t in pumps:  # let the log take the last output before it is closed
                t.join(timeout=5)
            raise
        for t in pumps:
            t.join()
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InfraError(f"no space left on device while writing the log {log}") from exc
        raise
    finally:
        if logf is not None:
            logf.close()
    result = Result(
        argv=args,
        returncode=proc.returncode,
        stdout=b"".join(out).decode("utf-8", "replace"),
        stderr=b"".join(err).decode("utf-8", "replace"),
        duration=time.monotonic() - start,
    )
    if check and not result.ok:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise InfraError(
            f"command failed ({result.returncode}): {result.cmdline}: {' '.join(tail)}"
        )
    return result


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    stdin: int | IO[bytes] | None = subprocess.PIPE,
    stdout: int | IO[bytes] | None = subprocess.PIPE,
    stderr: int | IO[bytes] | None = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start a long-lived child that the caller talks to through pipes (a streaming protocol such
    as ``git fast-import`` or ``git cat-file --batch``, or a pipeline stage).

    Same rules as :func:`run`: list arguments, explicit ``cwd``, its own process group. The caller
    ends it with :func:`stop`, which kills the whole group if it does not exit in time.
    """
    args = tuple(os.fspath(a) for a in argv)
    if not args:
        raise ValueError("empty command")
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        return subprocess.Popen(
            args,
            cwd=os.fspath(cwd),
            env=full_env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    except FileNotFoundError as exc:
        if not Path(cwd).is_dir():
            raise InfraError(f"working directory does not exist: {cwd}") from exc
        raise InfraError(
            f"required tool not found: {args[0]}", hint="install it or run `ktrack doctor`"
        ) from exc
    except OSError as exc:
        raise InfraError(f"cannot start {args[0]}: {exc.strerror}") from exc


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> int:
    """Close a spawned child's pipes, wait up to ``timeout`` and kill its group if it lingers."""
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return proc.wait()


def kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill a spawned child's whole process group now (an aborted stream)."""
    _kill_group(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def big_pipe(stream: IO[bytes]) -> None:
    """Grow a spawned child's pipe to :data:`PIPE_SIZE` (1 MiB): fewer wake-ups when megabytes
    stream through (``cat-file --batch``, ``fast-import``, a decompressor). Linux only."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), _F_SETPIPE_SZ, PIPE_SIZE)
