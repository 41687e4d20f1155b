"""The cause of an outcome is a value read everywhere: by the stage loop that sets it, by bisect,
by ``run``'s exit code, and shown by every report (never parsed back from a summary)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest_report import World, make_db
from junitparser import Error, Failure, JUnitXml
from rich.console import Console

from tracker.bisect.probe import probe_verdict
from tracker.commands.run import exit_code, parse_rerun
from tracker.errors import InfraError, UserError
from tracker.pipeline import stages as stages_mod
from tracker.pipeline.executors import JobDone
from tracker.pipeline.plan import JobSpec
from tracker.report.data import load_report_data
from tracker.report.html import write_html
from tracker.report.jsonout import report_json
from tracker.report.junit import write_junit
from tracker.report.kcidb import kcidb_report
from tracker.report.markdown import matrix_markdown
from tracker.report.terminal import render_matrix
from tracker.results.regressions import verdict
from tracker.vocab import Cause, Outcome, Stage, Status

UPSTREAM_SUMMARY = "no verdict: 6.2 fails build without the patch set too: kernel/sched.c:1"


# --- the stage loop sets the cause ------------------------------------------------------------


def _state(tmp_path: Path, stages: tuple[str, ...]) -> stages_mod.JobState:
    spec = JobSpec("demo", "1.0", "c" * 64, str(tmp_path / "patchset.toml"), "6.1",
                   "x86_64:tinyconfig", stages)  # fmt: skip
    settings = SimpleNamespace(baseline=False)
    return stages_mod.JobState(settings=settings, db=None, spec=spec, work=tmp_path)  # type: ignore[arg-type]


def _raise(exc: Exception) -> Any:
    def stage(_state: stages_mod.JobState) -> Outcome:
        raise exc

    return stage


@pytest.mark.parametrize(
    ("exc", "cause", "prefix"),
    [
        (UserError("0002-b.patch: malformed hunk header"), Cause.BAD_INPUT, "bad input: "),
        (InfraError("no space left on device"), Cause.INFRASTRUCTURE, "infrastructure: "),
        (OSError(28, "No space left on device"), Cause.INFRASTRUCTURE, "infrastructure: "),
    ],
)
def test_the_stage_loop_turns_exceptions_into_error_with_a_cause(
    tmp_path: Path, exc: Exception, cause: Cause, prefix: str
) -> None:
    state = _state(tmp_path, ("configure",))
    funcs = {
        Stage.APPLY: lambda _s: Outcome(Status.PASS, "applied"),
        Stage.CONFIGURE: _raise(exc),
    }
    got = list(stages_mod.run_stages(state, funcs))
    assert [(st, o.status, o.cause) for st, o in got] == [
        (Stage.APPLY, Status.PASS, None),
        (Stage.CONFIGURE, Status.ERROR, cause),
    ]
    assert got[1][1].summary.startswith(prefix)


def test_the_stage_loop_skips_after_a_stage_that_did_not_pass(tmp_path: Path) -> None:
    state = _state(tmp_path, ("build",))
    funcs = {Stage.APPLY: lambda _s: Outcome(Status.FAIL, "0001-a.patch: conflict")}
    got = [(st, o.status, o.cause) for st, o in stages_mod.run_stages(state, funcs)]
    assert got == [
        (Stage.APPLY, Status.FAIL, Cause.VERDICT),
        (Stage.CONFIGURE, Status.SKIP, None),
        (Stage.BUILD, Status.SKIP, None),
    ]


# --- bisect reads the cause -------------------------------------------------------------------


def _outcomes(*pairs: tuple[Stage, Outcome]) -> list[tuple[Stage, Outcome]]:
    return list(pairs)


APPLIED = (Stage.APPLY, Outcome(Status.PASS, "applied"))
CONFIGURED = (Stage.CONFIGURE, Outcome(Status.PASS, "configured"))


@pytest.mark.parametrize(
    ("build", "status"),
    [
        (Outcome(Status.FAIL, "kernel/fork.c:42: error"), Status.FAIL),
        (Outcome(Status.PASS, "built"), Status.PASS),
        (Outcome(Status.WARN, "1 new warning"), Status.WARN),
        # the commit fails without the patch set too: skipped, never named
        (Outcome(Status.ERROR, UPSTREAM_SUMMARY, cause=Cause.UPSTREAM), Status.SKIP),
        (Outcome(Status.ERROR, "infrastructure: disk", cause=Cause.INFRASTRUCTURE), Status.ERROR),
        # whatever a stage claims, a fail that is not the patch set's is never a verdict
        (Outcome(Status.FAIL, "timeout", cause=Cause.INFRASTRUCTURE), Status.ERROR),
        (Outcome(Status.FAIL, "same as upstream", cause=Cause.UPSTREAM), Status.SKIP),
    ],
)
def test_probe_verdict_reads_the_cause(build: Outcome, status: Status) -> None:
    v = probe_verdict(_outcomes(APPLIED, CONFIGURED, (Stage.BUILD, build)), Stage.BUILD)
    assert v.status is status
    assert v.known is (status in (Status.PASS, Status.WARN, Status.FAIL))


def test_probe_verdict_of_an_earlier_stage_that_did_not_pass() -> None:
    conf = (Stage.CONFIGURE, Outcome(Status.FAIL, "CONFIG_X did not survive"))
    v = probe_verdict(_outcomes(APPLIED, conf), Stage.BUILD)
    assert (v.status, v.summary) == (Status.SKIP, "configure: CONFIG_X did not survive")
    infra = (
        Stage.CONFIGURE,
        Outcome(Status.ERROR, "infrastructure: x", cause=Cause.INFRASTRUCTURE),
    )
    assert probe_verdict(_outcomes(APPLIED, infra), Stage.BUILD).status is Status.ERROR
    assert probe_verdict(_outcomes(APPLIED), Stage.BUILD).status is Status.SKIP


# --- run's exit code --------------------------------------------------------------------------


def _done(status: str, cause: str | None, label: str = "demo@1.0 6.1") -> JobDone:
    return JobDone("k" + label, label, status, "build", f"{status} summary", False, cause)


class _Ctx:
    def __init__(self) -> None:
        self.buf = io.StringIO()
        self.err = Console(file=self.buf, width=300, color_system=None)


@pytest.mark.parametrize(
    ("results", "new", "code"),
    [
        ([_done("pass", None), _done("fail", "verdict")], False, 0),  # a known break: not new
        ([_done("error", "upstream")], False, 0),
        ([_done("error", "infrastructure")], False, 3),
        ([_done("error", None)], False, 3),  # a cause not recorded: never hidden as fine
        ([_done("error", "bad-input"), _done("error", "infrastructure")], False, 2),
        ([_done("error", "infrastructure"), _done("error", "bad-input")], True, 1),
        ([_done("error", "upstream"), _done("pass", None)], True, 1),
        # whatever the status, a cause that is ours is never a quiet 0
        ([_done("fail", "infrastructure")], False, 3),
        ([_done("warn", "verdict"), _done("fail", "upstream")], False, 0),
    ],
)
def test_exit_code_reads_the_cause_with_its_precedence(
    results: list[JobDone], new: bool, code: int
) -> None:
    ctx = _Ctx()
    assert exit_code(ctx, results, new_breakage=new) == code  # type: ignore[arg-type]


def test_exit_code_names_every_finding() -> None:
    ctx = _Ctx()
    results = [
        _done("error", "upstream"),
        _done("error", "bad-input", "evil\x1b[31m@1.0 6.1"),
        _done("error", "infrastructure"),
    ]
    assert exit_code(ctx, results, new_breakage=False) == 2  # type: ignore[arg-type]
    out = ctx.buf.getvalue()
    assert "1 job(s) have no verdict: the release fails there without the patch set too" in out
    assert "ktrack: bad input: evil\\x1b[31m@1.0 6.1: error summary" in out  # escaped
    assert "\x1b" not in out
    assert "1 job(s) ended in an infrastructure error" in out


def test_parse_rerun() -> None:
    assert parse_rerun("") == frozenset()
    assert parse_rerun("fail, error") == {Status.FAIL, Status.ERROR}
    assert parse_rerun("all") == frozenset(Status)
    with pytest.raises(UserError, match="unknown status"):
        parse_rerun("fail,broken")


# --- every report shows it --------------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Any:
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("demo")
        run = w.run()
        w.job(run, a, "6.1", status="fail", stage="build", summary="kernel/fork.c:42: error")
        w.job(run, a, "6.2", status="error", stage="build", cause="upstream",
              summary=UPSTREAM_SUMMARY)  # fmt: skip
        w.job(run, a, "6.3", status="error", stage="configure", cause="infrastructure",
              summary="infrastructure: no space left on device")  # fmt: skip
        w.job(run, a, "6.4", status="error", stage="apply", cause="bad-input",
              summary="bad input: 0001-a.patch: malformed", stages="apply")  # fmt: skip
        # a fail a stage marked as not the patch set's: shown as no verdict everywhere
        w.job(run, a, "6.5", status="fail", stage="boot", cause="infrastructure",
              summary="[boot] timeout", stages="apply,configure,build,boot")  # fmt: skip
        yield load_report_data(s)


def _cells(data: Any) -> dict[str, Any]:
    return {rel.version: c for _row, rel, _t, c in data.matrix.iter_cells()}


def test_matrix_json_and_report_json_carry_the_cause(data: Any) -> None:
    doc = data.matrix.to_json()
    causes = {c["release"]: c["cause"] for c in doc["cells"]}
    assert causes == {"6.1": "verdict", "6.2": "upstream", "6.3": "infrastructure",
                      "6.4": "bad-input", "6.5": "infrastructure"}  # fmt: skip
    jobs = {j["release"]: j for j in report_json(data)["jobs"]}
    assert jobs["6.2"]["cause"] == "upstream"
    build = next(s for s in jobs["6.2"]["stages"] if s["stage"] == "build")
    assert build["cause"] == "upstream"
    assert next(s for s in jobs["6.2"]["stages"] if s["stage"] == "apply")["cause"] is None
    cells = _cells(data)
    assert [v for v, c in cells.items() if c.is_break] == ["6.1"]
    assert all(verdict(data.matrix.jobs[c.job_id]) is None for v, c in cells.items() if v != "6.1")


def test_terminal_and_markdown_name_a_cause_that_is_not_a_verdict(data: Any) -> None:
    buf = io.StringIO()
    render_matrix(data.matrix, Console(file=buf, width=300, color_system=None))
    text = buf.getvalue()
    assert "build:error (upstream)" in text
    assert "configure:error (infrastructure)" in text
    assert "apply:error (bad-input)" in text
    assert "build:fail " in text and "build:fail (" not in text
    md = matrix_markdown(data.matrix)
    assert "build:error (upstream)" in md and "boot:fail (infrastructure)" in md


def test_junit_error_or_failure_follows_the_cause(data: Any, tmp_path: Path) -> None:
    xml = JUnitXml.fromfile(str(write_junit(data, tmp_path / "j.xml")))
    results: dict[tuple[str, str], list[Any]] = {}
    for suite in xml:
        for case in suite:
            results[(case.classname.rsplit("/", 1)[1], case.name)] = list(case.result)
    (fail,) = results[("6.1", "build")]
    assert isinstance(fail, Failure)
    for rel, stage, cause in [("6.2", "build", "upstream"), ("6.3", "configure", "infrastructure"),
                              ("6.4", "apply", "bad-input"), ("6.5", "boot", "infrastructure")]:  # fmt: skip
        (err,) = results[(rel, stage)]
        assert isinstance(err, Error) and err.type == cause, (rel, err)


def test_kcidb_never_fails_what_is_not_a_verdict(data: Any) -> None:
    doc = kcidb_report(data)
    builds = {b["misc"]["job"]: b for b in doc["builds"]}
    by_rel = {
        data.matrix.jobs[c.job_id].release: builds.get(c.job_key)
        for c in data.matrix.cells.values()
    }
    assert by_rel["6.1"]["status"] == "FAIL" and by_rel["6.1"]["misc"]["cause"] == "verdict"
    assert by_rel["6.2"]["status"] == "ERROR" and by_rel["6.2"]["misc"]["cause"] == "upstream"
    assert by_rel["6.3"]["status"] == "ERROR"
    boot = next(t for t in doc["tests"] if t["path"] == "boot")
    assert (boot["status"], boot["misc"]) == ("ERROR", {"cause": "infrastructure"})
    assert "FAIL" not in json.dumps([t["status"] for t in doc["tests"]])


def test_html_cell_page_shows_the_cause(data: Any, tmp_path: Path) -> None:
    out = tmp_path / "html"
    write_html(data, out)
    cells = _cells(data)
    page = (out / "c" / f"{cells['6.2'].job_id}.html").read_text()
    assert '<span id="cause">upstream</span>' in page
    assert "the release fails this stage without the patch set too" in page
    page = (out / "c" / f"{cells['6.3'].job_id}.html").read_text()
    assert '<span id="cause">infrastructure</span>' in page
    assert "<td>infrastructure</td>" in page  # the stage table's cause column
