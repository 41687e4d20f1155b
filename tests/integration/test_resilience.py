"""Faults injected for real: signals sent to a running `ktrack run`, `kill -9`, two runs on one
data dir, and a full disk. Each test asserts what is in the database and on disk afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tests.integration import synth
from tracker.results.db import Database
from tracker.results.models import Job, KernelRelease, RunJob, StageResult

pytestmark = pytest.mark.integration


def wait_for(pred: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def working_processes(home: Path) -> list[tuple[int, str]]:
    """Processes (pid, command) that work in a job dir of ``home`` (they inherit KTRACK_WORK)."""
    needle = f"KTRACK_WORK={home / 'work'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        if any(v.startswith(needle) for v in env.split(b"\0")):
            found.append((int(entry.name), cmd))
    return found


def building(home: Path) -> bool:
    return any(cmd.startswith("sleep") for _, cmd in working_processes(home))


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Path]:
    repo = synth.kernel_repo(tmp_path, ["6.1", "6.1.1", "6.1.2", "6.1.3"])
    ws = synth.workspace(tmp_path, repo)
    r = synth.ktrack(ws, "releases", "sync")
    assert r.returncode == 0, r.stderr
    yield ws
    for pid, _ in working_processes(ws / "data"):  # never leave a stray process behind
        os.kill(pid, signal.SIGKILL)


def jobs_by_release(ws: Path, home: Path | None = None) -> dict[str, Job]:
    db = Database(f"sqlite:///{(home or ws / 'data') / 'tracker.db'}")
    try:
        with db.session() as s:
            return {
                s.get_one(KernelRelease, j.release_id).version: j for j in s.scalars(select(Job))
            }
    finally:
        db.dispose()


def stage_rows(ws: Path) -> list[tuple[int, int, str]]:
    db = Database(f"sqlite:///{ws / 'data' / 'tracker.db'}")
    try:
        with db.session() as s:
            return [(r.id, r.job_id, r.stage) for r in s.scalars(select(StageResult))]
    finally:
        db.dispose()


def start_run(ws: Path, *args: str, seconds: int = 60) -> subprocess.Popen[str]:
    env = dict(os.environ, KTRACK_FAKE_BUILD_SECONDS=str(seconds))
    return subprocess.Popen(
        synth.ktrack_argv(ws, "run", "--stages", "build", *args),
        cwd=ws,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def assert_clean_after_interrupt(ws: Path) -> None:
    wait_for(lambda: not working_processes(ws / "data"), 15, "no process left working for the run")
    work = ws / "data" / "work"
    assert not work.exists() or not any(work.iterdir()), list(work.iterdir())


def resume_and_check(ws: Path, finished_before: dict[str, int]) -> None:
    """The next run redoes only what was not finished, and every job ends with one set of rows."""
    before = stage_rows(ws)
    r = synth.ktrack(ws, "run", "--stages", "build", "--executor", "inline")
    assert r.returncode == 0, r.stderr
    jobs = jobs_by_release(ws)
    assert set(jobs) == {"6.1", "6.1.1", "6.1.2", "6.1.3"}
    assert all(j.finished and j.status == "pass" for j in jobs.values())
    rows = stage_rows(ws)
    per_job: dict[int, list[str]] = {}
    for _, job_id, stage in rows:
        per_job.setdefault(job_id, []).append(stage)
    assert all(sorted(v) == ["apply", "build", "configure"] for v in per_job.values()), per_job
    for version, job_id in finished_before.items():  # finished jobs were not redone
        assert jobs[version].id == job_id
        assert [r for r in before if r[1] == job_id] == [r for r in rows if r[1] == job_id]
    assert f"{len(finished_before)} reused" in r.stdout


def finish_first(ws: Path) -> dict[str, int]:
    r = synth.ktrack(ws, "run", "--stages", "build", "--kernels", "6.1", "--executor", "inline")
    assert r.returncode == 0, r.stderr
    job = jobs_by_release(ws)["6.1"]
    assert job.finished and job.status == "pass"
    return {"6.1": job.id}


def test_sigterm_during_build_loses_nothing(ws: Path) -> None:
    finished = finish_first(ws)
    run = start_run(ws, "--executor", "inline")
    wait_for(lambda: building(ws / "data"), 60, "the build to start")
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "interrupted" in err and "Resume with" in err
    jobs = jobs_by_release(ws)
    assert jobs["6.1"].finished and jobs["6.1"].status == "pass"
    assert not jobs["6.1.1"].finished and (jobs["6.1.1"].summary or "").startswith(
        "interrupted during build"
    )
    assert_clean_after_interrupt(ws)
    resume_and_check(ws, finished)


def test_ctrl_c_of_a_process_pool_run(ws: Path) -> None:
    finished = finish_first(ws)
    run = start_run(ws, "--executor", "local", "-j", "2")
    wait_for(
        lambda: (
            sum(building(ws / "data") for _ in [0])
            and len([c for _, c in working_processes(ws / "data") if c.startswith("sleep")]) >= 2
        ),
        60,
        "two builds",
    )
    os.killpg(run.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Resume with" in err
    unfinished = [v for v, j in jobs_by_release(ws).items() if not j.finished]
    assert len(unfinished) >= 2
    assert_clean_after_interrupt(ws)
    resume_and_check(ws, finished)


def test_kill_9_then_next_run_cleans_up_and_resumes(ws: Path) -> None:
    finished = finish_first(ws)
    run = start_run(ws, "--executor", "inline", seconds=300)
    wait_for(lambda: building(ws / "data"), 60, "the build to start")
    run.kill()
    run.communicate(timeout=30)
    job = jobs_by_release(ws)["6.1.1"]
    assert not job.finished  # a killed job never counts as a result
    resume_and_check(ws, finished)  # the next run kills the orphaned build and redoes the job
    assert_clean_after_interrupt(ws)


def test_two_runs_at_once_write_each_result_once(ws: Path) -> None:
    runs = [start_run(ws, "--executor", "inline", seconds=1) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=240)
        assert run.returncode == 0, err
    jobs = jobs_by_release(ws)
    assert len(jobs) == 4 and all(j.finished and j.status == "pass" for j in jobs.values())
    rows = stage_rows(ws)
    assert len(rows) == 4 * 3
    db = Database(f"sqlite:///{ws / 'data' / 'tracker.db'}")
    with db.session() as s:
        links = s.scalars(select(RunJob)).all()
        assert len(links) == 8  # each run covered every job
        assert sum(1 for link in links if not link.reused) == 4  # and each job was computed once
    db.dispose()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def assert_store_intact(home: Path) -> None:
    fsck = subprocess.run(
        ["git", f"--git-dir={home / 'store.git'}", "fsck", "--no-dangling"],
        capture_output=True,
        text=True,
    )
    assert fsck.returncode == 0, fsck.stderr


def fill(path: Path, leave: int = 0) -> Path:
    filler = path / "filler"
    free = shutil.disk_usage(path).free
    with filler.open("wb") as fh, contextlib.suppress(OSError):  # the point is to fill it up
        fh.write(b"\0" * max(0, free - leave))
    return filler


def test_disk_full_during_build_is_error_then_recovers(ws: Path, small_fs: Path) -> None:
    home = small_fs / "home"
    db = f"sqlite:///{ws / 'db' / 'tracker.db'}"
    r = synth.ktrack(ws, "--db", db, "releases", "sync", home=home)
    assert r.returncode == 0, r.stderr
    run = ("--db", db, "run", "--stages", "build", "--kernels", "6.1", "--executor", "inline")
    r = synth.ktrack(
        ws,
        *run,
        home=home,
        env={"KTRACK_FAKE_BUILD_BYTES": str(64 * 1024 * 1024)},
    )
    assert r.returncode == 3, r.stdout + r.stderr
    assert "infrastructure error" in r.stderr
    check = Database(db)
    with check.session() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "error" and job.furthest_stage == "build" and job.finished
        assert job.cause == "infrastructure"
        assert "space" in (job.summary or "").lower()
    assert not (home / "work").exists() or not any((home / "work").iterdir())
    assert_store_intact(home)
    r = synth.ktrack(ws, *run, home=home)
    assert r.returncode == 0, r.stderr  # an error is retried by the next run, and now passes
    with check.session() as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "pass" and job.attempts == 2
        # the error attempt stays in the job's history
        history = s.execute(text("SELECT status, cause FROM job_attempt")).all()
        assert [tuple(h) for h in history] == [("error", "infrastructure")]
    check.dispose()


def test_disk_full_during_store_import_names_it_and_recovers(ws: Path, small_fs: Path) -> None:
    home = small_fs / "home"
    home.mkdir()
    db = f"sqlite:///{ws / 'db' / 'tracker.db'}"
    filler = fill(small_fs)
    r = synth.ktrack(ws, "--db", db, "releases", "sync", home=home)
    assert r.returncode == 3, r.stdout + r.stderr
    line = [x for x in r.stderr.splitlines() if x.strip()][-1]
    assert "infrastructure error" in line and "space" in line.lower(), r.stderr
    assert "Traceback" not in r.stderr
    filler.unlink()
    r = synth.ktrack(ws, "--db", db, "releases", "sync", home=home)
    assert r.returncode == 0, r.stderr
    assert_store_intact(home)
    r = synth.ktrack(ws, "--db", db, "run", "--stages", "apply", "--executor", "inline", home=home)
    assert r.returncode == 0, r.stderr


def test_disk_full_during_a_download_names_it_and_recovers(tmp_path: Path, small_fs: Path) -> None:
    import hashlib

    mirror = tmp_path / "mirror" / "v6.x"
    mirror.mkdir(parents=True)
    tar = tmp_path / "t"
    (tar / "linux-6.1" / "kernel").mkdir(parents=True)
    (tar / "linux-6.1" / "kernel" / "fork.c").write_text(synth.FORK_C)
    # incompressible padding makes the tarball larger than the 4 MiB download folder
    (tar / "linux-6.1" / "blob.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    tarball = mirror / "linux-6.1.tar.xz"
    subprocess.run(["tar", "-C", str(tar), "-cJf", str(tarball), "linux-6.1"], check=True)
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    (mirror / "sha256sums.asc").write_text(f"{digest}  linux-6.1.tar.xz\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "ktrack.toml").write_text(f'[feeds.m]\nkind = "mirror"\nurl = "file://{mirror.parent}"\n')
    env = {"KTRACK_CACHE": str(small_fs / "cache")}
    r = synth.ktrack(ws, "releases", "sync", env=env)
    assert r.returncode == 0, r.stderr
    r = synth.ktrack(ws, "fetch", "6.1", env=env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "infrastructure error" in r.stderr and "No space left on device" in r.stderr
    assert str(small_fs / "cache" / "downloads") in r.stderr  # names what filled up
    assert "Traceback" not in r.stderr
    leftovers = list((small_fs / "cache" / "downloads").glob("*.part"))
    assert leftovers == []  # the partial copy is removed, the space is back
    r = synth.ktrack(ws, "fetch", "6.1", env={"KTRACK_CACHE": str(tmp_path / "big-cache")})
    assert r.returncode == 0, r.stderr  # with room, the same fetch works
    assert_store_intact(ws / "data")
