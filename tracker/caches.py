"""ktrack's caches under ``$XDG_CACHE_HOME/ktrack`` (``KTRACK_CACHE``): what each is, and clearing one.

A cache holds what ktrack can compute or fetch again; removing it costs time, never a result:

| kind | folder | what |
| --- | --- | --- |
| ``baseline`` | ``baseline/`` | control-run results of unpatched releases (``pipeline/baseline.py``) |
| ``ccache`` | ``ccache/`` | compiler cache of every kernel build (cleared with ``ccache -C``) |
| ``downloads`` | ``downloads/`` | release tarballs and signatures being (or kept after being) imported |
| ``patchsets`` | ``patchsets/`` | patch set sources fetched from where they live, by content hash |
| ``bisect`` | ``bisect/`` | stage-probe results and work trees of ``ktrack bisect`` |

The release store (``<data dir>/store.git``), the database and the artifacts are data, not cache:
nothing here removes them, even when the cache and data dirs are set to overlap. Clearing never
follows a symbolic link (a link inside a cache is removed, not its target; a cache folder that
is itself a link is left alone and reported), and first takes every ``*.lock`` file at the top of
the folder (the download lock of each release), so it never removes a download in progress:
a lock held by another ktrack is an ``InfraError`` ("in use; try again").
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker import proc
from tracker.config import Settings
from tracker.errors import InfraError, UserError

KINDS: dict[str, str] = {
    "baseline": "control-run results of unpatched releases",
    "ccache": "compiler cache of kernel builds",
    "downloads": "release tarballs and signatures",
    "patchsets": "patch set sources fetched from where they live",
    "bisect": "bisect stage-probe results and work trees",
}


@dataclass(frozen=True)
class CacheInfo:
    """One cache folder as ``ktrack cache list`` shows it."""

    kind: str  # a KINDS key, or "" for a folder ktrack does not know
    what: str
    path: Path
    exists: bool
    bytes: int
    entries: int  # regular files in it (lock and temporary dot-files not counted)
    link: str | None = None  # where the folder points when it is a symbolic link (not followed)

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind or None,
            "what": self.what,
            "path": str(self.path),
            "exists": self.exists,
            "bytes": self.bytes,
            "entries": self.entries,
            "symlink": self.link,
        }


def _usage(path: Path) -> tuple[int, int]:
    """(bytes, regular non-dot files) under ``path``, not following links."""
    size = files = 0
    for dirpath, _dirs, names in os.walk(path, followlinks=False):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            size += st.st_size
            if stat.S_ISREG(st.st_mode) and not name.startswith("."):
                files += 1
    return size, files


def describe(path: Path, kind: str, what: str) -> CacheInfo:
    if path.is_symlink():
        return CacheInfo(kind, what, path, True, 0, 0, link=os.readlink(path))
    if not path.is_dir():
        return CacheInfo(kind, what, path, False, 0, 0)
    size, files = _usage(path)
    return CacheInfo(kind, what, path, True, size, files)


def list_caches(settings: Settings) -> list[CacheInfo]:
    """Every known cache (present or not), then any other folder in the cache dir."""
    root = settings.cache
    out = [describe(root / kind, kind, what) for kind, what in KINDS.items()]
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name not in KINDS and not entry.name.startswith("."):
                out.append(describe(entry, "", "not a ktrack cache kind (never cleared)"))
    return out


def _protected(settings: Settings) -> list[Path]:
    """Data that no clearing may remove: the store, the database's folder, the artifacts."""
    keep = [settings.store_path, settings.artifacts, settings.home]
    if settings.db_url.startswith("sqlite:///"):
        keep.append(Path(settings.db_url.removeprefix("sqlite:///")))
    return [Path(os.path.abspath(p)) for p in keep]


def _check_not_data(settings: Settings, path: Path) -> None:
    target = Path(os.path.abspath(path))
    for data in _protected(settings):
        if data == target or target in data.parents:
            raise UserError(
                f"refusing to clear {target}: it holds ktrack's data ({data}), not a cache",
                hint="set KTRACK_CACHE and the data dir (--home) to separate folders",
            )


@contextlib.contextmanager
def _locks(folder: Path) -> Iterator[None]:
    """Hold every ``*.lock`` at the top of ``folder`` (without waiting), or raise InfraError."""
    fds: list[int] = []
    try:
        for lock in sorted(folder.glob("*.lock")):  # pathlib's * matches dot-files too
            if lock.is_symlink() or not lock.is_file():
                continue
            fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise InfraError(
                    f"{folder} is in use by another ktrack ({lock.name} is locked)",
                    hint="try again when it is done",
                ) from None
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the flock


def _remove_entries(folder: Path) -> None:
    """Remove everything in ``folder`` but its lock files, never following a link."""
    for entry in folder.iterdir():
        if entry.name.endswith(".lock"):
            continue
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry)  # on Linux rmtree works on file descriptors: links are unlinked


def _clear_ccache(folder: Path) -> None:
    """``ccache -C`` (ccache's own locking; keeps its configuration), or remove the files."""
    if shutil.which("ccache") is None:
        _remove_entries(folder)
        return
    proc.run(["ccache", "-C"], cwd=folder, env={"CCACHE_DIR": os.fspath(folder)}, check=True)


def clear(settings: Settings, kind: str) -> CacheInfo:
    """Empty the cache ``kind``; returns what it held before. UserError for an unknown kind."""
    if kind not in KINDS:
        raise UserError(f"unknown cache {kind!r} (known: {', '.join(KINDS)})")
    folder = settings.cache / kind
    before = describe(folder, kind, KINDS[kind])
    if before.link is not None or not before.exists:
        return before  # a link is not followed; nothing to do for a missing folder
    _check_not_data(settings, folder)
    try:
        with _locks(folder):
            if kind == "ccache":
                _clear_ccache(folder)
            else:
                _remove_entries(folder)
    except OSError as exc:
        raise InfraError(f"cannot clear {folder}: {exc.strerror or exc}") from exc
    return before
