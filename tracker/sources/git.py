"""Every git command ktrack runs on a repository, in one place.

- **Metadata** (resolving a rev, tags and their dates, ancestry, the tags a feed offers) is asked
  through GitPython (``git.Repo``, ``git.Git``): the design card's library. A query has a timeout
  (:data:`QUERY_TIMEOUT`) and its failures become :class:`InfraError`; "no such rev" is None.
- **Long writes and streams** (fetch, repack, commit-graph, init, update-ref, read-tree and
  checkout-index, and the hot paths ``cat-file --batch`` of :mod:`tracker.sources.treeview` and
  ``fast-import`` of :mod:`tracker.sources.fastimport`) run through :mod:`tracker.proc` (their own
  process group, a timeout, PDEATHSIG, big pipes); their command lines are built here by pure
  functions that tests assert exactly.

Untrusted strings never reach git as options: a rev is checked by :func:`check_rev` (and given
after ``--end-of-options``), a feed URL by :func:`check_url` (and GitPython's unsafe-protocol
check) and given after ``--``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.errors import InfraError, UserError

if TYPE_CHECKING:  # GitPython is imported where a query runs: ~0.15 s the argv builders skip
    import git as gitpython

QUERY_TIMEOUT = 600.0
HEX = re.compile(r"^[0-9a-f]{7,64}$")


# ---------------------------------------------------------------------------------------------
# untrusted names


def check_rev(rev: str) -> str:
    """``rev`` unless it could be read as an option or holds whitespace (UserError)."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
        raise UserError(f"not a release, tag or commit: {rev!r}")
    return rev


def check_url(url: str) -> str:
    """A feed's repository URL or path, refused when git could take it for an option, when it
    spans lines, or when it names a transport that runs commands (``ext::``)."""
    if not url or url.startswith("-") or "\n" in url:
        raise UserError(f"not a repository URL or path: {url!r}")
    import git as gitpython

    try:
        gitpython.Git.check_unsafe_protocols(url)
    except gitpython.exc.UnsafeProtocolError as exc:
        raise UserError(
            f"refused repository URL (a transport that runs commands): {url!r}"
        ) from exc
    return url


# ---------------------------------------------------------------------------------------------
# command lines run through tracker.proc


def git_argv(git_dir: Path, *args: str) -> list[str]:
    return ["git", f"--git-dir={git_dir}", *args]


def init_argv(path: Path) -> list[str]:
    return ["git", "init", "--quiet", "--bare", str(path)]


def fetch_argv(git_dir: Path, url: str, *, refetch: bool = False) -> list[str]:
    """Fetch the refspecs given on stdin (one per line) from ``url``, with history, no other tags.

    ``refetch`` (a repair) fetches every object again, always into a pack: unpacked, objects
    the store "has" (damaged copies among them) would be skipped.
    """
    if refetch:
        return git_argv(
            git_dir, "-c", "fetch.unpackLimit=1",
            "fetch", "--quiet", "--no-tags", "--refetch", "--stdin", "--", url,
        )  # fmt: skip
    return git_argv(git_dir, "fetch", "--quiet", "--no-tags", "--stdin", "--", url)


def repack_argv(git_dir: Path) -> list[str]:
    return git_argv(
        git_dir, "-c", "pack.window=0", "-c", "pack.compression=1",
        "repack", "-d", "-q", "--geometric=2", "--no-write-bitmap-index",
    )  # fmt: skip


def commit_graph_argv(git_dir: Path) -> list[str]:
    return git_argv(git_dir, "commit-graph", "write", "--reachable", "--changed-paths")


def cat_file_argv(git_dir: Path) -> list[str]:
    return git_argv(git_dir, "cat-file", "--batch")


def ls_files_argv(git_dir: Path, commit: str) -> list[str]:
    """Every file path of ``commit``'s tree, NUL-separated."""
    return git_argv(git_dir, "ls-tree", "-r", "-z", "--name-only", commit)


def update_ref_argv(git_dir: Path, ref: str, new: str, old: str | None = None) -> list[str]:
    """Set ``ref`` to ``new``; with ``old`` ("" for: must not exist yet) only if it holds that."""
    return git_argv(git_dir, "update-ref", ref, new, *([] if old is None else [old]))


def ls_tree_argv(git_dir: Path, commit: str, *, folders: bool = False) -> list[str]:
    """Every entry of ``commit``'s tree with mode and id, NUL-separated (``folders``: the tree
    objects too, ``-t``)."""
    return git_argv(git_dir, "ls-tree", "-r", *(["-t"] if folders else []), "-z", "--full-tree",
                    commit)  # fmt: skip


def fsck_argv(git_dir: Path, *, full: bool = True) -> list[str]:
    """``full``: every object read and hashed, not only connectivity; no dangling noise.
    Not ``--strict``: old kernel history holds objects it would flag that read fine."""
    check = "--full" if full else "--connectivity-only"
    return git_argv(git_dir, "fsck", check, "--no-dangling")


def show_index_argv() -> list[str]:
    """The object ids of a pack's ``.idx`` given on stdin."""
    return ["git", "show-index"]


def cat_file_check_argv(git_dir: Path) -> list[str]:
    """Type and size (or ``missing``) of each object id given on stdin."""
    return git_argv(git_dir, "cat-file", "--batch-check")


def pack_objects_argv(git_dir: Path, base: Path) -> list[str]:
    """A pack at ``base``-<hash> of the object ids given on stdin."""
    return git_argv(git_dir, "pack-objects", "-q", str(base))


def materialize_argvs(git_dir: Path, work_tree: Path, commit: str) -> list[list[str]]:
    base = git_argv(git_dir, f"--work-tree={work_tree}", "-c", "core.autocrlf=false")
    return [[*base, "read-tree", commit], [*base, "checkout-index", "--all"]]


# ---------------------------------------------------------------------------------------------
# metadata, through GitPython


@contextlib.contextmanager
def open_repo(git_dir: Path) -> Iterator[gitpython.Repo]:
    """The repository at ``git_dir`` (closed, with its helper processes, on exit)."""
    import git as gitpython

    try:
        repo = gitpython.Repo(git_dir)
    except (gitpython.exc.NoSuchPathError, gitpython.exc.InvalidGitRepositoryError) as exc:
        raise InfraError(f"not a git repository: {git_dir}") from exc
    try:
        yield repo
    finally:
        repo.close()


def query(git_dir: Path, *args: str, ok: Sequence[int] = (0,)) -> tuple[int, str]:
    """Run the git query ``args`` on ``git_dir`` through GitPython: (exit status, stdout).

    An exit status outside ``ok`` is an InfraError naming git's last words."""
    with open_repo(git_dir) as repo:
        status, out, err = _execute(repo.git, git_argv(git_dir, *args))
    if status not in ok:
        tail = (err.strip().splitlines() or ["no output"])[-1]
        raise InfraError(f"git {args[0]} failed in {git_dir}: {tail}")
    return status, out


def _execute(runner: gitpython.Git, argv: list[str]) -> tuple[int, str, str]:
    """GitPython runs ``argv``: (exit status, stdout, stderr), within :data:`QUERY_TIMEOUT`."""
    from git.exc import GitCommandNotFound

    try:
        status, out, err = runner.execute(
            argv,
            with_extended_output=True,
            with_exceptions=False,
            kill_after_timeout=QUERY_TIMEOUT,
            strip_newline_in_stdout=False,
        )
    except GitCommandNotFound as exc:
        raise InfraError(
            "required tool not found: git", hint="install it or run `ktrack doctor`"
        ) from exc
    return int(status), str(out), str(err)


def resolve(git_dir: Path, rev: str) -> str | None:
    """The commit hash ``rev`` names in ``git_dir``, or None."""
    status, out = query(
        git_dir,
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{check_rev(rev)}^{{commit}}",
        ok=(0, 1, 128),
    )  # fmt: skip
    return out.strip() if status == 0 else None


def tags(git_dir: Path) -> dict[str, str]:
    """Every tag of ``git_dir`` and the commit it names."""
    _, out = query(
        git_dir, "for-each-ref", "--format=%(refname:strip=2) %(*objectname) %(objectname)",
        "refs/tags",
    )  # fmt: skip
    found: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) in (2, 3):  # lightweight: name commit; annotated: name peeled tag
            found[parts[0]] = parts[1]
    return found


def tag_dates(git_dir: Path) -> dict[str, int]:
    """Every tag and its date (the tagger's, or the commit's for a lightweight tag)."""
    _, out = query(git_dir, "for-each-ref", "--format=%(refname:strip=2) %(creatordate:unix)",
                   "refs/tags")  # fmt: skip
    found: dict[str, int] = {}
    for line in out.splitlines():
        name, _, when = line.partition(" ")
        if when.strip().isdigit():
            found[name] = int(when)
    return found


def is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    """Whether commit ``a`` is an ancestor of (or is) ``b``."""
    status, _ = query(
        git_dir, "merge-base", "--is-ancestor", "--end-of-options", check_rev(a), check_rev(b),
        ok=(0, 1),
    )  # fmt: skip
    return status == 0


def merge_base(git_dir: Path, a: str, b: str) -> str | None:
    """The best common ancestor of commits ``a`` and ``b``, or None when they share no history."""
    status, out = query(git_dir, "merge-base", "--end-of-options", check_rev(a), check_rev(b),
                        ok=(0, 1))  # fmt: skip
    return (out.strip() or None) if status == 0 else None


def remote_tags(url: str, *, cwd: Path) -> list[str]:
    """The tag names ``url`` offers (``git ls-remote --tags --refs``), run in ``cwd``."""
    argv = ["git", "ls-remote", "--tags", "--refs", "--", check_url(url)]
    from git import Git

    status, out, err = _execute(Git(cwd), argv)
    if status != 0:
        detail = " ".join(err.strip().splitlines()[-2:])
        raise InfraError(f"cannot list the tags of {url}: {detail}")
    names = []
    for line in out.splitlines():
        _, _, ref = line.partition("\t")
        names.append(ref.removeprefix("refs/tags/"))
    return names
