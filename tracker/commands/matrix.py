"""``ktrack matrix [--json | --markdown] [--patchset NAME]... [--run ID] [--expect FILE]``: the
compatibility matrix; with ``--expect`` it is compared with expected cells (exit 1 on a difference,
each listed on stderr; see ``tracker/report/expect.py``)."""

from __future__ import annotations

import argparse
import json

from tracker.cli import EXIT_BROKEN, EXIT_OK, Context


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
    p.add_argument(
        "--expect",
        metavar="FILE",
        help="TOML of expected cells ([[cell]] patchset, version, series|release, stage, status): "
        "exit 1 when the matrix differs",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.report.bisect import matrix_culprits
    from tracker.report.data import check_selection
    from tracker.report.matrix import build_matrix

    expected = None
    if args.expect:
        from pathlib import Path

        from tracker.report.expect import load_expectations

        expected = load_expectations(Path(args.expect))
    with ctx.db.session() as s:
        check_selection(s, patchsets=args.patchset, run_id=args.run)
        m = build_matrix(s, patchsets=args.patchset, run_id=args.run)
        culprits = matrix_culprits(s, m)  # what `ktrack bisect` recorded for failing cells
    if args.json:
        doc = m.to_json()
        if culprits:
            doc["culprits"] = [{k: v for k, v in c.items() if k != "line"} for c in culprits]
        print(json.dumps(doc, indent=2))
    elif args.markdown:
        from tracker.report.markdown import matrix_markdown

        print(matrix_markdown(m), end="")
    else:
        from tracker.report.terminal import render_matrix

        render_matrix(m, ctx.console)
        for c in culprits:
            ctx.console.print(c["line"], markup=False)
    if expected is not None:
        from tracker.report.expect import check

        problems = check(m, expected)
        for line in problems:
            ctx.err.print(f"ktrack: matrix: {line}", markup=False, highlight=False)
        if problems:
            return EXIT_BROKEN
        ctx.info(f"matrix: as expected ({len(expected.cells)} rule(s))")
    return EXIT_OK
