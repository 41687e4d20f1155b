"""``ktrack patchsets list [--json]``: the patch sets found under ``[patchsets] paths``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="patchsets_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list patch sets and their versions")
    ls.add_argument("--json", action="store_true", help="print the ktrack.patchsets/1 JSON")


def _doc(manifests: list[Any]) -> dict[str, Any]:
    from tracker.patchsets.formats import content_hash

    out = []
    for m in manifests:
        versions = []
        for v in m.versions:
            versions.append(
                {
                    "version": v.version,
                    "base": v.base,
                    "format": v.format,
                    "source": str(v.source),
                    "strip": v.strip,
                    "fuzz": v.fuzz,
                    "kconfig": str(v.kconfig) if v.kconfig else None,
                    "tests": str(v.tests) if v.tests else None,
                    "content_hash": content_hash(v),
                }
            )
        out.append(
            {
                "name": m.name,
                "summary": m.summary,
                "homepage": m.homepage,
                "path": str(m.path),
                "versions": versions,
                "track": {"kernels": m.track.kernels, "targets": list(m.track.targets)},
            }
        )
    return {"schema": "ktrack.patchsets/1", "patchsets": out}


def main(args: argparse.Namespace, ctx: Context) -> int:
    from rich.table import Table

    from tracker.patchsets.manifest import discover

    manifests = discover(ctx.settings.patchset_paths)
    if args.json:
        print(json.dumps(_doc(manifests), indent=2))
        return 0
    if not manifests:
        paths = ", ".join(str(p) for p in ctx.settings.patchset_paths)
        ctx.info(f"no patch sets found under {paths}")
        return 0
    table = Table()
    for col in ("name", "version", "base", "format", "strip", "fuzz", "summary"):
        table.add_column(col, overflow="fold")
    for m in manifests:
        for i, v in enumerate(sorted(m.versions, key=lambda v: v.version)):
            table.add_row(
                m.name if i == 0 else "",
                v.version,
                v.base,
                v.format,
                str(v.strip),
                str(v.fuzz),
                m.summary if i == 0 else "",
            )
    ctx.console.print(table)
    return 0
