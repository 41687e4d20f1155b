"""Turn a tar stream into a ``git fast-import`` stream, refusing hostile members.

Nothing here touches the disk: members are read from a tar stream (``tarstream.TarStream``)
and written as blobs and one parentless commit to a binary writer (the stdin of fast-import).
Every member name is checked before anything of it is written:

- the first path component (the tarball's top directory, ``linux-6.1/``) is stripped, and every
  member must share it;
- absolute names, ``..`` components, ``.git`` components, control characters and names that
  conflict with one another (a file where a directory is, the same path twice) are refused;
- hard links must name an earlier file of the same archive (they become the same blob);
- symlinks must stay inside the tree once every link of the tree is resolved (checked at the end,
  before the stream is committed with ``done``), each judged from where it lands: a hard link to
  a symlink is a symlink of its own, checked from its own folder;
- device files, FIFOs and other special members are refused;
- the member count and the total size are bounded.

A refusal raises :class:`HostileTarball` (a UserError) naming the member; the caller then kills
fast-import without ``done``, so nothing is committed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from tracker.errors import UserError
from tracker.sources.tarstream import TarStream

CHUNK = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MODE_FILE, MODE_EXEC, MODE_LINK = "100644", "100755", "120000"
MAX_LINK_HOPS = 40


class HostileTarball(UserError):
    """A tarball member that could escape the tree or is not a plain file, link or directory."""


@dataclass(frozen=True)
class ImportLimits:
    """Bounds on what one tarball may hold (the 6.12 tree has ~90k members and ~1.6 GB)."""

    max_members: int = 1_000_000
    max_bytes: int = 32 << 30
    max_path: int = 4096


@dataclass(frozen=True)
class ImportStats:
    """What a finished stream held."""

    files: int
    symlinks: int
    hardlinks: int
    bytes: int
    top: str
    mtime: int


def fast_import_argv() -> list[str]:
    """``git fast-import`` with the settings REFERENCE.md measured fastest (20 s for 6.1 vs 51 s).

    Low zlib levels and no deltas (fast-import would only delta against the previous blob of the
    stream, which costs time and saves little); always a pack, never loose objects (the quarantine
    hands over packs only); identical blobs already in the store (through the
    alternates of the quarantine repo) are never written again, which is where the dedup between
    releases comes from.
    """
    return [
        "git",
        "-c",
        "core.compression=1",
        "-c",
        "pack.compression=1",
        "-c",
        "fastimport.unpackLimit=0",
        "fast-import",
        "--quiet",
        "--done",
        "--depth=0",
    ]


def quote_path(path: str) -> bytes:
    """A path as fast-import reads it: C-style quoted when it starts with a quote."""
    raw = path.encode("utf-8", "surrogateescape")
    if not raw.startswith(b'"'):
        return raw
    out = bytearray(b'"')
    for b in raw:
        if b in (0x22, 0x5C):
            out += b"\\" + bytes([b])
        else:
            out.append(b)
    out += b'"'
    return bytes(out)


def strip_member(name: str, top: str | None, strip: int) -> tuple[str | None, str]:
    """``(path in the tree or None for the top dir itself, top dir)`` for a tar member name.

    Raises HostileTarball for names that are absolute, climb with ``..``, carry ``.git`` or control
    characters, or sit outside the shared top directory.
    """
    if not name or "\0" in name:
        raise HostileTarball(f"tarball member with an empty or NUL name: {name!r}")
    if name.startswith("/"):
        raise HostileTarball(f"tarball member with an absolute path: {name!r}")
    if _CONTROL.search(name):
        raise HostileTarball(f"tarball member with a control character in its name: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise HostileTarball(f"tarball member climbs out with '..': {name!r}")
    if any(p.lower() == ".git" for p in parts):
        raise HostileTarball(f"tarball member inside a .git directory: {name!r}")
    if not parts:
        return None, top or ""
    head = "/".join(parts[:strip])
    if strip:
        if len(parts) < strip:
            raise HostileTarball(f"tarball member outside the top directory: {name!r}")
        if top is not None and head != top:
            raise HostileTarball(
                f"tarball member outside the top directory {top + '/'!r}: {name!r}"
            )
    rest = "/".join(parts[strip:])
    return (rest or None), head


def resolve_in_tree(links: dict[str, str], path: str) -> str | None:
    """Resolve ``path`` through the tree's symlinks like realpath; None if it leaves the tree."""
    todo = path.split("/")
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                return None
            done.pop()
            continue
        here = "/".join([*done, part])
        target = links.get(here)
        if target is None:
            done.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS or target.startswith("/"):
            return None
        todo = target.split("/") + todo
    return "/".join(done)


class TarToFastImport:
    """Writes the fast-import stream for one tar stream; one instance per import."""

    def __init__(
        self,
        out: IO[bytes],
        *,
        strip: int = 1,
        limits: ImportLimits | None = None,
        on_member: Callable[[int], None] | None = None,
    ) -> None:
        self.out = out
        self.strip = strip
        self.limits = limits or ImportLimits()
        self.on_member = on_member
        self.entries: dict[str, tuple[str, int]] = {}  # path -> (mode, mark)
        self.dirs: set[str] = set()
        self.links: dict[str, str] = {}
        self.top: str | None = None
        self.mark = 0
        self.members = 0
        self.bytes = 0
        self.hardlinks = 0
        self.mtime = 0

    # -- checks ---------------------------------------------------------------------------
    def _claim_dir(self, path: str, member: str) -> None:
        if path in self.entries:
            raise HostileTarball(f"tarball member is both a file and a directory: {member!r}")
        self.dirs.add(path)

    def _claim_file(self, path: str, member: str) -> None:
        if path in self.entries:
            raise HostileTarball(f"duplicate tarball member: {member!r}")
        if path in self.dirs:
            raise HostileTarball(f"tarball member is both a directory and a file: {member!r}")
        parent = posixpath.dirname(path)
        while parent and parent not in self.dirs:
            if parent in self.entries:
                raise HostileTarball(
                    f"tarball member lies under a file or symlink {parent!r}: {member!r}"
                )
            self.dirs.add(parent)
            parent = posixpath.dirname(parent)

    # -- stream ---------------------------------------------------------------------------
    def _blob(self, data: Iterator[bytes] | bytes, size: int) -> int:
        self.mark += 1
        w = self.out.write
        w(b"blob\nmark :%d\ndata %d\n" % (self.mark, size))
        if isinstance(data, bytes):
            w(data)
        else:
            for chunk in data:
                w(chunk)
        w(b"\n")
        return self.mark

    def feed(self, tar: TarStream) -> None:
        """Write a blob for every member of the tar stream."""
        limits = self.limits
        for info in tar:
            self.members += 1
            if self.members > limits.max_members:
                raise HostileTarball(
                    f"tarball has more than {limits.max_members} members (at {info.name!r})"
                )
            if len(info.name) > limits.max_path:
                raise HostileTarball(f"tarball member name too long: {info.name[:80]!r}...")
            path, top = strip_member(info.name, self.top, self.strip)
            if self.top is None and self.strip:
                self.top = top
            if self.on_member is not None:
                self.on_member(self.members)
            if info.isdir():
                if path is not None:
                    self._claim_dir(path, info.name)
                continue
            if path is None:
                raise HostileTarball(
                    f"tarball member is the top directory but not a directory: {info.name!r}"
                )
            self.mtime = max(self.mtime, int(info.mtime))
            if info.isreg():
                self._claim_file(path, info.name)
                self.bytes += info.size
                if self.bytes > limits.max_bytes:
                    raise HostileTarball(
                        f"tarball holds more than {limits.max_bytes} bytes (at {info.name!r})"
                    )
                mark = self._blob(tar.chunks(info), info.size)
                mode = MODE_EXEC if info.mode & 0o111 else MODE_FILE
                self.entries[path] = (mode, mark)
            elif info.issym():
                target = info.linkname
                if not target or "\0" in target or target.startswith("/"):
                    raise HostileTarball(
                        f"tarball symlink points outside the tree: {info.name!r} -> {target!r}"
                    )
                self._claim_file(path, info.name)
                raw = target.encode("utf-8", "surrogateescape")
                self.entries[path] = (MODE_LINK, self._blob(raw, len(raw)))
                self.links[path] = target
            elif info.islnk():
                try:
                    target_path, _ = strip_member(info.linkname, self.top, self.strip)
                except HostileTarball as exc:
                    raise HostileTarball(
                        f"tarball hard link {info.name!r} points outside the tree: {exc.message}"
                    ) from exc
                if target_path is None or target_path not in self.entries:
                    raise HostileTarball(
                        f"tarball hard link to a member not in the archive before it: "
                        f"{info.name!r} -> {info.linkname!r}"
                    )
                self._claim_file(path, info.name)
                self.entries[path] = self.entries[target_path]
                if target_path in self.links:  # a copy of a symlink: judged where it lands
                    self.links[path] = self.links[target_path]
                self.hardlinks += 1
            else:
                kind = {
                    b"3": "character device",
                    b"4": "block device",
                    b"6": "FIFO",
                }.get(info.type, f"special member (type {info.type!r})")
                raise HostileTarball(f"tarball member is a {kind}: {info.name!r}")

    def check_links(self) -> None:
        """Refuse a symlink that resolves outside the tree through any chain of links."""
        for path, target in sorted(self.links.items()):
            joined = posixpath.join(posixpath.dirname(path), target)
            if resolve_in_tree(self.links, joined) is None:
                member = f"{self.top}/{path}" if self.top else path
                raise HostileTarball(
                    f"tarball symlink points outside the tree: {member!r} -> {target!r}"
                )

    def commit(self, ref: str, message: str, when: int | None = None) -> ImportStats:
        """Check the links, then write the commit of every entry and ``done``."""
        if not self.entries:
            raise HostileTarball("tarball holds no files")
        self.check_links()
        msg = message.encode()
        stamp = self.mtime if when is None else when
        w = self.out.write
        w(b"commit %s\n" % ref.encode())
        w(b"committer ktrack <ktrack@localhost> %d +0000\n" % stamp)
        w(b"data %d\n%s\n" % (len(msg), msg))
        for path in sorted(self.entries):
            mode, mark = self.entries[path]
            w(b"M %s :%d %s\n" % (mode.encode(), mark, quote_path(path)))
        w(b"\ndone\n")
        self.out.flush()
        links = sum(1 for m, _ in self.entries.values() if m == MODE_LINK)
        return ImportStats(
            files=len(self.entries) - links,
            symlinks=links,
            hardlinks=self.hardlinks,
            bytes=self.bytes,
            top=self.top or "",
            mtime=stamp,
        )


def open_tar_stream(fileobj: IO[bytes]) -> TarStream:
    """The members of an uncompressed tar stream (see ``tarstream.py``)."""
    return TarStream(fileobj)
