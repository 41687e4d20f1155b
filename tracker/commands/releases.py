"""``ktrack releases sync [--feed NAME]`` and ``ktrack releases list [--json]``.

``releases list --json`` (schema ``ktrack.releases/1``), sorted by version::

    {"schema": "ktrack.releases/1",
     "releases": [{"version": "6.1.12", "series": "6.1", "moniker": "stable",
                   "released": "2023-02-14T18:30:00+00:00" | null, "eol": false,
                   "feed": "kernelorg", "source": "https://.../linux-6.1.12.tar.xz" | null,
                   "signed": true, "sha256": "..." | null, "store_ref": "v6.1.12" | null,
                   "in_store": true}]}

``releases sync --json`` (schema ``ktrack.releases-sync/1``): feeds, found, added, updated,
warnings.
"""

from __future__ import annotations

import argparse
import json

from tracker.cli import Context

SCHEMA = "ktrack.releases/1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="releases_command", metavar="ACTION", required=True)
    s = sub.add_parser(
        "sync",
        help="discover releases from the configured feeds into the catalog",
        description="discover releases from the configured feeds into the catalog\n\n"
        "example:\n  ktrack releases sync --feed kernelorg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--feed", metavar="NAME", help="only this feed (default: every feed)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    ls = sub.add_parser(
        "list",
        help="list the catalog, sorted by version",
        description="list the catalog, sorted by version\n\n"
        "example:\n  ktrack releases list --series 6.1 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ls.add_argument("--json", action="store_true", help=f"JSON output ({SCHEMA})")
    ls.add_argument("--series", metavar="SERIES", help="only this series, e.g. 6.1")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.releases import service

    if args.releases_command == "sync":
        summary = service.sync(ctx.settings, ctx.db, args.feed, warn=ctx.debug)
        if args.json:
            print(json.dumps({"schema": "ktrack.releases-sync/1", **summary.as_dict()}, indent=2))
        else:
            ctx.console.print(
                f"{summary.found} releases from {', '.join(summary.feeds)}: "
                f"{summary.added} new, {summary.updated} updated"
                + (
                    f", {len(summary.warnings)} warnings (-v shows them)"
                    if summary.warnings
                    else ""
                ),
                markup=False,
            )
        return 0
    entries = service.list_releases(ctx.settings, ctx.db)
    if args.series:
        entries = [e for e in entries if e.series == args.series]
    if args.json:
        print(json.dumps({"schema": SCHEMA, "releases": [e.as_dict() for e in entries]}, indent=2))
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("version", "series", "moniker", "released", "eol", "source", "store"):
        table.add_column(col, overflow="fold")
    for e in entries:
        source = e.source_url.rstrip("/").rsplit("/", 1)[-1] if e.source_url else "-"
        table.add_row(
            e.version,
            e.series,
            e.moniker,
            e.released_at.date().isoformat() if e.released_at else "-",
            "eol" if e.eol else "",
            source,
            "yes" if e.in_store else "",
        )
    if entries:
        ctx.console.print(table)
    else:
        ctx.info("the catalog is empty: run `ktrack releases sync`")
    return 0
