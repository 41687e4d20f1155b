"""The whole flow once, end to end: a git feed whose tags are the releases, a quilt patch set,
`releases sync`, `run --stages apply`, results in the database, `matrix` as a table and JSON, and a
second run that reuses every result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from tracker.results.db import Database
from tracker.results.models import Job, KernelRelease, PatchResult, Run, RunJob, StageResult

FORK_C = (
    "".join(f"/* fork.c line {i} */\n" for i in range(1, 40))
    + "int copy_process(void)\n{\n\treturn 0;\n}\n"
)
BASE_C = (
    "".join(f"/* base.c line {i} */\n" for i in range(1, 60))
    + "static int proc_pid_status(void)\n{\n\treturn 0;\n}\n"
)

PATCH_1 = """\
From: Dev <dev@example.org>
Subject: [PATCH 1/2] fork: count contexts

---
 kernel/fork.c | 1 +
 1 file changed, 1 insertion(+)

--- a/kernel/fork.c
+++ b/kernel/fork.c
@@ -39,5 +39,6 @@
 /* fork.c line 39 */
 int copy_process(void)
 {
+\tvx_count++;
 \treturn 0;
 }
"""

PATCH_2 = """\
Subject: [PATCH 2/2] proc: show the context

--- a/fs/proc/base.c
+++ b/fs/proc/base.c
@@ -59,5 +59,6 @@
 /* base.c line 59 */
 static int proc_pid_status(void)
 {
+\tshow_vx();
 \treturn 0;
 }
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def commit(repo: Path, files: dict[str, str], message: str, tag: str | None = None) -> None:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    if tag:
        git(repo, "tag", tag)


@pytest.fixture
def kernel_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    commit(
        repo,
        {"Makefile": "VERSION = 6\n", "kernel/fork.c": FORK_C, "fs/proc/base.c": BASE_C},
        "Linux 6.1",
        "v6.1",
    )
    # 6.1.1: an unrelated change plus lines added above the hunk in base.c (offset, still applies)
    commit(
        repo,
        {"fs/proc/base.c": "/* new header */\n/* more */\n" + BASE_C, "README": "hi\n"},
        "Linux 6.1.1",
        "v6.1.1",
    )
    # 6.2: copy_process renamed, so patch 1 no longer applies
    commit(
        repo,
        {"kernel/fork.c": FORK_C.replace("copy_process", "kernel_clone")},
        "fork: rename copy_process",
    )
    commit(repo, {"Makefile": "VERSION = 6\nPATCHLEVEL = 2\n"}, "Linux 6.2", "v6.2")
    return repo


@pytest.fixture
def workspace(tmp_path: Path, kernel_repo: Path) -> Path:
    ws = tmp_path / "ws"
    series = ws / "patches" / "demo" / "0.1"
    series.mkdir(parents=True)
    (series / "0001-fork-count-contexts.patch").write_text(PATCH_1)
    (series / "0002-proc-show-the-context.patch").write_text(PATCH_2)
    (series / "series").write_text(
        "# demo series\n0001-fork-count-contexts.patch\n\n0002-proc-show-the-context.patch\n"
    )
    (ws / "patches" / "demo" / "patchset.toml").write_text(
        'name = "demo"\nsummary = "a two-patch demo set"\n\n[[versions]]\nversion = "0.1"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "0.1"\nstrip = 1\nfuzz = 0\n\n[track]\nkernels = ">=6.1"\n'
        'targets = ["x86_64:tinyconfig"]\n'
    )
    (ws / "ktrack.toml").write_text(
        f'[feeds.local]\nkind = "git"\nurl = "{kernel_repo}"\ntags = "v6.*"\n\n[patchsets]\npaths = ["patches"]\n'
    )
    return ws


def ktrack(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--home", str(ws / "data"), *args],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_git_feed_apply_run_and_matrix(workspace: Path) -> None:
    r = ktrack(workspace, "releases", "sync")
    assert r.returncode == 0, r.stderr
    r = ktrack(workspace, "releases", "list", "--json")
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert listed["schema"] == "ktrack.releases/1"
    assert [x["version"] for x in listed["releases"]] == ["6.1", "6.1.1", "6.2"]

    r = ktrack(workspace, "run", "--stages", "apply", "--executor", "inline")
    assert r.returncode == 0, r.stderr
    # the break 6.1.1 -> 6.2 is a new regression, and the git feed brought the history: the run
    # names the upstream commit that broke it
    assert "fork: rename copy_process" in r.stdout, r.stdout

    db = Database(f"sqlite:///{workspace / 'data' / 'tracker.db'}")
    with db.session() as s:
        jobs = {s.get_one(KernelRelease, j.release_id).version: j for j in s.scalars(select(Job))}
        assert set(jobs) == {"6.1", "6.1.1", "6.2"}
        assert jobs["6.1"].status == "pass" and jobs["6.1"].furthest_stage == "apply"
        assert jobs["6.1.1"].status == "warn"  # offset in base.c
        assert jobs["6.2"].status == "fail"
        assert "0001-fork-count-contexts.patch" in (jobs["6.2"].summary or "")
        stage = s.scalars(select(StageResult).where(StageResult.job_id == jobs["6.2"].id)).one()
        assert stage.stage == "apply" and stage.status == "fail"
        patches = s.scalars(
            select(PatchResult)
            .where(PatchResult.job_id == jobs["6.2"].id)
            .order_by(PatchResult.position)
        ).all()
        assert [(p.name, p.klass) for p in patches] == [
            ("0001-fork-count-contexts.patch", "conflict"),
            ("0002-proc-show-the-context.patch", "offset"),  # base.c grew in 6.1.1
        ]
        offset = s.scalars(
            select(PatchResult).where(
                PatchResult.job_id == jobs["6.1.1"].id, PatchResult.position == 2
            )
        ).one()
        assert offset.klass == "offset" and offset.total_offset == 2
        assert s.scalars(select(Run)).one().status == "done"

    r = ktrack(workspace, "matrix")
    assert r.returncode == 0, r.stderr
    assert "demo" in r.stdout and "6.2" in r.stdout
    assert "rename copy_process" in r.stdout  # the culprit is shown with the matrix
    r = ktrack(workspace, "matrix", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["schema"] == "ktrack.matrix/1"

    # a second run reuses every finished result
    r = ktrack(workspace, "run", "--stages", "apply")
    assert r.returncode == 0, r.stderr
    assert "3 reused" in r.stdout
    with db.session() as s:
        second = s.scalars(select(Run).order_by(Run.id.desc())).first()
        assert second is not None
        links = s.scalars(select(RunJob).where(RunJob.run_id == second.id)).all()
        assert len(links) == 3 and all(link.reused for link in links)
        assert len(s.scalars(select(StageResult)).all()) == 3
    db.dispose()


def test_unknown_patchset_exits_2(workspace: Path) -> None:
    assert ktrack(workspace, "releases", "sync").returncode == 0
    r = ktrack(workspace, "run", "--patchset", "nosuchset", "--stages", "apply")
    assert r.returncode == 2
    assert "nosuchset" in r.stderr and "Traceback" not in r.stderr


def _jobs(workspace: Path) -> dict[str, tuple[str, str | None, int, str | None]]:
    db = Database(f"sqlite:///{workspace / 'data' / 'tracker.db'}")
    with db.session() as s:
        out = {
            s.get_one(KernelRelease, j.release_id).version: (
                j.status,
                j.cause,
                j.attempts,
                j.toolchain,
            )
            for j in s.scalars(select(Job))
        }
    db.dispose()
    return out


def test_rerun_toolchain_and_exit_codes(workspace: Path) -> None:
    from tracker.build.toolchain import STAGE_LOGIC_VERSION
    from tracker.results.models import JobAttempt

    assert ktrack(workspace, "releases", "sync").returncode == 0
    apply = ("run", "--stages", "apply", "--executor", "inline", "--no-bisect")
    r = ktrack(workspace, *apply, "--fail-on-new")
    assert r.returncode == 1, r.stdout + r.stderr  # 6.2 no longer applies: a new breakage
    jobs = _jobs(workspace)
    assert {v: j[:3] for v, j in jobs.items()} == {
        "6.1": ("pass", None, 1),
        "6.1.1": ("warn", "verdict", 1),
        "6.2": ("fail", "verdict", 1),
    }
    # an apply-only job depends on the stage logic's version alone (no compiler asked)
    assert len({j[3] for j in jobs.values()}) == 1 and jobs["6.1"][3]
    # the breakage is known now: not new, exit 0
    r = ktrack(workspace, *apply, "--fail-on-new", "--rerun", "fail,error")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 reused" in r.stdout  # only the fail was judged again
    assert {v: j[2] for v, j in _jobs(workspace).items()} == {"6.1": 1, "6.1.1": 1, "6.2": 2}
    # a result judged by another toolchain is judged again
    db = Database(f"sqlite:///{workspace / 'data' / 'tracker.db'}")
    with db.session() as s:
        six_one = next(
            j
            for j in s.scalars(select(Job))
            if s.get_one(KernelRelease, j.release_id).version == "6.1"
        )
        six_one.toolchain = f"stale-logic-{STAGE_LOGIC_VERSION - 1}"
    r = ktrack(workspace, *apply)
    assert r.returncode == 0 and "2 reused" in r.stdout, r.stdout + r.stderr
    local = ("run", "--stages", "apply", "--executor", "local", "-j", "2", "--no-bisect")
    r = ktrack(workspace, *local, "--rerun", "all")  # the pool's workers get --rerun too
    assert r.returncode == 0 and "0 reused" in r.stdout, r.stdout + r.stderr
    assert {v: j[2] for v, j in _jobs(workspace).items()} == {"6.1": 3, "6.1.1": 2, "6.2": 3}
    with db.session() as s:
        history = s.scalars(select(JobAttempt).order_by(JobAttempt.id)).all()
        assert len(history) == 5  # every earlier attempt kept
        assert {h.toolchain for h in history} >= {f"stale-logic-{STAGE_LOGIC_VERSION - 1}"}
    db.dispose()
    r = ktrack(workspace, *apply, "--rerun", "fail,maybe")
    assert r.returncode == 2 and "--rerun: unknown status" in r.stderr


def test_a_broken_patch_set_is_bad_input_exit_2(workspace: Path) -> None:
    broken = workspace / "patches" / "broken" / "0.1"
    broken.mkdir(parents=True)
    (broken / "0001-x.patch").write_text(PATCH_1.replace("@@ -39,5 +39,6 @@", "@@ -39,5 +39,9 @@"))
    (broken / "series").write_text("0001-x.patch\n")
    manifest = (workspace / "patches" / "demo" / "patchset.toml").read_text()
    (broken.parent / "patchset.toml").write_text(manifest.replace('"demo"', '"broken"'))
    assert ktrack(workspace, "releases", "sync").returncode == 0
    r = ktrack(
        workspace, "run", "--stages", "apply", "--executor", "inline", "--no-bisect",
        "--patchset", "broken", "--kernels", "6.1",
    )  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "ktrack: bad input: broken@0.1" in r.stderr
    assert _jobs(workspace)["6.1"][:2] == ("error", "bad-input")
