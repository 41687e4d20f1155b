"""The read-only view of a kernel tree that the apply engine works on.

``TreeView`` in ``treeview.py`` reads blobs from the release store without a checkout; ``DirTree``
reads a directory on disk. Both satisfy :class:`Tree`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Protocol

from tracker.errors import UserError


def safe_relpath(path: str) -> str:
    """Normalise a tree-relative path; UserError if it is absolute or climbs out with ``..``."""
    if not path or "\0" in path:
        raise UserError(f"invalid path in tree: {path!r}")
    p = PurePosixPath(path)
    if p.is_absolute() or any(part == ".." for part in p.parts):
        raise UserError(f"path escapes the tree: {path!r}")
    parts = [part for part in p.parts if part not in ("", ".")]
    if not parts:
        raise UserError(f"invalid path in tree: {path!r}")
    return "/".join(parts)


class Tree(Protocol):
    """Read files of one kernel release by tree-relative POSIX path."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None when the tree has no such file."""
        ...

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        """Several files at once (a batch read for the store)."""
        ...

    def mode(self, path: str) -> int | None:
        """The git-style mode (0o100644, 0o100755, 0o120000) or None when absent."""
        ...


class DirTree:
    """A Tree over a directory on disk; never follows a symlink out of the root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _path(self, path: str) -> Path | None:
        rel = safe_relpath(path)
        full = self.root / rel
        # refuse to go through a symlinked directory that leaves the root
        parent = full.parent.resolve()
        if parent != self.root and self.root not in parent.parents:
            return None
        return full

    def mode(self, path: str) -> int | None:
        full = self._path(path)
        if full is None:
            return None
        try:
            st = full.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            return 0o120000
        if not stat.S_ISREG(st.st_mode):
            return None
        return 0o100755 if st.st_mode & 0o111 else 0o100644

    def read(self, path: str) -> bytes | None:
        full = self._path(path)
        if full is None:
            return None
        try:
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                return os.fsencode(os.readlink(full))
            if not stat.S_ISREG(st.st_mode):
                return None
            return full.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        return {p: self.read(p) for p in paths}
