"""`ktrack report`: every format from one sample world; escaping; ranges; Markdown; JSON schemas."""

from __future__ import annotations

import json
import re

import pytest
from conftest_report import HTML_LOG, XSS_PATCH, World, make_db, populate_sample

from tracker.cli import main as cli_main
from tracker.errors import UserError
from tracker.report.data import load_report_data
from tracker.report.markdown import escape, matrix_markdown, summary_markdown
from tracker.report.matrix import build_matrix
from tracker.report.ranges import ALL_TARGETS, compute_ranges, dkms_conf
from tracker.report.writer import parse_formats


@pytest.fixture
def sample(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        info = populate_sample(s)
        info["ids"] = {k: v.id for k, v in info.items() if hasattr(v, "id")}
    return db, info


def test_report_command_writes_every_format(sample, tmp_path, capsys):
    db, _ = sample
    out = tmp_path / "site"
    assert cli_main(["--db", db.url, "report", "--out", str(out)]) == 0
    for name in (
        "index.html",
        "report.json",
        "matrix.json",
        "junit.xml",
        "summary.md",
        "kcidb.json",
        "ranges.json",
        "dkms-ranges.conf",
    ):
        assert (out / name).is_file(), name
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == "ktrack.report/1"
    assert doc["matrix"]["schema"] == "ktrack.matrix/1"
    assert json.loads((out / "ranges.json").read_text())["schema"] == "ktrack.ranges/1"
    alpha_612 = [j for j in doc["jobs"] if j["patchset"] == "alpha" and j["release"] == "6.12"]
    assert {j["status"] for j in alpha_612} == {"fail", "error"}
    cells = list((out / "c").glob("*.html"))
    assert len(cells) == len(doc["jobs"])
    assert len(list((out / "p").glob("*.html"))) == 2


def test_report_rejects_unknown_format(sample, tmp_path):
    db, _ = sample
    assert (
        cli_main(["--db", db.url, "report", "--out", str(tmp_path / "x"), "--format", "pdf"]) == 2
    )
    with pytest.raises(UserError):
        parse_formats(" , ")


def test_html_escapes_everything_from_the_database(sample, tmp_path):
    db, info = sample
    out = tmp_path / "site"
    assert cli_main(["--db", db.url, "report", "--out", str(out), "--format", "html"]) == 0
    pages = [out / "index.html", *(out / "c").glob("*.html"), *(out / "p").glob("*.html")]
    for page in pages:
        text = page.read_text()
        # the only <script> is ours, and no raw payload survives anywhere
        assert text.count("<script") == (1 if page.name == "index.html" else 0), page
        assert "<script>alert" not in text and "<img src=x" not in text, page
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), (
            page
        )  # no external assets
    cell_pages = "".join(p.read_text() for p in (out / "c").glob("*.html"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.patch" in cell_pages
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in cell_pages
    assert "other_call(&lt;vma&gt;); /* &lt;/pre&gt; */" in cell_pages  # the release's text
    assert "0123456789abcdef0123456789abcdef01234567" in cell_pages  # the culprit
    assert "implicit declaration of &#39;foo&#39; &lt;stdio.h&gt;" in cell_pages  # build errors
    assert "Kernel panic - not syncing: &lt;VFS&gt;" in cell_pages  # boot tail
    index = (out / "index.html").read_text()
    assert "Content-Security-Policy" in index and "'sha256-" in index
    psv_page = (out / "p" / f"{info['ids']['alpha']}.html").read_text()
    assert '<svg id="timeline"' in psv_page and '<svg id="drift"' in psv_page
    # newest apply result is 6.12: patch 3 still applies there, its offset growing release by release
    assert "offset grew over the last 3 releases to 27 lines on 6.12" in psv_page
    assert "BUILD_EXCLUSIVE_KERNEL_MIN=&#34;6.1&#34;" in psv_page


def test_ranges_and_dkms(sample):
    db, _ = sample
    with db.session() as s:
        m = build_matrix(s)
    ranges = {(r.patchset, r.target): r for r in compute_ranges(m)}
    alpha = ranges[("alpha", ALL_TARGETS)]
    assert (alpha.oldest, alpha.newest) == ("6.1", "6.6")  # 6.12 fails on x86_64
    x86 = ranges[("alpha", "x86_64:tinyconfig")]
    assert x86.passing == ("6.1", "6.1.5", "6.1.9", "6.6") and x86.tested == 5
    arm = ranges[("alpha", "arm64:defconfig")]
    assert arm.tested == 3  # the infrastructure error on 6.12 is no verdict
    beta = ranges[("beta", ALL_TARGETS)]
    assert (beta.oldest, beta.newest) == ("6.1.9", "6.1.9")
    conf = dkms_conf(alpha)  # 6.6 was only apply-checked: not in the DKMS bounds
    assert 'BUILD_EXCLUSIVE_KERNEL_MIN="6.1"\nBUILD_EXCLUSIVE_KERNEL_MAX="6.1.9"' in conf
    assert "# left out, not verified through build: 6.6(apply)" in conf


def test_ranges_list_failures_inside(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("a")
        r = w.run()
        for v, st in (("6.1", "pass"), ("6.2", "fail"), ("6.3", "pass"), ("6.4", "fail")):
            w.job(r, a, v, status=st)
        m = build_matrix(s)
    (rg,) = [x for x in compute_ranges(m) if x.target == ALL_TARGETS]
    assert (rg.oldest, rg.newest, rg.failing_inside) == ("6.1", "6.3", ("6.2",))
    assert "fails inside the range on: 6.2" in dkms_conf(rg)


def test_markdown_escapes_and_summarises(sample):
    db, _ = sample
    assert escape("a|b <c> `d` *e*") == "a\\|b &lt;c&gt; \\`d\\` \\*e\\*"
    with db.session() as s:
        data = load_report_data(s)
    md = summary_markdown(data)
    assert "### ktrack compatibility report" in md
    assert "<script" not in md
    assert "| alpha@1.0 |" in md
    table = matrix_markdown(data.matrix)
    # first table: arm64, with releases newest first, one column each
    assert "#### arm64:defconfig" in table
    header = next(line for line in table.splitlines() if line.startswith("| patch set"))
    assert header == "| patch set | 6.12 | 6.1.9 | 6.1.5 | 6.1 |"
    assert "❌ apply:fail" in table and "🛠️ build:error" in table


def test_matrix_command_formats(sample, capsys):
    db, _ = sample
    assert cli_main(["--db", db.url, "matrix", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ktrack.matrix/1" and doc["counts"]["error"] == 1
    assert cli_main(["--db", db.url, "matrix", "--markdown"]) == 0
    assert "| patch set |" in capsys.readouterr().out
    assert cli_main(["--db", db.url, "matrix"]) == 0
    out = capsys.readouterr().out
    assert "apply:fail" in out and "test:pass" in out
    assert HTML_LOG not in out and XSS_PATCH not in out  # names/summaries are not in the table


def test_drift_warnings_fuzz_and_growth():
    from datetime import UTC, datetime

    from tracker.report.html import drift_warnings
    from tracker.results.queries import JobRow, PatchRow
    from tracker.vocab import Stage, Status

    def job(i, rel):
        return JobRow(
            i,
            f"k{i}",
            1,
            1,
            "a",
            "1",
            i,
            rel,
            "6",
            "mainline",
            "x86_64:tinyconfig",
            "apply",
            Status.PASS,
            Stage.APPLY,
            "",
            None,
            datetime.now(UTC),
            1,
        )

    def prow(i, name, klass, off, fuzz):
        return PatchRow(i, 1, name, klass, 1, 0, fuzz, off, False)

    jobs = [job(1, "6.1"), job(2, "6.2"), job(3, "6.3")]
    patches = {
        1: [
            prow(1, "steady", "offset", 5, 0),
            prow(1, "fuzzy", "clean", 0, 0),
            prow(1, "gone", "clean", 0, 0),
        ],
        2: [
            prow(2, "steady", "offset", 5, 0),
            prow(2, "fuzzy", "clean", 0, 0),
            prow(2, "gone", "offset", 4, 0),
        ],
        3: [
            prow(3, "steady", "offset", 5, 0),
            prow(3, "fuzzy", "fuzz", 2, 1),
            prow(3, "gone", "conflict", 0, 0),
        ],
    }
    got = {w.patch: w.text for w in drift_warnings(jobs, patches)}
    assert got == {"fuzzy": "applies on 6.3 only with fuzz 1"}  # steady: no growth; gone: broken


def test_open_regression_in_every_summary(tmp_path):
    from tracker.report.writer import write_report
    from tracker.results.regressions import update_regressions

    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r = w.run()
        w.job(r, a, "6.2")
        bad = w.job(r, a, "6.3", status="fail", stage="build", summary="error: boom")
        (reg,) = update_regressions(s, r.id).new
        write_report(s, tmp_path / "out", ["html", "json", "markdown"])
    index = (tmp_path / "out" / "index.html").read_text()
    assert f'<a href="c/{bad.id}.html">6.3</a>' in index
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [x["first_bad_release"] for x in doc["regressions"]] == ["6.3"]
    assert doc["regressions"][0]["open"] is True
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "#### Open regressions" in md and "| 6.2 | 6.3 |" in md
