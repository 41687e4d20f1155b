"""The report folder: ktrack removes only files it wrote there, and never a user's own.

``ktrack report --out DIR`` keeps the list of the files it wrote in ``DIR/.ktrack-report.json``.
A later report into the same folder removes the files of the earlier one it did not write again
(pages of jobs that are gone) and nothing else: a file the user put there stays, a name in the
list that leads out of the folder, through a link or at anything but a regular file is left alone.
A folder that is not empty and holds no such list was not made by ktrack: it is refused.
Each file is listed with its format, so ``--format json`` leaves the HTML pages of an earlier
report in place.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from tracker.errors import InfraError, UserError
from tracker.sources.tree import safe_relpath

MANIFEST = ".ktrack-report.json"
SCHEMA = "ktrack.report-files/1"


def _listed(root: Path) -> dict[str, str] | None:
    """The files the last reports wrote (name -> format), or None when the folder has no list."""
    path = root / MANIFEST
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: unreadable list of report files ({exc})",
            hint="remove the folder or choose another --out",
        ) from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        raise UserError(f"{path}: not a list of report files", hint="choose another --out")
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def _regular_file(root: Path, name: str) -> Path | None:
    """``root/name`` when it is a regular file reached through real folders only, else None."""
    try:
        rel = safe_relpath(name)
    except UserError:
        return None
    cur = root
    parts = rel.split("/")
    for part in parts[:-1]:
        cur = cur / part
        try:
            if not stat.S_ISDIR(cur.lstat().st_mode):
                return None  # a link or a file where a folder should be
        except OSError:
            return None
    target = cur / parts[-1]
    try:
        return target if stat.S_ISREG(target.lstat().st_mode) else None
    except OSError:
        return None


class ReportFolder:
    """One ``--out`` folder: opened before writing, closed with the list of what was written."""

    def __init__(self, root: Path, previous: dict[str, str]) -> None:
        self.root = root
        self.previous = previous

    @classmethod
    def open(cls, root: Path) -> ReportFolder:
        if root.exists() and not root.is_dir():
            raise UserError(f"--out: {root} is not a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
            listed = _listed(root)
            with os.scandir(root) as entries:
                empty = not any(entries)
            if listed is None and not empty:
                raise UserError(
                    f"--out: {root} is not empty and was not written by `ktrack report`",
                    hint="choose a new or empty folder; ktrack never removes files it did not write",
                )
        except OSError as exc:
            raise InfraError(f"cannot create the report folder {root}: {exc.strerror}") from exc
        return cls(root, listed or {})

    def close(self, written: Iterable[tuple[str, Path]], *, complete: bool) -> None:
        """Record ``written`` (format, path); when the report is ``complete``, remove the files
        an earlier report wrote in one of the same formats and this one did not write again
        (an interrupted report keeps them listed for the next one)."""
        now = {p.relative_to(self.root).as_posix(): fmt for fmt, p in written}
        formats = set(now.values())
        keep = dict(self.previous)
        for name, fmt in self.previous.items():
            if complete and fmt in formats and name not in now:
                del keep[name]
                target = _regular_file(self.root, name)
                if target is not None:
                    target.unlink()
        keep.update(now)
        doc = {"schema": SCHEMA, "files": dict(sorted(keep.items()))}
        tmp = self.root / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.root / MANIFEST)
