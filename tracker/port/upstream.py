"""The upstream change behind a conflict.

When the store holds the history between the two releases (a git feed brought it: the base
commit is an ancestor of the target), the commits that touched the conflicting lines: ``git log
-L`` over the target's lines, or, when upstream removed them, ``git log -S`` (pickaxe) of their
most distinctive line. Tarball imports have no history: then the release diff of the region.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from tracker import proc
from tracker.errors import InfraError
from tracker.port.model import Upstream
from tracker.port.rename import distinctive

MAX_COMMITS = 5
_FORMAT = "--format=%H%x09%s"


def is_ancestor_argv(git_dir: Path, base: str, target: str) -> list[str]:
    return ["git", f"--git-dir={git_dir}", "merge-base", "--is-ancestor", base, target]


def has_history(git_dir: Path, base: str, target: str) -> bool:
    res = proc.run(is_ancestor_argv(git_dir, base, target), cwd=git_dir, timeout=600)
    if res.returncode not in (0, 1):
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"git merge-base failed in {git_dir}: {tail}")
    return res.returncode == 0


def log_lines_argv(
    git_dir: Path, base: str, target: str, path: str, start: int, end: int
) -> list[str]:
    return [
        "git",
        f"--git-dir={git_dir}",
        "log",
        "--no-patch",
        _FORMAT,
        f"-n{MAX_COMMITS}",
        f"-L{start},{end}:{path}",
        f"{base}..{target}",
    ]


def log_pickaxe_argv(git_dir: Path, base: str, target: str, path: str, needle: str) -> list[str]:
    return [
        "git",
        f"--git-dir={git_dir}",
        "log",
        _FORMAT,
        f"-n{MAX_COMMITS}",
        "-S",
        needle,
        f"{base}..{target}",
        "--",
        path,
    ]


def _commits(git_dir: Path, argv: list[str]) -> tuple[tuple[str, str], ...]:
    res = proc.run(argv, cwd=git_dir, timeout=600)
    if not res.ok:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"git log failed in {git_dir}: {tail}")
    out = []
    for line in res.stdout.splitlines():
        commit, sep, subject = line.partition("\t")
        if sep and len(commit) >= 40:
            out.append((commit, subject))
    return tuple(out)


def commits(
    git_dir: Path,
    base: str,
    target: str,
    path: str,
    region: tuple[int, int] | None,
    removed: Sequence[bytes],
) -> Upstream:
    """The commits between ``base`` and ``target`` that changed the region (target lines
    ``region``, 1-based inclusive) or, when it is gone, removed the ``removed`` lines."""
    found: tuple[tuple[str, str], ...] = ()
    if region is not None:
        found = _commits(git_dir, log_lines_argv(git_dir, base, target, path, *region))
    if not found:
        needle = distinctive(removed)
        if len(needle) >= 4 and b"\0" not in needle:
            text = needle.decode("utf-8", "surrogateescape")
            found = _commits(git_dir, log_pickaxe_argv(git_dir, base, target, path, text))
    return Upstream("commits", found) if found else Upstream("none")


def release_diff(
    base: Sequence[bytes],
    ours: Sequence[bytes],
    region: tuple[int, int],
    path: str,
    context: int = 3,
) -> Upstream:
    """The release diff (base -> target) of the hunks that overlap ``region`` of the base file
    (1-based inclusive), in unified form."""
    matcher = difflib.SequenceMatcher(None, list(base), list(ours), autojunk=False)
    lo, hi = region[0] - 1 - context, region[1] + context
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        if i2 < lo or i1 > hi:
            continue
        j1, j2 = group[0][3], group[-1][4]
        out.append(f"@@ -{i1 + 1},{i2 - i1} +{j1 + 1},{j2 - j1} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + _text(ln) for ln in base[a1:a2]]
                continue
            out += ["-" + _text(ln) for ln in base[a1:a2]]
            out += ["+" + _text(ln) for ln in ours[b1:b2]]
    if not out:
        return Upstream("none")
    return Upstream("release-diff", diff=f"--- a/{path}\n+++ b/{path}\n" + "".join(out))


def _text(line: bytes) -> str:
    s = line.decode("utf-8", "replace")
    return s if s.endswith("\n") else s + "\n"
