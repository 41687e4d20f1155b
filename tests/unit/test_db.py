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
