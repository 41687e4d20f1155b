"""A busybox initramfs made without root: a newc cpio written in Python, gzip-compressed.

Contents: ``/init`` (a busybox sh script, ``init_script``), ``/bin/ktrack-run-tests``
(``RUNNER``), ``/bin/busybox`` (a static build for the guest's arch), ``/dev/console``, the usual
directories, and the patch set's ``tests`` folder at ``/tests`` with every ``*.c`` compiled on the
host (``gcc -static -O2``; the arch's cross gcc for another guest).

The smoke-test contract: ``tests/run`` prints ``KTRACK-TEST <name> pass|fail|skip [message]``
lines. The markers the host believes carry a fresh random token of this boot (``new_token``),
written only into ``/init`` (never on the kernel command line, which the kernel prints): init
prints ``KTRACK:<token> BOOT-OK``; the runner reads ``run``'s output through a pipe and prints
each test line as ``KTRACK:<token> TEST <name> ...``; init ends with ``KTRACK:<token> TESTS-DONE
rc=<rc>`` and powers off. A kernel ``printk`` reaches the console directly, never through that
pipe, so it cannot produce a marker line. Each test gets ``test_timeout`` seconds: when ``run``
reports no test result for that long, the runner kills the program it is waiting for (``run``'s
newest descendant, or ``run`` itself) and reports that test as failed; ``run`` goes on.
"""

from __future__ import annotations

import gzip
import math
import os
import secrets
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker import proc
from tracker.arches import loader
from tracker.arches.target import Target
from tracker.config import default_cache
from tracker.errors import InfraError, UserError

MARKER = "KTRACK:"  # + the token: how every marker line of a boot starts
BOOT_OK = "BOOT-OK"
TEST = "TEST"
DONE = "TESTS-DONE"
CONTRACT_TEST = "KTRACK-TEST"  # what a smoke test prints (the runner stamps it)
DEFAULT_TEST_TIMEOUT = 60.0


def new_token() -> str:
    """A fresh secret for one boot: 128 random bits, hex."""
    return secrets.token_hex(16)


# /bin/ktrack-run-tests MARK TIMEOUT DIR WORK: run DIR/run in its own session, its output through
# a pipe; stamp its KTRACK-TEST lines with MARK; kill a test that reports nothing for TIMEOUT
# seconds; exit with run's status. Busybox sh only (no pgrep here: /proc is read directly);
# time is the guest's uptime in hundredths of a second.
RUNNER = r"""#!/bin/busybox sh
M=$1 T=$2 D=$3 W=$4
now() { read -r u _ < /proc/uptime; echo $((${u%.*} * 100 + 1${u#*.} - 100)); }
kids() {
    for f in /proc/[0-9]*/stat; do
        read -r s 2>/dev/null < "$f" || continue
        s=${s##*) }; s=${s#* }
        [ "${s%% *}" = "$1" ] || continue
        p=${f#/proc/}; echo "${p%/stat}"
    done
}
tree() { local k; for k in $(kids "$1"); do echo "$k"; tree "$k"; done; }
hung() {
    victims=$(tree "$1")
    [ -n "$victims" ] || victims=$1
    leaf=${victims##*[!0-9]}
    cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$leaf/cmdline" | cut -c1-100)
    name=$(basename "${cmd%% *}" 2>/dev/null | tr -cd 'A-Za-z0-9._+-')
    name=${name:-unknown}
    case " $seen " in *" $name "*) name="$name-$(($(echo $seen | wc -w) + 1))" ;; esac
    seen="$seen $name"
    kill -9 $victims 2>/dev/null
    printf '%s\n' "$M TEST $name fail timed out after ${T}s (killed: ${cmd% })"
}
stamp() {
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        "KTRACK-TEST "*) printf '%s\n' "$M TEST ${line#KTRACK-TEST }"; now > "$W/last" ;;
        *) printf '%s\n' "$line" ;;
        esac
    done
}
rm -f "$W/out"; mkfifo "$W/out" || exit 125
now > "$W/last"
stamp < "$W/out" &
spid=$!
(cd "$D" && exec setsid ./run) > "$W/out" 2>&1 &
rpid=$!
while [ -e "/proc/$rpid/stat" ]; do
    read -r st 2>/dev/null < "/proc/$rpid/stat" || break
    st=${st##*) }
    [ "${st%% *}" = Z ] && break
    sleep 0.2
    read -r last 2>/dev/null < "$W/last" || last=$(now)
    [ $(($(now) - last)) -lt $((T * 100)) ] && continue
    hung "$rpid"
    now > "$W/last"
done
wait "$rpid"
rc=$?
kill -9 -"$rpid" 2>/dev/null
wait "$spid"
exit $rc
"""


def init_script(token: str, test_timeout: float = DEFAULT_TEST_TIMEOUT) -> str:
    """The initramfs's ``/init`` for one boot; ``token`` from ``new_token``."""
    if not (len(token) == 32 and all(c in "0123456789abcdef" for c in token)):
        raise ValueError("the boot token is 32 lower-case hex digits")
    if not (math.isfinite(test_timeout) and test_timeout > 0):
        raise ValueError(f"test timeout must be positive and finite, not {test_timeout!r}")
    seconds = max(1, math.ceil(test_timeout))
    return f"""#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
M='{MARKER}{token}'
echo "$M {BOOT_OK}"
rc=0
if [ -d /tests ]; then
    /bin/ktrack-run-tests "$M" {seconds} /tests /tmp
    rc=$?
fi
echo "$M {DONE} rc=$rc"
poweroff -f
"""


DIRS = ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root")


def busybox_for(arch: str) -> Path:
    """The static busybox for a guest arch: the file its arch file names (the host's
    busybox-static for x86_64), else $XDG_CACHE_HOME/ktrack/busybox/<arch>/busybox, where
    scripts/setup puts one (Debian's busybox-static:arm64 unpacked; riscv64 built from source)."""
    return loader.get(arch).busybox_path(default_cache())


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
    return [target.arch_info.compiler, "-static", "-O2", "-o", os.fspath(output), os.fspath(source)]


@dataclass(frozen=True)
class CompileFailure:
    source: str
    message: str


def compile_tests(
    tests: Path, target: Target, bindir: Path, *, log: Path, timeout: float = 120
) -> tuple[dict[str, Path], list[CompileFailure]]:
    """Compile every ``*.c`` in ``tests`` (recursively) into ``bindir``; relative name -> binary.

    When a program does not compile, a trivial one is compiled the same way: if that fails too,
    the host cannot build static programs for the guest (no static libc, no cross compiler) and
    that is an InfraError, never the patch set's test failure.
    """
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
            failures.append(CompileFailure(rel.as_posix() + ".c", _first_error(result.stderr)))
    if failures:
        _check_toolchain(target, bindir, log=log, timeout=timeout)
    return built, failures


def _first_error(stderr: str) -> str:
    line = next((ln for ln in stderr.splitlines() if "error" in ln), stderr.strip()[:200])
    return line.strip()


TRIVIAL_PROGRAM = "int main(void) { return 0; }\n"


def _check_toolchain(target: Target, bindir: Path, *, log: Path, timeout: float) -> None:
    """Raise InfraError when the host cannot build even a trivial static program."""
    probe = bindir / ".ktrack-probe"
    probe.mkdir(parents=True, exist_ok=True)
    source = probe / "trivial.c"
    source.write_text(TRIVIAL_PROGRAM, encoding="utf-8")
    argv = compile_argv(target, source, probe / "trivial")
    result = proc.run(argv, cwd=probe, timeout=timeout, log=log)
    if not result.ok:
        libc = target.arch_info.libc_package
        raise InfraError(
            f"the host cannot build static programs for {target.arch} "
            f"(`{' '.join(argv[:2])}` of an empty main failed: {_first_error(result.stderr)})",
            hint=f"install the static C library ({libc}) and the compiler",
        )


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
    init: str,
) -> list[Entry]:
    """Everything that goes into the archive, in order; ``init`` from ``init_script``."""
    entries = [Entry(d, stat.S_IFDIR | 0o755) for d in DIRS]
    entries.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(Entry("bin/busybox", stat.S_IFREG | 0o755, busybox))
    entries.append(Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))
    entries.append(Entry("bin/ktrack-run-tests", stat.S_IFREG | 0o755, RUNNER.encode()))
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
    token: str,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    busybox: Path | None = None,
) -> tuple[Path, list[CompileFailure]]:
    """Write ``work/initramfs.cpio.gz`` for the boot whose secret is ``token``; return it and
    the test programs that did not compile."""
    if tests is not None:
        if not tests.is_dir():
            raise UserError(f"tests folder not found: {tests}")
        if not (tests / "run").is_file():
            raise UserError(f"{tests}: no `run` script (the smoke-test entry point)")
    bb = busybox or busybox_for(target.arch)
    if not bb.is_file():
        hint = target.arch_info.busybox_from
        raise InfraError(f"no static busybox for {target.arch} at {bb}", hint=hint)
    binaries: dict[str, Path] = {}
    failures: list[CompileFailure] = []
    if tests is not None:
        binaries, failures = compile_tests(tests, target, work / "tests-bin", log=log)
    init = init_script(token, test_timeout)
    entries = initramfs_entries(bb.read_bytes(), tests, binaries, init=init)
    image = work / "initramfs.cpio.gz"
    work.mkdir(parents=True, exist_ok=True)
    image.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=1, mtime=0))
    return image, failures
