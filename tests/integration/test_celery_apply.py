"""The real thing end to end on generated trees: a git feed of ten releases, four quilt patch sets,
`ktrack run --executor celery --stages apply` served by two real `ktrack worker` processes (each
with its own data dir and release store, as on two hosts) on PostgreSQL and Redis. Every one of
the 40 results is written once and agrees with the inline executor; a second run reuses them all;
an interrupted run is re-run without redoing finished jobs; the GitHub Actions fan-out path (plan
as a matrix, run one job and export, import) gives the same results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # tests/ may be a package (tests.integration) or a plain folder on sys.path
    from tests.integration.conftest_celery import (
        ENTRY,
        Cluster,
        make_cluster,
        make_feed,
        make_patchsets,
        wait_until,
    )
except ModuleNotFoundError:
    from conftest_celery import ENTRY, Cluster, make_cluster, make_feed, make_patchsets, wait_until
from sqlalchemy import func, select

from tracker.results.db import Database
from tracker.results.models import Job, JobClaim, RunJob, StageResult

pytestmark = [pytest.mark.integration]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    yield from make_cluster(tmp_path)


@pytest.fixture
def workspace(cluster: Cluster) -> Path:
    ws = cluster.tmp / "ws"
    ws.mkdir()
    feed = make_feed(cluster.tmp / "feed")
    make_patchsets(ws)
    (ws / "ktrack.toml").write_text(
        f'[database]\nurl = "{cluster.db_url}"\n[celery]\nbroker = "{cluster.redis.url}"\n'
        f'[store]\nartifacts = "{cluster.artifacts}"\n'
        f'[feeds.local]\nkind = "git"\nurl = "{feed}"\ntags = "v6.*"\n'
        '[patchsets]\npaths = ["patches"]\n'
    )
    return ws


def ktrack(
    ws: Path, home: str, *args: str, db: str | None = None
) -> subprocess.CompletedProcess[str]:
    extra = ["--db", db] if db else []
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--home", str(ws / home), *extra, *args],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=600,
    )


def start_worker(
    c: Cluster, ws: Path, n: int, *, entry: bool = False, stage_seconds: float = 0.0
) -> None:
    """A real ``ktrack worker`` (``entry``: the stand-in apply stage, for timing control)."""
    log = c.tmp / f"worker{n}.log"
    program = [str(ENTRY)] if entry else ["-m", "tracker.cli"]
    argv = [sys.executable, *program, "--home", str(ws / f"host{n}"), "worker", "-c", "1"]
    argv += ["--lease", "5", "--name", f"w{n}@test"]
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "KTRACK_TEST_EXEC_LOG": str(c.exec_log),
        "KTRACK_TEST_STAGE_SECONDS": str(stage_seconds),
    }
    with log.open("ab") as fh:
        c.workers.append(
            subprocess.Popen(argv, cwd=ws, env=env, stdout=fh, stderr=fh, start_new_session=True)
        )
    c.logs.append(log)


def _verdicts(url: str) -> dict[str, tuple[str, str | None, int]]:
    db = Database(url, migrate=False)
    try:
        with db.session() as s:
            counts = dict(
                s.execute(
                    select(StageResult.job_id, func.count()).group_by(StageResult.job_id)
                ).all()
            )
            return {
                j.key: (j.status, j.summary, counts.get(j.id, 0))
                for j in s.scalars(select(Job).where(Job.finished.is_(True)))
            }
    finally:
        db.dispose()


def test_forty_real_apply_jobs_on_two_workers(cluster: Cluster, workspace: Path) -> None:
    r = ktrack(workspace, "coord", "releases", "sync")
    assert r.returncode == 0, r.stderr
    for n in range(2):
        start_worker(cluster, workspace, n)
    r = ktrack(workspace, "coord", "run", "--executor", "celery", "--stages", "apply")
    assert r.returncode == 0, r.stderr + cluster.worker_logs()[-3000:]
    assert "40 job(s)" in r.stdout and "0 reused" in r.stdout, r.stdout

    got = _verdicts(cluster.db_url)
    assert len(got) == 40
    assert all(n == 1 for _, _, n in got.values())  # one apply row per job
    statuses = {st for st, _, _ in got.values()}
    assert {"pass", "warn", "fail"} <= statuses  # the trees really differ
    db = Database(cluster.db_url, migrate=False)
    with db.session() as s:
        assert {j.attempts for j in s.scalars(select(Job))} == {1}
        owners = {c.owner.split(":")[1] for c in s.scalars(select(JobClaim))}
        assert len(owners) == 2, "both workers took jobs"
    db.dispose()

    # the same verdicts as the inline executor on its own SQLite database (two of the four sets:
    # between them they pass, warn and fail)
    inline = f"sqlite:///{workspace / 'inline.db'}"
    assert ktrack(workspace, "inline", "releases", "sync", db=inline).returncode == 0
    two_sets = ("--patchset", "set0", "--patchset", "set2")
    r = ktrack(
        workspace,
        "inline",
        "run",
        "--executor",
        "inline",
        "--stages",
        "apply",
        *two_sets,
        db=inline,
    )
    assert r.returncode == 0, r.stderr
    by_inline = _verdicts(inline)
    assert len(by_inline) == 20 and {st for st, _, _ in by_inline.values()} >= {"pass", "fail"}
    assert by_inline == {k: got[k] for k in by_inline}

    # a second run reuses every result and writes nothing
    r = ktrack(workspace, "coord", "run", "--executor", "celery", "--stages", "apply")
    assert r.returncode == 0, r.stderr
    assert "40 reused" in r.stdout, r.stdout
    assert _verdicts(cluster.db_url) == got

    # fan-out as on GitHub Actions: each job alone on a fresh machine, then one import
    r = ktrack(workspace, "coord", "plan", "--stages", "apply", "--format", "github-matrix")
    matrix = json.loads(r.stdout)["include"]
    assert len(matrix) == 40 and {m["key"] for m in matrix} == set(got)
    files = []
    for m in matrix[:2]:
        alone = f"sqlite:///{workspace / ('gh-' + m['key'][:8] + '.db')}"
        home = f"gh-{m['key'][:8]}"
        assert ktrack(workspace, home, "releases", "sync", db=alone).returncode == 0
        out = workspace / f"results-{m['key'][:8]}.json"
        r = ktrack(
            workspace,
            home,
            "run",
            "--stages",
            "apply",
            "--job",
            m["key"],
            "--export",
            str(out),
            db=alone,
        )
        assert r.returncode == 0, r.stderr
        assert "1 job(s)" in r.stdout
        files.append(out)
    merged = f"sqlite:///{workspace / 'merged.db'}"
    r = ktrack(workspace, "merge", "import", str(workspace / "results-*.json"), db=merged)
    assert r.returncode == 0, r.stderr
    assert _verdicts(merged) == {m["key"]: got[m["key"]] for m in matrix[:2]}


def test_interrupted_run_is_rerun_without_redoing_finished_jobs(
    cluster: Cluster, workspace: Path
) -> None:
    r = ktrack(workspace, "coord", "releases", "sync")
    assert r.returncode == 0, r.stderr
    for n in range(2):
        start_worker(cluster, workspace, n, entry=True, stage_seconds=0.4)
    argv = [sys.executable, "-m", "tracker.cli", "--home", str(workspace / "coord"), "run"]
    argv += ["--executor", "celery", "--stages", "apply"]
    first = subprocess.Popen(
        argv, cwd=workspace, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_until(lambda: len(cluster.executions()) >= 8, 120, "some jobs done")
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "interrupted" in err
    time.sleep(1.0)
    r = ktrack(workspace, "coord", "run", "--executor", "celery", "--stages", "apply")
    assert r.returncode == 0, r.stderr
    assert "40 job(s)" in r.stdout
    reused = int(r.stdout.split(" reused")[0].rsplit(";", 1)[1])
    assert reused >= 8, r.stdout
    executed = cluster.executions()
    assert len(executed) == 40 and set(executed.values()) == {1}, "a finished job was redone"
    db = Database(cluster.db_url, migrate=False)
    with db.session() as s:
        assert {j.attempts for j in s.scalars(select(Job))} == {1}
        second = max(link.run_id for link in s.scalars(select(RunJob)))
        assert (
            s.scalar(select(func.count()).select_from(RunJob).where(RunJob.run_id == second)) == 40
        )
    db.dispose()
