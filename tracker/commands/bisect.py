"""``ktrack bisect``: the upstream commit that broke a patch set between two releases."""

from __future__ import annotations

import argparse
import json

from tracker.cli import Context

STAGES = ("apply", "configure", "build", "boot", "test")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "patchset", metavar="PATCHSET[@VER]", help="the patch set (default: newest version)"
    )
    p.add_argument("--good", required=True, metavar="KERNEL", help="a release where it passes")
    p.add_argument("--bad", required=True, metavar="KERNEL", help="a later release where it fails")
    p.add_argument(
        "--stage",
        choices=STAGES,
        default="apply",
        help="the stage to bisect (default: apply; later stages build the commits, cached by tree)",
    )
    p.add_argument(
        "--target",
        metavar="ARCH:CONFIG",
        help="target for configure/build/boot (default: the set's first [track] target)",
    )
    p.add_argument("--json", action="store_true", help="print ktrack.bisect/1 JSON")
    p.add_argument("--no-store", action="store_true", help="do not record the culprit")
    p.epilog = (
        (p.epilog or "example:\n  ktrack bisect vcontext@0.2 --good 6.1 --bad 6.2")
        + "\n  ktrack bisect vcontext --good 6.1 --bad 6.2 --stage build --json\n\n"
        "The release store must hold upstream history between the two releases "
        "(a feed of kind 'git').\n"
        "exit codes: 0 culprit found (or suspects listed), 2 bad input (reversed releases, "
        "already failing at --good, no history), 3 infrastructure error"
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.bisect.service import bisect_patchset
    from tracker.report.bisect import render, to_json

    ctx.info(f"bisecting {args.patchset} between {args.good} and {args.bad} ({args.stage})")
    result = bisect_patchset(
        ctx.settings,
        None if args.no_store else ctx.db,
        args.patchset,
        args.good,
        args.bad,
        args.stage,
        target=args.target,
        store=not args.no_store,
    )
    if args.json:
        print(json.dumps(to_json(result), indent=2))
    else:
        for line in render(result):
            ctx.console.print(line, markup=False, highlight=False)
    if result.not_stored is not None:
        ctx.info(f"ktrack: warning: {result.not_stored}")
    return 0
