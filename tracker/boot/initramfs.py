"""A busybox initramfs made without root: a newc cpio written in Python, gzip-compressed.

Contents: ``/init`` (a busybox sh script, ``INIT_SCRIPT``), ``/bin/busybox`` (a static build for
the guest's arch), ``/dev/console``, the usual directories, and the patch set's ``tests`` folder at
``/tests`` with every ``*.c`` compiled on the host (``gcc -static -O2``; the cross gcc for arm64).

The smoke-test contract: init prints ``KTRACK-BOOT-OK``, runs ``cd /tests && ./run`` (which prints
``KTRACK-TEST <name> pass|fail|skip [message]`` lines), then ``KTRACK-TESTS-DONE rc=<rc>`` and
powers off.
"""

from __future__ import annotations

import gzip
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker import proc
from tracker.build.target import Target
from tracker.config import default_cache
from tracker.errors import InfraError, UserError

BOOT_MARKER = "KTRACK-BOOT-OK"
TEST_PREFIX = "KTRACK-TEST"
DONE_PREFIX = "KTRACK-TESTS-DONE"

INIT_SCRIPT = f"""#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo {BOOT_MARKER}
rc=0
if [ -d /tests ]; then
    cd /tests && ./run
    rc=$?
    cd /
fi
echo "{DONE_PREFIX} rc=$rc"
poweroff -f
"""

DIRS = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root")


def busybox_for(arch: str) -> Path:
    """The static busybox for a guest arch: the host's busybox-static for x86_64; for arm64 the
    binary of Debian's busybox-static:arm64 unpacked into $XDG_CACHE_HOME/ktrack/busybox/arm64."""
    if arch == "x86_64":
        return Path("/bin/busybox")
    return default_cache() / "busybox" / arch / "busybox"


@dataclass(frozen=True)
class Entry:
    """One member of the cpio archive."""

    name: str  # without a leading slash
    mode: int  # full st_mode (type and permissions)
    data: bytes = b""  # file contents or symlink target
    rdev: tuple[int, int] = (0, 0)


def cpio_newc(entries: Iterable[Entry]) -> bytes:
    """A newc ("070701") cpio archive of ``entries``, with fixed owner root and mtime 0."""
    parts: list[bytes] = []

    def member(ino: int, e: Entry) -> None:
        name = e.name.encode() + b"\0"
        fields = [
            ino, e.mode, 0, 0, 2 if stat.S_ISDIR(e.mode) else 1, 0, len(e.data),
            0, 0, e.rdev[0], e.rdev[1], len(name), 0,
        ]  # fmt: skip
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        parts.append(header + name + b"\0" * (-(len(header) + len(name)) % 4))
        parts.append(e.data + b"\0" * (-len(e.data) % 4))

    ino = 1
    for e in entries:
        member(ino, e)
        ino += 1
    member(0, Entry("TRAILER!!!", 0))
    data = b"".join(parts)
    return data + b"\0" * (-len(data) % 512)


def compile_argv(target: Target, source: Path, output: Path) -> list[str]:
    """The host command that builds one test program for the guest."""
    gcc = f"{target.arch_info.cross_compile}gcc"
    return [gcc, "-static", "-O2", "-o", os.fspath(output), os.fspath(source)]


@dataclass(frozen=True)
class CompileFailure:
    source: str
    message: str


def compile_tests(
    tests: Path, target: Target, bindir: Path, *, log: Path, timeout: float = 120
) -> tuple[dict[str, Path], list[CompileFailure]]:
    """Compile every ``*.c`` in ``tests`` (recursively) into ``bindir``; relative name -> binary."""
    built: dict[str, Path] = {}
    failures: list[CompileFailure] = []
    for source in sorted(tests.rglob("*.c")):
        if source.is_symlink() or not source.is_file():
            continue
        rel = source.relative_to(tests).with_suffix("")
        output = bindir / rel
        output.parent.mkdir(parents=True, exist_ok=True)
        result = proc.run(compile_argv(target, source, output), cwd=tests, timeout=timeout, log=log)
        if result.ok:
            built[rel.as_posix()] = output
        else:
            first = next(
                (ln for ln in result.stderr.splitlines() if "error" in ln),
                result.stderr.strip()[:200],
            )
            failures.append(CompileFailure(rel.as_posix() + ".c", first.strip()))
    return built, failures


def tree_entries(
    folder: Path, prefix: str, *, executables: Sequence[str] = ("run",)
) -> list[Entry]:
    """Entries for a folder's regular files, directories and symlinks (never followed)."""
    entries = [Entry(prefix, stat.S_IFDIR | 0o755)]
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, folder)
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = path.lstat()
            arc = f"{prefix}/{rel}"
            if stat.S_ISLNK(st.st_mode):
                entries.append(Entry(arc, stat.S_IFLNK | 0o777, os.readlink(path).encode()))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(Entry(arc, stat.S_IFDIR | 0o755))
            elif stat.S_ISREG(st.st_mode):
                perm = 0o755 if (st.st_mode & 0o111 or rel in executables) else 0o644
                entries.append(Entry(arc, stat.S_IFREG | perm, path.read_bytes()))
    return entries


def initramfs_entries(
    busybox: bytes,
    tests: Path | None,
    binaries: dict[str, Path] | None = None,
    *,
    init: str = INIT_SCRIPT,
) -> list[Entry]:
    """Everything that goes into the archive, in order."""
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in DIRS]
    entries.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(Entry("bin/busybox", stat.S_IFREG | 0o755, busybox))
    entries.append(Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.append(Entry("init", stat.S_IFREG | 0o755, init.encode()))
    if tests is not None:
        entries += tree_entries(tests, "tests")
        taken = {e.name for e in entries}
        for rel, path in sorted((binaries or {}).items()):
            name = f"tests/{rel}"
            if name in taken:  # a file of that name shipped in the folder: the binary wins
                entries = [e for e in entries if e.name != name]
            entries.append(Entry(name, stat.S_IFREG | 0o755, path.read_bytes()))
    return entries


def build_initramfs(
    target: Target,
    tests: Path | None,
    *,
    work: Path,
    log: Path,
    busybox: Path | None = None,
) -> tuple[Path, list[CompileFailure]]:
    """Write ``work/initramfs.cpio.gz``; return it and the test programs that did not compile."""
    if tests is not None:
        if not tests.is_dir():
            raise UserError(f"tests folder not found: {tests}")
        if not (tests / "run").is_file():
            raise UserError(f"{tests}: no `run` script (the smoke-test entry point)")
    bb = busybox or busybox_for(target.arch)
    if not bb.is_file():
        hint = "apt-get install busybox-static"
        if target.arch != "x86_64":
            hint = (
                "dpkg --add-architecture arm64; apt-get update; apt-get download "
                f"busybox-static:arm64; dpkg -x busybox-static_*_arm64.deb x; cp x/bin/busybox {bb}"
            )
        raise InfraError(f"no static busybox for {target.arch} at {bb}", hint=hint)
    binaries: dict[str, Path] = {}
    failures: list[CompileFailure] = []
    if tests is not None:
        binaries, failures = compile_tests(tests, target, work / "tests-bin", log=log)
    entries = initramfs_entries(bb.read_bytes(), tests, binaries)
    image = work / "initramfs.cpio.gz"
    work.mkdir(parents=True, exist_ok=True)
    image.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=1, mtime=0))
    return image, failures
