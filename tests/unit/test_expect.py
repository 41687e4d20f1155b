"""``ktrack matrix --expect FILE``: the matrix compared with expected cells (what ``scripts/demo``
checks): agreement exits 0; a differing cell, a rule that matches nothing and (with ``complete``)
an unexpected cell each exit 1 with one line on stderr; a malformed file is bad input (2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_report import World, make_db

from tracker.cli import main as cli_main
from tracker.errors import UserError
from tracker.report.expect import check, load_expectations
from tracker.report.matrix import build_matrix

FULL = "apply,configure,build,boot,test"
DEMO = Path(__file__).resolve().parents[2] / "ci" / "demo-expect.toml"


def _demo_world(tmp_path: Path, *, broken: bool = False, extra: bool = False):
    """The demo's matrix: each set's own kernel passes through test, the other fails at apply."""
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        r = w.run()
        for name in ("vcontext", "beancounters"):
            for version, own, other in (
                ("0.1", "6.1.192", "6.12.117"),
                ("0.2", "6.12.117", "6.1.192"),
            ):
                psv = w.psv(name, version)
                if broken and (name, version) == ("beancounters", "0.2"):
                    w.job(r, psv, own, status="fail", stage="boot", stages=FULL, summary="panic")
                else:
                    w.job(r, psv, own, stage="test", stages=FULL)
                w.job(r, psv, other, status="fail", stage="apply", stages=FULL)
        if extra:
            w.job(r, w.psv("vcontext", "0.1"), "6.6", stage="apply", stages="apply")
    return db


def _cli(db, *argv: str) -> int:
    return cli_main(["--db", db.url, "matrix", "--json", *argv])


def test_the_demo_matrix_agrees(tmp_path, capsys):
    db = _demo_world(tmp_path)
    with db.session() as s:
        assert check(build_matrix(s), load_expectations(DEMO)) == []
    assert _cli(db, "--expect", str(DEMO)) == 0


def test_a_differing_cell_fails_and_is_named(tmp_path, capsys):
    db = _demo_world(tmp_path, broken=True)
    capsys.readouterr()
    assert _cli(db, "--expect", str(DEMO)) == 1
    err = capsys.readouterr().err
    assert (
        "beancounters@0.2 × 6.12.117 × x86_64:tinyconfig: expected test:pass, got boot:fail" in err
    )
    assert err.count("expected") == 1


def test_unexpected_and_missing_cells_fail(tmp_path, capsys):
    db = _demo_world(tmp_path, extra=True)
    capsys.readouterr()
    assert _cli(db, "--expect", str(DEMO)) == 1
    assert "vcontext@0.1 × 6.6 × x86_64:tinyconfig: unexpected cell apply:pass" in (
        capsys.readouterr().err
    )
    rules = tmp_path / "more.toml"
    rules.write_text(
        DEMO.read_text() + '\n[[cell]]\npatchset = "vcontext"\nversion = "0.3"\nseries = "6.1"\n'
        'stage = "test"\nstatus = "pass"\n'
    )
    db2 = _demo_world(tmp_path / "b")
    assert _cli(db2, "--expect", str(rules)) == 1
    assert "vcontext@0.3 × series 6.1: expected test:pass, no cell" in capsys.readouterr().err


def test_hostile_reasons_are_escaped(tmp_path, capsys):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        w.job(
            w.run(), w.psv("a", "1"), "6.1", status="fail", stage="apply", summary="\x1b[2J\u202e"
        )
    rules = tmp_path / "r.toml"
    rules.write_text(
        '[[cell]]\npatchset="a"\nversion="1"\nrelease="6.1"\nstage="apply"\nstatus="pass"\n'
    )
    capsys.readouterr()
    assert _cli(db, "--expect", str(rules)) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "apply:fail" in err


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no [[cell]] expectations"),
        ("complete = 1\n[[cell]]\n", "complete: expected true or false"),
        ("cells = []\n", "unknown key 'cells'"),
        ('[[cell]]\npatchset="a"\nversion="1"\nstage="test"\nstatus="pass"\n', "exactly one of"),
        (
            '[[cell]]\npatchset="a"\nversion="1"\nseries="6.1"\nstage="run"\nstatus="pass"\n',
            "'run' is not a valid Stage",
        ),
        (
            '[[cell]]\npatchset="a"\nversion=1\nseries="6.1"\nstage="test"\nstatus="pass"\n',
            "version",
        ),
        ("[[cell", "malformed TOML"),
    ],
)
def test_malformed_expectations_are_bad_input(tmp_path, text, message):
    path = tmp_path / "e.toml"
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        load_expectations(path)
    assert message in str(exc.value)
    db = make_db(tmp_path)
    assert _cli(db, "--expect", str(path)) == 2
