"""Where a file or a function went between two releases in the store.

* Renamed or moved files: ``git diff -M --name-status`` between the two release commits (rename
  detection across the whole trees, then kept only for the paths the patch set touches);
* a hunk whose lines left their file: ``git grep -F -l`` of the hunk's most distinctive line in
  the target commit names the files that hold it now.

Every command reads the bare store (``--git-dir``), never a checkout.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tracker import proc
from tracker.errors import InfraError

RENAME_LIMIT = 20000  # files git compares for inexact renames (the kernel adds/removes thousands)
MAX_PLACES = 5


def renames_argv(git_dir: Path, base: str, target: str) -> list[str]:
    return [
        "git",
        f"--git-dir={git_dir}",
        "diff",
        "-M",
        f"-l{RENAME_LIMIT}",
        "--name-status",
        "--diff-filter=R",
        "-z",
        base,
        target,
    ]


def parse_renames(out: str) -> dict[str, str]:
    """``R<score>\\0old\\0new\\0`` records into old -> new."""
    fields = out.split("\0")
    found: dict[str, str] = {}
    i = 0
    while i + 2 < len(fields):
        status = fields[i]
        if status.startswith("R"):
            found.setdefault(fields[i + 1], fields[i + 2])
            i += 3
        else:
            i += 2  # a status with one path (not asked for, kept safe)
    return found


def renames(git_dir: Path, base: str, target: str, paths: Iterable[str]) -> dict[str, str]:
    """The new name in ``target`` of each of ``paths`` that upstream renamed since ``base``."""
    res = proc.run(renames_argv(git_dir, base, target), cwd=git_dir, timeout=1800)
    if not res.ok:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"git diff -M between {base[:12]} and {target[:12]} failed: {tail}")
    found = parse_renames(res.stdout)
    wanted = set(paths)
    return {old: new for old, new in found.items() if old in wanted}


def grep_argv(git_dir: Path, commit: str, needle: str) -> list[str]:
    return ["git", f"--git-dir={git_dir}", "grep", "-F", "-l", "-z", "-e", needle, commit, "--"]


def distinctive(lines: Iterable[bytes]) -> bytes:
    """The longest line once stripped of surrounding white space (the best grep needle)."""
    return max((ln.strip() for ln in lines), key=len, default=b"")


def places(git_dir: Path, commit: str, lines: Iterable[bytes], *, exclude: str) -> tuple[str, ...]:
    """Files of ``commit`` other than ``exclude`` holding the most distinctive of ``lines``."""
    needle = distinctive(lines)
    if len(needle) < 8 or b"\0" in needle:
        return ()  # too short to say anything (a brace, a return)
    text = needle.decode("utf-8", "surrogateescape")
    res = proc.run(grep_argv(git_dir, commit, text), cwd=git_dir, timeout=600)
    if res.returncode not in (0, 1):
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"git grep in {commit[:12]} failed: {tail}")
    out = []
    for entry in res.stdout.split("\0"):
        _, sep, path = entry.partition(":")
        if sep and path and path != exclude:
            out.append(path)
    return tuple(sorted(out)[:MAX_PLACES])
