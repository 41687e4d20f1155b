"""A configure, build or boot failure is the patch set's only when the unpatched release passes.

Synthetic releases (tests/integration/synth.py): a tree whose kernel/ folder holds KTRACK_BREAK
fails to build. 6.1 builds; in 6.1.1 upstream itself broke the build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.build import toolchain  # noqa: E402
from tracker.results import artifacts  # noqa: E402
from tracker.results.db import Database  # noqa: E402
from tracker.results.models import (  # noqa: E402
    Job,
    KernelRelease,
    Patchset,
    PatchsetVersion,
    StageResult,
)
from tracker.vocab import Stage  # noqa: E402

BREAKING_PATCH = synth.PATCH.replace("+\tvx_count++;", "+\tvx_count++; /* KTRACK_BREAK */")


def second_set(ws: Path, first: str, name: str, patch: str) -> None:
    """Patch set ``name`` beside ``first`` in ``ws``: the same manifest, its own one patch."""
    root = ws / "patches" / name
    (root / "0.1").mkdir(parents=True)
    (root / "0.1" / "0001-fork-count-contexts.patch").write_text(patch)
    (root / "0.1" / "series").write_text("0001-fork-count-contexts.patch\n")
    manifest = (ws / "patches" / first / "patchset.toml").read_text()
    (root / "patchset.toml").write_text(manifest.replace(f'"{first}"', f'"{name}"'))


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    (repo / "kernel" / "sched.c").write_text("int schedule(void) { return KTRACK_BREAK; }\n")
    synth.git(repo, "add", "-A")
    synth.git(repo, "commit", "-q", "-m", "sched: a change that does not build")
    (repo / "VERSION").write_text("6.1.1\n")
    synth.git(repo, "commit", "-q", "-am", "Linux 6.1.1")
    synth.git(repo, "tag", "v6.1.1")
    ws = synth.workspace(tmp_path, repo, name="good")
    second_set(ws, "good", "broken", BREAKING_PATCH)
    r = synth.ktrack(ws, "releases", "sync")
    assert r.returncode == 0, r.stderr
    return ws


def stages(ws: Path) -> dict[tuple[str, str], dict[str, StageResult]]:
    """(patch set, release) -> stage name -> row."""
    db = Database(f"sqlite:///{ws / 'data' / 'tracker.db'}")
    out: dict[tuple[str, str], dict[str, StageResult]] = {}
    with db.session() as s:
        for job in s.scalars(select(Job)):
            release = s.get_one(KernelRelease, job.release_id).version
            psv = s.get_one(PatchsetVersion, job.patchset_version_id)
            name = s.get_one(Patchset, psv.patchset_id).name
            rows = s.scalars(select(StageResult).where(StageResult.job_id == job.id)).all()
            for row in rows:
                s.expunge(row)
            out[(name, release)] = {row.stage: row for row in rows}
    db.dispose()
    return out


def test_build_failure_is_confirmed_or_refused_by_the_unpatched_release(ws: Path) -> None:
    r = synth.ktrack(ws, "run", "--stages", "build", "--executor", "inline")
    assert r.returncode == 0, r.stdout + r.stderr  # no infrastructure error, no new break
    assert "2 job(s) have no verdict: the release fails there without the patch set too" in (
        r.stderr
    )
    got = stages(ws)

    assert got[("good", "6.1")]["build"].status == "pass"
    # the patch set's own break: the release without it builds, so the failure is a verdict
    mine = got[("broken", "6.1")]["build"]
    assert (mine.status, mine.cause) == ("fail", "verdict")
    assert mine.summary == (
        "kernel/fork.c:42: broken on purpose (culprit: 0001-fork-count-contexts.patch, inferred)"
    )
    assert mine.detail["baseline"] == {"stage": "build", "status": "pass", "summary": "built"}

    # upstream broke 6.1.1 by itself: no verdict for either patch set, and the reason is named
    for name in ("good", "broken"):
        row = got[(name, "6.1.1")]["build"]
        assert (row.status, row.cause) == ("error", "upstream"), (name, row.summary)
        assert row.summary == (
            "no verdict: 6.1.1 fails build without the patch set too: "
            "kernel/sched.c:1: broken on purpose"
        )
        assert row.detail["unconfirmed"]["status"] == "fail"
    # the control's log is kept with the job that ran it (the other was answered by the cache)
    kept = [got[(n, "6.1.1")]["build"].detail.get("artifacts", {}) for n in ("good", "broken")]
    assert sorted("baseline-log" in k for k in kept) == [False, True]
    assert "configure" in got[("good", "6.1.1")] and got[("good", "6.1.1")]["configure"].status == (
        "pass"
    )
    logs = sorted(p.name for p in (ws / "data").rglob("baseline-build.log"))
    # one control build per release, shared by both patch sets (the cache answers the second)
    assert len(logs) <= 2


def test_control_results_are_cached_per_release_and_target(ws: Path) -> None:
    run = ("run", "--stages", "build", "--kernels", "6.1.1", "--executor", "inline")
    r = synth.ktrack(ws, *run, "--patchset", "good")
    assert r.returncode == 0, r.stderr
    found = {
        json.loads(p.read_text())["stage"]: p
        for p in (Path.home() / "ktrack-cache" / "baseline").glob("*.json")
    }
    assert sorted(found) == ["build"]  # the build control's own configure is not a verdict
    cached = found["build"]
    doc = json.loads(cached.read_text())
    assert {k: doc[k] for k in ("stage", "status", "summary", "warnings")} == {
        "stage": "build", "status": "fail", "summary": "kernel/sched.c:1: broken on purpose",
        "warnings": [],
    }  # fmt: skip
    # the toolchain that judged it, and when (entries expire)
    assert doc["toolchain"] == toolchain.identity(
        Target.parse("x86_64:tinyconfig"), (Stage.CONFIGURE, Stage.BUILD)
    )
    assert abs(doc["at"] - time.time()) < 300
    # the failure was confirmed by a second control run before it was cached
    digest = stages(ws)[("good", "6.1.1")]["build"].detail["artifacts"]["baseline-log"]
    log = artifacts.read(ws / "data" / "artifacts", digest).decode()
    assert log.count("kernel/sched.c:1:2: error: broken on purpose") == 2
    assert log.count("ktrack: the control failed; running it again to confirm") == 1
    # the next patch set on that release is answered from the cache, not by another build
    cached.write_text(cached.read_text().replace("broken on", "as cached"))
    r = synth.ktrack(ws, *run, "--patchset", "broken")
    assert r.returncode == 0, r.stderr
    row = stages(ws)[("broken", "6.1.1")]["build"]
    assert row.summary.endswith("kernel/sched.c:1: as cached purpose"), row.summary


def test_baseline_can_be_turned_off(ws: Path) -> None:
    (ws / "ktrack.toml").write_text(
        (ws / "ktrack.toml").read_text() + "\n[run]\nbaseline = false\n"
    )
    r = synth.ktrack(ws, "run", "--stages", "build", "--kernels", "6.1.1", "--executor", "inline")
    assert r.returncode == 0, r.stderr
    row = stages(ws)[("good", "6.1.1")]["build"]
    assert row.status == "fail" and "baseline" not in (row.detail or {})


def test_bad_baseline_setting_is_a_usage_error(ws: Path) -> None:
    (ws / "ktrack.toml").write_text((ws / "ktrack.toml").read_text() + '\n[run]\nbaseline = "no"\n')
    r = subprocess.run(
        synth.ktrack_argv(ws, "run", "--stages", "build"), cwd=ws, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "run.baseline: expected a bool, got str" in r.stderr


WARNING_PATCH = synth.PATCH.replace("+\tvx_count++;", "+\tvx_count++; /* KTRACK_WARN(vx) */")


def test_only_warnings_the_release_does_not_have_make_a_build_warn(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.0"])
    fork = repo / "kernel" / "fork.c"
    fork.write_text(fork.read_text().replace("line 1 */", "line 1 KTRACK_WARN(old) */"))
    synth.git(repo, "commit", "-q", "-am", "Linux 6.1")
    synth.git(repo, "tag", "v6.1")
    ws = synth.workspace(tmp_path, repo, name="quiet")  # touches fork.c, which warns already
    second_set(ws, "quiet", "loud", WARNING_PATCH)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    r = synth.ktrack(ws, "run", "--stages", "build", "--kernels", "6.1", "--executor", "inline")
    assert r.returncode == 0, r.stdout + r.stderr
    got = stages(ws)
    quiet = got[("quiet", "6.1")]["build"]
    assert quiet.status == "pass", quiet.summary
    assert quiet.summary == (
        "built; the 1 warning(s) in patched files are there without the patch set too"
    )
    loud_row = got[("loud", "6.1")]["build"]
    assert loud_row.status == "warn"
    assert loud_row.summary == (
        '1 new warning(s) in patched files; first: kernel/fork.c:42: unused variable "vx" '
        "(touched by 0001-fork-count-contexts.patch)"
    )
    assert loud_row.detail["baseline"]["status"] == "pass"


def test_configure_control_leaves_the_fragment_out(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    (repo / "kernel" / "Kconfig").write_text("# KTRACK_NOCONFIG: this release cannot configure\n")
    synth.git(repo, "add", "-A")
    synth.git(repo, "commit", "-q", "-m", "Linux 6.1.1")
    synth.git(repo, "tag", "v6.1.1")
    ws = synth.workspace(tmp_path, repo)
    manifest = ws / "patches" / "demo" / "patchset.toml"
    (ws / "patches" / "demo" / "0.1" / "kconfig").write_text("CONFIG_KTRACK_DROP_ME=y\n")
    manifest.write_text(
        manifest.read_text().replace('source = "0.1"', 'source = "0.1"\nkconfig = "0.1/kconfig"')
    )
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    r = synth.ktrack(ws, "run", "--stages", "configure", "--executor", "inline")
    assert r.returncode == 0, r.stdout + r.stderr
    got = stages(ws)
    # 6.1 configures without the fragment: the symbol the fragment wants is the set's failure
    mine = got[("demo", "6.1")]["configure"]
    assert mine.status == "fail"
    assert mine.summary.startswith("CONFIG_KTRACK_DROP_ME=y did not survive: no such symbol")
    assert mine.detail["baseline"]["status"] == "pass"
    # 6.1.1 cannot configure at all: no verdict
    theirs = got[("demo", "6.1.1")]["configure"]
    assert theirs.status == "error"
    assert theirs.summary.startswith(
        "no verdict: 6.1.1 fails configure without the patch set too: "
    )
    assert "kernel/Kconfig:1: syntax error" in theirs.summary


def test_our_build_timeout_is_an_infrastructure_error_exit_3(ws: Path) -> None:
    with (ws / "ktrack.toml").open("a") as fh:
        fh.write("\n[build]\ntimeout = 2\n")
    r = synth.ktrack(
        ws, "run", "--stages", "build", "--executor", "inline", "--kernels", "6.1",
        "--patchset", "good", env={"KTRACK_FAKE_BUILD_SECONDS": "30"},
    )  # fmt: skip
    assert r.returncode == 3, r.stdout + r.stderr
    assert "1 job(s) ended in an infrastructure error" in r.stderr
    row = stages(ws)[("good", "6.1")]["build"]
    assert (row.status, row.cause) == ("error", "infrastructure"), row.summary


NOCONFIG_PATCH = synth.PATCH.replace("+\tvx_count++;", "+\tvx_count++; /* KTRACK_NOCONFIG */")


def test_a_make_failure_in_configure_is_judged_by_the_control(tmp_path: Path) -> None:
    """``make olddefconfig`` failing on the patched tree (no infrastructure signature) goes
    through the control: the release configures, so it is the patch set's ``fail``."""
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo, name="good")
    second_set(ws, "good", "noconf", NOCONFIG_PATCH)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    r = synth.ktrack(ws, "run", "--stages", "configure", "--executor", "inline")
    assert r.returncode == 0, r.stdout + r.stderr
    got = stages(ws)
    assert got[("good", "6.1")]["configure"].status == "pass"
    row = got[("noconf", "6.1")]["configure"]
    assert (row.status, row.cause) == ("fail", "verdict")
    assert row.summary.startswith("make olddefconfig failed (2): kernel/Kconfig:1: syntax error")
    control = row.detail["baseline"]
    assert (control["stage"], control["status"]) == ("configure", "pass")
    assert control["summary"].endswith(" requested options set")  # the boot options' count
