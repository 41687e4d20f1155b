"""``ktrack check PATCHSET[@VER] KERNEL [--json]``: the apply stage alone, per patch and hunk.

The release comes from the store (fetched and imported first when needed); ``--tree DIR`` checks
an extracted tree on disk instead. Exit 1 when the verdict is ``fail``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from tracker.cli import Context
from tracker.errors import InfraError

if TYPE_CHECKING:
    from tracker.sources.tree import Tree


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("patchset", metavar="PATCHSET[@VER]", help="a patch set name, e.g. vcontext@0.2")
    p.add_argument("kernel", metavar="KERNEL", help="a release, e.g. 6.12.5")
    p.add_argument("--json", action="store_true", help="print the ktrack.check/1 JSON")
    p.add_argument(
        "--tree",
        metavar="DIR",
        help="check against this extracted kernel tree instead of the release store",
    )
    p.add_argument(
        "--fuzz",
        type=int,
        choices=(0, 1, 2),
        help="override the version's fuzz factor (default: the manifest's, usually 0)",
    )


def _store_tree(ctx: Context, kernel: str) -> Tree:
    try:
        from tracker.releases.service import ensure_release
        from tracker.sources.store import ReleaseStore
    except ImportError as exc:  # the store is optional in a partial checkout
        raise InfraError(
            f"the release store is not available ({exc})", hint="use --tree DIR"
        ) from exc
    rev = ensure_release(ctx.settings, ctx.db, kernel, warn=ctx.info)
    return ReleaseStore.open(ctx.settings).tree(rev)


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.apply.check import check_series
    from tracker.patchsets.formats import load_series
    from tracker.patchsets.manifest import resolve
    from tracker.sources.tree import DirTree
    from tracker.versions import KernelVersion
    from tracker.vocab import Cause, Status

    manifest, spec = resolve(ctx.settings.patchset_paths, args.patchset)
    kernel = args.kernel if args.tree else str(KernelVersion.parse(args.kernel))
    series = load_series(spec)
    fuzz = spec.fuzz if args.fuzz is None else args.fuzz
    if args.tree:
        from pathlib import Path

        from tracker.errors import UserError

        if not Path(args.tree).is_dir():
            raise UserError(f"--tree: not a directory: {args.tree}")
        tree: Tree = DirTree(args.tree)
    else:
        tree = _store_tree(ctx, kernel)
    try:
        report = check_series(series, tree, fuzz=fuzz, timeout=ctx.settings.apply_timeout)
    finally:
        close = getattr(tree, "close", None)
        if close is not None:
            close()
    # nothing is written here: let the parsed patches and the new file contents go before the
    # report is rendered (a 50 MB patch would otherwise be held twice at the peak)
    del series
    report.changes.clear()
    culprits: list[dict[str, object]] = []
    if report.status is Status.FAIL and not args.tree:  # what `ktrack bisect` recorded
        from tracker.report.bisect import culprits_for_check

        culprits = culprits_for_check(ctx.db, manifest.name, spec.version, kernel)
    if args.json:
        doc = {
            "schema": "ktrack.check/1",
            "patchset": manifest.name,
            "patchset_version": spec.version,
            "kernel": kernel,
            "fuzz": fuzz,
        }
        body = report.to_json()
        body.pop("schema", None)
        doc.update(body)
        cause = Cause.default_for(report.status)  # the apply verdict alone: the set's own
        doc["cause"] = cause.value if cause is not None else None
        if culprits:
            doc["culprits"] = [{k: v for k, v in c.items() if k != "line"} for c in culprits]
        json.dump(doc, sys.stdout, indent=2)  # streamed: no second copy as one string
        sys.stdout.write("\n")
    else:
        heading = f"{manifest.name} {spec.version} on {kernel} (fuzz {fuzz})"
        ctx.console.print(report.rich(heading=heading))
        for c in culprits:
            ctx.console.print(f"{c['line']} (bisected at {c['bad_release']})", markup=False)
    return 1 if report.status is Status.FAIL else 0
