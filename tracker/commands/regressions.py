"""``ktrack regressions [--since RUN|DURATION] [--fail-on-new] [--all] [--json]``.

Lists open regressions (and, with ``--all``, closed ones). New ones are those the latest run
opened, or with ``--since`` those opened by any run after that point and still open: ``--since
RUN`` (a run id: the runs after it) or ``--since DURATION`` (``90m``, ``24h``, ``7d``, ``2w``, or
sums such as ``1d12h``: the runs started within that time). A scheduled job that makes two runs a
day judges both with ``--since 24h`` (or the run id it noted before them): a regression the first
run opened and the second kept is still new. ``--fail-on-new`` exits 1 when there is a new one.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta

from tracker.cli import EXIT_BROKEN, EXIT_OK, Context
from tracker.errors import UserError

SCHEMA = "ktrack.regressions/1"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:[0-9]{1,6}[smhdw])+")


def parse_since(text: str) -> int | timedelta:
    """``--since``: a run id (``42``) or a duration (``24h``, ``7d``, ``1d12h``)."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    if _DURATION.fullmatch(text):
        seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"([0-9]+)([smhdw])", text))
        if seconds > 0:
            return timedelta(seconds=seconds)
    raise UserError(
        f"--since: not a run id nor a duration: {text!r}",
        hint="give a run id (42) or a duration such as 30m, 24h, 7d, 1d12h",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--since",
        metavar="RUN|DURATION",
        help="new = opened by a run after run RUN, or by a run started within DURATION "
        "(30m, 24h, 7d, 1d12h), and still open (default: opened by the latest run)",
    )
    p.add_argument("--fail-on-new", action="store_true", help="exit 1 when there are new ones")
    p.add_argument("--all", action="store_true", help="include closed regressions")
    p.add_argument("--json", action="store_true", help=f"print JSON ({SCHEMA})")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from datetime import UTC, datetime

    from tracker.report.terminal import render_regressions
    from tracker.results import queries
    from tracker.results.regressions import new_regressions, run_before

    since = parse_since(args.since) if args.since is not None else None
    with ctx.db.session() as s:
        since_run = (
            run_before(s, datetime.now(UTC) - since) if isinstance(since, timedelta) else since
        )
        new = new_regressions(s, since_run=since_run)
        rows = queries.regressions(s, open_only=not args.all)
        latest = queries.latest_run_id(s)
    new_ids = {r.id for r in new}
    if args.json:
        doc = {
            "schema": SCHEMA,
            "latest_run": latest,
            "since": since_run,
            "new": [r.id for r in new],
            "regressions": [{**r.to_json(), "new": r.id in new_ids} for r in rows],
        }
        print(json.dumps(doc, indent=2))
    else:
        render_regressions(rows, ctx.console, new_ids=new_ids)
        if new:
            where = f" since run {since_run}" if since_run is not None else ""
            ctx.info(f"{len(new)} new regression(s){where}")
    return EXIT_BROKEN if (args.fail_on_new and new) else EXIT_OK
