"""Patch set formats: load a version's files into a :class:`~tracker.patchsets.diff.Series`.

* ``diff``: one unified or git diff, plain or compressed (``.gz``, ``.xz``, ``.bz2``): VServer's
  per-kernel diff, OpenVZ's ``combined.gz``;
* ``quilt``: a folder with ``series`` (comments, blank lines, per-patch ``-pN``), or a tarball
  holding one (PREEMPT_RT's ``patches-*.tar.xz``), read straight from the archive, never extracted;
* ``mbox``: an mbox of mails, one ``git format-patch`` file, or a folder of them (``base-commit:``
  is read when present; quoted-printable and base64 bodies are decoded);
* ``git``: a commit range of a git repository, through ``git format-patch``.

``content_hash`` is the key of a version's content for job keys: it changes when a patch, the strip
level, the fuzz factor, the Kconfig fragment or the tests change, and for nothing else.
"""

from __future__ import annotations

import bz2
import dataclasses
import email.parser
import email.policy
import gzip
import hashlib
import io
import lzma
import os
import re
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from tracker.errors import InfraError, UserError
from tracker.patchsets.diff import Patch, Series, parse_patch
from tracker.patchsets.manifest import VersionSpec
from tracker.sources.tree import safe_relpath

MAX_TARBALL = 1 << 30  # bytes of patches read from one tarball
_BASE_COMMIT = re.compile(rb"^base-commit: ([0-9a-f]{7,40})\s*$", re.MULTILINE)
_MBOX_FROM = re.compile(rb"^From (\S+ +)?\w{3} \w{3} [ \d]\d \d\d:\d\d(:\d\d)? \d{4}")
_SUBJECT_TAG = re.compile(r"^\s*(\[[^\]]*\]\s*)+")


@dataclass(frozen=True)
class RawPatch:
    """One patch before parsing: its name, strip level and a way to open its bytes."""

    name: str
    strip: int
    open: Callable[[], BinaryIO]
    subject: str = ""
    author: str = ""
    base_commit: str | None = None


@contextmanager
def _opened(raw: RawPatch) -> Iterator[BinaryIO]:
    fh = raw.open()
    try:
        yield fh
    finally:
        fh.close()


def open_maybe_compressed(path: Path) -> BinaryIO:
    """Open a file for reading, decompressing ``.gz``/``.xz``/``.bz2`` on the fly."""
    name = path.name
    try:
        if name.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if name.endswith(".xz"):
            return lzma.open(path, "rb")  # type: ignore[return-value]
        if name.endswith(".bz2"):
            return bz2.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------
# quilt


def parse_series_file(text: bytes, where: str, default_strip: int) -> list[tuple[str, int]]:
    """The ``series`` file: ``name [-pN]`` per line; ``#`` comments and blank lines skipped."""
    out = []
    for n, raw in enumerate(text.decode("utf-8", "replace").splitlines(), 1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        name, *opts = line.split()
        strip = default_strip
        for opt in opts:
            m = re.fullmatch(r"-p(\d+)", opt)
            if m:
                strip = int(m.group(1))
            elif opt == "-p":
                raise UserError(f"{where}: line {n}: write the strip level as -pN")
            else:
                raise UserError(f"{where}: line {n}: unsupported option {opt!r} (only -pN)")
        try:
            name = safe_relpath(name)
        except UserError as exc:
            raise UserError(f"{where}: line {n}: {exc.message}") from None
        out.append((name, strip))
    return out


def _quilt_dir(root: Path, default_strip: int) -> list[RawPatch]:
    series = root / "series"
    try:
        text = series.read_bytes()
    except OSError as exc:
        raise UserError(f"{series}: cannot read the quilt series: {exc.strerror}") from None
    out = []
    real_root = root.resolve()
    for n, (name, strip) in enumerate(parse_series_file(text, str(series), default_strip), 1):
        path = root / name
        try:
            resolved = path.resolve()
        except OSError:
            resolved = path
        if real_root not in resolved.parents:
            raise UserError(f"{series}: entry {n}: {name!r} leads out of the patch folder")
        if not path.is_file():
            raise UserError(
                f"{series}: entry {n}: patch file not found: {name}",
                hint="fix the series file or add the patch",
            )
        out.append(RawPatch(name, strip, partial(open_maybe_compressed, path)))
    return out


def _quilt_tarball(path: Path, default_strip: int) -> list[RawPatch]:
    """Read every regular file of a tarball (one streaming pass) and follow its ``series``."""
    members: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue  # directories, symlinks, devices: never followed
                try:
                    name = safe_relpath(member.name)
                except UserError:
                    continue
                total += member.size
                if total > MAX_TARBALL:
                    raise UserError(f"{path}: more than {MAX_TARBALL >> 20} MiB of patches")
                fh = tar.extractfile(member)
                if fh is not None:
                    members[name] = fh.read()
    except (tarfile.TarError, EOFError, lzma.LZMAError, OSError, zlib_error()) as exc:
        raise UserError(f"{path}: not a readable tarball: {exc}") from None
    candidates = sorted(
        (n for n in members if PurePosixPath(n).name == "series"),
        key=lambda n: (PurePosixPath(n).parent.name != "patches", n.count("/"), n),
    )
    if not candidates:
        raise UserError(f"{path}: the tarball holds no quilt 'series' file")
    series_name = candidates[0]
    folder = PurePosixPath(series_name).parent
    where = f"{path}:{series_name}"
    out = []
    for n, (name, strip) in enumerate(
        parse_series_file(members[series_name], where, default_strip), 1
    ):
        key = str(folder / name) if str(folder) != "." else name
        if key not in members:
            raise UserError(f"{where}: entry {n}: patch file not in the tarball: {name}")
        out.append(RawPatch(name, strip, partial(io.BytesIO, members[key])))
    return out


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


# ---------------------------------------------------------------------------------------------
# mbox / format-patch


def _slug(subject: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-")
    return s[:52].rstrip("-") or "patch"


def split_mbox(data: bytes) -> list[bytes]:
    """Split an mbox into messages at ``From `` separator lines (a lone mail is one message)."""
    starts = [
        m.start() for m in re.finditer(rb"(?m)^From [^\n]*\n", data) if _is_from(data, m.start())
    ]
    if not starts:
        return [data] if data.strip() else []
    if data[: starts[0]].strip():
        starts.insert(0, 0)
    bounds = [*starts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if data[a:b].strip()]


def _is_from(data: bytes, at: int) -> bool:
    line = data[at : data.find(b"\n", at)]
    return bool(_MBOX_FROM.match(line)) or (at == 0)


def _message(data: bytes, index: int, where: str) -> tuple[str, str, str | None, bytes]:
    """(subject, author, base-commit, diff-bearing body) of one mail."""
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(data)
    subject = " ".join(str(msg.get("Subject", "")).split())
    author = str(msg.get("From", ""))
    if msg.is_multipart():
        parts = [p for p in msg.walk() if not p.is_multipart()]
        bodies = []
        for p in parts:
            payload = p.get_payload(decode=True)
            if isinstance(payload, bytes):
                bodies.append(payload)
        body = b"\n".join(bodies)
    else:
        payload = msg.get_payload(decode=True)
        body = payload if isinstance(payload, bytes) else b""
    if not msg.keys() and not subject:
        body = data  # not a mail at all: a bare diff
    m = _BASE_COMMIT.search(body)
    base = m.group(1).decode() if m else None
    return subject, author, base, body


def _mails(datas: list[tuple[str, bytes]], strip: int) -> list[RawPatch]:
    out = []
    n = 0
    for where, data in datas:
        for msg in split_mbox(data):
            n += 1
            subject, author, base, body = _message(msg, n, where)
            title = _SUBJECT_TAG.sub("", subject)
            name = f"{n:04d}-{_slug(title)}.patch" if subject else f"{n:04d}-{Path(where).name}"
            out.append(
                RawPatch(
                    name,
                    strip,
                    partial(io.BytesIO, body),
                    subject=title,
                    author=author,
                    base_commit=base,
                )
            )
    return out


def _mbox(source: Path, strip: int) -> list[RawPatch]:
    if source.is_dir():
        files = sorted(
            p for p in source.iterdir() if p.is_file() and p.suffix in (".patch", ".eml", ".mbox")
        )
        if not files:
            raise UserError(f"{source}: no .patch, .eml or .mbox files in the folder")
    else:
        files = [source]
    root = source.resolve() if source.is_dir() else None
    for f in files:
        if root is not None and root not in f.resolve().parents:
            raise UserError(f"{source}: {f.name!r} leads out of the patch folder")
    datas = []
    for f in files:
        with open_maybe_compressed(f) as fh:
            datas.append((str(f), fh.read()))
    return _mails(datas, strip)


# ---------------------------------------------------------------------------------------------
# git


def format_patch_argv(repo: Path, rng: str, outdir: Path) -> list[str]:
    """The ``git format-patch`` command that writes a commit range as mails into ``outdir``."""
    return [
        "git",
        "-C",
        str(repo),
        "-c",
        "core.quotePath=false",
        "format-patch",
        "--no-signature",
        "--no-stat",
        "--full-index",
        "--no-color",
        "-o",
        str(outdir),
        rng,
    ]


def _git(spec: VersionSpec) -> list[RawPatch]:
    from tracker.proc import run

    rng = spec.range or f"v{spec.base}..HEAD"
    if rng.startswith("-"):
        raise UserError(f"{spec.source}: git range {rng!r} must not start with '-'")
    with tempfile.TemporaryDirectory(prefix="ktrack-fp-") as tmp:
        res = run(format_patch_argv(spec.source, rng, Path(tmp)), cwd=tmp, timeout=600)
        if not res.ok:
            tail = (res.stderr.strip().splitlines() or [""])[-1]
            if (
                "not a git repository" in res.stderr
                or "unknown revision" in res.stderr
                or ("bad revision" in res.stderr)
            ):
                raise UserError(f"{spec.source}: git range {rng!r}: {tail}")
            raise InfraError(f"git format-patch failed in {spec.source}: {tail}")
        files = sorted(Path(tmp).glob("*.patch"))
        datas = [(f.name, f.read_bytes()) for f in files]
    return _mails(datas, spec.strip)


# ---------------------------------------------------------------------------------------------
# entry points


def raw_patches(spec: VersionSpec) -> list[RawPatch]:
    """The version's patches, in order, unparsed."""
    src = spec.source
    if spec.format == "diff":
        if not src.is_file():
            raise UserError(f"{src}: diff source not found")
        return [RawPatch(src.name, spec.strip, partial(open_maybe_compressed, src))]
    if spec.format == "quilt":
        if src.is_dir():
            return _quilt_dir(src, spec.strip)
        if src.is_file():
            return _quilt_tarball(src, spec.strip)
        raise UserError(f"{src}: quilt source not found")
    if spec.format == "mbox":
        if not src.exists():
            raise UserError(f"{src}: mbox source not found")
        return _mbox(src, spec.strip)
    if spec.format == "git":
        return _git(spec)
    raise UserError(f"unknown patch set format {spec.format!r}")


class _Hashing:
    """A line reader that hashes what it hands out: the patch is parsed as it streams in, never
    held whole beside its parsed form."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()

    def readline(self, limit: int = -1) -> bytes:
        line = self.fh.readline(limit)
        self.sha256.update(line)
        return line

    def finish(self) -> str:
        _hash_file(self.sha256, self.fh)  # whatever the parser did not read
        return self.sha256.hexdigest()


def parse_raw(raw: RawPatch) -> Patch:
    """Parse one patch; its ``sha256`` is that of its bytes (KCIDB's patchset hash uses it)."""
    with _opened(raw) as fh:
        reader = _Hashing(fh)
        patch = parse_patch(
            cast(BinaryIO, reader),
            name=raw.name,
            strip=raw.strip,
            subject=raw.subject,
            author=raw.author,
            base_commit=raw.base_commit,
        )
        digest = reader.finish()
    return dataclasses.replace(patch, sha256=digest)


def load_series(spec: VersionSpec) -> Series:
    """Load and parse every patch of a version, in series order."""
    raws = raw_patches(spec)
    patches = tuple(parse_raw(r) for r in raws)
    base = next((p.base_commit for p in patches if p.base_commit), None)
    return Series(name=f"{spec.source.name}", patches=patches, base_commit=base)


def _hash_file(h: hashlib._Hash, fh: BinaryIO) -> None:
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)


def content_hash(spec: VersionSpec) -> str:
    """sha256 over the patches (names, strip levels, bytes), fuzz, Kconfig fragment and tests."""
    h = hashlib.sha256()
    h.update(f"ktrack.patchset/1\0{spec.format}\0strip={spec.strip}\0fuzz={spec.fuzz}\0".encode())
    for raw in raw_patches(spec):
        h.update(f"patch\0{raw.name}\0{raw.strip}\0".encode())
        with _opened(raw) as fh:
            _hash_file(h, fh)
        h.update(b"\0")
    if spec.kconfig is not None:
        h.update(b"kconfig\0")
        h.update(spec.kconfig.read_bytes())
    if spec.tests is not None:
        for root, dirs, files in os.walk(spec.tests):
            dirs.sort()
            for name in sorted(files):
                p = Path(root) / name
                st = p.lstat()
                rel = p.relative_to(spec.tests).as_posix()
                h.update(
                    f"test\0{rel}\0{st.st_mode & 0o111 and 1}\0".encode(errors="surrogateescape")
                )
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.fsencode(os.readlink(p)))
                elif stat.S_ISREG(st.st_mode):
                    h.update(p.read_bytes())
    return h.hexdigest()
