"""The reports read what the pipeline writes: rows recorded with tracker.pipeline.record."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest_report import World, make_db

from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.report.data import load_report_data
from tracker.report.kcidb import kcidb_report
from tracker.report.matrix import build_matrix
from tracker.results.regressions import update_regressions
from tracker.vocab import Outcome, Stage, Status

APPLY_OK = {
    "schema": "ktrack.check/1",
    "patches": [
        {
            "name": "0001-a.patch",
            "class": "offset",
            "files": [
                {
                    "path": "a.c",
                    "class": "offset",
                    "hunks": [{"index": 1, "class": "offset", "offset": 4, "fuzz": 0, "line": 14}],
                }
            ],
        }
    ],
}
APPLY_BAD = {
    "schema": "ktrack.check/1",
    "patches": [
        {
            "name": "0001-a.patch",
            "class": "conflict",
            "files": [
                {
                    "path": "a.c",
                    "class": "conflict",
                    "hunks": [{"index": 1, "class": "conflict", "expected_line": 10}],
                }
            ],
        }
    ],
}


def _run_one(s, run, release, outcomes):
    spec = JobSpec(
        "demo",
        "1.0",
        "c" * 64,
        "patches/demo/patchset.toml",
        release,
        "x86_64:tinyconfig",
        ("apply", "configure", "build"),
    )
    job, reused = record.claim_job(s, spec, run.id)
    assert not reused
    for stage, outcome in outcomes:
        record.record_stage(
            s,
            job,
            stage,
            outcome,
            started_at=datetime.now(UTC),
            duration=0.5,
            log_hash=None,
            log_excerpt=None,
        )
    record.finish_job(s, job)
    return job


def test_matrix_and_regressions_from_recorded_jobs(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        for v in ("6.1", "6.2"):
            w.release(v)
        run = record.start_run(s, {"argv": ["run"]})
        _run_one(
            s,
            run,
            "6.1",
            [
                (Stage.APPLY, Outcome(Status.WARN, "1 patch with offset", APPLY_OK)),
                (Stage.CONFIGURE, Outcome(Status.PASS, "configured")),
                (Stage.BUILD, Outcome(Status.PASS, "built", {"errors": [], "warnings": 0})),
            ],
        )
        bad = _run_one(
            s,
            run,
            "6.2",
            [
                (Stage.APPLY, Outcome(Status.FAIL, "0001-a.patch conflicts", APPLY_BAD)),
                (Stage.CONFIGURE, Outcome(Status.SKIP, "apply failed")),
                (Stage.BUILD, Outcome(Status.SKIP, "apply failed")),
            ],
        )
        record.finish_run(s, run, "done")
        delta = update_regressions(s, run.id)
        m = build_matrix(s)
        data = load_report_data(s)
    assert [r.version for r in m.releases] == ["6.2", "6.1"]
    labels = {rel.version: c.label for _row, rel, _t, c in m.iter_cells()}
    # the worst stage (apply warn) with the furthest stage reached (build)
    assert labels == {"6.1": "build:warn", "6.2": "apply:fail"}
    (reg,) = delta.new
    assert (reg.last_good_release, reg.first_bad_release, reg.stage) == ("6.1", "6.2", "apply")
    assert [p.klass for p in data.patches[bad.id]] == ["conflict"]
    doc = kcidb_report(data)
    valid = {c["id"]: c["valid"] for c in doc["checkouts"]}
    assert valid == {"ktrack:demo@1.0:6.1": True, "ktrack:demo@1.0:6.2": False}
