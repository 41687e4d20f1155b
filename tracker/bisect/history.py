"""The git history bisect searches: commands built by pure functions, run by one helper."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tracker import proc
from tracker.errors import InfraError, UserError

GIT_TIMEOUT = 600.0


def git_argv(git_dir: Path, *args: str) -> list[str]:
    return ["git", f"--git-dir={git_dir}", *args]


def first_parent_argv(git_dir: Path, good: str, bad: str, paths: Sequence[str]) -> list[str]:
    """Oldest first: the first-parent commits of ``good..bad`` that touch ``paths`` (all if none)."""
    return git_argv(
        git_dir, "rev-list", "--first-parent", "--reverse", bad, f"^{good}", "--", *paths
    )


def line_argv(git_dir: Path, good: str, bad: str) -> list[str]:
    """Oldest first, with their parents: the first-parent line of ``good..bad``."""
    return git_argv(
        git_dir, "rev-list", "--first-parent", "--reverse", "--parents", bad, f"^{good}"
    )


def count_argv(git_dir: Path, good: str, bad: str) -> list[str]:
    """``LEFT\tRIGHT``: commits only reachable from good, and only from bad (one history walk
    tells ancestry and the size of the range)."""
    return git_argv(git_dir, "rev-list", "--count", "--left-right", f"{good}...{bad}")


def is_ancestor_argv(git_dir: Path, a: str, b: str) -> list[str]:
    return git_argv(git_dir, "merge-base", "--is-ancestor", a, b)


def merge_base_argv(git_dir: Path, a: str, b: str) -> list[str]:
    return git_argv(git_dir, "merge-base", a, b)


def parents_argv(git_dir: Path, commit: str) -> list[str]:
    return git_argv(git_dir, "rev-list", "--parents", "-n", "1", commit)


def resolve_argv(git_dir: Path, rev: str) -> list[str]:
    return git_argv(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def tree_argv(git_dir: Path, commit: str) -> list[str]:
    return git_argv(git_dir, "rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}")


def run_git(git_dir: Path, argv: list[str], *, check: bool = True) -> proc.Result:
    return proc.run(argv, cwd=git_dir, timeout=GIT_TIMEOUT, check=check)


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or any(c.isspace() or c in "^:~" for c in rev):
        raise UserError(f"not a release, tag or commit: {rev!r}")
    return rev


def resolve(git_dir: Path, rev: str) -> str | None:
    """The commit hash ``rev`` names in ``git_dir``, or None."""
    res = run_git(git_dir, resolve_argv(git_dir, _check_rev(rev)), check=False)
    return res.stdout.strip() if res.ok else None


def is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    res = run_git(git_dir, is_ancestor_argv(git_dir, a, b), check=False)
    if res.returncode not in (0, 1):
        raise InfraError(f"git merge-base failed in {git_dir}: {res.stderr.strip()}")
    return res.returncode == 0


def merge_base(git_dir: Path, a: str, b: str) -> str | None:
    res = run_git(git_dir, merge_base_argv(git_dir, a, b), check=False)
    if res.returncode not in (0, 1):
        raise InfraError(f"git merge-base failed in {git_dir}: {res.stderr.strip()}")
    return res.stdout.strip() or None


def parents(git_dir: Path, commit: str) -> tuple[str, ...]:
    out = run_git(git_dir, parents_argv(git_dir, commit)).stdout.split()
    return tuple(out[1:])


def first_parent_commits(git_dir: Path, good: str, bad: str, paths: Sequence[str]) -> list[str]:
    return run_git(git_dir, first_parent_argv(git_dir, good, bad, paths)).stdout.split()


def left_right(git_dir: Path, good: str, bad: str) -> tuple[int, int]:
    left, right = run_git(git_dir, count_argv(git_dir, good, bad)).stdout.split()
    return int(left), int(right)


def line_entry(git_dir: Path, good: str, bad: str) -> str | None:
    """Where ``bad``'s first-parent line leaves ``good``'s history: ``good`` itself when ``good``
    is on that line, else the commit the line passes through (the fork of good's branch)."""
    out = run_git(git_dir, line_argv(git_dir, good, bad)).stdout
    first = out.split("\n", 1)[0].split()
    return first[1] if len(first) > 1 else None


def tree_of(git_dir: Path, commit: str) -> str:
    res = run_git(git_dir, tree_argv(git_dir, commit), check=False)
    if not res.ok:
        raise InfraError(f"commit {commit} has no tree in {git_dir}")
    return res.stdout.strip()


def history_available(git_dir: Path, good: str, bad: str) -> bool:
    """Whether ``git_dir`` holds the history from ``good`` to ``bad`` (``ktrack run`` asks)."""
    g, b = resolve(git_dir, good), resolve(git_dir, bad)
    if g is None or b is None or g == b:
        return False
    only_good, only_bad = left_right(git_dir, g, b)
    return only_good == 0 and only_bad > 0


def check_range(git_dir: Path, good: str, bad: str, *, good_name: str, bad_name: str) -> int:
    """The number of commits in ``good..bad``; UserError unless ``good`` is a proper ancestor
    of ``bad`` in ``git_dir``."""
    hint = "the store needs upstream history: add a feed of kind 'git' and fetch both releases"
    if good == bad:
        raise UserError(f"{good_name} and {bad_name} are the same commit: nothing to bisect")
    only_good, only_bad = left_right(git_dir, good, bad)
    if only_good == 0:
        return only_bad
    if only_bad == 0:
        raise UserError(
            f"good and bad are reversed: {bad_name} is older than {good_name}",
            hint=f"swap them: --good {bad_name} --bad {good_name}",
        )
    if merge_base(git_dir, good, bad) is None:
        raise UserError(
            f"no history between {good_name} and {bad_name} in the store "
            "(they share no commit: imported from tarballs?)",
            hint=hint,
        )
    raise UserError(
        f"{good_name} is not an ancestor of {bad_name}: they lie on different branches",
        hint="pick a good release that the bad one descends from (e.g. the mainline release)",
    )
