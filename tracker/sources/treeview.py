"""Files of one release (a commit of the store) read by path, without a checkout.

One long-lived ``git cat-file --batch`` (the store's read hot path) serves every read, through
a pipe grown to 1 MiB; :meth:`TreeView.mode` parses the parent folder's tree object (cached).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from tracker import proc
from tracker.errors import InfraError
from tracker.sources.git import cat_file_argv, ls_files_argv
from tracker.sources.tree import safe_relpath

if TYPE_CHECKING:
    from subprocess import Popen


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
            proc.big_pipe(p.stdout)
            self._out = open(p.stdout.fileno(), "rb", buffering=proc.PIPE_SIZE, closefd=False)  # noqa: SIM115
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
            ls_files_argv(self.git_dir, self.commit), cwd=self.git_dir, timeout=600, check=True
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
