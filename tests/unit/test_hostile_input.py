"""Hostile input, issue 15 items 7-12 and 20: each case is one test that failed before its fix.

The names are listed in docs/SECURITY.md ("Hostile input: reports, patches and names").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest_report import make_db, populate_sample

from tracker.cli import main as cli_main


@pytest.fixture
def sample_db(tmp_path: Path) -> str:
    db = make_db(tmp_path)
    with db.session() as s:
        populate_sample(s)
    return db.url


# --- 7: report --out never deletes what it did not write ------------------------------------


def test_report_out_refuses_a_folder_it_did_not_make(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "c").mkdir(parents=True)
    notes = out / "c" / "notes.html"
    notes.write_text("my notes")
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 2
    assert notes.read_text() == "my notes"
    assert sorted(p.name for p in out.rglob("*")) == ["c", "notes.html"]


def test_report_out_removes_only_its_own_stale_files(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 0
    pages = sorted(p.name for p in (out / "c").glob("*.html"))
    notes = out / "c" / "notes.html"
    notes.write_text("my notes")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    # a manifest edited to point out of the folder, at a folder, at a link: none is removed
    manifest = out / ".ktrack-report.json"
    doc = json.loads(manifest.read_text())
    (out / "link").symlink_to(outside)
    doc["files"].update(dict.fromkeys(["../outside.txt", "c", "link", "/etc/hostname"], "html"))
    manifest.write_text(json.dumps(doc))
    assert cli_main(["--db", sample_db, "report", "--out", str(out), "--patchset", "beta"]) == 0
    assert notes.read_text() == "my notes" and outside.read_text() == "keep"
    assert (out / "link").is_symlink()
    left = sorted(p.name for p in (out / "c").glob("*.html"))
    assert "notes.html" in left and len(left) < len(pages) + 1  # alpha's cells are gone
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "c").glob("*.html")) == sorted([*pages, "notes.html"])
    # a report in one format leaves the other formats' files alone
    assert cli_main(["--db", sample_db, "report", "--out", str(out), "--format", "json"]) == 0
    assert len(list((out / "c").glob("*.html"))) == len(pages) + 1
    assert (out / "index.html").is_file() and (out / "report.json").is_file()


# --- 8: a report of nothing that was asked for is bad input ---------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--run", "99999"], "no run 99999"),
        (["--patchset", "nope@1"], "no results for patch set 'nope'"),
        (["--patchset", "alpha@9.9"], "no results for alpha@9.9"),
    ],
)
def test_report_unknown_run_or_patchset_exits_2(
    sample_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    out = tmp_path / "site"
    assert cli_main(["--db", sample_db, "report", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
