"""Content-addressed, compressed artifacts (logs, configs, images) under the data dir.

``put_file`` stores a file as ``<root>/<aa>/<sha256>.gz`` (sha256 of the uncompressed bytes) and
returns the hash; storing the same content twice is free. The database keeps the hash and an
excerpt of at most 16 KiB (as KCIDB does).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from tracker.errors import InfraError, UserError

EXCERPT_BYTES = 16 * 1024
_CHUNK = 1 << 20


def _path(root: Path, digest: str) -> Path:
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UserError(f"not an artifact hash: {digest!r}")
    return root / digest[:2] / f"{digest}.gz"


def put_file(root: Path, src: Path) -> str:
    """Store ``src``; return its sha256. InfraError when the disk is full."""
    h = hashlib.sha256()
    with src.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    digest = h.hexdigest()
    dest = _path(root, digest)
    if dest.exists():
        return digest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz,
            src.open("rb") as fh,
        ):
            shutil.copyfileobj(fh, gz, _CHUNK)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise InfraError(f"no space left on device storing artifact under {root}") from exc
        raise InfraError(f"cannot store artifact under {root}: {exc.strerror}") from exc
    return digest


def put_bytes(root: Path, data: bytes) -> str:
    with tempfile.NamedTemporaryFile(dir=root if root.exists() else None, delete=False) as tmp:
        tmp.write(data)
    try:
        return put_file(root, Path(tmp.name))
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def read(root: Path, digest: str) -> bytes:
    path = _path(root, digest)
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise UserError(f"no such artifact: {digest}") from exc


def excerpt(src: Path, limit: int = EXCERPT_BYTES) -> str:
    """The last ``limit`` bytes of a log, decoded leniently (logs are untrusted text)."""
    try:
        size = src.stat().st_size
        with src.open("rb") as fh:
            if size > limit:
                fh.seek(size - limit)
            data = fh.read(limit)
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]
    return text.replace("\0", "")
