"""``ktrack report --out DIR [--format html,json,junit,markdown,kcidb,ranges]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracker.cli import EXIT_OK, Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument(
        "--format",
        default="html,json,junit,markdown,kcidb,ranges",
        metavar="LIST",
        help="comma-separated: html, json, junit, markdown, kcidb, ranges (default: all)",
    )
    p.add_argument("--patchset", action="append", metavar="NAME[@VER]", help="only this patch set")
    p.add_argument("--run", type=int, metavar="ID", help="only the jobs run ID covered")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.report.writer import parse_formats, write_report

    formats = parse_formats(args.format)
    with ctx.db.session() as s:
        written = write_report(
            s,
            Path(args.out),
            formats,
            patchsets=args.patchset,
            run_id=args.run,
            progress=ctx.debug,
            patchset_paths=ctx.settings.patchset_paths,
        )
    for w in written:
        ctx.console.print(f"{w.format}: {w.path}", markup=False)
    return EXIT_OK
