"""``ci/compat``, the script the scheduled workflow runs, day after day against a synthetic git feed
(tests/integration/synth.py: tags are releases, a Makefile that configures and builds in
milliseconds). A day with no new breakage exits 0; a new tag that breaks the build (found by the
full run) or the apply (found by the apply run, kept by the full run) exits 1, and the full run,
the reports and the judgement still happen after the apply run failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth  # noqa: E402

from tracker.results.db import Database  # noqa: E402
from tracker.results.models import Job, KernelRelease, Run  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "compat"
KTRACK = Path(sys.executable).with_name("ktrack")


def release(repo: Path, version: str, files: dict[str, str]) -> None:
    """A new upstream release: ``files`` changed, tagged ``v<version>``."""
    for rel, text in files.items():
        (repo / rel).write_text(text)
    (repo / "VERSION").write_text(f"{version}\n")
    synth.git(repo, "add", "-A")
    synth.git(repo, "commit", "-q", "-m", f"Linux {version}")
    synth.git(repo, "tag", f"v{version}")


def compat(ws: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        KTRACK_HOME=str(ws / "data"),
        COMPAT_KTRACK=str(KTRACK),
        COMPAT_CONFIG=str(ws / "ktrack.toml"),
        COMPAT_TRIGGER="test",
        COMPAT_STAGES="apply,configure,build",  # no real kernel: the synthetic Makefile builds
        COMPAT_OUT=str(site),
        COMPAT_FORMATS="json,markdown,ranges",
    )
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=ws,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def runs_and_jobs(ws: Path) -> tuple[list[Run], dict[tuple[str, str], str]]:
    """Every run; the latest (release, stages) -> furthest stage:status."""
    db = Database(f"sqlite:///{ws / 'data' / 'tracker.db'}")
    try:
        with db.session() as s:
            runs = list(s.scalars(select(Run).order_by(Run.id)))
            jobs: dict[tuple[str, str], str] = {}
            for job, version in s.execute(
                select(Job, KernelRelease.version)
                .join(KernelRelease, Job.release_id == KernelRelease.id)
                .order_by(Job.id)
            ):
                jobs[(version, job.stages)] = f"{job.furthest_stage}:{job.status}"
            s.expunge_all()
    finally:
        db.dispose()
    return runs, jobs


def test_compat_script_fails_each_new_breakage_once(tmp_path: Path) -> None:
    assert KTRACK.is_file(), KTRACK
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo)
    site = tmp_path / "site"
    fork_c = (repo / "kernel" / "fork.c").read_text()

    day1 = compat(ws, site)
    assert day1.returncode == 0, day1.stderr

    release(repo, "6.2", {})  # a new release, nothing broken
    day2 = compat(ws, site)
    assert day2.returncode == 0, day2.stderr
    runs, jobs = runs_and_jobs(ws)
    assert len(runs) == 4 and {r.trigger for r in runs} == {"test"}
    assert jobs[("6.2", "apply,configure,build")] == "build:pass"

    # 6.3 applies, but an upstream change breaks the build with the set: the full run finds it
    release(repo, "6.3", {"kernel/sched.c": "/* NO_VX */\n"})
    day3 = compat(ws, site)
    assert day3.returncode == 1, day3.stderr
    assert "compat: full run" in day3.stderr and "exited 1" in day3.stderr
    assert "compat: regressions since run 4 exited 1" in day3.stderr
    assert "compat: apply run (stages apply) exited" not in day3.stderr
    _, jobs = runs_and_jobs(ws)
    assert jobs[("6.3", "apply")] == "apply:pass"
    assert jobs[("6.3", "apply,configure,build")] == "build:fail"

    # 6.4 fixes the build; 6.5 moves the lines the patch needs: apply fails. The apply run opens
    # the regression; the full run keeps it (and still runs); the day fails.
    release(repo, "6.4", {"kernel/sched.c": "/* fixed */\n"})
    day4 = compat(ws, site)
    assert day4.returncode == 0, day4.stderr
    release(repo, "6.5", {"kernel/fork.c": fork_c.replace("return 0;", "return 1;")})
    day5 = compat(ws, site)
    assert day5.returncode == 1, day5.stderr
    assert "compat: apply run (stages apply) exited 1" in day5.stderr
    runs, jobs = runs_and_jobs(ws)
    assert len(runs) == 10 and all(r.status == "done" for r in runs)
    assert jobs[("6.5", "apply")] == "apply:fail"
    assert jobs[("6.5", "apply,configure,build")] == "apply:fail"  # the full run ran
    assert f"compat: regressions since run {runs[-3].id} exited 1" in day5.stderr
    assert (site / "ranges.json").is_file() and (site / "summary.md").is_file()

    day6 = compat(ws, site)  # the same again: the breakage is known, not new
    assert day6.returncode == 0, day6.stderr


def test_run_fail_on_new_judges_its_own_run_with_reused_jobs(tmp_path: Path) -> None:
    """A failing job computed elsewhere (exported by a fan-out runner, imported here: no run judged
    it yet) and reused by ``run --fail-on-new``: the run opens the regression and exits 1; the
    next run, reusing the same jobs, finds nothing new."""
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo)
    fork_c = (repo / "kernel" / "fork.c").read_text()
    apply_run = ("run", "--stages", "apply", "--fail-on-new", "--no-bisect")
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    first = synth.ktrack(ws, *apply_run)
    assert first.returncode == 0, first.stderr
    release(repo, "6.2", {"kernel/fork.c": fork_c.replace("return 0;", "return 1;")})

    runner, export = tmp_path / "runner", tmp_path / "results.json"
    assert synth.ktrack(ws, "releases", "sync", home=runner).returncode == 0
    r = synth.ktrack(ws, *apply_run, "--kernels", "6.2", "--export", str(export), home=runner)
    # the runner knows no release the set passed on: a failure there is no regression
    assert r.returncode == 0, r.stderr
    assert "new regression" not in r.stdout
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    assert synth.ktrack(ws, "import", str(export)).returncode == 0

    second = synth.ktrack(ws, *apply_run)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "2 reused" in second.stdout and "new regression" in second.stdout
    assert "apply fails since 6.2 (last good 6.1)" in second.stdout
    third = synth.ktrack(ws, *apply_run)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "2 reused" in third.stdout and "new regression" not in third.stdout
