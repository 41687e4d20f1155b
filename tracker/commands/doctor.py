"""``ktrack doctor``: are the tools, disk, database and release store in order?"""

from __future__ import annotations

import argparse
import json

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-fsck", action="store_true", help="skip the release store integrity check")
    p.add_argument(
        "--full",
        action="store_true",
        help="read and hash every object of the release store and the whole database "
        "(slower; names damaged releases and how to re-import them)",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.doctor import Health, failed, run_checks

    checks = run_checks(ctx.settings, fsck=not args.no_fsck, full=args.full)
    bad = failed(checks)
    if args.json:
        print(
            json.dumps(
                {
                    "schema": "ktrack.doctor/1",
                    "ok": not bad,
                    "checks": [
                        {
                            "name": c.name,
                            "health": c.health.value,
                            "detail": c.detail,
                            "stage": c.stage,
                            "required": c.required,
                            "fix": c.fix,
                        }
                        for c in checks
                    ],
                },
                indent=2,
            )
        )
    else:
        from rich.table import Table
        from rich.text import Text

        from tracker.safetext import as_text

        colours = {
            Health.OK: "green",
            Health.WARN: "yellow",
            Health.MISSING: "red",
            Health.FAIL: "red",
        }
        table = Table("check", "status", "needed by", "detail", "fix", title="ktrack doctor")
        for c in checks:
            status = Text(
                c.health.value + ("" if c.required else " (optional)"), style=colours[c.health]
            )
            table.add_row(
                as_text(c.name), status, as_text(c.stage), as_text(c.detail), as_text(c.fix)
            )
        ctx.console.print(table)
        if bad:
            ctx.console.print(
                f"{len(bad)} required check(s) failed: " + ", ".join(c.name for c in bad),
                markup=False,
            )
    return 3 if bad else 0
