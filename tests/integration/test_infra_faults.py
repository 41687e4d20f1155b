"""Injected infrastructure faults, through ``ktrack run`` and the real stage code on synthetic
kernels (tests/integration/synth.py): what was recorded (stage, status, cause) and the exit code.
None of them may be recorded as ``fail``.

The faults are as real as this machine allows without touching the host: a tmpfs too small for
the configure step, mounted in a private mount namespace of the ktrack process (``unshare``), so
the real ``head`` meets a real ENOSPC; GCC crashing with its own internal-compiler-error text (the
real gcc, run with ``-wrapper`` so that cc1 dies of SIGSEGV); the ccache directory bind-mounted
read-only, so that the real ccache fails; a compiler whose version line changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402

from tests.integration.test_baseline import BREAKING_PATCH, second_set, stages  # noqa: E402

_MOUNT_NS = ["unshare", "--mount", "--propagation", "private"]


def _mount_ns() -> list[str]:
    """``unshare`` arguments for a private mount namespace, or skip when there is none."""
    for prefix in (
        _MOUNT_NS,
        ["unshare", "--map-root-user", "--mount", "--propagation", "private"],
    ):
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=20).returncode == 0:
                return prefix
        except (OSError, subprocess.TimeoutExpired):
            continue
    pytest.skip("no private mount namespace here (unshare --mount)")


def ktrack_in_ns(
    ws: Path, script: str, mount_args: list[str], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``ktrack ARGS`` in a private mount namespace set up by ``script`` (a fixed sh script
    taking ``mount_args`` as its positional parameters, then exec'ing ktrack)."""
    full = dict(os.environ)
    full.update(env or {})
    tail = '\nwhile [ "$1" != -- ]; do shift; done; shift; exec "$@"'
    argv = [*_mount_ns(), "--", "sh", "-ec", script + tail, "sh", *mount_args]
    argv += ["--", *synth.ktrack_argv(ws, *args)]
    return subprocess.run(argv, cwd=ws, capture_output=True, text=True, timeout=300, env=full)


def _repo_ws(tmp_path: Path) -> Path:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo)
    r = synth.ktrack(ws, "releases", "sync")
    assert r.returncode == 0, r.stderr
    return ws


def infrastructure_at(ws: Path, stage: str, r: subprocess.CompletedProcess[str]) -> str:
    """The summary of the one job's ``stage``, after checking it is ``error`` with cause
    ``infrastructure`` and that ``ktrack run`` exited 3."""
    assert r.returncode == 3, r.stdout + r.stderr
    rows = stages(ws)
    assert len(rows) == 1, rows
    (row_set,) = rows.values()
    row = row_set[stage]
    assert (row.status, row.cause) == ("error", "infrastructure"), row.summary
    return row.summary


def _fault_env() -> dict[str, str]:
    return {"KTRACK_JOBS": "1"}


def test_disk_full_at_configure_is_infrastructure(tmp_path: Path) -> None:
    ws = _repo_ws(tmp_path)
    work = ws / "data" / "work"
    work.mkdir(parents=True)
    script = 'mount -t tmpfs -o size=1m ktrack-test "$1"'
    r = ktrack_in_ns(
        ws, script, [str(work)], "run", "--stages", "configure", "--executor", "inline",
        env={**_fault_env(), "KTRACK_FAKE_CONFIG_BYTES": "4M"},
    )  # fmt: skip
    summary = infrastructure_at(ws, "configure", r)
    assert summary == (
        "infrastructure: make olddefconfig failed: disk full: "
        "head: error writing 'standard output': No space left on device"
    )


GCC_SEGV = """#!/bin/sh
# the compiler proper dies of SIGSEGV: gcc itself reports the internal compiler error
case "$1" in */cc1|*/cc1plus) kill -SEGV $$ ;; esac
exec "$@"
"""


def _tool(bindir: Path, name: str, text: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    path = bindir / name
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def bindir() -> Iterator[Path]:
    """A folder for stand-in tools, outside /tmp: the build sandbox mounts a fresh /tmp."""
    path = Path(tempfile.mkdtemp(prefix="ktrack-test-bin-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_internal_compiler_error_is_infrastructure(tmp_path: Path, bindir: Path) -> None:
    ws = _repo_ws(tmp_path)
    segv = _tool(bindir, "segv-cc1", GCC_SEGV)
    real_gcc = shutil.which("gcc")
    assert real_gcc is not None
    _tool(bindir, "gcc", f'#!/bin/sh\nexec {real_gcc} -wrapper {segv} "$@"\n')
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "KTRACK_FAKE_COMPILE": "1", **_fault_env()}
    r = synth.ktrack(ws, "run", "--stages", "build", "--executor", "inline", env=env)
    summary = infrastructure_at(ws, "build", r)
    assert summary == (
        "infrastructure: internal compiler error: gcc: internal compiler error: "
        f"Segmentation fault signal terminated program {segv}"
    )


def test_read_only_ccache_is_infrastructure(tmp_path: Path) -> None:
    ws = _repo_ws(tmp_path)
    ccache = Path(os.environ["KTRACK_CACHE"]) / "ccache"
    ccache.mkdir(parents=True, exist_ok=True)
    script = 'mount --bind "$1" "$1"; mount -o remount,ro,bind "$1"'
    r = ktrack_in_ns(
        ws, script, [str(ccache)], "run", "--stages", "build", "--executor", "inline",
        env={**_fault_env(), "KTRACK_FAKE_COMPILE": "1"},
    )  # fmt: skip
    summary = infrastructure_at(ws, "build", r)
    assert summary.startswith("infrastructure: ccache failed: ccache: error: ")
    assert summary.endswith("Read-only file system")


NEW_GCC = """#!/bin/sh
# a newer compiler that rejects the release's own code
for a in "$@"; do [ "$a" = --version ] && { echo "gcc (Fake) 99.1.0"; exit 0; }; done
echo "kernel/fork.c:40:5: error: 'copy_process' rejected by the new compiler" >&2
exit 1
"""


def test_a_toolchain_change_makes_the_control_run_again(tmp_path: Path, bindir: Path) -> None:
    """A control ``pass`` cached under the old gcc must not confirm a failure the new gcc causes
    (that would be a wrong ``fail``): the new gcc's version line changes the key, the control runs
    again, fails too (twice), and the job has no verdict (cause ``upstream``)."""
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo, name="good")
    second_set(ws, "good", "broken", BREAKING_PATCH)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    compile_env = {"KTRACK_FAKE_COMPILE": "1", **_fault_env()}
    run = ("run", "--stages", "build", "--executor", "inline", "--kernels", "6.1")
    # the old compiler: the broken set's failure is confirmed by a passing control, cached
    r = synth.ktrack(ws, *run, "--patchset", "broken", env=compile_env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert stages(ws)[("broken", "6.1")]["build"].status == "fail"
    cache = Path(os.environ["KTRACK_CACHE"]) / "baseline"
    first = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert [(d["stage"], d["status"]) for d in first] == [("build", "pass")]
    # a new compiler (new version line) that breaks the release itself; a fresh data dir
    _tool(bindir, "gcc", NEW_GCC)
    env = {**compile_env, "PATH": f"{bindir}:{os.environ['PATH']}"}
    home = tmp_path / "data2"
    assert synth.ktrack(ws, "releases", "sync", home=home).returncode == 0
    r = synth.ktrack(ws, *run, "--patchset", "good", env=env, home=home)
    assert r.returncode == 0, r.stdout + r.stderr  # upstream: no verdict, not ours either
    (ws / "data").rename(tmp_path / "data1")
    home.rename(ws / "data")
    row = stages(ws)[("good", "6.1")]["build"]
    assert (row.status, row.cause) == ("error", "upstream"), row.summary
    assert row.summary == (
        "no verdict: 6.1 fails build without the patch set too: kernel/fork.c:40: "
        "'copy_process' rejected by the new compiler"
    )
    assert "baseline-log" in row.detail["artifacts"]  # the control ran: not the cached pass
    docs = sorted(
        ((d["status"], d["toolchain"]["gcc"]) for d in map(json.loads, map(Path.read_text,
         cache.glob("*.json")))),
    )  # fmt: skip
    assert docs[0] == ("fail", "gcc (Fake) 99.1.0") and docs[1][0] == "pass"


def test_a_control_that_fails_once_is_no_verdict_and_not_cached(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo, name="good")
    second_set(ws, "good", "broken", BREAKING_PATCH)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    ccache = Path(os.environ["KTRACK_CACHE"]) / "ccache"  # writable inside the build sandbox
    ccache.mkdir(parents=True, exist_ok=True)
    env = {"KTRACK_FAKE_FLAKY": str(ccache / "failed-once"), **_fault_env()}
    r = synth.ktrack(
        ws, "run", "--stages", "build", "--executor", "inline", "--patchset", "broken", env=env
    )
    assert r.returncode == 3, r.stdout + r.stderr
    row = stages(ws)[("broken", "6.1")]["build"]
    assert (row.status, row.cause) == ("error", "infrastructure"), row.summary
    assert row.summary == (
        "no verdict: kernel/fork.c:42: broken on purpose (culprit: "
        "0001-fork-count-contexts.patch, inferred) (not confirmed: the unpatched 6.1 could not be checked: "
        "infrastructure: the control run did not repeat itself: it failed build "
        "(kernel/fork.c:1: failed once), then build gave pass (built))"
    )
    assert not list((Path(os.environ["KTRACK_CACHE"]) / "baseline").glob("*.json"))
