"""The release store: one bare git repository holding every kernel release as a tag.

- A tarball is imported without extracting it: the decompressor's output is read as a tar stream
  and written straight into ``git fast-import`` (see ``fastimport.py``) as one parentless commit.
  fast-import runs in a quarantine repository whose alternates point at the store, so blobs the
  store already has (most of them, from one release to the next) are never written twice; on
  success its pack is moved into the store and the tag is created, under the store's lock.
- A git feed fetches its tags, with history, into the same repository (bisect needs it).
- :class:`TreeView` reads files of one release by path through one long-lived
  ``git cat-file --batch``; :meth:`ReleaseStore.materialize` writes a work tree for builds with
  ``read-tree`` + ``checkout-index`` on a private index (git never writes through a symlink).

Writes take an ``fcntl`` lock on ``ktrack.lock`` in the store, so two processes may import or
fetch at once. Imports are idempotent: a tag that exists is returned as it is.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from tracker import proc
from tracker.errors import InfraError, UserError
from tracker.sources.fastimport import (
    HostileTarball,
    ImportLimits,
    TarToFastImport,
    fast_import_argv,
    open_tar_stream,
)
from tracker.sources.integrity import escaping_links, salvage_pack, set_aside_damaged_loose
from tracker.sources.tree import safe_relpath
from tracker.versions import KernelVersion

if TYPE_CHECKING:
    from subprocess import Popen

    from tracker.config import Settings

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: bytes of the compressed tarball read so far, and its size."""

IMPORT_REF = "refs/heads/import"
_TAG_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_HEX = re.compile(r"^[0-9a-f]{7,64}$")
FEED_CHUNK = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_SIZE = 1 << 20


def tag_for(version: str) -> str:
    """The store tag for a version text (``6.1.12`` -> ``v6.1.12``) or a tag given as is."""
    kv = KernelVersion.try_parse(version)
    if kv is not None:
        return kv.tag
    if not _TAG_OK.match(version or "") or ".." in version or version.endswith(".lock"):
        raise UserError(f"not a kernel version or tag: {version!r}")
    return version


def decompressor_argv(tarball: Path) -> list[str] | None:
    """The command that decompresses ``tarball`` to stdout, or None for a plain ``.tar``."""
    name = tarball.name.lower()
    if name.endswith((".tar.xz", ".txz")):
        return ["xz", "-dc", "-T0"]
    if name.endswith((".tar.gz", ".tgz")):
        return ["gzip", "-dc"]
    if name.endswith((".tar.bz2", ".tbz2")):
        return ["bzip2", "-dc"]
    if name.endswith((".tar.zst", ".tzst")):
        return ["zstd", "-dc", "-q"]
    if name.endswith(".tar"):
        return None
    raise UserError(
        f"{tarball}: unknown tarball type",
        hint="expected .tar, .tar.xz, .tar.gz, .tar.bz2 or .tar.zst",
    )


def ls_remote_argv(url: str) -> list[str]:
    return ["git", "ls-remote", "--tags", "--refs", url]


def fetch_argv(git_dir: Path, url: str, *, refetch: bool = False) -> list[str]:
    """Fetch the refspecs given on stdin (one per line) from ``url``, with history, no other tags.

    ``refetch`` (a repair) fetches every object again, always into a pack: unpacked, objects
    the store "has" (damaged copies among them) would be skipped.
    """
    if refetch:
        return [
            "git", f"--git-dir={git_dir}", "-c", "fetch.unpackLimit=1",
            "fetch", "--quiet", "--no-tags", "--refetch", "--stdin", url,
        ]  # fmt: skip
    return ["git", f"--git-dir={git_dir}", "fetch", "--quiet", "--no-tags", "--stdin", url]


def repack_argv(git_dir: Path) -> list[str]:
    return [
        "git",
        f"--git-dir={git_dir}",
        "-c",
        "pack.window=0",
        "-c",
        "pack.compression=1",
        "repack",
        "-d",
        "-q",
        "--geometric=2",
        "--no-write-bitmap-index",
    ]


def cat_file_argv(git_dir: Path) -> list[str]:
    return ["git", f"--git-dir={git_dir}", "cat-file", "--batch"]


def materialize_argvs(git_dir: Path, work_tree: Path, commit: str) -> list[list[str]]:
    base = ["git", f"--git-dir={git_dir}", f"--work-tree={work_tree}", "-c", "core.autocrlf=false"]
    return [[*base, "read-tree", commit], [*base, "checkout-index", "--all"]]


def _check_url(url: str) -> str:
    if not url or url.startswith("-") or "\n" in url:
        raise UserError(f"not a repository URL or path: {url!r}")
    return url


class TreeView:
    """Files of one commit of the store, read by path without a checkout.

    Satisfies :class:`tracker.sources.tree.Tree`. One ``git cat-file --batch`` serves every read;
    :meth:`mode` parses the parent directory's tree object (cached per directory).
    """

    def __init__(self, git_dir: Path, commit: str, name: str | None = None) -> None:
        self.git_dir = git_dir
        self.commit = commit
        self.name = name or commit[:12]  # the release, in messages
        self._proc: Popen[bytes] | None = None
        self._out: IO[bytes] | None = None  # the big-buffered reader of the process's stdout
        self._lock = threading.Lock()
        self._trees: dict[str, dict[str, int] | None] = {}
        self._by_id: dict[str, dict[str, tuple[int, str]]] = {}  # trees read by _check_absent

    # -- the cat-file process -------------------------------------------------------------
    def _start(self) -> Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            p = proc.spawn(cat_file_argv(self.git_dir), cwd=self.git_dir)
            assert p.stdout is not None
            _big_pipe(p.stdout)
            self._out = open(p.stdout.fileno(), "rb", buffering=PIPE_SIZE, closefd=False)  # noqa: SIM115
            self._proc = p
        return self._proc

    def _answer(self, spec: str) -> tuple[str, bytes] | None:
        out = self._out
        assert out is not None
        header = out.readline()
        if not header:
            raise self._unreadable(f"{spec.partition(':')[2] or spec!r} (git cat-file stopped)")
        fields = header.split()
        if len(fields) != 3:
            return None  # "<spec> missing" / "ambiguous"
        kind, size = fields[1].decode(), int(fields[2])
        data = out.read(size)
        if len(data) != size or out.read(1) != b"\n":
            raise self._unreadable(f"{spec.partition(':')[2] or spec!r} (git cat-file cut short)")
        return kind, data

    def _objects(self, specs: list[str]) -> list[tuple[str, bytes] | None]:
        with self._lock:
            p = self._start()
            assert p.stdin is not None
            payload = "".join(f"{s}\n" for s in specs).encode("utf-8", "surrogateescape")
            error: list[BaseException] = []

            def write() -> None:
                try:
                    assert p.stdin is not None
                    p.stdin.write(payload)
                    p.stdin.flush()
                except OSError as exc:  # the reader reports the dead process
                    error.append(exc)

            try:
                if len(payload) <= 4096:  # fits the pipe: no writer thread needed
                    write()
                    answers = [self._answer(s) for s in specs]
                else:
                    t = threading.Thread(target=write, daemon=True)
                    t.start()
                    try:
                        answers = [self._answer(s) for s in specs]
                    finally:
                        t.join()
            except InfraError:  # the process died on a damaged object: the next read restarts it
                proc.kill(p)
                self._proc = self._out = None
                raise
            return answers

    def read_objects(self, specs: list[str]) -> list[tuple[str, bytes] | None]:
        """``(type, data)`` of each object spec (an id, ``rev:path``), None where git has none."""
        return self._objects(specs) if specs else []

    def _unreadable(self, what: str) -> InfraError:
        return InfraError(
            f"release store {self.git_dir}: {what} of release {self.name} cannot be read "
            "(a damaged object, not a verdict)",
            hint=f"run `ktrack doctor --full`, then `ktrack fetch --force {self.name}`",
        )

    def _entries(self, spec: str, what: str) -> dict[str, tuple[int, str]]:
        if spec in self._by_id:
            return self._by_id[spec]
        ans = self._objects([spec])[0]
        if ans is None or ans[0] != "tree":
            raise self._unreadable(what)
        out: dict[str, tuple[int, str]] = {}
        data, i = ans[1], 0
        while i < len(data):
            sp = data.index(b" ", i)
            nul = data.index(b"\0", sp)
            name = data[sp + 1 : nul].decode("utf-8", "surrogateescape")
            out[name] = (int(data[i:sp], 8), data[nul + 1 : nul + 21].hex())
            i = nul + 21
        self._by_id[spec] = out
        return out

    def _check_absent(self, rel: str) -> None:
        """git answered "missing" for ``rel``: InfraError unless the tree really lacks it.

        ``cat-file`` says "missing" both for a path the release does not have and for an object
        it cannot read (corrupt, or gone from the packs); only the first is a fact about the
        release. The path is walked tree by tree, by object id.
        """
        entries = self._entries(f"{self.commit}^{{tree}}", "the top tree")
        parts = rel.split("/")
        for i, part in enumerate(parts):
            found = entries.get(part)
            if found is None:
                return
            mode, oid = found
            if i == len(parts) - 1:
                if mode == 0o160000:  # a submodule's commit is not in the store, by design
                    return
                raise self._unreadable(f"{rel!r} (object {oid})")
            if mode != 0o40000:
                return  # a file where a folder would be: the path does not exist
            entries = self._entries(oid, f"folder {'/'.join(parts[: i + 1])!r} (object {oid})")

    def _spec(self, path: str) -> str | None:
        rel = safe_relpath(path)
        if "\n" in rel or "\r" in rel:
            return None
        return f"{self.commit}:{rel}"

    # -- Tree protocol --------------------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        return self.read_many([path])[path]

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        wanted = list(dict.fromkeys(paths))
        specs = {p: self._spec(p) for p in wanted}
        asked = [s for s in specs.values() if s is not None]
        answers = dict(zip(asked, self._objects(asked), strict=True)) if asked else {}
        out: dict[str, bytes | None] = {}
        for p in wanted:
            spec = specs[p]
            ans = answers.get(spec) if spec is not None else None
            if ans is None and spec is not None:
                self._check_absent(safe_relpath(p))
            out[p] = ans[1] if ans is not None and ans[0] == "blob" else None
        return out

    def _tree(self, directory: str) -> dict[str, int] | None:
        if directory not in self._trees:
            spec = f"{self.commit}:{directory}" if directory else f"{self.commit}^{{tree}}"
            ans = self._objects([spec])[0]
            entries: dict[str, int] | None = None
            if ans is None:
                self._check_absent(directory)  # "" (the top tree) raises
            if ans is not None and ans[0] == "tree":
                entries = {}
                data, i = ans[1], 0
                while i < len(data):
                    sp = data.index(b" ", i)
                    nul = data.index(b"\0", sp)
                    name = data[sp + 1 : nul].decode("utf-8", "surrogateescape")
                    entries[name] = int(data[i:sp], 8)
                    i = nul + 21
            self._trees[directory] = entries
        return self._trees[directory]

    def mode(self, path: str) -> int | None:
        rel = safe_relpath(path)
        parent, _, name = rel.rpartition("/")
        entries = self._tree(parent)
        if entries is None:
            return None
        m = entries.get(name)
        if m is None or m in (0o40000, 0o160000):
            return None
        return m

    def paths(self) -> list[str]:
        """Every file path of the tree (``git ls-tree -r``), sorted."""
        res = proc.run(
            ["git", f"--git-dir={self.git_dir}", "ls-tree", "-r", "-z", "--name-only", self.commit],
            cwd=self.git_dir,
            timeout=600,
            check=True,
        )
        return sorted(p for p in res.stdout.split("\0") if p)

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                proc.stop(self._proc)
                self._proc = self._out = None

    def __enter__(self) -> TreeView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        p = self._proc
        if p is not None and p.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill(p)


class ReleaseStore:
    """The bare git repository of releases at ``path`` (created on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    max_packs = 32
    """More packs than this after an import and the small ones are merged (geometric repack)."""

    @classmethod
    def open(cls, settings: Settings) -> ReleaseStore:
        return cls(settings.store_path)

    def git_dir(self) -> Path:
        return self.path

    # -- helpers --------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def _git(
        self, *args: str, check: bool = True, timeout: float = 600, input: bytes | None = None
    ) -> proc.Result:
        return proc.run(
            ["git", f"--git-dir={self.path}", *args],
            cwd=self.path,
            timeout=timeout,
            check=check,
            input=input,
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's write lock (``flock`` on ``ktrack.lock``); creates the store if needed."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / "ktrack.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfraError(
                f"cannot create the release store {self.path}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self.exists():
                proc.run(
                    ["git", "init", "--quiet", "--bare", str(self.path)], cwd=self.path, check=True
                )
                # the store is written by ktrack only: no automatic gc racing an import
                self._git("config", "gc.auto", "0")
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def resolve(self, rev: str) -> str | None:
        """The commit hash ``rev`` (a version, tag or commit) names in the store, or None."""
        if not self.exists():
            return None
        if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
            raise UserError(f"not a release, tag or commit: {rev!r}")
        candidates = []
        with contextlib.suppress(UserError):
            candidates.append(f"refs/tags/{tag_for(rev)}")
        if _HEX.match(rev):
            candidates.append(rev)
        for cand in candidates:
            res = self._git("rev-parse", "--quiet", "--verify", f"{cand}^{{commit}}", check=False)
            if res.ok:
                return res.stdout.strip()
        return None

    def has(self, version: str) -> bool:
        return self.resolve(version) is not None

    def ref(self, version: str) -> str:
        tag = tag_for(version)
        if self.resolve(tag) is None:
            raise UserError(
                f"release {version} is not in the store {self.path}",
                hint=f"run `ktrack fetch {version}`",
            )
        return tag

    def tags(self) -> dict[str, str]:
        """Every tag of the store and the commit it names."""
        if not self.exists():
            return {}
        res = self._git(
            "for-each-ref", "--format=%(refname:strip=2) %(*objectname) %(objectname)", "refs/tags"
        )
        out: dict[str, str] = {}
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) in (2, 3):  # lightweight: name commit; annotated: name peeled tag
                out[parts[0]] = parts[1]
        return out

    def tag_dates(self) -> dict[str, int]:
        """Every tag and its date (the tagger's, or the commit's for a lightweight tag)."""
        if not self.exists():
            return {}
        res = self._git(
            "for-each-ref", "--format=%(refname:strip=2) %(creatordate:unix)", "refs/tags"
        )
        out: dict[str, int] = {}
        for line in res.stdout.splitlines():
            name, _, when = line.partition(" ")
            if when.strip().isdigit():
                out[name] = int(when)
        return out

    def _commit(self, rev: str) -> str:
        commit = self.resolve(rev)
        if commit is None:
            raise UserError(
                f"release {rev} is not in the store {self.path}", hint=f"run `ktrack fetch {rev}`"
            )
        return commit

    # -- reading --------------------------------------------------------------------------
    def tree(self, rev: str) -> TreeView:
        return TreeView(self.path, self._commit(rev), rev)

    def materialize(self, rev: str, dest: Path) -> None:
        commit = self._commit(rev)
        dest = Path(dest)
        if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
            raise UserError(f"{dest}: exists and is not an empty directory")
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfraError(f"cannot create {dest}: {exc.strerror}") from exc
        escaping = escaping_links(self.path, commit)
        if escaping:
            path, target = escaping[0]
            raise InfraError(
                f"release {rev} in the store holds a symlink that leaves its tree: "
                f"{path!r} -> {target!r} ({len(escaping)} such link(s)); nothing was written",
                hint=f"re-import it from a trusted source: `ktrack fetch --force {rev}`",
            )
        with tempfile.TemporaryDirectory(prefix="ktrack-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            for argv in materialize_argvs(self.path, dest.resolve(), commit):
                proc.run(argv, cwd=dest, env=env, timeout=1800, check=True)

    # -- writing: tarballs ----------------------------------------------------------------
    def import_tarball(
        self,
        version: str,
        tarball: Path,
        *,
        progress: Progress | None = None,
        strip: int = 1,
        limits: ImportLimits | None = None,
        force: bool = False,
    ) -> str:
        """Import ``tarball`` as the tag of ``version``; return the commit. Idempotent.

        ``force`` re-imports a release that is there (a repair): every object is written again
        into a fresh pack, not deduplicated against the store, and damaged copies are dropped.
        """
        tag = tag_for(version)
        existing = self.resolve(tag)
        if existing is not None and not force:
            return existing
        tarball = Path(tarball)
        if not tarball.is_file():
            raise UserError(f"tarball not found: {tarball}")
        with self._locked():
            self._clean_stale()
        qdir = self.path / "tmp"
        qdir.mkdir(exist_ok=True)
        quarantine = Path(tempfile.mkdtemp(prefix=f"import-{os.getpid()}-", dir=qdir))
        try:
            proc.run(
                ["git", "init", "--quiet", "--bare", str(quarantine)], cwd=quarantine, check=True
            )
            if not force:  # a repair must not trust the store's copies
                (quarantine / "objects" / "info" / "alternates").write_text(
                    f"{(self.path / 'objects').resolve()}\n"
                )
            message = f"linux {version}: import of {tarball.name}\n"
            self._stream(quarantine, tarball, message, progress, strip, limits)
            commit = proc.run(
                ["git", f"--git-dir={quarantine}", "rev-parse", IMPORT_REF],
                cwd=quarantine,
                check=True,
            ).stdout.strip()
            with self._locked():
                current = self.resolve(tag)
                if current is not None and not force:
                    return current
                self._adopt_packs(quarantine, replace=force)
                if force:
                    self._git("update-ref", f"refs/tags/{tag}", commit)
                    self._repair()
                else:
                    self._git("update-ref", f"refs/tags/{tag}", commit, "")
                if self.pack_count() > self.max_packs:
                    self._repack()
            return commit
        finally:
            shutil.rmtree(quarantine, ignore_errors=True)

    def _stream(
        self,
        quarantine: Path,
        tarball: Path,
        message: str,
        progress: Progress | None,
        strip: int,
        limits: ImportLimits | None,
    ) -> None:
        total = tarball.stat().st_size
        dec_argv = decompressor_argv(tarball)
        log_path = quarantine / "fast-import.log"
        dec_err_path = quarantine / "decompress.log"
        with (
            open(log_path, "wb") as log,
            open(dec_err_path, "wb") as dec_err,
            open(tarball, "rb") as src,
        ):
            fi = proc.spawn(
                fast_import_argv(),
                cwd=quarantine,
                env={"GIT_DIR": str(quarantine)},
                stdout=log,
                stderr=log,
            )
            assert fi.stdin is not None
            _big_pipe(fi.stdin)
            dec: Popen[bytes] | None = None
            feeder: threading.Thread | None = None
            reader: IO[bytes] | _CountingReader
            try:
                if dec_argv is not None:
                    dec = proc.spawn(dec_argv, cwd=quarantine, stderr=dec_err)
                    assert dec.stdin is not None and dec.stdout is not None
                    _big_pipe(dec.stdout)
                    feeder = threading.Thread(
                        target=_feed, args=(src, dec.stdin, total, progress), daemon=True
                    )
                    feeder.start()
                    reader = open(dec.stdout.fileno(), "rb", buffering=FEED_CHUNK, closefd=False)  # noqa: SIM115
                else:
                    reader = _CountingReader(src, total, progress)
                assert fi.stdin is not None
                writer = TarToFastImport(fi.stdin, strip=strip, limits=limits)
                try:
                    tar = open_tar_stream(reader)  # type: ignore[arg-type]  # read() is enough
                    writer.feed(tar)
                except HostileTarball as exc:
                    raise HostileTarball(f"{tarball.name}: {exc.message}") from exc
                except (OSError, EOFError, ValueError) as exc:
                    if fi.poll() is not None:
                        raise self._fast_import_failed(log_path) from exc
                    raise _broken(tarball, str(exc), dec_err_path) from exc
                while reader.read(FEED_CHUNK):  # the zero padding after the end marker
                    pass
                if dec is not None:
                    rc = proc.stop(dec, timeout=60)
                    if feeder is not None:
                        feeder.join()
                    if rc != 0:
                        raise _broken(tarball, f"decompressor exited {rc}", dec_err_path)
                try:
                    writer.commit(IMPORT_REF, message)
                    rc = proc.stop(fi, timeout=600)
                except BrokenPipeError as exc:
                    raise self._fast_import_failed(log_path) from exc
                if rc != 0:
                    raise self._fast_import_failed(log_path)
            except BaseException:
                proc.kill(fi)
                if dec is not None:
                    proc.kill(dec)
                if feeder is not None:
                    feeder.join(timeout=10)
                raise

    @staticmethod
    def _fast_import_failed(log_path: Path) -> InfraError:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        return InfraError(f"git fast-import failed: {' '.join(tail) or 'no output'}")

    def _adopt_packs(self, quarantine: Path, *, replace: bool = False) -> None:
        """Move the quarantine's packs into the store: data files first, the .idx last.

        A pack of the same name holds the same objects; ``replace`` (a repair) swaps it anyway.
        """
        dest = self.path / "objects" / "pack"
        dest.mkdir(parents=True, exist_ok=True)
        for pack in sorted((quarantine / "objects" / "pack").glob("pack-*.pack")):
            stem = pack.with_suffix("")
            if (dest / f"{stem.name}.idx").exists() and not replace:
                continue
            parts = [
                p for p in stem.parent.glob(f"{stem.name}.*") if p.suffix not in (".idx", ".keep")
            ]
            for p in [*parts, stem.with_suffix(".idx")]:
                if p.exists():
                    os.replace(p, dest / p.name)

    def pack_count(self) -> int:
        return len(list((self.path / "objects" / "pack").glob("pack-*.idx")))

    def _repack(self) -> None:
        """Merge small packs into bigger ones (call with the lock held).

        Each import or fetch adds a pack; object lookups slow down as they pile up. A geometric
        repack rewrites only the small packs, reusing their compressed data (no delta search).
        """
        proc.run(repack_argv(self.path), cwd=self.path, timeout=3600, check=True)

    def _repair(self) -> None:
        """After a forced re-import (a fresh pack of the release): drop the damaged copies.

        Loose copies the fresh pack holds go (``prune-packed``); a pack that fails
        ``verify-pack`` is rewritten without its damaged objects (see ``salvage_pack``). Call
        with the lock held.
        """
        self._git("prune-packed", "-q")
        for idx in sorted((self.path / "objects" / "pack").glob("pack-*.idx")):
            check = self._git("verify-pack", str(idx), check=False, timeout=6 * 3600)
            if not check.ok:
                salvage_pack(self.path, idx, check.stderr + check.stdout)

    def _clean_stale(self) -> None:
        """Remove quarantines left by dead processes (call with the lock held)."""
        qdir = self.path / "tmp"
        if not qdir.is_dir():
            return
        for d in qdir.glob("import-*"):
            try:
                pid = int(d.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid() or _alive(pid):
                continue
            shutil.rmtree(d, ignore_errors=True)

    # -- writing: git feeds ---------------------------------------------------------------
    def remote_tags(self, url: str, pattern: str) -> list[str]:
        """Tag names of ``url`` matching the glob ``pattern`` that are kernel versions."""
        res = proc.run(
            ls_remote_argv(_check_url(url)),
            cwd=self.path if self.exists() else Path.cwd(),
            timeout=600,
        )
        if not res.ok:
            detail = " ".join(res.stderr.strip().splitlines()[-2:])
            raise InfraError(f"cannot list the tags of {url}: {detail}")
        tags = []
        for line in res.stdout.splitlines():
            _, _, ref = line.partition("\t")
            name = ref.removeprefix("refs/tags/")
            if fnmatch.fnmatchcase(name, pattern) and KernelVersion.try_parse(name) is not None:
                tags.append(name)
        return tags

    def fetch_git(self, url: str, pattern: str, *, force: bool = False) -> list[str]:
        """Fetch the tags of ``url`` matching ``pattern`` with their history; return the versions.

        Each tag lands as the store's tag of its version (``linux-6.1`` becomes ``v6.1``); an
        existing tag of that name (an imported tarball) is replaced: git history wins, bisect
        needs it. ``force`` fetches every object again (``--refetch``), a repair.
        """
        local: dict[str, str] = {}  # store tag (v6.1) -> remote tag (v6.1, linux-6.1, ...)
        for t in self.remote_tags(url, pattern):
            local.setdefault(KernelVersion.parse(t).tag, t)
        if not local:
            return []
        refspecs = "".join(f"+refs/tags/{r}:refs/tags/{t}\n" for t, r in local.items())
        with self._locked():
            if force:
                set_aside_damaged_loose(self.path)
            res = proc.run(
                fetch_argv(self.path, _check_url(url), refetch=force),
                cwd=self.path,
                timeout=6 * 3600,
                input=refspecs.encode(),
            )
            if res.ok and force:
                self._repair()
            if res.ok and self.pack_count() > self.max_packs:
                self._repack()
            if res.ok:
                # a commit-graph with changed-path filters makes bisect's history walks ~10x
                # faster; best effort: the store works without it
                proc.run(commit_graph_argv(self.path), cwd=self.path, timeout=3600)
        if not res.ok:
            detail = " ".join(res.stderr.strip().splitlines()[-2:])
            raise InfraError(f"git fetch from {url} failed: {detail}")
        return [str(v) for v in sorted(KernelVersion.parse(t) for t in local)]


def commit_graph_argv(git_dir: Path) -> list[str]:
    return [
        "git",
        f"--git-dir={git_dir}",
        "commit-graph",
        "write",
        "--reachable",
        "--changed-paths",
    ]


def _broken(tarball: Path, detail: str, dec_err: Path) -> InfraError:
    """A tarball that cannot be read to its end: the source is damaged (exit 3), not the input."""
    with contextlib.suppress(OSError):
        said = " ".join(dec_err.read_text(errors="replace").split())
        if said:
            detail = f"{said[:300]} ({detail})"
    return InfraError(
        f"{tarball}: damaged tarball, nothing imported: {detail}",
        hint="if it matched its published checksum, the source itself is broken: "
        "fetch it from another mirror",
    )


def _big_pipe(stream: IO[bytes]) -> None:
    """Grow a pipe to 1 MiB: fewer wake-ups when megabytes stream through (Linux only)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_SIZE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _feed(src: IO[bytes], dst: IO[bytes], total: int, progress: Progress | None) -> None:
    """Copy the compressed tarball into the decompressor, reporting progress."""
    done = 0
    try:
        while block := src.read(FEED_CHUNK):
            dst.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    except ValueError:  # the pipe was closed under us: the import was aborted
        pass
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.EBADF, errno.EINVAL):
            raise
    finally:
        with contextlib.suppress(OSError):
            dst.close()


class _CountingReader:
    """A file wrapper reporting read progress (for plain .tar files)."""

    def __init__(self, fh: IO[bytes], total: int, progress: Progress | None) -> None:
        self.fh, self.total, self.progress, self.done = fh, total, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.done, self.total)
        return data
