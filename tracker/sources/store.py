"""The release store: one bare git repository holding every kernel release as a tag.

- A tarball is imported without extracting it (``tarimport.py``: decompressor -> tar stream ->
  ``git fast-import``) into a quarantine repository whose alternates point at the store, so blobs
  the store already has (most of them, from one release to the next) are never written twice; on
  success its pack is moved into the store and the tag is created, under the store's lock.
- A git feed fetches its tags, with history, into the same repository (bisect needs it).
- :class:`~tracker.sources.treeview.TreeView` reads files of one release by path through one
  long-lived ``git cat-file --batch``; :meth:`ReleaseStore.materialize` writes a work tree for
  builds with ``read-tree`` + ``checkout-index`` on a private index (git never writes through a
  symlink). Every git command line comes from ``git.py``.

Writes take the file lock (``tracker/locks.py``) on ``ktrack.lock`` in the store, so two
processes may import or fetch at once. Imports are idempotent: a tag that exists is returned as
it is.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tracker import proc
from tracker.errors import InfraError, UserError
from tracker.locks import file_lock
from tracker.sources import git
from tracker.sources.fastimport import ImportLimits
from tracker.sources.integrity import escaping_links, salvage_pack, set_aside_damaged_loose
from tracker.sources.tarimport import IMPORT_REF, Progress, stream_tarball
from tracker.sources.treeview import TreeView
from tracker.versions import KernelVersion

if TYPE_CHECKING:
    from tracker.config import Settings

__all__ = ["ReleaseStore", "TreeView", "tag_for"]

_TAG_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def tag_for(version: str) -> str:
    """The store tag for a version text (``6.1.12`` -> ``v6.1.12``) or a tag given as is."""
    kv = KernelVersion.try_parse(version)
    if kv is not None:
        return kv.tag
    if not _TAG_OK.match(version or "") or ".." in version or version.endswith(".lock"):
        raise UserError(f"not a kernel version or tag: {version!r}")
    return version


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

    def _git(self, *args: str, check: bool = True, timeout: float = 600) -> proc.Result:
        return proc.run(git.git_argv(self.path, *args), cwd=self.path, timeout=timeout, check=check)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The store's write lock (on ``ktrack.lock``); creates the store if needed."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfraError(
                f"cannot create the release store {self.path}: {exc.strerror}"
            ) from exc
        with file_lock(self.path / "ktrack.lock"):
            if not self.exists():
                proc.run(git.init_argv(self.path), cwd=self.path, check=True)
                # the store is written by ktrack only: no automatic gc racing an import
                self._git("config", "gc.auto", "0")
            yield

    def resolve(self, rev: str) -> str | None:
        """The commit hash ``rev`` (a version, tag or commit) names in the store, or None."""
        if not self.exists():
            return None
        git.check_rev(rev)
        candidates = []
        with contextlib.suppress(UserError):
            candidates.append(f"refs/tags/{tag_for(rev)}")
        if git.HEX.match(rev):
            candidates.append(rev)
        for cand in candidates:
            commit = git.resolve(self.path, cand)
            if commit is not None:
                return commit
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
        return git.tags(self.path) if self.exists() else {}

    def tag_dates(self) -> dict[str, int]:
        """Every tag and its date (the tagger's, or the commit's for a lightweight tag)."""
        return git.tag_dates(self.path) if self.exists() else {}

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
            for argv in git.materialize_argvs(self.path, dest.resolve(), commit):
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
            proc.run(git.init_argv(quarantine), cwd=quarantine, check=True)
            if not force:  # a repair must not trust the store's copies
                (quarantine / "objects" / "info" / "alternates").write_text(
                    f"{(self.path / 'objects').resolve()}\n"
                )
            message = f"linux {version}: import of {tarball.name}\n"
            stream_tarball(quarantine, tarball, message, progress, strip, limits)
            commit = git.resolve(quarantine, IMPORT_REF)
            if commit is None:
                raise InfraError(f"git fast-import left no {IMPORT_REF} in {quarantine}")
            with self._locked():
                current = self.resolve(tag)
                if current is not None and not force:
                    return current
                self._adopt_packs(quarantine, replace=force)
                if force:
                    proc.run(
                        git.update_ref_argv(self.path, f"refs/tags/{tag}", commit),
                        cwd=self.path,
                        check=True,
                    )
                    self._repair()
                else:
                    proc.run(
                        git.update_ref_argv(self.path, f"refs/tags/{tag}", commit, ""),
                        cwd=self.path,
                        check=True,
                    )
                if self.pack_count() > self.max_packs:
                    self._repack()
            return commit
        finally:
            shutil.rmtree(quarantine, ignore_errors=True)

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
        proc.run(git.repack_argv(self.path), cwd=self.path, timeout=3600, check=True)

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
        cwd = self.path if self.exists() else Path.cwd()
        return [
            name
            for name in git.remote_tags(url, cwd=cwd)
            if fnmatch.fnmatchcase(name, pattern) and KernelVersion.try_parse(name) is not None
        ]

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
                git.fetch_argv(self.path, git.check_url(url), refetch=force),
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
                proc.run(git.commit_graph_argv(self.path), cwd=self.path, timeout=3600)
        if not res.ok:
            detail = " ".join(res.stderr.strip().splitlines()[-2:])
            raise InfraError(f"git fetch from {url} failed: {detail}")
        return [str(v) for v in sorted(KernelVersion.parse(t) for t in local)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
