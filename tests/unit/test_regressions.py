"""Regressions open, stay open and close over a sequence of runs; the exit codes follow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest_report import World, make_db

from tracker.cli import main as cli_main
from tracker.commands.regressions import parse_since
from tracker.results import queries
from tracker.results.regressions import line_of, update_regressions

X86 = "x86_64:tinyconfig"
ARM = "arm64:defconfig"


@pytest.fixture
def db(tmp_path):
    return make_db(tmp_path)


def _cli(db, *argv):
    return cli_main(["--db", db.url, "-q", "regressions", *argv])


def test_release_regression_lifecycle_and_exit_codes(db, capsys):
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1")
        w.job(r1, a, "6.2", status="warn")
        w.job(r1, a, "6.2", target=ARM)
        d1 = update_regressions(s, r1.id)
    assert d1.new == () and d1.closed == ()
    assert _cli(db, "--fail-on-new") == 0

    # run 2: 6.3 breaks the build on x86_64 only; arm64 (a different target) still passes
    with db.session() as s:
        w.s = s
        r2 = w.run()
        w.job(r2, a, "6.3", status="fail", stage="build", summary="error: implicit declaration")
        w.job(r2, a, "6.3", target=ARM)
        d2 = update_regressions(s, r2.id)
    assert len(d2.new) == 1
    reg = d2.new[0]
    assert (reg.kind, reg.target, reg.stage) == ("release", X86, "build")
    assert (reg.last_good_release, reg.first_bad_release) == ("6.2", "6.3")
    assert reg.opened_run_id == r2.id and reg.is_open
    assert "implicit declaration" in reg.summary
    assert _cli(db, "--fail-on-new") == 1
    assert _cli(db) == 0  # listing alone does not judge
    capsys.readouterr()
    assert _cli(db, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ktrack.regressions/1"
    assert doc["new"] == [reg.id] and doc["regressions"][0]["first_bad_release"] == "6.3"

    # run 3: 6.4 fails too: the same regression is kept, nothing new
    with db.session() as s:
        w.s = s
        r3 = w.run()
        w.job(r3, a, "6.4", status="fail", stage="apply")
        d3 = update_regressions(s, r3.id)
    assert d3.new == () and [r.id for r in d3.kept] == [reg.id]
    assert _cli(db, "--fail-on-new") == 0
    assert _cli(db, "--fail-on-new", "--since", str(r1.id)) == 1  # opened after run 1, still open

    # run 4: 6.5 passes again: closed
    with db.session() as s:
        w.s = s
        r4 = w.run()
        w.job(r4, a, "6.5")
        d4 = update_regressions(s, r4.id)
    assert [r.id for r in d4.closed] == [reg.id] and d4.new == ()
    with db.session() as s:
        assert queries.regressions(s, open_only=True) == []
        (closed,) = queries.regressions(s)
    assert closed.closed_run_id == r4.id
    assert _cli(db, "--fail-on-new", "--since", str(r1.id)) == 0


def test_infrastructure_errors_and_unconfirmed_boot_failures_never_open(db):
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1", stage="boot", stages="apply,configure,build,boot")
        w.job(r1, a, "6.2", status="error", stage="build", summary="disk full")
        w.job(r1, a, "6.3", status="fail", stage="boot", attempts=1, summary="panic")
        d1 = update_regressions(s, r1.id)
        assert d1.new == ()
        r2 = w.run()  # the retry confirms the boot failure
        w.job(r2, a, "6.3", status="fail", stage="boot", attempts=2, summary="panic again")
        d2 = update_regressions(s, r2.id)
    assert len(d2.new) == 1
    assert (d2.new[0].last_good_release, d2.new[0].first_bad_release) == ("6.1", "6.3")
    assert d2.new[0].stage == "boot"


def test_boot_failure_retried_inside_the_stage_counts(db):
    """The pipeline retries a failed boot in place and records both attempts in the detail."""
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1", stage="boot", stages="apply,configure,build,boot")
        w.job(
            r1,
            a,
            "6.2",
            status="fail",
            stage="boot",
            stages="apply,configure,build,boot",
            attempts=1,
            summary="hung",
            detail={"attempts": ["fail/skip", "fail/skip"]},
        )
        w.job(
            r1,
            a,
            "6.2",
            status="fail",
            stage="boot",
            target=ARM,
            attempts=1,
            detail={"attempts": ["fail/skip"]},
        )
        w.job(r1, a, "6.1", target=ARM, stage="boot")
        d = update_regressions(s, r1.id)
    assert [(x.target, x.first_bad_release) for x in d.new] == [(X86, "6.2")]


def test_never_passing_pair_is_no_regression(db):
    with db.session() as s:
        w = World(s)
        b = w.psv("beta")
        r = w.run()
        for v in ("6.1", "6.2", "6.3"):
            w.job(r, b, v, status="fail", stage="apply")
        assert update_regressions(s, r.id).new == ()


def test_stable_lines_are_compared_with_themselves(db):
    """A stable update breaking 6.1.y is a regression even while newer series pass; a line that
    fails from its start after an older line already broke adds nothing."""
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r = w.run()
        w.job(r, a, "6.1")
        w.job(r, a, "6.1.1")
        w.job(r, a, "6.1.2", status="fail", stage="apply")
        w.job(r, a, "6.6")
        w.job(r, a, "6.6.1")
        # gamma: breaks at mainline 6.6, and the 6.6.y line fails from its start: one regression
        g = w.psv("gamma")
        for v, st in (("6.1", "pass"), ("6.1.1", "pass"), ("6.6", "fail"), ("6.6.1", "fail")):
            w.job(r, g, v, status=st, stage="build")
        d = update_regressions(s, r.id)
    got = sorted((x.patchset, x.last_good_release, x.first_bad_release) for x in d.new)
    assert got == [
        ("alpha", "6.1.1", "6.1.2"),
        ("gamma", "6.1", "6.6"),
    ]  # the mainline line: 6.1 -> 6.6
    assert line_of("6.1.2") == "6.1" and line_of("6.6") == "mainline"
    assert line_of("6.7-rc2") == "mainline" and line_of("next-20240101") == "next"


def test_run_regression_opens_and_closes(db):
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1", stage="boot", stages="apply,configure,build,boot")
        assert update_regressions(s, r1.id).new == ()
        r2 = w.run()  # same code, same release: now the build fails (toolchain changed)
        w.job(r2, a, "6.1", status="fail", stage="build", summary="gcc 14: new error")
        d2 = update_regressions(s, r2.id)
        kinds = sorted(x.kind for x in d2.new)
        assert kinds == ["run"]
        (reg,) = d2.new
        assert reg.first_bad_release == "6.1" and reg.stage == "build"
        r3 = w.run()  # a run that covers something else keeps it open
        w.job(r3, a, "6.2")
        d3 = update_regressions(s, r3.id)
        assert [x.id for x in d3.kept] == [reg.id] and d3.closed == ()
        r4 = w.run()
        w.job(r4, a, "6.1")
        d4 = update_regressions(s, r4.id)
        assert [x.id for x in d4.closed] == [reg.id]


def test_deeper_stages_finding_a_failure_is_not_a_run_regression(db):
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1", stage="apply", stages="apply")
        update_regressions(s, r1.id)
        r2 = w.run()  # now built for the first time: the build fails; apply passed in both
        w.job(r2, a, "6.1", status="fail", stage="build")
        assert update_regressions(s, r2.id).new == ()
        r3 = w.run()  # the build passes again
        w.job(r3, a, "6.1", stage="build")
        assert update_regressions(s, r3.id).new == ()
        r4 = w.run()  # apply now fails where run 3 got past it: that is a run regression
        w.job(r4, a, "6.1", status="fail", stage="apply", stages="apply")
        (reg,) = update_regressions(s, r4.id).new
        assert (reg.kind, reg.stage) == ("run", "apply")


def test_reused_job_does_not_reopen(db):
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r1 = w.run()
        w.job(r1, a, "6.1")
        bad = w.job(r1, a, "6.2", status="fail", stage="apply")
        d1 = update_regressions(s, r1.id)
        assert len(d1.new) == 1
        r2 = w.run()
        w.reuse(r2, bad)
        d2 = update_regressions(s, r2.id)
        assert d2.new == () and len(d2.kept) == 1


def test_since_must_be_a_run_id_or_a_duration(db):
    for bad in ("-4", "", "h", "0h", "24x", "1.5h", "\u0663h", "24h;rm", "\u0663"):
        assert _cli(db, "--since", bad) == 2, bad
    assert parse_since("42") == 42
    assert parse_since("24h") == timedelta(hours=24)
    assert parse_since("1d12h") == timedelta(hours=36)
    assert parse_since("90m") == timedelta(minutes=90)
    assert parse_since("2w") == timedelta(days=14)


def test_since_judges_every_run_of_the_window(db, capsys):
    """The daily workflow's case: the apply run opens the regression, the build run an hour later
    keeps it. ``--fail-on-new`` alone looks at the latest run and passes; ``--since`` judges both."""
    now = datetime.now(UTC)
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        yesterday = w.run()
        yesterday.started_at = now - timedelta(days=1, hours=1)
        w.job(yesterday, a, "6.1", stage="apply", stages="apply")
        update_regressions(s, yesterday.id)
        apply_run = w.run()
        apply_run.started_at = now - timedelta(hours=2)
        w.job(apply_run, a, "6.1", stage="apply", stages="apply")
        w.job(apply_run, a, "6.2", status="fail", stage="apply", stages="apply")
        (reg,) = update_regressions(s, apply_run.id).new
        build_run = w.run()
        build_run.started_at = now - timedelta(hours=1)
        w.job(build_run, a, "6.2", status="fail", stage="apply")  # its own job: apply fails
        d = update_regressions(s, build_run.id)
        assert d.new == () and [r.id for r in d.kept] == [reg.id]
        ids = (yesterday.id, apply_run.id, build_run.id)
    assert _cli(db, "--fail-on-new") == 0  # the latest run opened nothing
    assert _cli(db, "--fail-on-new", "--since", "24h") == 1
    assert _cli(db, "--fail-on-new", "--since", str(ids[0])) == 1
    assert _cli(db, "--fail-on-new", "--since", "90m") == 0  # only the build run: kept, not new
    assert _cli(db, "--fail-on-new", "--since", str(ids[2])) == 0
    assert _cli(db, "--fail-on-new", "--since", "3d") == 1
    capsys.readouterr()
    assert _cli(db, "--json", "--since", "1d") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["since"] == ids[0] and doc["new"] == [reg.id] and doc["latest_run"] == ids[2]
