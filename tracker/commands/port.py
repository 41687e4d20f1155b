"""``ktrack port PATCHSET@VER --to KERNEL [--out DIR] [--json]``: propose the forward-port.

Exit 0 when every patch was ported automatically (applied, merged, dropped or kept), 1 when
something needs a human, 2 on bad input, 3 on an infrastructure error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "patchset", metavar="PATCHSET@VER", help="the version to port, e.g. vcontext@0.1"
    )
    p.add_argument(
        "--to", required=True, metavar="KERNEL", help="the target release, e.g. 6.12.117"
    )
    p.add_argument(
        "--from",
        dest="from_",
        metavar="KERNEL",
        help="the release the version was written for (default: the newest of its base series "
        "in the store, else in the catalog)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write the refreshed quilt series, conflicts, port.json and patchset.toml here; "
        "a rerun keeps the patches you fixed in DIR",
    )
    p.add_argument("--json", action="store_true", help="print the ktrack.port/1 JSON")


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.errors import UserError
    from tracker.patchsets.manifest import resolve
    from tracker.port.service import port
    from tracker.versions import KernelVersion

    if "@" not in args.patchset:
        raise UserError(f"{args.patchset}: name the version to port, e.g. {args.patchset}@0.1")
    manifest, spec = resolve(ctx.settings.patchset_paths, args.patchset)
    target = KernelVersion.parse(args.to)
    out = Path(args.out) if args.out else None
    result = port(ctx.settings, lambda: ctx.db, manifest, spec, target, out=out, from_=args.from_)
    if args.json:
        print(json.dumps(result.report.to_json(), indent=2))
    else:
        from tracker.port.render import print_port

        print_port(ctx.console, result.report, args.out)
    return 0 if result.report.automatic else 1
