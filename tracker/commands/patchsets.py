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


def _versions(m: Any) -> list[dict[str, Any]]:
    from tracker.patchsets.formats import content_hash

    return [
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
        for v in m.versions
    ]


def _doc(found: Any) -> dict[str, Any]:
    """``ktrack.patchsets/1``: every set, ``valid`` false with its ``error`` when it does not
    load (a broken manifest or series keeps no other set from being listed)."""
    from tracker.errors import UserError

    out: list[dict[str, Any]] = []
    for m in found.manifests:
        entry: dict[str, Any] = {"name": m.name, "path": str(m.path), "valid": True, "error": None}
        try:
            entry["versions"] = _versions(m)
        except UserError as exc:
            entry.update(valid=False, error=str(exc), versions=[])
        entry.update(
            summary=m.summary,
            homepage=m.homepage,
            track={"kernels": m.track.kernels, "targets": list(m.track.targets)},
        )
        out.append(entry)
    for b in found.broken:
        out.append(
            {
                "name": b.name,
                "path": str(b.path),
                "valid": False,
                "error": b.reason,
                "versions": [],
                "summary": None,
                "homepage": None,
                "track": None,
            }
        )
    out.sort(key=lambda e: (e["name"], e["path"]))
    return {"schema": "ktrack.patchsets/1", "patchsets": out}


def main(args: argparse.Namespace, ctx: Context) -> int:
    from rich.table import Table

    from tracker.patchsets.manifest import scan
    from tracker.safetext import as_text

    found = scan(ctx.settings.patchset_paths)
    doc = _doc(found)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    if not doc["patchsets"]:
        paths = ", ".join(str(p) for p in ctx.settings.patchset_paths)
        ctx.info(f"no patch sets found under {paths}")
        return 0
    table = Table()
    for col in ("name", "version", "base", "format", "strip", "fuzz", "summary"):
        table.add_column(col, overflow="fold")
    for ps in doc["patchsets"]:
        if not ps["valid"]:
            table.add_row(as_text(ps["name"]), "invalid", "", "", "", "", as_text(ps["error"]))
            continue
        for i, v in enumerate(sorted(ps["versions"], key=lambda v: v["version"])):
            table.add_row(
                as_text(ps["name"]) if i == 0 else "",
                as_text(v["version"]),
                as_text(v["base"]),
                v["format"],
                str(v["strip"]),
                str(v["fuzz"]),
                as_text(ps["summary"]) if i == 0 else "",
            )
    ctx.console.print(table)
    return 0
