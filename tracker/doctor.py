"""Health checks: the tools each stage needs, disk, database, release store.

Each check is a pure-ish function returning a Check; ``ktrack doctor`` prints them as a table and
exits 3 when a required one fails (a CI job can gate on it).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from tracker import proc
from tracker.arches import loader
from tracker.arches.model import Arch
from tracker.config import Settings, default_cache
from tracker.errors import KtrackError


class Health(Enum):
    OK = "ok"
    WARN = "warn"
    MISSING = "missing"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    health: Health
    detail: str
    stage: str  # which stage needs it ("all", "apply", "build", ...)
    required: bool = True
    fix: str = ""


@dataclass(frozen=True)
class Tool:
    command: str
    stage: str
    required: bool
    version_args: tuple[str, ...] = ("--version",)
    package: str = ""


TOOLS = (
    Tool("git", "all", True, package="git"),
    Tool("patch", "apply", True, package="patch"),
    Tool("quilt", "apply", False, package="quilt"),
    Tool("make", "build", True, package="make"),
    Tool("gcc", "build", True, package="gcc"),
    Tool("flex", "build", True, package="flex"),
    Tool("bison", "build", True, package="bison"),
    Tool("bc", "build", True, package="bc"),
    Tool("ccache", "build", False, package="ccache"),
    Tool("cpio", "boot", True, package="cpio"),
    Tool("gpg", "fetch (signatures)", False, version_args=("--version",), package="gnupg"),
    Tool("unshare", "build/boot sandbox", False, version_args=("--version",), package="util-linux"),
)


def arch_tools() -> list[Tool]:
    """Each architecture's cross compiler and QEMU (``tracker/arches``): required for the host's
    own architecture, optional for the others."""
    tools: list[Tool] = []
    for arch in sorted(loader.known().values(), key=lambda a: (not a.native, a.name)):
        suffix = "" if arch.native else f" ({arch.name})"
        if not arch.native:
            tools.append(
                Tool(arch.compiler, "build" + suffix, False, package=arch.compiler_package)
            )
        tools.append(Tool(arch.qemu, "boot" + suffix, arch.native, package=arch.qemu_package))
    return tools


def _first_version(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    m = re.search(r"\d+(\.\d+)+", line)
    return m.group(0) if m else line[:60]


def check_tool(tool: Tool, cwd: Path) -> Check:
    path = shutil.which(tool.command)
    if path is None:
        return Check(
            tool.command,
            Health.MISSING,
            "not found",
            tool.stage,
            tool.required,
            f"apt-get install {tool.package}" if tool.package else "",
        )
    try:
        r = proc.run([path, *tool.version_args], cwd=cwd, timeout=30)
        version = _first_version(r.stdout or r.stderr)
    except KtrackError as exc:
        return Check(tool.command, Health.FAIL, str(exc), tool.stage, tool.required)
    return Check(tool.command, Health.OK, version, tool.stage, tool.required)


def check_busybox(cwd: Path) -> Check:
    path = shutil.which("busybox")
    if path is None:
        return Check(
            "busybox-static",
            Health.MISSING,
            "not found",
            "boot",
            True,
            "apt-get install busybox-static",
        )
    r = proc.run(["file", "-L", path], cwd=cwd, timeout=30) if shutil.which("file") else None
    if r is not None and "dynamically linked" in r.stdout:
        return Check(
            "busybox-static",
            Health.FAIL,
            f"{path} is dynamically linked",
            "boot",
            True,
            "apt-get install busybox-static",
        )
    return Check("busybox-static", Health.OK, path, "boot", True)


def check_guest_busybox(arch: Arch) -> Check:
    """The static busybox of a guest architecture that is not the host's (in the cache)."""
    path = arch.busybox_path(default_cache())
    name, stage = f"busybox-static:{arch.name}", f"boot ({arch.name})"
    if not path.is_file():
        return Check(name, Health.MISSING, f"not at {path}", stage, False, arch.busybox_from)
    return Check(name, Health.OK, str(path), stage, False)


def check_kvm() -> Check:
    if not os.path.exists("/dev/kvm"):
        return Check(
            "kvm", Health.WARN, "no /dev/kvm: boots use TCG (slower, always works)", "boot", False
        )
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Check("kvm", Health.WARN, "/dev/kvm not accessible: boots use TCG", "boot", False)
    return Check(
        "kvm",
        Health.WARN,
        "/dev/kvm opens, but KVM is used only after a probe boot proves it works; TCG by default",
        "boot",
        False,
    )


def check_disk(settings: Settings, minimum_gb: float = 10.0) -> Check:
    path = settings.home
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_gb = usage.free / 1e9
    health = Health.OK if free_gb >= minimum_gb else (Health.WARN if free_gb >= 2 else Health.FAIL)
    return Check(
        "disk",
        health,
        f"{free_gb:.1f} GB free at {probe}",
        "all",
        True,
        "" if health is Health.OK else f"free space in {path} (a kernel build needs ~2 GB)",
    )


def sqlite_problems(conn: Any, *, full: bool) -> list[str]:
    """SQLite's own check of every page and index (``quick_check``; ``integrity_check`` with
    ``full``, which also compares indexes with their tables): the problems, or none."""
    from sqlalchemy import text

    pragma = "integrity_check" if full else "quick_check"
    rows = [str(r[0]) for r in conn.execute(text(f"PRAGMA {pragma}(20)"))]
    if rows == ["ok"]:
        return []
    roots = {int(r[1]): str(r[0]) for r in conn.execute(text(_ROOTS)) if r[1]}

    def name(m: re.Match[str]) -> str:
        table = roots.get(int(m.group(2)))
        return f"{m.group(0)} ({table})" if table else m.group(0)

    lines = [ln for r in rows for ln in r.splitlines()]
    return [_PAGE.sub(name, ln) for ln in lines if ln and not ln.startswith("*** in database")]


_ROOTS = "SELECT name, rootpage FROM sqlite_master"
_PAGE = re.compile(r"\b(Tree|Page) (\d+)")


def check_database(settings: Settings, *, full: bool = False) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from tracker.results.db import check_connection, database_error, make_engine

    url = settings.db_url
    problems: list[str] = []
    try:
        engine = make_engine(url)
        try:
            check_connection(engine)
            from alembic.runtime.migration import MigrationContext

            with engine.connect() as conn:
                if engine.dialect.name == "sqlite":
                    problems = sqlite_problems(conn, full=full)
                rev = MigrationContext.configure(conn).get_current_revision()
        except SQLAlchemyError as exc:
            raise database_error(exc, url) from exc
        finally:
            engine.dispose()
    except KtrackError as exc:
        return Check("database", Health.FAIL, str(exc), "all", True)
    if problems:
        where = engine.url.database
        return Check(
            "database",
            Health.FAIL,
            f"{where}: damaged: {'; '.join(problems[:3])}",
            "all",
            True,
            "restore it from a backup (or move it aside: a new one is created, results lost)",
        )
    if rev is None:
        return Check(
            "database",
            Health.WARN,
            "reachable, schema not created yet",
            "all",
            True,
            "ktrack db upgrade",
        )
    return Check("database", Health.OK, f"revision {rev}", "all", True)


def check_store_objects(store: Path) -> Check:
    """``doctor --full``: every object read and hashed; the damaged releases named with the
    command that re-imports each."""
    from tracker.sources.integrity import damaged_releases
    from tracker.sources.store import ReleaseStore
    from tracker.versions import KernelVersion

    try:
        damage = damaged_releases(store, ReleaseStore(store).tags())
    except KtrackError as exc:
        return Check("release store", Health.FAIL, str(exc), "all", True)
    if damage.clean:
        return Check("release store", Health.OK, f"every object reads ({store})", "all", True)
    names = [str(KernelVersion.try_parse(t) or t) for t in damage.releases]
    where = f"damaged release(s): {', '.join(names)}" if names else "no release's tree"
    return Check(
        "release store",
        Health.FAIL,
        f"{len(damage.problems)} problem(s), {where}; first: {damage.problems[0]}",
        "all",
        True,
        f"ktrack fetch --force {' '.join(names)}"
        if names
        else f"move {store} aside and run `ktrack fetch` again (re-import)",
    )


def check_store(settings: Settings, cwd: Path, *, full: bool = False) -> Check:
    from tracker.sources.git import fsck_argv

    store = settings.store_path
    if not store.exists():
        return Check("release store", Health.OK, f"empty ({store} not created yet)", "all", True)
    if full:
        return check_store_objects(store)
    try:
        r = proc.run(
            fsck_argv(store, full=False),
            cwd=cwd,
            timeout=1800,
        )
    except KtrackError as exc:
        return Check("release store", Health.FAIL, str(exc), "all", True)
    if not r.ok:
        first = (r.stderr or r.stdout).strip().splitlines()[:1]
        return Check(
            "release store",
            Health.FAIL,
            f"git fsck failed: {' '.join(first)}",
            "all",
            True,
            f"move {store} aside and run `ktrack fetch` again (re-import)",
        )
    return Check(
        "release store",
        Health.OK,
        f"connected, objects not read ({store}; `ktrack doctor --full` reads them)",
        "all",
        True,
    )


def run_checks(settings: Settings, *, fsck: bool = True, full: bool = False) -> list[Check]:
    cwd = Path.cwd() if Path.cwd().exists() else Path("/")
    checks = [check_tool(t, cwd) for t in (*TOOLS, *arch_tools())]
    guests = [a for a in loader.known().values() if not a.native]
    extra: list[Callable[[], Check]] = [
        lambda: check_busybox(cwd),
        *[functools.partial(check_guest_busybox, a) for a in guests],
        check_kvm,
        lambda: check_disk(settings),
        lambda: check_database(settings, full=full),
    ]
    if fsck:
        extra.append(lambda: check_store(settings, cwd, full=full))
    checks.extend(f() for f in extra)
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.required and c.health in (Health.MISSING, Health.FAIL)]
