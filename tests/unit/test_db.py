"""Migrations against models: SQLite and PostgreSQL, idempotent upgrade, no drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from tracker.errors import InfraError, UserError
from tracker.results.db import Database, make_engine, upgrade
from tracker.results.models import Base


def _assert_no_drift(url: str) -> None:
    engine = make_engine(url)
    try:
        first = upgrade(engine)
        second = upgrade(engine)  # a no-op
        assert first == second == "0001" or first == second
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    _assert_no_drift(f"sqlite:///{tmp_path / 'a.db'}")


def test_postgresql_migrations_match_models(pg_url: str) -> None:
    _assert_no_drift(pg_url)


def test_database_session_roundtrip(tmp_path: Path) -> None:
    from tracker.results.models import Patchset

    db = Database(f"sqlite:///{tmp_path / 'x' / 'b.db'}")
    with db.session() as s:
        s.add(Patchset(name="p"))
    with db.session() as s:
        assert s.query(Patchset).one().name == "p"
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_unreachable_database_is_infra_error() -> None:
    with pytest.raises(InfraError, match="database unreachable"):
        Database("postgresql+psycopg://nobody@127.0.0.1:9/none")


def test_unusable_url_is_user_error() -> None:
    with pytest.raises(UserError, match="not a usable database URL"):
        Database("nosuchdb://x/y")


def test_migration_0004_recomputes_job_status_from_stage_rows(tmp_path: Path) -> None:
    _migrate_0004_with_rows(f"sqlite:///{tmp_path / 'old.db'}")


def test_migration_0004_on_postgresql(pg_url: str) -> None:
    _migrate_0004_with_rows(pg_url)


def _migrate_0004_with_rows(url: str) -> None:
    """Jobs recorded before 0004 held their last stage's status: apply warn, boot warn and test
    pass showed as pass. The migration gives them the worst stage's status, cause and summary."""
    from alembic import command
    from sqlalchemy import text

    from tracker.results.db import alembic_config

    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO kernel_release (id, version, series, moniker, eol, feed, signed) "
            "VALUES (1, '6.1', '6.1', 'stable', :no, 't', :no)"
        ), {"no": False})  # fmt: skip
        conn.execute(text("INSERT INTO patchset (id, name) VALUES (1, 'demo')"))
        conn.execute(text(
            "INSERT INTO patchset_version (id, patchset_id, version, content_hash) "
            "VALUES (1, 1, '1', 'h')"
        ))  # fmt: skip
        jobs = {1: ("pass", "test", True), 2: ("error", "build", True), 3: ("skip", None, False)}
        for job_id, (status, furthest, finished) in jobs.items():
            conn.execute(
                text(
                    "INSERT INTO job (id, key, patchset_version_id, release_id, target, stages, "
                    "status, furthest_stage, summary, finished, attempts) VALUES (:id, :key, 1, 1, "
                    "'x86_64:tinyconfig', 'apply,configure,build,boot,test', :status, :furthest, "
                    "'last stage', :finished, 1)"
                ),
                {"id": job_id, "key": f"k{job_id}", "status": status, "furthest": furthest,
                 "finished": finished},
            )  # fmt: skip
        rows = [
            (1, "apply", "warn", "verdict", "0001-a.patch: offset 4"),
            (1, "configure", "pass", None, "configured"),
            (1, "build", "pass", None, "built"),
            (1, "boot", "warn", "verdict", "WARNING: at kernel/fork.c:42"),
            (1, "test", "pass", None, "3 tests passed"),
            (2, "apply", "warn", "verdict", "fuzz 1"),
            (2, "configure", "pass", None, "configured"),
            (2, "build", "error", "upstream", "no verdict: 6.1 fails build without ..."),
            (2, "boot", "skip", None, "an earlier stage did not pass"),
            (3, "apply", "pass", None, "applied"),  # never finished: left as it is
        ]
        for job_id, stage, status, cause, summary in rows:
            conn.execute(
                text(
                    "INSERT INTO stage_result (job_id, stage, status, cause, summary, detail) "
                    "VALUES (:j, :st, :status, :cause, :summary, :detail)"
                ),
                {
                    "j": job_id,
                    "st": stage,
                    "status": status,
                    "cause": cause,
                    "summary": summary,
                    "detail": "{}",
                },  # fmt: skip
            )
    assert upgrade(engine) == "0004"
    with engine.connect() as conn:
        got = {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                text("SELECT id, status, cause, furthest_stage, summary, toolchain FROM job")
            )
        }
    engine.dispose()
    assert got == {
        1: ("warn", "verdict", "test", "0001-a.patch: offset 4", None),
        2: ("error", "upstream", "build", "no verdict: 6.1 fails build without ...", None),
        3: ("skip", None, None, "last stage", None),
    }
