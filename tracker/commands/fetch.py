"""``ktrack fetch VERSION...``: download, verify and import releases into the store."""

from __future__ import annotations

import argparse

from tracker.cli import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("versions", nargs="+", metavar="VERSION", help="e.g. 6.1.12 6.12 6.13-rc3")
    p.add_argument(
        "--keep", action="store_true", help="keep the downloaded tarball after the import"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="download and import again even when the store has it (repairs a damaged release "
        "that `ktrack doctor --full` named)",
    )


def main(args: argparse.Namespace, ctx: Context) -> int:
    from tracker.releases import service
    from tracker.releases.progress import phase_bars
    from tracker.versions import KernelVersion

    versions = [str(KernelVersion.parse(v)) for v in args.versions]  # bad input fails first
    with phase_bars(ctx.err, enabled=not ctx.args.quiet) as progress:
        for v in versions:
            ref = service.ensure_release(
                ctx.settings,
                ctx.db,
                v,
                progress=progress,
                warn=ctx.info,
                keep_download=args.keep,
                force=args.force,
            )
            ctx.console.print(f"{v}: in the store as {ref}", markup=False)
    return 0
