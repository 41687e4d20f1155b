"""Engine, sessions and migrations for the results database (SQLite default, PostgreSQL shared)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from tracker.errors import InfraError, KtrackError, UserError

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "db"
SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
SCHEME_HINT = "ktrack supports sqlite:///PATH and postgresql+psycopg://USER@HOST/DB"


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


def _where(url: str) -> str:
    """The database as a message names it: the file of a SQLite URL, else the redacted URL."""
    if url.startswith("sqlite") and "///" in url:
        return url.split("///", 1)[1] or url
    return _redact(url)


def is_damage(exc: BaseException) -> bool:
    """An error of the database itself (unreachable, locked, damaged, not a database), as
    opposed to one of ktrack's statements (an IntegrityError is for the caller to handle)."""
    return isinstance(exc, OperationalError) or type(exc) is DatabaseError


def database_error(exc: SQLAlchemyError, url: str) -> KtrackError:
    """One line naming the database and the problem: a file that is not a SQLite database is
    bad input (exit 2); anything else (damaged, locked, unreachable) is infrastructure (3)."""
    orig = getattr(exc, "orig", None)
    lines = (str(orig) if orig is not None else str(exc)).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    if (
        getattr(orig, "sqlite_errorname", "") == "SQLITE_NOTADB"
        or reason == "file is not a database"
    ):
        return UserError(
            f"{_where(url)}: not a SQLite database ({reason})",
            hint="point --db or [database] url at a ktrack database or a new file",
        )
    hint = None
    if getattr(orig, "sqlite_errorname", "") == "SQLITE_CORRUPT" or "malformed" in reason:
        hint = "the file is damaged: restore it from a backup; `ktrack doctor` checks it"
    return InfraError(f"database {_where(url)}: {reason}", hint=hint)


def _check_scheme(url: str) -> None:
    scheme = url.partition(":")[0].lower()
    if "://" not in url and not url.startswith("sqlite:"):
        raise UserError(f"not a usable database URL: {_redact(url)}", hint=SCHEME_HINT)
    if scheme not in SCHEMES:
        raise UserError(
            f"not a usable database URL: {_redact(url)}: unsupported database {scheme!r}",
            hint=SCHEME_HINT,
        )


def _sqlite_folder(path: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise UserError(
            f"{path}: cannot hold a database: {Path(path).parent} is not a directory"
        ) from exc
    except OSError as exc:
        raise InfraError(f"cannot create {Path(path).parent}: {exc.strerror}") from exc


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    _check_scheme(url)
    try:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                _sqlite_folder(path)
            engine = create_engine(url, connect_args={"timeout": 60})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=60000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return create_engine(url, pool_pre_ping=True, connect_args=_pg_args(url))
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError) as exc:
        raise UserError(
            f"not a usable database URL: {_redact(url)}",
            hint="use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        ) from exc


def _pg_args(url: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if url.startswith("postgresql") else {}


def check_connection(engine: Engine) -> None:
    """Raise InfraError naming the database when it cannot be reached."""
    try:
        with engine.connect():
            pass
    except DatabaseError as exc:
        if type(exc) is DatabaseError:  # SQLite: not a database, or a damaged one
            raise database_error(exc, engine.url.render_as_string(hide_password=True)) from exc
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InfraError(
            f"database unreachable: {_redact(engine.url.render_as_string(hide_password=True))}: {reason}"
        ) from exc


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> str | None:
    """Apply every pending migration; idempotent. Returns the head revision."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    check_connection(engine)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with _migration_lock(engine), engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # two processes migrating one fresh database at once: the second waits
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise InfraError(f"database error during migration: {exc.orig}") from exc


_PG_LOCK_KEY = 0x6B747261636B  # "ktrack"


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """For SQLite, a file lock beside the database serialises migrations of processes at once."""
    db_path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db_path or db_path == ":memory:":
        yield
        return
    from tracker.locks import file_lock

    with file_lock(Path(db_path + ".migrate.lock")):
        yield


def ensure_schema(engine: Engine) -> None:
    """Upgrade when the schema is missing or behind; cheap when it is current."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    check_connection(engine)
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise database_error(exc, engine.url.render_as_string(hide_password=True)) from exc
    if current != head:
        upgrade(engine)


def has_table(engine: Engine, name: str) -> bool:
    return inspect(engine).has_table(name)


class Database:
    """An engine plus a session factory."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            ensure_schema(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except DatabaseError as exc:
            s.rollback()
            if is_damage(exc):
                raise database_error(exc, self.url) from exc
            raise
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()
