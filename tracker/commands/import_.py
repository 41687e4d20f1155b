"""``ktrack import``: merge results exported by ``ktrack run --export`` into the database.

Each file is checked whole before anything is written; all files go in one transaction and one
run (trigger ``import``), so the matrix and regressions see them like any other run.
"""

from __future__ import annotations

import argparse
import glob
from pathlib import Path

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="files written by `ktrack run --export` (shell patterns are expanded too)",
    )
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")


def expand(patterns: list[str]) -> list[Path]:
    """The files named, with patterns the shell left unexpanded (e.g. on Windows runners)."""
    from tracker.errors import UserError

    out: list[Path] = []
    for pattern in patterns:
        hits = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not hits:
            raise UserError(f"no file matches {pattern!r}")
        out += [Path(h) for h in hits]
    return list(dict.fromkeys(out))


def main(args: argparse.Namespace, ctx: Context) -> int:
    import json

    from tracker.pipeline import exchange, record

    files = expand(args.files)
    documents = [(path, exchange.read_file(path)) for path in files]
    report = exchange.ImportReport()
    with ctx.db.session() as s:
        run = record.start_run(
            s, {"argv": ["ktrack", "import", *map(str, files)]}, trigger="import"
        )
        for path, data in documents:
            exchange.import_document(
                s,
                data,
                source=str(path),
                artifacts_root=ctx.settings.artifacts,
                run_id=run.id,
                report=report,
            )
        record.finish_run(s, run, "done")
        run_id = run.id
    if args.json:
        print(
            json.dumps(
                {
                    "schema": "ktrack.import/1",
                    "run": run_id,
                    "files": [str(p) for p in files],
                    "written": report.written,
                    "kept": report.kept,
                    "logs": report.logs,
                },
                indent=2,
            )
        )
    else:
        ctx.console.print(
            f"run {run_id}: imported {len(report.written)} job result(s) from {len(files)} "
            f"file(s); {len(report.kept)} already in the database kept; {report.logs} log(s)",
            markup=False,
        )
    return 0
