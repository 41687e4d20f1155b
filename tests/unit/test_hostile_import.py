"""Hostile input, continued (issue 15, items 17 and 18): ``ktrack import`` files from another
machine, and Ctrl-C of a process-pool run. One test per case; docs/SECURITY.md names each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.hostile_cli import ktrack, one_line, write

# --- 18: hostile `ktrack import` files ----------------------------------------------------------


def _export(tmp_path: Path) -> dict[str, Any]:
    """A genuine one-job export document (apply stage, its log embedded)."""
    from tracker.pipeline import exchange, record
    from tracker.pipeline.plan import JobSpec
    from tracker.results import artifacts
    from tracker.results.db import Database
    from tracker.results.models import KernelRelease
    from tracker.vocab import Outcome, Stage, Status

    db = Database(f"sqlite:///{tmp_path / 'src.db'}")
    spec = JobSpec(
        "demo", "1", "ab" * 32, "/x/patchset.toml", "6.1.12", "x86_64:tinyconfig", ("apply",)
    )
    log = write(tmp_path / "apply.log", "conflict a.patch\n")
    with db.session() as s:
        s.add(KernelRelease(version="6.1.12", series="6.1", moniker="stable", feed="t"))
        run = record.start_run(s, {"argv": ["t"]})
        job, _ = record.claim_job(s, spec, run.id)
        record.record_stage(
            s,
            job,
            Stage.APPLY,
            Outcome(Status.FAIL, "a.patch: conflict", detail={"x": [1]}),
            started_at=record.now(),
            duration=0.5,
            log_hash=artifacts.put_file(tmp_path / "art", log),
            log_excerpt="conflict",
        )
        record.finish_job(s, job)
    with db.session() as s:
        doc = exchange.export_jobs(s, [spec.key], artifacts_root=tmp_path / "art")
    db.dispose()
    return doc


def _import(tmp_path: Path, payload: str | bytes) -> subprocess.CompletedProcess[str]:
    f = write(tmp_path / "hostile.json", payload)
    return ktrack("import", str(f), cwd=tmp_path, home=tmp_path / "h")


def _assert_refused(r: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert r.returncode == 2, r.stderr
    line = one_line(r)
    assert "hostile.json" in line and "RecursionError" not in line and "Overflow" not in line
    for part in parts:
        assert part in line, line


def test_import_of_deeply_nested_json_is_bad_input(tmp_path: Path) -> None:
    depth = 200_000
    doc = _export(tmp_path)
    text = json.dumps(doc).replace(
        '"detail": {"x": [1]}', '"detail": {"x": ' + "[" * depth + "]" * depth + "}"
    )
    _assert_refused(_import(tmp_path, text), "not a ktrack results file", "recursion limit")
    _assert_refused(_import(tmp_path, "[" * depth + "]" * depth), "not a ktrack results file")


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("jobs[0].attempts", ("jobs", 0, "attempts")),
        ("jobs[0].patch_results", ("jobs", 0, "patch_results")),
    ],
)
def test_import_of_a_huge_integer_is_bad_input(
    tmp_path: Path, where: str, path: tuple[str | int, ...]
) -> None:
    doc = _export(tmp_path)
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    if path[-1] == "patch_results":
        node["patch_results"] = [{"class": "clean", "position": 10**30, "name": "a.patch"}]
        where = "jobs[0].patch_results[0].position"
    else:
        node[path[-1]] = 10**30
    r = _import(tmp_path, json.dumps(doc))
    _assert_refused(r, f"{where}: must be less than or equal to")
    assert "1000000000000000000000000000000" in r.stderr


def test_import_refuses_non_finite_numbers_in_a_stage_detail(tmp_path: Path) -> None:
    doc = _export(tmp_path)
    text = json.dumps(doc).replace('"detail": {"x": [1]}', '"detail": {"x": [1e999]}')
    _assert_refused(_import(tmp_path, text), "jobs[0].stage_results[0].detail", "finite")


def test_import_of_a_log_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """350 KB of JSON whose embedded log inflates to 256 MiB: refused, nothing stored, and the
    importing process stays far below the inflated size."""
    import base64
    import hashlib
    import zlib

    size, chunk = 256 << 20, bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    digest = hashlib.sha256()
    parts = []
    for _ in range(size // len(chunk)):
        digest.update(chunk)
        parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    blob = base64.b64encode(b"".join(parts)).decode()
    doc = _export(tmp_path)
    doc["logs"] = {digest.hexdigest(): blob}
    f = write(tmp_path / "hostile.json", json.dumps(doc))
    assert f.stat().st_size < 400_000
    # VmHWM is this process's own peak: ru_maxrss also counts the RSS of the pytest process
    # the child was forked from (Linux carries it across exec)
    probe = (
        "import sys\nfrom tracker.cli import main\nrc = main(sys.argv[1:])\n"
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]\n"
        "print('maxrss', hwm.split()[1], file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, "--home", str(tmp_path / "h"), "import", str(f)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    *lines, rss = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "inflates to more than 64 MiB" in lines[0] and "hostile.json" in lines[0]
    assert int(rss.split()[1]) < 200 * 1024, rss
    print(rss)  # KiB: far below the 256 MiB it inflates to
    assert not list((tmp_path / "h").rglob("*.gz"))  # nothing stored


# --- 17: Ctrl-C during a `-j 2` run --------------------------------------------------------------


def test_ctrl_c_and_sigterm_pending_together_print_nothing() -> None:
    """The race made deterministic: SIGINT and SIGTERM both pending when the worker's handler
    runs (a Ctrl-C to the process group and the parent's SIGTERM to its workers). The first
    raises KeyboardInterrupt; the second must be consumed without a word on stderr."""
    code = (
        "import os, signal\n"
        "from tracker.pipeline.executors import interrupt_once\n"
        "signal.signal(signal.SIGINT, interrupt_once)\n"
        "signal.signal(signal.SIGTERM, interrupt_once)\n"
        "both = {signal.SIGINT, signal.SIGTERM}\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, both)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "try:\n"
        "    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)\n"
        "    for _ in range(1000): pass\n"
        "except KeyboardInterrupt as exc:\n"
        "    for _ in range(1000): pass\n"
        "    print('interrupted by', exc)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, "interrupted by signal 2\n", "")


@pytest.mark.integration
def test_ctrl_c_of_a_pool_run_prints_only_ktracks_own_lines(tmp_path: Path) -> None:
    """A real SIGINT to the process group of a real ``ktrack run --executor local -j 2`` on a fake
    kernel, while both workers build, several times over: stderr holds ktrack's own lines and
    nothing else (no 'Exception ignored', no 'OSError: Signal 15 ignored due to race
    condition', no traceback)."""
    import os
    import signal

    from tests.integration import synth
    from tests.integration.test_resilience import start_run, wait_for, working_processes

    repo = synth.kernel_repo(tmp_path, ["6.1", "6.1.1", "6.1.2"])
    ws = synth.workspace(tmp_path, repo)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0

    def two_builds() -> bool:
        return len([c for _, c in working_processes(ws / "data") if c.startswith("sleep")]) >= 2

    for attempt in range(5):
        run = start_run(ws, "--executor", "local", "-j", "2")
        try:
            wait_for(two_builds, 60, f"two builds (attempt {attempt})")
        except AssertionError:
            os.killpg(run.pid, signal.SIGKILL)  # leave nothing running behind a failed test
            raise
        os.killpg(run.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        _, err = run.communicate(timeout=90)
        assert run.returncode == 130, err
        lines = [line for line in err.splitlines() if line.strip()]
        own = [line for line in lines if line.startswith(("ktrack: ", "run "))]
        assert lines == own, (attempt, err)  # the run's header, its progress, its last line
        for word in ("Traceback", "Exception", "Error", "race condition"):
            assert word not in err, (attempt, err)
        assert "Resume with" in err
