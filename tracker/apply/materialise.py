"""Write an ApplyReport's changes over a materialised tree, never outside it.

The build stage extracts a release and then calls :func:`write_changes` instead of running
``patch`` again. Every path is checked component by component: a directory that is a symbolic link
is never entered, an existing file or link is replaced (unlinked first, then created with
``O_EXCL|O_NOFOLLOW``), a git symlink (mode 120000) is created as a link, never followed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from tracker.errors import UserError
from tracker.sources.tree import safe_relpath

SYMLINK = 0o120000


def _parent(root: Path, rel: str, *, create: bool) -> Path:
    """The real directory holding ``rel`` under ``root``; UserError if a component is a link."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        try:
            st = cur.lstat()
        except FileNotFoundError:
            if not create:
                return cur
            cur.mkdir()
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise UserError(
                f"refusing to write {rel!r}: {cur.relative_to(root)} is not a directory"
            )
    return cur


def write_changes(
    root: str | os.PathLike[str], changes: Mapping[str, bytes | None], modes: Mapping[str, int]
) -> None:
    """Apply ``changes`` (path -> content, None = delete) and ``modes`` under ``root``."""
    base = Path(root).resolve()
    for path in sorted(changes, key=lambda p: (changes[p] is not None, p)):  # deletions first
        rel = safe_relpath(path)
        content = changes[path]
        parent = _parent(base, rel, create=content is not None)
        target = parent / rel.rsplit("/", 1)[-1]
        try:
            st = target.lstat()
        except FileNotFoundError:
            st = None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise UserError(f"refusing to replace the directory {rel!r} with a file")
            target.unlink()
        if content is None:
            continue
        mode = modes.get(path, 0o100644)
        if mode == SYMLINK:
            os.symlink(os.fsdecode(content), target)
            continue
        fd = os.open(
            target,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
            0o755 if mode & 0o111 else 0o644,
        )
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
    for path, mode in modes.items():
        if path in changes or mode == SYMLINK:
            continue
        rel = safe_relpath(path)
        target = _parent(base, rel, create=False) / rel.rsplit("/", 1)[-1]
        try:
            st = target.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            os.chmod(target, 0o755 if mode & 0o111 else 0o644)
