"""The matrix model: latest finished job per cell, releases grouped by series newest first."""

from __future__ import annotations

import io
import json

from conftest_report import World, make_db
from rich.console import Console

from tracker.report.matrix import build_matrix
from tracker.report.terminal import render_matrix
from tracker.vocab import Stage, Status


def test_matrix_orders_series_newest_first_and_takes_latest_job(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha", "1.0")
        b = w.psv("beta", "2.0")
        r1 = w.run()
        for v in ("6.1", "6.1.12", "6.1.2", "6.12-rc3", "6.12", "6.6.7"):
            w.job(r1, a, v, status="pass", stage="build")
        w.job(r1, b, "6.12", status="fail", stage="apply", summary="0002-x.patch conflicts\nmore")
        old = w.job(r1, a, "6.6.7", status="fail", stage="build", target="arm64:defconfig")
        r2 = w.run()
        new = w.job(r2, a, "6.6.7", status="pass", stage="boot", target="arm64:defconfig")
        w.job(r2, a, "6.1", status="fail", stage="apply", finished=False)  # unfinished: ignored
    with db.session() as s:
        m = build_matrix(s)
    assert [r.version for r in m.releases] == [
        "6.12",
        "6.12-rc3",
        "6.6.7",
        "6.1.12",
        "6.1.2",
        "6.1",
    ]
    assert [g.series for g in m.series_groups] == ["6.12", "6.6", "6.1"]
    assert m.targets == ("arm64:defconfig", "x86_64:tinyconfig")
    assert [r.name for r in m.rows] == ["alpha@1.0", "beta@2.0"]
    cell = m.cells[(a.id, w.release("6.6.7").id, "arm64:defconfig")]
    assert cell.job_key == new.key and cell.job_key != old.key
    assert cell.label == "boot:pass"
    bcell = m.cells[(b.id, w.release("6.12").id, "x86_64:tinyconfig")]
    assert bcell.status is Status.FAIL and bcell.furthest_stage is Stage.APPLY
    assert bcell.reason == "0002-x.patch conflicts"
    assert m.cells[(a.id, w.release("6.1").id, "x86_64:tinyconfig")].status is Status.PASS

    doc = m.to_json()
    assert doc["schema"] == "ktrack.matrix/1"
    json.dumps(doc)  # serialisable
    assert {c["release"] for c in doc["cells"] if c["patchset"] == "beta"} == {"6.12"}
    assert doc["counts"]["fail"] == 1

    with db.session() as s:
        only_b = build_matrix(s, patchsets=["beta"])
        only_run2 = build_matrix(s, run_id=r2.id)
        versioned = build_matrix(s, patchsets=["alpha@1.0"])
    assert [r.name for r in only_b.rows] == ["beta@2.0"]
    assert len(only_run2.cells) == 1
    assert [r.name for r in versioned.rows] == ["alpha@1.0"]


def test_terminal_render_shows_stage_status_labels(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("[bold]alpha", "1.0")
        r = w.run()
        w.job(r, a, "6.1", status="fail", stage="build")
        w.job(r, a, "6.2", status="error", stage="boot")
    with db.session() as s:
        m = build_matrix(s)
    buf = io.StringIO()
    render_matrix(m, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "build:fail" in out
    assert "boot:error" in out
    assert "[bold]alpha@1.0" in out  # names are not rich markup


def test_empty_matrix(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        m = build_matrix(s)
    assert m.rows == () and m.to_json()["cells"] == []
    buf = io.StringIO()
    render_matrix(m, Console(file=buf, width=100))
    assert "no finished jobs" in buf.getvalue()
