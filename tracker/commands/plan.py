"""``ktrack plan``: the jobs a run would do, as a table, JSON or a GitHub Actions matrix."""

from __future__ import annotations

import argparse
import json

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patchset", action="append", default=[], metavar="NAME[@VER]")
    p.add_argument("--kernels", metavar="SPEC")
    p.add_argument("--target", action="append", default=[], metavar="ARCH:CONFIG")
    p.add_argument("--stages", default="apply,configure,build,boot,test", metavar="LIST")
    p.add_argument("--format", choices=("table", "json", "github-matrix"), default="table")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.pipeline.plan import PLAN_SCHEMA, plan
    from tracker.vocab import Stage

    with ctx.db.session() as s:
        jobs = plan(
            ctx.settings,
            s,
            patchsets=args.patchset,
            kernels=args.kernels,
            stages=Stage.parse_list(args.stages),
            targets=args.target,
        )
    if args.format == "json":
        print(json.dumps({"schema": PLAN_SCHEMA, "jobs": [j.to_json() for j in jobs]}, indent=2))
    elif args.format == "github-matrix":
        print(json.dumps({"include": [{"key": j.key, "name": j.label} for j in jobs]}))
    else:
        from rich.table import Table

        table = Table("key", "patch set", "release", "target", "stages")
        for j in jobs:
            table.add_row(
                j.key[:12], f"{j.patchset}@{j.version}", j.release, j.target, ",".join(j.stages)
            )
        ctx.console.print(table)
    return 0
