"""``ktrack db upgrade``: create or update the results schema (idempotent)."""

from __future__ import annotations

import argparse

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    sub.add_parser("upgrade", help="apply pending migrations (a no-op when current)")
    sub.add_parser("current", help="print the schema revision")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.results.db import make_engine, upgrade

    engine = make_engine(ctx.settings.db_url)
    try:
        if args.db_command == "upgrade":
            rev = upgrade(engine)
            ctx.console.print(f"database at revision {rev}", markup=False)
        else:
            from alembic.runtime.migration import MigrationContext

            from tracker.results.db import check_connection

            check_connection(engine)
            with engine.connect() as conn:
                rev = MigrationContext.configure(conn).get_current_revision()
            ctx.console.print(rev or "(empty)", markup=False)
    finally:
        engine.dispose()
    return 0
