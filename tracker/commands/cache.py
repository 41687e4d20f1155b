"""``ktrack cache list|clear [KIND]``: ktrack's caches under ``$XDG_CACHE_HOME/ktrack``.

``list`` shows each cache (what it is, its folder, size and files; ``--json``: ``ktrack.cache/1``).
``clear KIND`` empties one (``baseline``, ``ccache``, ``downloads``, ``patchsets``, ``bisect``);
``clear`` without a kind empties every one of them, without asking. The release store, the
database and the artifacts are data, never cleared (see ``tracker/caches.py``).
"""

from __future__ import annotations

import argparse
import json

from tracker.cli import EXIT_OK, Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tracker.caches import KINDS

    sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="show each cache: what it is, where, how big")
    ls.add_argument("--json", action="store_true", help="print the ktrack.cache/1 JSON")
    cl = sub.add_parser(
        "clear",
        help="empty one cache, or all of them (no question asked)",
        description="Empty one cache, or every cache when no KIND is given (no question asked). "
        "The release store, the database and the artifacts are data and never touched.",
    )
    cl.add_argument("kind", nargs="?", choices=list(KINDS), metavar="KIND",
                    help=f"one of: {', '.join(KINDS)} (default: all)")  # fmt: skip
    cl.add_argument("--json", action="store_true", help="print the ktrack.cache/1 JSON")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def main(args: argparse.Namespace, ctx: Context) -> int:
    from rich.table import Table

    from tracker import caches
    from tracker.safetext import as_text

    settings = ctx.settings
    if args.cache_command == "clear":
        kinds = [args.kind] if args.kind else list(caches.KINDS)
        cleared = [caches.clear(settings, kind) for kind in kinds]
        if args.json:
            doc = {"schema": "ktrack.cache/1", "root": str(settings.cache),
                   "cleared": [c.to_json() for c in cleared]}  # fmt: skip
            print(json.dumps(doc, indent=2))
            return EXIT_OK
        for c in cleared:
            if c.link is not None:
                line = f"{c.kind}: {c.path} is a link to {c.link}: not followed, left alone"
            elif not c.exists:
                line = f"{c.kind}: nothing to clear ({c.path} does not exist)"
            else:
                line = f"{c.kind}: cleared {c.entries} file(s), {_size(c.bytes)} ({c.path})"
            ctx.console.print(as_text(line))
        return EXIT_OK
    infos = caches.list_caches(settings)
    if args.json:
        doc = {"schema": "ktrack.cache/1", "root": str(settings.cache),
               "caches": [c.to_json() for c in infos]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    table = Table(title=as_text(f"caches in {settings.cache}"))
    for col in ("cache", "what", "path", "size", "files"):
        table.add_column(col, justify="right" if col in ("size", "files") else "left")
    for c in infos:
        size = _size(c.bytes) if c.exists and c.link is None else "-"
        path = f"{c.path} -> {c.link}" if c.link is not None else str(c.path)
        if not c.exists:
            path += " (absent)"
        table.add_row(as_text(c.kind or "(other)"), as_text(c.what), as_text(path), size,
                      str(c.entries) if c.exists and c.link is None else "-")  # fmt: skip
    ctx.console.print(table)
    return EXIT_OK
