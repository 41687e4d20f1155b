"""The Celery executor with real services: two worker processes on loopback, a private Redis
broker and a private PostgreSQL database; every result is written exactly once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.pipeline.plan import JobSpec

try:  # tests/ may be a package (tests.integration) or a plain folder on sys.path
    from tests.integration.conftest_celery import (
        Cluster,
        check_exactly_once,
        make_cluster,
        seed_jobs,
        start_run,
        wait_until,
    )
except ModuleNotFoundError:
    from conftest_celery import (
        Cluster,
        check_exactly_once,
        make_cluster,
        seed_jobs,
        start_run,
        wait_until,
    )

pytestmark = [pytest.mark.integration]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    yield from make_cluster(tmp_path)


def test_two_workers_run_forty_jobs_each_result_once(cluster: Cluster) -> None:
    jobs = seed_jobs(cluster.db_url, 40)
    workers = [cluster.start_worker(stage_seconds=0.1) for _ in range(2)]
    run = start_run(cluster, jobs, grace=5.0)
    run.wait(180)
    rows = check_exactly_once(cluster.db_url, jobs, run.done)
    executed = cluster.executions()
    assert set(executed) == {j.key for j in jobs}
    assert set(executed.values()) == {1}, "a stage ran twice"
    assert all(j.attempts == 1 for j in rows["jobs"].values())
    assert all(j.run_id == run.run_id for j in rows["jobs"].values())
    # both workers took part (each is a separate process group with its own pool child)
    pids = cluster.executing_pids()
    groups = {os.getpgid(p) for p in pids if _alive(p)}
    assert groups == {w.pid for w in workers}, cluster.worker_logs()[-3000:]
    # logs went to the shared artifacts dir
    assert len(list(cluster.artifacts.rglob("*.gz"))) == 40
    # one delivery per job: each message landed in exactly one queue
    assert cluster.worker_logs().count("] received") == 40


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_each_message_lands_in_one_queue_and_heavy_jobs_go_to_heavy_workers(
    cluster: Cluster,
) -> None:
    apply_jobs = seed_jobs(cluster.db_url, 6)
    heavy_jobs = [
        JobSpec(
            j.patchset,
            j.version,
            j.content_hash,
            j.manifest,
            j.release,
            "arm64:defconfig",
            ("apply", "build"),
        )
        for j in apply_jobs
    ]
    quick = cluster.start_worker(stage_seconds=0.05, queues="ktrack.apply")
    heavy = cluster.start_worker(stage_seconds=0.05, queues="ktrack.heavy")
    run = start_run(cluster, apply_jobs + heavy_jobs, grace=5.0)
    run.wait(120)
    rows = check_exactly_once(cluster.db_url, apply_jobs + heavy_jobs, run.done)
    # the stages of a heavy job are recorded one by one, in order
    for j in heavy_jobs:
        assert rows["jobs"][j.key].furthest_stage == "build"
    assert cluster.worker_logs().count("] received") == 12, "a message was delivered twice"
    lines = [line.split() for line in cluster.exec_log.read_text().splitlines()]
    by_group = {key: os.getpgid(int(pid)) for key, pid in lines if _alive(int(pid))}
    assert {by_group[j.key] for j in apply_jobs} == {quick.pid}
    assert {by_group[j.key] for j in heavy_jobs} == {heavy.pid}
    assert {by_group[f"{j.key}.build"] for j in heavy_jobs} == {heavy.pid}
    assert {by_group[f"{j.key}.configure"] for j in heavy_jobs} == {heavy.pid}


def test_run_started_before_any_worker_says_so_and_completes_once_one_starts(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.pipeline import celery_app

    monkeypatch.setattr(celery_app, "NO_WORKER_HINT", 1.0)
    jobs = seed_jobs(cluster.db_url, 5)
    run = start_run(cluster, jobs, grace=3.0)
    wait_until(
        lambda: any("start one with `ktrack worker`" in m for m in run.ctx.messages), 30, "the hint"
    )
    assert run.done == []
    cluster.start_worker(stage_seconds=0.05)
    run.wait(120)
    check_exactly_once(cluster.db_url, jobs, run.done)
    assert cluster.worker_logs().count("] received") == 5


def test_a_job_that_fails_for_good_is_reported_and_the_run_returns(cluster: Cluster) -> None:
    good = seed_jobs(cluster.db_url, 3)
    g = good[0]
    unknown = JobSpec(
        g.patchset, g.version, g.content_hash, g.manifest, "6.9.99", g.target, g.stages
    )
    cluster.start_worker(stage_seconds=0.05)
    run = start_run(cluster, [*good, unknown], grace=3.0)
    run.wait(120)
    by_key = {d.key: d for d in run.done}
    assert len(run.done) == 4 and set(by_key) == {j.key for j in [*good, unknown]}
    assert (by_key[unknown.key].status, by_key[unknown.key].cause) == ("error", "bad-input")
    assert "6.9.99 is not in the catalog" in by_key[unknown.key].summary
    assert all(by_key[j.key].status == "pass" for j in good)
    # given up at once (bad input: no retry helps), not published again
    assert cluster.worker_logs().count("] received") == 4
