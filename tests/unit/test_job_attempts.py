"""The write side of a job: its status is the worst of its stages', a finished job is reused only
while its judgement still stands, and a job judged again keeps its earlier attempts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest_report import World, make_db
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.report.matrix import build_matrix
from tracker.results.models import Job, JobAttempt, StageResult
from tracker.results.queries import latest_jobs
from tracker.vocab import Cause, Outcome, Stage, Status

SPEC = JobSpec(
    "demo",
    "1.0",
    "c" * 64,
    "patches/demo/patchset.toml",
    "6.1",
    "x86_64:tinyconfig",
    ("apply", "configure", "build", "boot", "test"),
)


def _record(s: Session, job: Job, outcomes: list[tuple[Stage, Outcome]]) -> None:
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


def _run(
    s: Session,
    outcomes: list[tuple[Stage, Outcome]],
    *,
    rerun: tuple[Status, ...] = (),
    toolchain: str | None = "tc-1",
) -> tuple[Job, bool]:
    run = record.start_run(s, {"argv": ["run"]})
    job, reused = record.claim_job(s, SPEC, run.id, rerun=rerun, toolchain=toolchain)
    if not reused:
        _record(s, job, outcomes)
    return job, reused


WARN_PASS = [
    (Stage.APPLY, Outcome(Status.WARN, "0001-a.patch: offset 4")),
    (Stage.CONFIGURE, Outcome(Status.PASS, "configured")),
    (Stage.BUILD, Outcome(Status.PASS, "built")),
    (Stage.BOOT, Outcome(Status.WARN, "WARNING: at kernel/fork.c:42")),
    (Stage.TEST, Outcome(Status.PASS, "3 tests passed")),
]
PASS = [(st, Outcome(Status.PASS, f"{st.value} ok")) for st in Stage]


def test_job_verdict_is_the_worst_stage_with_the_furthest_beside_it() -> None:
    rows = [(st.value, o.status.value, None, o.summary) for st, o in WARN_PASS]
    v = record.job_verdict(rows)
    # the last stage passed, yet the job warns: the apply offset comes first among the warns
    assert (v.status, v.stage, v.furthest, v.cause) == (
        Status.WARN,
        Stage.APPLY,
        Stage.TEST,
        Cause.VERDICT,
    )
    assert v.summary == "0001-a.patch: offset 4"
    # an upstream error after a warn: the error is worse, and its cause is the job's
    rows = [
        ("apply", "warn", "verdict", "fuzz"),
        ("configure", "pass", None, "ok"),
        ("build", "error", "upstream", "no verdict: 6.1 fails build without the patch set too"),
        ("boot", "skip", None, "an earlier stage did not pass"),
    ]
    v = record.job_verdict(rows)
    assert (v.status, v.stage, v.furthest, v.cause) == (
        Status.ERROR,
        Stage.BUILD,
        Stage.BUILD,
        Cause.UPSTREAM,
    )
    # nothing ran
    assert record.job_verdict([("apply", "skip", None, "")]).status is Status.SKIP


def test_record_stage_stores_the_worst_status_and_its_cause(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        job, _ = _run(s, WARN_PASS)
        assert (job.status, job.furthest_stage, job.cause) == ("warn", "test", "verdict")
        assert job.summary == "0001-a.patch: offset 4"
        ((cell_status, label),) = [(c.status, c.label) for c in build_matrix(s).cells.values()]
        assert (cell_status, label) == (Status.WARN, "test:warn")


def test_a_finished_job_is_reused_until_rerun_or_a_new_toolchain(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        first, reused = _run(s, PASS)
        assert not reused and first.attempts == 1 and first.toolchain == "tc-1"
        _, reused = _run(s, PASS)
        assert reused  # same inputs, same toolchain
        _, reused = _run(s, PASS, rerun=(Status.FAIL, Status.ERROR))
        assert reused  # --rerun fail,error does not touch a pass
        job, reused = _run(s, WARN_PASS, rerun=tuple(Status))  # --rerun all
        assert not reused and job.attempts == 2 and job.status == "warn"
        job, reused = _run(s, PASS, toolchain="tc-2")  # another gcc: judged again
        assert not reused and job.attempts == 3 and job.toolchain == "tc-2"
        job.toolchain = None  # a result from before the toolchain was recorded
        s.flush()
        job, reused = _run(s, PASS, toolchain="tc-2")
        assert not reused and job.attempts == 4
        # the history keeps every earlier attempt, oldest first, with its stages
        history = s.scalars(
            select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.attempt)
        ).all()
        assert [(h.attempt, h.status, h.toolchain) for h in history] == [
            (1, "pass", "tc-1"),
            (2, "warn", "tc-1"),
            (3, "pass", None),
        ]
        assert [st["status"] for st in history[1].stages] == [
            "warn",
            "pass",
            "pass",
            "warn",
            "pass",
        ]
        assert history[1].stages[0]["summary"] == "0001-a.patch: offset 4"
        # the job's own rows are the newest attempt's only
        rows = s.scalars(select(StageResult).where(StageResult.job_id == job.id)).all()
        assert sorted(r.status for r in rows) == ["pass"] * 5
        (latest,) = latest_jobs(s)
        assert (latest.status, latest.attempts) == (Status.PASS, 4)


@pytest.mark.parametrize(
    ("outcomes", "rerun", "redone"),
    [
        ([(Stage.APPLY, Outcome(Status.FAIL, "conflict"))], (Status.FAIL,), True),
        ([(Stage.APPLY, Outcome(Status.FAIL, "conflict"))], (Status.ERROR,), False),
        ([(Stage.APPLY, Outcome(Status.ERROR, "infrastructure: disk full"))], (), True),
    ],
)
def test_rerun_selects_by_status_and_an_error_is_always_redone(
    tmp_path: Path, outcomes: list[tuple[Stage, Outcome]], rerun: tuple[Status, ...], redone: bool
) -> None:
    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        _run(s, outcomes)
        _, reused = _run(s, PASS, rerun=rerun)
        assert reused is not redone


def test_a_job_this_run_finished_is_never_redone_by_it(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        run = record.start_run(s, {"argv": ["run"]})
        job, _ = record.claim_job(s, SPEC, run.id, toolchain="tc-1")
        _record(s, job, PASS)
        # a task delivered twice within one run --rerun all: the second reuses the first
        _, reused = record.claim_job(s, SPEC, run.id, rerun=tuple(Status), toolchain="tc-1")
        assert reused
        assert s.scalars(select(JobAttempt)).all() == []


def test_an_interrupted_job_goes_to_the_history_when_redone(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        run = record.start_run(s, {"argv": ["run"]})
        job, _ = record.claim_job(s, SPEC, run.id, toolchain="tc-1")
        _record(s, job, PASS[:2])
        record.finish_job(s, job, interrupted="interrupted during build (KeyboardInterrupt)")
        assert (job.status, job.cause, job.finished) == ("error", "infrastructure", False)
        job, reused = _run(s, PASS)
        assert not reused and job.status == "pass"
        (old,) = s.scalars(select(JobAttempt)).all()
        assert (old.status, old.cause, old.finished, len(old.stages)) == (
            "error",
            "infrastructure",
            False,
            2,
        )


def test_an_apply_only_job_asks_no_tool_for_its_toolchain(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.build import toolchain
    from tracker.pipeline.executors import job_toolchain

    calls: list[list[str]] = []
    monkeypatch.setattr(toolchain.proc, "run", lambda argv, **kw: calls.append(argv))
    toolchain.tool_version.cache_clear()
    apply_only = replace(SPEC, stages=("apply",))
    assert job_toolchain(apply_only) == toolchain.fingerprint(
        toolchain.Target.parse("x86_64:tinyconfig"), (Stage.APPLY,)
    )
    assert calls == []
    # a build job's depends on the compiler: a new gcc version line is a new fingerprint
    monkeypatch.setattr(toolchain.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    versions = iter(["gcc 12.2.0", "GNU ld 2.40", "GNU Make 4.3"] * 2)

    def fake_run(argv: list[str], **kw: object) -> SimpleNamespace:
        calls.append(argv)
        return SimpleNamespace(stdout=next(versions), stderr="")

    monkeypatch.setattr(toolchain.proc, "run", fake_run)
    build = replace(SPEC, stages=("build",))
    first = job_toolchain(build)
    assert [c[0] for c in calls] == ["gcc", "ld", "make"]
    toolchain.tool_version.cache_clear()
    versions = iter(["gcc 13.1.0", "GNU ld 2.40", "GNU Make 4.3"])
    assert job_toolchain(build) != first
    toolchain.tool_version.cache_clear()


def test_bad_input_outside_the_stages_is_a_user_error_on_every_executor(tmp_path: Path) -> None:
    """A job whose release is not in the catalog is the caller's input, never an infrastructure
    error (exit 2, not 3), inline and from a pool of workers alike."""
    from tracker.config import Settings
    from tracker.errors import UserError
    from tracker.pipeline import executors
    from tracker.results.db import Database

    settings = Settings(home=tmp_path / "home", cache=tmp_path / "cache")
    db = Database(settings.db_url)
    unknown = [replace(SPEC, release=v, stages=("apply",)) for v in ("6.9.98", "6.9.99")]
    with pytest.raises(UserError, match="is not in the catalog"):
        executors.run_inline(settings, db, unknown, None, lambda done: None)
    with pytest.raises(UserError, match="is not in the catalog"):
        executors.run_local(settings, db, unknown, None, lambda done: None, workers=2)


def test_the_cell_page_lists_earlier_attempts_escaped(tmp_path: Path) -> None:
    from tracker.report.data import load_report_data
    from tracker.report.html import write_html

    db = make_db(tmp_path)
    with db.session() as s:
        World(s).release("6.1")
        hostile = [(Stage.APPLY, Outcome(Status.FAIL, "<script>alert(1)</script>.patch: conflict"))]
        _run(s, hostile)
        job, _ = _run(s, PASS, rerun=(Status.FAIL,))
        data = load_report_data(s)
    assert [(a.attempt, a.status, a.cause) for a in data.attempts[job.id]] == [
        (1, Status.FAIL, Cause.VERDICT)
    ]
    write_html(data, tmp_path / "html")
    page = (tmp_path / "html" / "c" / f"{job.id}.html").read_text()
    assert '<h2 id="attempts">Earlier attempts</h2>' in page
    assert "apply:fail" in page and "&lt;script&gt;alert(1)&lt;/script&gt;.patch" in page
    assert "<script>alert(1)" not in page
    assert 'id="verdict">test:pass<' in page  # the newest attempt is the cell
