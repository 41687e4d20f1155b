"""Unified and git diff parsing, with GNU ``patch`` semantics where they matter.

A patch file (one diff, one quilt patch, one mail) becomes a :class:`Patch`: an ordered tuple of
:class:`FilePatch` (one per ``diff`` section) holding :class:`Hunk` objects. Parsing streams the
input line by line, and a hunk keeps its text in one ``bytes`` with a compact index, so a 50 MB
patch costs about its own size in memory.

What is followed from GNU patch 2.7.6 (``src/pch.c``): names come from ``diff --git`` or
``---``/``+++`` (the ``rename from``/``copy from`` names are ignored, git leaves their prefix out),
``-pN`` strips N leading components, ``/dev/null`` or an epoch timestamp marks a missing side,
``@@ -N,0`` means "after line N", a line that is empty or starts with a tab inside a hunk is context
whose space was eaten, ``\\ No newline at end of file`` trims the last line of its side, a hunk cut
short by at most three trailing lines is completed with blank context, and CRLF patches have their
CRs stripped when their ``---``/``+++`` header lines end in CRLF.

Bad input (a malformed hunk header, a truncated hunk, a path that is absolute after stripping or
climbs out with ``..``) is a :class:`~tracker.errors.UserError` naming the patch and its line.
"""

from __future__ import annotations

import io
import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import BinaryIO

from tracker.errors import UserError
from tracker.sources.tree import safe_relpath

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$", re.DOTALL)
_EPOCH = re.compile(rb"(1970-01-01|1969-12-31)[ T]\d\d:\d\d:\d\d|Thu Jan  1 00:00:00 1970")
_TIMESTAMP = re.compile(
    rb"\s+(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?( ?[+-]\d{4})?"
    rb"|\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}( [+-]\d{4})?)\s*$"
)
_MAX_LINE = 1 << 24  # 16 MiB: a single longer line is not a patch


class FileOp(Enum):
    """What a file section does to its file."""

    MODIFY = "modify"
    CREATE = "create"
    DELETE = "delete"
    RENAME = "rename"
    COPY = "copy"


@dataclass(frozen=True, eq=False)
class Hunk:
    """One ``@@`` hunk. Lines are kept in ``text`` with ``ends`` offsets and ``kinds`` bytes.

    ``kinds`` holds one of ``b" -+"`` per line; a line's text includes its newline unless the
    patch says ``\\ No newline at end of file``. ``first`` is GNU's ``pch_first``: the line the old
    side starts at (one past ``old_start`` for a pure insertion).
    """

    index: int
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    kinds: bytes
    text: bytes
    ends: array[int]
    patch_line: int
    section: str = ""

    def lines(self) -> list[bytes]:
        out = []
        start = 0
        text = self.text
        for end in self.ends:
            out.append(text[start:end])
            start = end
        return out

    def old_lines(self) -> list[bytes]:
        return [ln for k, ln in zip(self.kinds, self.lines(), strict=True) if k != 0x2B]

    def new_lines(self) -> list[bytes]:
        return [ln for k, ln in zip(self.kinds, self.lines(), strict=True) if k != 0x2D]

    @property
    def prefix_context(self) -> int:
        return len(self.kinds) - len(self.kinds.lstrip(b" "))

    @property
    def suffix_context(self) -> int:
        return len(self.kinds) - len(self.kinds.rstrip(b" "))

    @property
    def first(self) -> int:
        return self.old_start + (1 if self.old_len == 0 else 0)

    @property
    def new_first(self) -> int:
        return self.new_start + (1 if self.new_len == 0 else 0)


@dataclass(frozen=True)
class FilePatch:
    """One file section of a patch.

    ``old_path``/``new_path`` are tree-relative after stripping, None for ``/dev/null``.
    ``candidates`` lists the names GNU patch would consider, in its order (old, new).
    """

    old_path: str | None
    new_path: str | None
    op: FileOp
    hunks: tuple[Hunk, ...]
    old_mode: int | None = None
    new_mode: int | None = None
    binary: bool = False
    git: bool = False
    patch_line: int = 0

    @property
    def old_side_empty(self) -> bool:
        """GNU's ``p_says_nonexistent[OLD]`` from ``@@ -0,0``: patch may create the file."""
        return self.op is FileOp.CREATE or (bool(self.hunks) and self.hunks[0].old_start == 0)

    @property
    def new_side_empty(self) -> bool:
        """GNU's ``p_says_nonexistent[NEW]`` from ``+0,0``: the patch empties (deletes) the file."""
        return self.op is FileOp.DELETE or (bool(self.hunks) and self.hunks[0].new_start == 0)

    @property
    def path(self) -> str:
        """The name the section is reported under (the result's name)."""
        p = self.new_path if self.op is not FileOp.DELETE else self.old_path
        return p or self.old_path or self.new_path or "?"

    @property
    def candidates(self) -> tuple[str, ...]:
        names = []
        for p in (self.old_path, self.new_path):
            if p is not None and p not in names:
                names.append(p)
        return tuple(names)


@dataclass(frozen=True)
class Patch:
    """One patch of a series: its name, its file sections and what its mail header said."""

    name: str
    files: tuple[FilePatch, ...]
    strip: int = 1
    subject: str = ""
    author: str = ""
    base_commit: str | None = None
    sha256: str = ""  # of the patch's bytes, when it was read from a file or message

    @property
    def paths(self) -> tuple[str, ...]:
        """Every tree path the patch reads or writes."""
        out: list[str] = []
        for f in self.files:
            for p in (f.old_path, f.new_path):
                if p is not None and p not in out:
                    out.append(p)
        return tuple(out)


@dataclass(frozen=True)
class Series:
    """An ordered list of patches, as a patch set version ships them."""

    name: str
    patches: tuple[Patch, ...] = field(default=())
    base_commit: str | None = None


# ---------------------------------------------------------------------------------------------
# names


def _unquote_c(s: bytes) -> tuple[bytes, bytes] | None:
    """Parse a git C-quoted name at the start of ``s``; return (name, rest)."""
    if not s.startswith(b'"'):
        return None
    out = bytearray()
    i = 1
    esc = {ord("n"): 10, ord("t"): 9, ord('"'): 34, ord("\\"): 92, ord("a"): 7, ord("b"): 8}
    esc.update({ord("f"): 12, ord("r"): 13, ord("v"): 11})
    while i < len(s):
        c = s[i]
        if c == 0x22:
            return bytes(out), s[i + 1 :]
        if c == 0x5C and i + 1 < len(s):
            n = s[i + 1]
            if n in esc:
                out.append(esc[n])
                i += 2
                continue
            if 0x30 <= n <= 0x37 and i + 3 < len(s):
                out.append(int(s[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
        out.append(c)
        i += 1
    return None


def _unquoted(name: bytes) -> bytes:
    q = _unquote_c(name)
    return q[0] if q is not None else name


def _decode(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def strip_path(name: str, strip: int) -> str | None:
    """GNU ``strip_leading_slashes``: drop ``strip`` leading components; None if too few."""
    if strip <= 0:
        return name
    n = 0
    s = strip
    i = 0
    while i < len(name):
        if name[i] == "/":
            while i + 1 < len(name) and name[i + 1] == "/":
                i += 1
            s -= 1
            if s >= 0:
                n = i + 1
        i += 1
    if s <= 0 and n < len(name):
        return name[n:]
    return None


def _header_name(raw: bytes) -> tuple[bytes, bool]:
    """The name in a ``---``/``+++`` line (after the marker) and whether its date is the epoch."""
    raw = raw.rstrip(b"\r\n")
    quoted = _unquote_c(raw.lstrip())
    if quoted is not None:
        name, rest = quoted
        return name, bool(_EPOCH.search(rest))
    if b"\t" in raw:
        name, _, rest = raw.partition(b"\t")
        return name.strip(b" "), bool(_EPOCH.search(rest))
    m = _TIMESTAMP.search(raw)
    if m:
        return raw[: m.start()].strip(b" "), bool(_EPOCH.search(m.group(0)))
    return raw.strip(b" "), False


def _git_names(rest: bytes) -> tuple[bytes, bytes] | None:
    """Split the two names of a ``diff --git`` line."""
    rest = rest.rstrip(b"\r\n")
    q = _unquote_c(rest)
    if q is not None:
        a, tail = q
        tail = tail.lstrip(b" ")
        q2 = _unquote_c(tail)
        b = q2[0] if q2 is not None else tail
        return a, b
    if b' "' in rest:
        a, _, tail = rest.partition(b' "')
        q2 = _unquote_c(b'"' + tail)
        if q2 is not None:
            return a, q2[0]
    # unquoted: "a/x b/x"; with spaces in names, split where both halves name the same file
    parts = rest.split(b" ")
    if len(parts) == 2:
        return parts[0], parts[1]
    for i in range(1, len(parts)):
        a, b = b" ".join(parts[:i]), b" ".join(parts[i:])
        if a.partition(b"/")[2] == b.partition(b"/")[2]:
            return a, b
    if rest.count(b" b/") == 1:
        a, _, b = rest.partition(b" b/")
        return a, b"b/" + b
    return None


# ---------------------------------------------------------------------------------------------
# the parser


class _Lines:
    """A line reader over a binary stream with one line of push-back and a line counter."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self._back: list[bytes] = []
        self.lineno = 0
        self.name = name

    def next(self) -> bytes:
        if self._back:
            self.lineno += 1
            return self._back.pop()
        line = self._stream.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise UserError(f"{self.name}: line {self.lineno + 1}: line longer than 16 MiB")
        if line:
            self.lineno += 1
        return line

    def push(self, line: bytes) -> None:
        self._back.append(line)
        self.lineno -= 1


@dataclass
class _Header:
    """What the header lines of one file section said so far."""

    git: bool = False
    git_old: str | None = None
    git_new: str | None = None
    git_names_ok: bool = False
    minus: bytes | None = None
    plus: bytes | None = None
    minus_epoch: bool = False
    plus_epoch: bool = False
    old_mode: int | None = None
    new_mode: int | None = None
    new_file: bool = False
    deleted: bool = False
    rename: bool = False
    copy: bool = False
    from_name: bytes | None = None  # "rename from"/"copy from": git leaves the prefix out
    to_name: bytes | None = None
    binary: bool = False
    crlf: bool = False
    line: int = 0

    @property
    def started(self) -> bool:
        return self.git or self.minus is not None


def _mode(text: bytes, where: str) -> int:
    try:
        return int(text.strip().split()[0], 8)
    except (ValueError, IndexError):
        raise UserError(f"{where}: bad file mode {text.strip()!r}") from None


class _Parser:
    def __init__(self, lines: _Lines, strip: int) -> None:
        self.r = lines
        self.strip = strip
        self.name = lines.name
        self.dangling: int | None = None  # the first plain header without a hunk

    def where(self, lineno: int | None = None) -> str:
        return f"{self.name}: line {self.r.lineno if lineno is None else lineno}"

    def path(self, raw: bytes | str | None, lineno: int, strip: int | None = None) -> str | None:
        """Strip and validate one name; None when the name is /dev/null."""
        if raw is None:
            return None
        name = raw if isinstance(raw, str) else _decode(raw)
        if name == "/dev/null":
            return None
        strip = self.strip if strip is None else max(strip, 0)
        stripped = strip_path(name, strip)
        if stripped is None:
            raise UserError(
                f"{self.where(lineno)}: cannot strip {strip} component(s) from {name!r}",
                hint="check the strip level (-pN) of the patch",
            )
        if stripped.startswith("/"):
            raise UserError(f"{self.where(lineno)}: absolute path in patch: {stripped!r}")
        return safe_relpath_in(stripped, self.where(lineno))

    def no_hunk(self, h: _Header) -> None:
        """A plain ``---``/``+++`` header with no hunk after it: GNU patch skips it as garbage
        between sections, and refuses a patch holding nothing else ("Only garbage was found in
        the patch input"); the first such line is kept for that error."""
        if h.minus is not None and not h.git and self.dangling is None:
            self.dangling = h.line

    def files(self) -> Iterator[FilePatch]:
        found = False
        for fp in self._files():
            found = True
            yield fp
        if not found and self.dangling is not None:
            raise UserError(
                f"{self.where(self.dangling)}: a file header without a hunk "
                "(GNU patch: 'Only garbage was found in the patch input')",
                hint="a '---'/'+++' pair must be followed by '@@' hunks",
            )

    def _files(self) -> Iterator[FilePatch]:
        h = _Header()
        while True:
            line = self.r.next()
            if not line:
                if h.git:
                    yield self.finish(h, ())
                self.no_hunk(h)
                return
            if line.startswith(b"diff --git "):
                if h.git:
                    yield self.finish(h, ())
                self.no_hunk(h)
                h = _Header(git=True, line=self.r.lineno)
                names = _git_names(line[11:])
                if names is not None:
                    h.git_old, h.git_new = _decode(names[0]), _decode(names[1])
                    h.git_names_ok = True
                continue
            if h.git and h.minus is None and self.git_header(h, line):
                continue
            if line.startswith(b"--- ") and not line.startswith(b"--- \n"):
                nxt = self.r.next()
                if nxt.startswith(b"+++ "):
                    if h.git and h.minus is not None:
                        # a new plain section after a git one without hunks
                        yield self.finish(h, ())
                        h = _Header()
                    self.no_hunk(h)
                    if not h.git:
                        h = _Header(line=self.r.lineno - 1)
                    h.minus, h.minus_epoch = _header_name(line[4:])
                    h.plus, h.plus_epoch = _header_name(nxt[4:])
                    h.crlf = line.endswith(b"\r\n")
                    continue
                self.r.push(nxt)
            if line.startswith(b"@@ ") and h.started:
                self.r.push(line)
                hunks = self.hunks(h)
                yield self.finish(h, hunks)
                h = _Header()
                continue
            if line.startswith(b"@@ -"):
                raise UserError(f"{self.where()}: hunk without a file header ('---'/'+++' lines)")
            if line.startswith(b"*** ") and h.minus is None:
                nxt = self.r.next()
                if nxt.startswith(b"--- ") and not h.git:
                    raise UserError(
                        f"{self.where()}: context diffs are not supported",
                        hint="regenerate the patch with `diff -u` or `git format-patch`",
                    )
                self.r.push(nxt)

    def git_header(self, h: _Header, line: bytes) -> bool:
        """Consume one git extended header line; False when it is not one."""
        s = line.rstrip(b"\r\n")
        where = self.where()
        if s.startswith(b"old mode "):
            h.old_mode = _mode(s[9:], where)
        elif s.startswith(b"new mode "):
            h.new_mode = _mode(s[9:], where)
        elif s.startswith(b"deleted file mode "):
            h.old_mode = _mode(s[18:], where)
            h.deleted = True
        elif s.startswith(b"new file mode "):
            h.new_mode = _mode(s[14:], where)
            h.new_file = True
        elif s.startswith((b"rename from ", b"rename old ", b"copy from ")):
            h.rename = h.rename or s.startswith(b"rename")
            h.copy = h.copy or s.startswith(b"copy")
            h.from_name = s.split(b" ", 2)[2]
        elif s.startswith((b"rename to ", b"rename new ", b"copy to ")):
            h.rename = h.rename or s.startswith(b"rename")
            h.copy = h.copy or s.startswith(b"copy")
            h.to_name = s.split(b" ", 2)[2]
        elif s.startswith(b"index "):
            parts = s[6:].split()
            if len(parts) > 1 and h.old_mode is None:
                h.old_mode = h.new_mode = _mode(parts[1], where)
        elif s.startswith((b"similarity index ", b"dissimilarity index ")):
            pass
        elif s.startswith(b"GIT binary patch") or (
            s.startswith(b"Binary files ") and s.endswith(b" differ")
        ):
            h.binary = True
            if s.startswith(b"GIT binary patch"):
                self.skip_binary()
        else:
            return False
        return True

    def skip_binary(self) -> None:
        """Skip the base85 body of a ``GIT binary patch`` (literal/delta blocks, blank-separated)."""
        blanks = 0
        while True:
            line = self.r.next()
            if not line:
                return
            s = line.rstrip(b"\r\n")
            if s.startswith((b"literal ", b"delta ")):
                blanks = 0
                continue
            if not s:
                blanks += 1
                if blanks >= 2:
                    return
                continue
            if s[:1].isalpha() and len(s) >= 2 and blanks == 0:
                continue
            self.r.push(line)
            return

    def hunks(self, h: _Header) -> tuple[Hunk, ...]:
        out: list[Hunk] = []
        while True:
            line = self.r.next()
            if not line.startswith(b"@@ "):
                if line:
                    self.r.push(line)
                return tuple(out)
            out.append(self.hunk(line, len(out) + 1, h.crlf))

    def hunk(self, header: bytes, index: int, crlf: bool) -> Hunk:
        lineno = self.r.lineno
        m = _HUNK.match(header.rstrip(b"\r\n"))
        if not m:
            raise UserError(f"{self.where(lineno)}: malformed hunk header {header.rstrip()!r}")
        old_start = int(m.group(1))
        old_len = int(m.group(2)) if m.group(2) is not None else 1
        new_start = int(m.group(3))
        new_len = int(m.group(4)) if m.group(4) is not None else 1
        if max(old_start, old_len, new_start, new_len) > 1 << 40:
            raise UserError(f"{self.where(lineno)}: malformed hunk header {header.rstrip()!r}")
        section = _decode(m.group(5).strip())
        kinds = bytearray()
        text = bytearray()
        ends = array("Q")
        n_old = n_new = 0
        while n_old < old_len or n_new < new_len:
            line = self.r.next()
            if not line:
                if new_len - n_new <= 3:
                    line = b" \n"  # GNU: assume trailing blank lines got chopped
                else:
                    raise UserError(f"{self.where()}: unexpected end of file in hunk {index}")
            if crlf and line.endswith(b"\r\n"):
                line = line[:-2] + b"\n"
            c = line[:1]
            if c in (b"\t", b"\n"):
                kind, body = 0x20, line
            elif c in (b" ", b"-", b"+"):
                kind, body = c[0], line[1:]
            elif c == b"=":
                kind, body = 0x20, line[1:]
            else:
                raise UserError(
                    f"{self.where()}: malformed hunk {index}: unexpected line {line[:60]!r}",
                    hint=f"the header said -{old_start},{old_len} +{new_start},{new_len}",
                )
            if kind != 0x2B:
                if n_old >= old_len:
                    raise UserError(f"{self.where()}: hunk {index} has more old lines than it says")
                n_old += 1
            if kind != 0x2D:
                if n_new >= new_len:
                    raise UserError(f"{self.where()}: hunk {index} has more new lines than it says")
                n_new += 1
            kinds.append(kind)
            text += body
            ends.append(len(text))
            # '\ No newline at end of file' trims the last line of its side(s)
            nxt = self.r.next()
            if nxt.startswith(b"\\"):
                if body.endswith(b"\n"):
                    del text[-1]
                    ends[-1] -= 1
            elif nxt:
                self.r.push(nxt)
        if b"-" not in kinds and b"+" not in kinds:
            raise UserError(f"{self.where(lineno)}: malformed hunk {index}: it changes nothing")
        return Hunk(
            index=index,
            old_start=old_start,
            old_len=old_len,
            new_start=new_start,
            new_len=new_len,
            kinds=bytes(kinds),
            text=bytes(text),
            ends=ends,
            patch_line=lineno,
            section=section,
        )

    def finish(self, h: _Header, hunks: tuple[Hunk, ...]) -> FilePatch:
        line = h.line
        old_raw: bytes | str | None
        new_raw: bytes | str | None
        if h.minus is not None:
            old_raw = None if h.minus == b"/dev/null" or h.minus_epoch else h.minus
            new_raw = None if h.plus == b"/dev/null" or h.plus_epoch else h.plus
        else:
            old_raw, new_raw = h.git_old, h.git_new
        if h.git:
            if h.new_file:
                old_raw = None
            if h.deleted:
                new_raw = None
            if h.minus is None and not h.git_names_ok:
                if h.from_name is None or h.to_name is None:
                    raise UserError(f"{self.where(line)}: cannot read the names of 'diff --git'")
                old_raw = new_raw = None  # a rename/copy: named below from "rename from/to"
        old = self.path(old_raw, line)
        new = self.path(new_raw, line)
        if old is None and new is None and not (h.git and (h.rename or h.copy)):
            raise UserError(f"{self.where(line)}: diff names no file (both sides /dev/null)")
        if h.git and (h.rename or h.copy):
            # git leaves the prefix out of "rename from": use the diff --git names when readable,
            # else the ---/+++ names, else "rename from/to" with one component less to strip
            if h.git_names_ok:
                old, new = self.path(h.git_old, line), self.path(h.git_new, line)
            elif (old is None or new is None) and h.from_name and h.to_name:
                old = self.path(_decode(_unquoted(h.from_name)), line, self.strip - 1)
                new = self.path(_decode(_unquoted(h.to_name)), line, self.strip - 1)
            if old is None or new is None:
                raise UserError(f"{self.where(line)}: a rename or copy needs two file names")
            op = FileOp.RENAME if h.rename else FileOp.COPY
        elif old is None:
            op = FileOp.CREATE
        elif new is None:
            op = FileOp.DELETE
        else:
            op = FileOp.MODIFY
        return FilePatch(
            old_path=old,
            new_path=new,
            op=op,
            hunks=hunks,
            old_mode=h.old_mode,
            new_mode=h.new_mode,
            binary=h.binary,
            git=h.git,
            patch_line=line,
        )


def safe_relpath_in(path: str, where: str) -> str:
    try:
        return safe_relpath(path)
    except UserError as exc:
        raise UserError(f"{where}: {exc.message}") from None


def iter_files(stream: BinaryIO, *, name: str, strip: int = 1) -> Iterator[FilePatch]:
    """Yield the file sections of one patch as they are read (streaming)."""
    yield from _Parser(_Lines(stream, name), strip).files()


def parse_patch(
    data: bytes | BinaryIO,
    *,
    name: str,
    strip: int = 1,
    subject: str = "",
    author: str = "",
    base_commit: str | None = None,
) -> Patch:
    """Parse one patch (bytes or a binary stream) into a :class:`Patch`."""
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    files = tuple(iter_files(stream, name=name, strip=strip))
    return Patch(
        name=name,
        files=files,
        strip=strip,
        subject=subject,
        author=author,
        base_commit=base_commit,
    )


def hunk_from_lines(
    index: int, old_start: int, new_start: int, lines: Iterable[tuple[str, bytes]]
) -> Hunk:
    """Build a hunk from ``(kind, text)`` pairs (tests and renderers use it)."""
    kinds = bytearray()
    text = bytearray()
    ends = array("Q")
    for kind, body in lines:
        kinds += kind.encode()
        text += body
        ends.append(len(text))
    k = bytes(kinds)
    return Hunk(
        index=index,
        old_start=old_start,
        old_len=sum(1 for c in k if c != 0x2B),
        new_start=new_start,
        new_len=sum(1 for c in k if c != 0x2D),
        kinds=k,
        text=bytes(text),
        ends=ends,
        patch_line=0,
    )
