"""File locks: an exclusive ``flock`` on a file, the one helper every writer uses.

The kernel releases the lock when the process dies, so a killed run never leaves it held.
Users: the job locks of the pipeline, the migration lock of the results database, one lock per
download, and the release store's write lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tracker.errors import InfraError


@contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive flock on ``path`` (created, with its folder, if needed).

    Yields True with the lock held; when not ``blocking`` and another process holds it, yields
    False without it. A lock file that cannot be created is an InfraError.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InfraError(f"cannot create the lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """Whether another process holds the lock on ``path`` now (a missing file is not locked)."""
    if not path.exists():
        return False
    with file_lock(path, blocking=False) as got:
        return not got
