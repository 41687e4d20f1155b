"""``ktrack regressions [--since RUN] [--fail-on-new] [--all] [--json]``.

Lists open regressions (and, with ``--all``, closed ones). New ones are those the latest run
opened, or with ``--since RUN`` those opened by any run after RUN and still open.
``--fail-on-new`` exits 1 when there is a new one.
"""

from __future__ import annotations

import argparse
import json

from tracker.cli import EXIT_BROKEN, EXIT_OK, Context

SCHEMA = "ktrack.regressions/1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", type=int, metavar="RUN", help="new = opened after run RUN")
    p.add_argument("--fail-on-new", action="store_true", help="exit 1 when there are new ones")
    p.add_argument("--all", action="store_true", help="include closed regressions")
    p.add_argument("--json", action="store_true", help=f"print JSON ({SCHEMA})")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.errors import UserError
    from tracker.report.terminal import render_regressions
    from tracker.results import queries
    from tracker.results.regressions import new_regressions

    if args.since is not None and args.since < 0:
        raise UserError(f"--since: not a run id: {args.since}")
    with ctx.db.session() as s:
        new = new_regressions(s, since_run=args.since)
        rows = queries.regressions(s, open_only=not args.all)
        latest = queries.latest_run_id(s)
    new_ids = {r.id for r in new}
    if args.json:
        doc = {
            "schema": SCHEMA,
            "latest_run": latest,
            "since": args.since,
            "new": [r.id for r in new],
            "regressions": [{**r.to_json(), "new": r.id in new_ids} for r in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        render_regressions(rows, ctx.console, new_ids=new_ids)
        if new:
            ctx.info(f"{len(new)} new regression(s)")
    return EXIT_BROKEN if (args.fail_on_new and new) else EXIT_OK
