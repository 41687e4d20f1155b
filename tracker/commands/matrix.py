"""``ktrack matrix [--json | --markdown] [--patchset NAME]... [--run ID]``: the compatibility matrix."""

from __future__ import annotations

import argparse
import json

from tracker.cli import EXIT_OK, Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON (ktrack.matrix/1)")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--patchset",
        action="append",
        metavar="NAME[@VER]",
        help="only this patch set (repeatable)",
    )
    p.add_argument("--run", type=int, metavar="ID", help="only the jobs run ID covered")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.report.matrix import build_matrix

    with ctx.db.session() as s:
        m = build_matrix(s, patchsets=args.patchset, run_id=args.run)
    if args.json:
        print(json.dumps(m.to_json(), indent=2))
    elif args.markdown:
        from tracker.report.markdown import matrix_markdown

        print(matrix_markdown(m), end="")
    else:
        from tracker.report.terminal import render_matrix

        render_matrix(m, ctx.console)
    return EXIT_OK
