"""The ``ktrack`` command line.

Subcommands live in ``tracker/commands/<name>.py``; each has ``add_arguments(parser)`` and
``main(args, ctx) -> int``. Only the chosen one is imported. Exit codes: 0 done, 1 a verdict of
breakage where the command was asked to judge, 2 bad input or usage, 3 infrastructure error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from tracker import __version__
from tracker.errors import InfraError, KtrackError, UserError

if TYPE_CHECKING:
    from rich.console import Console

    from tracker.config import Settings
    from tracker.results.db import Database

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    summary: str
    example: str


COMMANDS = (
    Command(
        "releases",
        "releases",
        "discover and list kernel releases",
        "ktrack releases sync && ktrack releases list",
    ),
    Command(
        "fetch",
        "fetch",
        "download, verify and import releases into the store",
        "ktrack fetch 6.1.12 6.12",
    ),
    Command(
        "patchsets",
        "patchsets",
        "list the patch sets ktrack tracks",
        "ktrack patchsets list --json",
    ),
    Command(
        "check",
        "check",
        "apply one patch set to one release, per patch and hunk",
        "ktrack check vcontext@0.3 6.12.5",
    ),
    Command(
        "run",
        "run",
        "run the matrix (apply, configure, build, boot, test)",
        "ktrack run --kernels '>=6.1' --stages apply",
    ),
    Command("matrix", "matrix", "print the compatibility matrix", "ktrack matrix --json"),
    Command(
        "report",
        "report",
        "write reports (html, json, junit, markdown, kcidb)",
        "ktrack report --out site --format html,json",
    ),
    Command(
        "regressions",
        "regressions",
        "list regressions; fail on new ones",
        "ktrack regressions --fail-on-new --since 24h",
    ),
    Command(
        "bisect",
        "bisect",
        "find the upstream commit that broke a patch set",
        "ktrack bisect vcontext@0.2 --good 6.1 --bad 6.2",
    ),
    Command(
        "port",
        "port",
        "propose the forward-port of a patch set version to a release",
        "ktrack port vcontext@0.1 --to 6.12.117 --out port-6.12",
    ),
    Command("plan", "plan", "print the jobs a run would do", "ktrack plan --format github-matrix"),
    Command("doctor", "doctor", "check tools, disk, database and store", "ktrack doctor --json"),
    Command(
        "cache",
        "cache",
        "list or clear caches (baseline, ccache, downloads, patchsets, bisect)",
        "ktrack cache list && ktrack cache clear baseline",
    ),
    Command("db", "db", "database maintenance (migrations)", "ktrack db upgrade"),
    Command("worker", "worker", "start a Celery worker", "ktrack worker --concurrency 2"),
    Command(
        "import",
        "import_",
        "merge exported job results into the database",
        "ktrack import results-*.json",
    ),
)


class Context:
    """What every subcommand gets: settings, database and console, built on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    @cached_property
    def settings(self) -> Settings:
        from tracker import config

        return config.load(self.args.config, home=self.args.home, db=self.args.db)

    @cached_property
    def db(self) -> Database:
        from tracker.results.db import Database

        return Database(self.settings.db_url)

    @cached_property
    def console(self) -> Console:
        from tracker.safetext import SafeConsole  # plain strings are text: no markup, escaped

        return SafeConsole(quiet=self.args.quiet, soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from tracker.safetext import SafeConsole

        return SafeConsole(stderr=True, soft_wrap=True)

    def info(self, message: str) -> None:
        if not self.args.quiet:
            self.err.print(message, markup=False)

    def debug(self, message: str) -> None:
        if self.args.verbose:
            self.err.print(message, markup=False, style="dim")


class _Parser(argparse.ArgumentParser):
    """argparse that raises a UserError instead of exiting, so usage errors exit 2 with one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def _base_parser() -> argparse.ArgumentParser:
    epilog = "commands:\n" + "\n".join(f"  {c.name:<12} {c.summary}" for c in COMMANDS)
    epilog += "\n\nexamples:\n" + "\n".join(f"  {c.example}" for c in COMMANDS[:6])
    epilog += "\n\nexit codes: 0 done, 1 newly broken (where asked to judge), 2 bad input, 3 infrastructure error"
    p = _Parser(
        prog="ktrack",
        description="ktrack: does an out-of-tree kernel patch set apply, configure, build and boot on every kernel release?",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="settings file (default: ./ktrack.toml)")
    p.add_argument(
        "--db", metavar="URL", help="database URL (sqlite:///PATH or postgresql+psycopg://...)"
    )
    p.add_argument(
        "--home", metavar="DIR", help="data dir (default: $KTRACK_HOME or ~/.local/share/ktrack)"
    )
    v = p.add_mutually_exclusive_group()
    v.add_argument("-v", "--verbose", action="store_true", help="more output")
    v.add_argument("-q", "--quiet", action="store_true", help="less output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="version", version=f"ktrack {__version__}")
    return p


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named by ``only`` gets its arguments (its module imported)."""
    parser = _base_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for cmd in COMMANDS:
        sp = sub.add_parser(
            cmd.name,
            help=cmd.summary,
            description=cmd.summary,
            epilog=f"example:\n  {cmd.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if only == cmd.name:
            mod = importlib.import_module(f"tracker.commands.{cmd.module}")
            mod.add_arguments(sp)
            sp.set_defaults(_module=mod)
    return parser


def _find_command(argv: list[str]) -> str | None:
    names = {c.name for c in COMMANDS}
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--config", "--db", "--home"):
            skip = True
            continue
        if a in names:
            return a
        if not a.startswith("-"):
            return None
    return None


def _database_error(exc: Exception, ctx: Context) -> KtrackError | None:
    """A database failure that escaped a session (damaged file, lost server): one line."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.results.db import database_error, is_damage

    if not isinstance(exc, SQLAlchemyError) or not is_damage(exc):
        return None
    settings = ctx.__dict__.get("settings")
    return database_error(exc, settings.db_url if settings is not None else "(the database)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("KTRACK_DEBUG") == "1"
    err_console = None
    try:
        parser = build_parser(_find_command(argv))
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        ctx = Context(args)
        ctx.debug(f"$ ktrack {shlex.join(argv)}")
        try:
            rc: int = args._module.main(args, ctx)
        except Exception as exc:
            mapped = _database_error(exc, ctx)
            if mapped is None:
                raise
            raise mapped from exc
        return rc
    except KtrackError as exc:
        from tracker.safetext import SafeConsole

        err_console = SafeConsole(stderr=True, soft_wrap=True)
        kind = "error" if isinstance(exc, UserError) else "infrastructure error"
        if isinstance(exc, InfraError):
            kind = "infrastructure error"
        err_console.print(f"ktrack: {kind}: {exc}", markup=False)
        if debug:
            err_console.print_exception()
        return exc.exit_code
    except KeyboardInterrupt:
        print("ktrack: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug in ktrack: one line, traceback only with --debug
        from tracker.safetext import printable

        print(
            f"ktrack: internal error: {type(exc).__name__}: {printable(str(exc))} "
            "(rerun with --debug)",
            file=sys.stderr,
        )
        if debug:
            import traceback

            traceback.print_exc()
        return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
