"""A damaged or wrong database, a wrong home, concurrent syncs (issue 15, cases 6, 15, 16): one
line naming the problem, exit 2 or 3, and syncs that merge. Each test failed before its fix.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest_hostile import Kt
from conftest_releases import sha256, sums_asc

from tracker.cli import main


# -- 6 and 15. a damaged or wrong database, a wrong home: one line, exit 2 or 3 ---------------
def _rows_then_damage(db_path: Path) -> None:
    """A database with a real schema and rows, whose kernel_release table is then damaged
    (its root page's header overwritten); other tables, alembic's among them, still read."""
    from tracker.results.db import Database

    Database(f"sqlite:///{db_path}").dispose()
    con = sqlite3.connect(db_path)
    con.executemany(
        "INSERT INTO kernel_release (version, series, moniker, eol, feed, signed) "
        "VALUES (?, '6.1', 'stable', 0, 'f', 0)",
        [(f"6.1.{i}",) for i in range(3000)],
    )
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = con.execute(
        "SELECT rootpage FROM sqlite_master WHERE name='kernel_release'"
    ).fetchone()
    (size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    data = bytearray(db_path.read_bytes())
    data[(root - 1) * size : (root - 1) * size + 12] = b"\xff" * 12
    db_path.write_bytes(bytes(data))


@pytest.fixture
def damaged_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Kt:
    """``ktrack`` whose default database (home/tracker.db) is damaged."""
    kt = Kt(tmp_path, "", capsys)
    kt.home.mkdir()
    _rows_then_damage(kt.home / "tracker.db")
    return kt


def test_corrupt_sqlite_database_is_one_line_exit_3(damaged_db: Kt) -> None:
    kt = damaged_db
    rc, out, err = kt("releases", "list")
    assert rc == 3, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert "tracker.db" in err and "malformed" in err


def test_doctor_runs_the_sqlite_integrity_check(damaged_db: Kt) -> None:
    kt = damaged_db
    for extra in ((), ("--full",)):
        rc, out, _ = kt("doctor", "--no-fsck", "--json", *extra)
        db = {c["name"]: c for c in json.loads(out)["checks"]}["database"]
        assert rc == 3 and db["health"] == "fail", db
        assert "tracker.db: damaged" in db["detail"] and "(kernel_release)" in db["detail"], db


def test_sqlite_path_that_is_not_a_database_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notdb = tmp_path / "notes.txt"
    notdb.write_text("these are my notes, not a database\n" * 200)
    kt = Kt(tmp_path, "", capsys)
    rc, out, err = kt("--db", f"sqlite:///{notdb}", "releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert "notes.txt" in err and "not a database" in err
    assert notdb.read_text() == "these are my notes, not a database\n" * 200


@pytest.mark.parametrize("url", ["mysql://u@localhost/x", "oracle://u@h/x", "nosuch://x"])
def test_unsupported_database_scheme_is_one_line_exit_2(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    rc, out, err = kt("--db", url, "releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert url.split(":")[0] in err and "sqlite" in err and "postgresql" in err


def test_home_naming_a_regular_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    kt.home.write_text("a file\n")
    rc, out, err = kt("releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert str(kt.home) in err and "not a directory" in err
    assert kt.home.read_text() == "a file\n"


# -- 16. concurrent syncs of a fresh catalog merge ---------------------------------------------
def _big_mirror(tmp_path: Path, count: int = 300) -> str:
    pub = tmp_path / "mirror"
    folder = pub / "v6.x"
    folder.mkdir(parents=True)
    sums = {}
    for i in range(count):
        tb = folder / f"linux-6.1.{i}.tar.xz"
        tb.write_bytes(f"{i}".encode())
        sums[tb.name] = sha256(tb)
    (folder / "sha256sums.asc").write_text(sums_asc(sums))
    return pub.as_uri()


def _sync_at_once(config: Path, home: Path, db: str, barrier: object, out: object) -> None:
    import contextlib
    import io

    barrier.wait()  # type: ignore[attr-defined]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--config", str(config), "--home", str(home), "--db", db, "releases", "sync"])
    out.put((rc, err.getvalue()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_syncs_of_a_fresh_catalog_merge(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import multiprocessing

    from sqlalchemy import create_engine, text

    db = request.getfixturevalue("pg_url") if backend == "postgresql" else ""
    db = db or f"sqlite:///{tmp_path / 'tracker.db'}"
    config = tmp_path / "ktrack.toml"
    config.write_text(f'[feeds.mirror]\nkind = "mirror"\nurl = "{_big_mirror(tmp_path)}"\n')
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=_sync_at_once, args=(config, tmp_path / "home", db, barrier, out))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [rc for rc, _ in results] == [0, 0, 0], results
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version, COUNT(*) FROM kernel_release GROUP BY version"))
        counts: dict[str, int] = {str(v): int(n) for v, n in rows.all()}
    engine.dispose()
    assert len(counts) == 300 and set(counts.values()) == {1}
