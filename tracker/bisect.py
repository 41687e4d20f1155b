"""The first upstream commit that breaks a patch set.

With upstream history in the release store, the range ``good..bad`` is searched for the commit
where the verdict of a stage turns from pass/warn to fail:

1. **Narrow.** Only commits that change the files of the failing hunks can change whether those
   hunks apply, so the candidates are the first-parent commits of ``good..bad`` that touch those
   files (``git rev-list --first-parent -- PATHS``): a pathspec-limited log.
2. **Bisect** the candidates: ``ceil(log2(n))`` checks. A commit whose verdict cannot be known
   (``skip`` or ``error``) is skipped, never guessed; when skips leave several commits possible,
   all of them are reported as suspects and no culprit is named.
3. **Merges.** When the first-parent culprit is a merge, its other parents are checked: a failing
   side branch is searched the same way from its fork point (the full graph, one level at a time);
   when every side passes, the merge itself (its combination or conflict resolution) is the culprit.
4. **Several breaks.** When the culprit explains only some of the hunks failing at ``bad``, the
   search runs again for the rest (``find_breaks``), so two commits that break two patches are
   both named. Verdicts are cached per commit, so no commit is checked twice.

``find_culprit`` is the core over any ``check(commit) -> Status``; ``find_breaks`` works on richer
verdicts (which hunks fail); ``bisect_patchset`` wires the release store, the apply engine (or
the build/boot stages) and the results database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker import proc
from tracker.errors import InfraError, UserError
from tracker.vocab import Status

if TYPE_CHECKING:
    from tracker.config import Settings
    from tracker.results.db import Database

SCHEMA = "ktrack.bisect/1"
GIT_TIMEOUT = 600.0

Check = Callable[[str], Status]


# ---------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class HunkRef:
    """One failing hunk (``index`` 0: the whole file, e.g. ``missing-file``)."""

    patch: str
    path: str
    index: int
    klass: str
    expected_line: int | None = None
    want: tuple[str, ...] = ()  # the lines the hunk expected, when the checker knows them
    old_path: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.patch, self.path, self.index)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "patch": self.patch,
            "path": self.path,
            "hunk": self.index,
            "class": self.klass,
        }
        if self.expected_line is not None:
            out["expected_line"] = self.expected_line
        return out


@dataclass(frozen=True)
class Verdict:
    """A stage's verdict at one commit, with the hunks that fail (apply stage)."""

    status: Status
    summary: str = ""
    failing: tuple[HunkRef, ...] = ()

    @property
    def known(self) -> bool:
        return self.status not in (Status.SKIP, Status.ERROR)

    @property
    def keys(self) -> frozenset[tuple[str, str, int]]:
        return frozenset(h.key for h in self.failing)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "summary": self.summary,
            "failing": [h.to_json() for h in self.failing],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            status=Status(data["status"]),
            summary=str(data.get("summary", "")),
            failing=tuple(
                HunkRef(
                    patch=str(h["patch"]),
                    path=str(h["path"]),
                    index=int(h["hunk"]),
                    klass=str(h["class"]),
                    expected_line=h.get("expected_line"),
                )
                for h in data.get("failing", ())
            ),
        )


Probe = Callable[[str], Verdict]


@dataclass(frozen=True)
class Step:
    """One check the search made: which commit, why, and what it said."""

    commit: str
    status: Status
    role: str  # good, bad, first-parent, side-branch, fork-point, verify

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit, "status": self.status.value, "role": self.role}


@dataclass(frozen=True)
class CommitInfo:
    hash: str
    subject: str
    author: str
    authored_at: datetime
    committed_at: datetime
    parents: tuple[str, ...]

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.hash,
            "subject": self.subject,
            "author": self.author,
            "date": self.authored_at.isoformat(),
            "committed_at": self.committed_at.isoformat(),
            "merge": self.is_merge,
        }


@dataclass(frozen=True)
class Break:
    """One culprit and what it broke: its hunks, the diff at the conflict, later touches."""

    commit: CommitInfo | None  # None: skipped commits left several suspects
    suspects: tuple[CommitInfo, ...]
    hunks: tuple[HunkRef, ...]
    excerpt: str = ""
    later: tuple[CommitInfo, ...] = ()
    via_merge: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.path for h in self.hunks))


@dataclass(frozen=True)
class BisectResult:
    """What one search found. ``culprit`` is None only when skipped commits left ``suspects``.

    ``checks`` counts the checks actually run (cached answers are free); ``commits`` is the size
    of ``good..bad`` in the full graph, ``candidates`` the first-parent commits left after
    narrowing to ``paths``. ``breaks`` is filled by ``bisect_patchset`` (one per culprit).
    """

    good: str
    bad: str
    culprit: str | None
    suspects: tuple[str, ...]
    paths: tuple[str, ...]
    commits: int
    candidates: int
    steps: tuple[Step, ...]
    checks: int
    via_merge: str | None = None
    notes: tuple[str, ...] = ()
    hunks: tuple[HunkRef, ...] = ()
    breaks: tuple[Break, ...] = ()
    rounds: tuple[BisectResult, ...] = ()
    stage: str = "apply"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return self.culprit is not None


# ---------------------------------------------------------------------------------------------
# git: commands are built by pure functions, run by one helper


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


def _git(git_dir: Path, argv: list[str], *, check: bool = True) -> proc.Result:
    return proc.run(argv, cwd=git_dir, timeout=GIT_TIMEOUT, check=check)


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or any(c.isspace() or c in "^:~" for c in rev):
        raise UserError(f"not a release, tag or commit: {rev!r}")
    return rev


def resolve(git_dir: Path, rev: str) -> str | None:
    """The commit hash ``rev`` names in ``git_dir``, or None."""
    res = _git(git_dir, resolve_argv(git_dir, _check_rev(rev)), check=False)
    return res.stdout.strip() if res.ok else None


def is_ancestor(git_dir: Path, a: str, b: str) -> bool:
    res = _git(git_dir, is_ancestor_argv(git_dir, a, b), check=False)
    if res.returncode not in (0, 1):
        raise InfraError(f"git merge-base failed in {git_dir}: {res.stderr.strip()}")
    return res.returncode == 0


def merge_base(git_dir: Path, a: str, b: str) -> str | None:
    res = _git(git_dir, merge_base_argv(git_dir, a, b), check=False)
    if res.returncode not in (0, 1):
        raise InfraError(f"git merge-base failed in {git_dir}: {res.stderr.strip()}")
    return res.stdout.strip() or None


def parents(git_dir: Path, commit: str) -> tuple[str, ...]:
    out = _git(git_dir, parents_argv(git_dir, commit)).stdout.split()
    return tuple(out[1:])


def first_parent_commits(git_dir: Path, good: str, bad: str, paths: Sequence[str]) -> list[str]:
    return _git(git_dir, first_parent_argv(git_dir, good, bad, paths)).stdout.split()


def left_right(git_dir: Path, good: str, bad: str) -> tuple[int, int]:
    left, right = _git(git_dir, count_argv(git_dir, good, bad)).stdout.split()
    return int(left), int(right)


def line_entry(git_dir: Path, good: str, bad: str) -> str | None:
    """Where ``bad``'s first-parent line leaves ``good``'s history: ``good`` itself when ``good``
    is on that line, else the commit the line passes through (the fork of good's branch)."""
    out = _git(git_dir, line_argv(git_dir, good, bad)).stdout
    first = out.split("\n", 1)[0].split()
    return first[1] if len(first) > 1 else None


def tree_of(git_dir: Path, commit: str) -> str:
    res = _git(git_dir, tree_argv(git_dir, commit), check=False)
    if not res.ok:
        raise InfraError(f"commit {commit} has no tree in {git_dir}")
    return res.stdout.strip()


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


# ---------------------------------------------------------------------------------------------
# the search


@dataclass
class _Search:
    """One search over ``check``; remembers every answer so no commit is checked twice."""

    git_dir: Path
    check: Check
    known: dict[str, Status] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    candidates: int = 0

    def status(self, commit: str, role: str) -> Status:
        if commit not in self.known:
            st = self.check(commit)
            self.known[commit] = st
            self.steps.append(Step(commit, st, role))
        return self.known[commit]

    def search(
        self, good: str, bad: str, paths: Sequence[str], *, top: bool = True
    ) -> tuple[str | None, tuple[str, ...], str | None]:
        """(culprit, suspects, merge descended through) with ``good`` passing, ``bad`` failing."""
        cands = first_parent_commits(self.git_dir, good, bad, paths)
        if not cands and paths:
            self.notes.append(
                f"no first-parent commit in {good[:12]}..{bad[:12]} touches {', '.join(paths)}: "
                "searched every commit"
            )
            cands = first_parent_commits(self.git_dir, good, bad, ())
        if not cands:  # cannot happen for good < bad; keep the invariant explicit
            raise InfraError(f"git found no commit in {good}..{bad}")
        if top:
            self.candidates = len(cands)
        # invariant: cands[lo] (or good when lo == -1) passes; cands[hi] fails or is equivalent
        # to bad on the paths (no candidate between them)
        lo, hi = -1, len(cands) - 1
        skipped: set[int] = set()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            open_ = [i for i in range(lo + 1, hi) if i not in skipped]
            if not open_:
                break
            mid = min(open_, key=lambda i: (abs(i - mid), i))
            st = self.status(cands[mid], "first-parent")
            if st is Status.FAIL:
                hi = mid
            elif st.proceeds:
                lo = mid
            else:
                skipped.add(mid)
        if hi - lo > 1:
            suspects = tuple(cands[lo + 1 : hi + 1])
            self.notes.append(
                f"{len(suspects) - 1} commit(s) could not be judged; the culprit is one of "
                f"{len(suspects)} suspects"
            )
            return None, suspects, None
        culprit = cands[hi]
        if culprit not in self.known:
            # equivalent to bad on the paths; verify, since a miss would name the wrong commit
            st = self.status(culprit, "verify")
            if st.proceeds:
                self.notes.append(
                    f"{culprit[:12]} passes although it matches {bad[:12]} on the narrowed "
                    "files: searched the rest without narrowing"
                )
                return self.search(culprit, bad, (), top=False)
        ps = parents(self.git_dir, culprit)
        below = cands[lo] if lo >= 0 else good
        if paths and ps and ps[0] != below:
            # the commits between the last pass and the culprit should match that pass on the
            # paths; verify the culprit's parent so that a wrong narrowing cannot go unnoticed
            st = self.status(ps[0], "verify")
            if st is Status.FAIL:
                self.notes.append(
                    f"{ps[0][:12]} fails although it matches {below[:12]} on the narrowed "
                    "files: searched between them without narrowing"
                )
                return self.search(below, ps[0], (), top=False)
        ps = parents(self.git_dir, culprit)
        if len(ps) > 1:
            return self._merge(culprit, ps, paths)
        return culprit, (culprit,), None

    def _merge(
        self, merge: str, ps: tuple[str, ...], paths: Sequence[str]
    ) -> tuple[str | None, tuple[str, ...], str | None]:
        """The first-parent culprit is a merge: find the side commit that broke it, if any."""
        for side in ps[1:]:
            chain = first_parent_commits(self.git_dir, ps[0], side, ())
            if not chain:
                continue  # that side brought nothing new
            st = self.status(side, "side-branch")
            if st is Status.FAIL:
                fork = parents(self.git_dir, chain[0])
                if not fork:
                    self.notes.append(f"side branch of merge {merge[:12]} has no fork point")
                    return merge, (merge,), None
                fst = self.status(fork[0], "fork-point")
                if fst.proceeds:
                    culprit, suspects, _ = self.search(fork[0], side, paths, top=False)
                    return culprit, suspects, merge
                if fst is Status.FAIL:
                    self.notes.append(
                        f"the side branch merged by {merge[:12]} already failed where it forked "
                        f"({fork[0][:12]}): the merge is the first commit of this history to fail"
                    )
                    return merge, (merge,), None
                st = fst  # unknown at the fork: as if the side were unknown
            if not st.proceeds:
                touched = first_parent_commits(self.git_dir, ps[0], side, paths)
                self.notes.append(
                    f"the side branch {side[:12]} of merge {merge[:12]} could not be judged"
                )
                return None, (merge, *touched), merge
        return merge, (merge,), None


def _line_start(search: _Search, g: str, b: str) -> str:
    """Where the first-parent search starts: ``g``, or where ``b``'s first-parent line leaves
    ``g``'s history when ``g`` is not on that line (a release of a merged branch); that commit
    must pass too."""
    entry = line_entry(search.git_dir, g, b)
    if entry is None or entry == g:
        return g
    st = search.status(entry, "line-entry")
    if not st.proceeds:
        raise UserError(
            "the good release is not on the first-parent line of the bad one, and that line "
            f"does not pass where it branches off ({entry[:12]}: {st.value})",
            hint="pick a good release on the same line (e.g. the mainline release)",
        )
    search.notes.append(f"good is off the first-parent line: searched from {entry[:12]}")
    return entry


def _endpoints(
    search: _Search, g: str, b: str, *, good_name: str, bad_name: str, stage: str
) -> None:
    sb = search.status(b, "bad")
    if sb is Status.ERROR:
        raise InfraError(f"could not judge {bad_name} at the {stage} stage (infrastructure error)")
    if sb is not Status.FAIL:
        raise UserError(
            f"the {stage} stage does not fail at {bad_name} ({sb.value}): nothing to bisect",
            hint="name a bad release where `ktrack check` fails",
        )
    sg = search.status(g, "good")
    if sg is Status.FAIL:
        raise UserError(
            f"the {stage} stage already fails at the good release {good_name}",
            hint="name an older good release where it passes",
        )
    if sg is Status.ERROR:
        raise InfraError(f"could not judge {good_name} at the {stage} stage (infrastructure error)")
    if not sg.proceeds:
        raise UserError(f"the {stage} stage cannot be judged at {good_name} ({sg.value})")


def _resolve_pair(git_dir: Path, good: str, bad: str) -> tuple[str, str]:
    g, b = resolve(git_dir, good), resolve(git_dir, bad)
    for name, commit in ((good, g), (bad, b)):
        if commit is None:
            raise UserError(
                f"{name} is not in the release store {git_dir}",
                hint=f"run `ktrack fetch {name}` (a git feed brings history)",
            )
    assert g is not None and b is not None
    return g, b


def find_culprit(
    git_dir: Path,
    good: str,
    bad: str,
    check: Check,
    paths: Sequence[str],
    *,
    stage: str = "apply",
) -> BisectResult:
    """The first commit of ``good..bad`` where ``check`` turns from pass/warn to fail.

    ``good``/``bad`` are commits or tags of ``git_dir``; ``check(commit)`` returns the stage's
    Status there (``skip``/``error``: unknown, the commit is skipped); ``paths`` narrows the
    candidates to commits touching them (the files of the failing hunks; empty: no narrowing).
    UserError (exit 2) for reversed releases, no history, a good that fails, a bad that passes.
    """
    g, b = _resolve_pair(git_dir, good, bad)
    commits = check_range(git_dir, g, b, good_name=good, bad_name=bad)
    search = _Search(git_dir, check)
    _endpoints(search, g, b, good_name=good, bad_name=bad, stage=stage)
    start = _line_start(search, g, b)
    return _run(search, g, b, tuple(paths), commits, stage=stage, first=0, start=start)


def _run(
    search: _Search,
    g: str,
    b: str,
    paths: tuple[str, ...],
    commits: int,
    *,
    stage: str,
    first: int | None = None,
    start: str | None = None,
) -> BisectResult:
    first = len(search.steps) if first is None else first
    culprit, suspects, via = search.search(start or g, b, paths)
    steps = tuple(search.steps[first:])
    return BisectResult(
        good=g,
        bad=b,
        culprit=culprit,
        suspects=suspects,
        paths=paths,
        commits=commits,
        candidates=search.candidates,
        steps=steps,
        checks=len(steps),
        via_merge=via,
        notes=tuple(search.notes),
        stage=stage,
    )


# ---------------------------------------------------------------------------------------------
# several breaks: verdicts with hunks


@dataclass
class ProbeCache:
    """Runs ``probe`` at most once per commit (and once per tree when ``tree_key`` is given)."""

    probe: Probe
    tree_key: Callable[[str], str] | None = None
    by_commit: dict[str, Verdict] = field(default_factory=dict)
    by_tree: dict[str, Verdict] = field(default_factory=dict)
    runs: int = 0

    def __call__(self, commit: str) -> Verdict:
        if commit in self.by_commit:
            return self.by_commit[commit]
        key = self.tree_key(commit) if self.tree_key is not None else None
        if key is not None and key in self.by_tree:
            verdict = self.by_tree[key]
        else:
            try:
                verdict = self.probe(commit)
            except InfraError as exc:  # never a verdict: the commit is skipped
                verdict = Verdict(Status.ERROR, f"infrastructure: {exc}")
            self.runs += 1
            if key is not None and verdict.known:
                self.by_tree[key] = verdict
        self.by_commit[commit] = verdict
        return verdict


def _paths_of(hunks: Iterable[HunkRef]) -> tuple[str, ...]:
    out: list[str] = []
    for h in hunks:
        for p in (h.path, h.old_path):
            if p and p not in out:
                out.append(p)
    return tuple(sorted(out))


def find_breaks(
    git_dir: Path,
    good: str,
    bad: str,
    probe: Probe | ProbeCache,
    *,
    stage: str = "apply",
    max_rounds: int = 16,
    names: tuple[str, str] | None = None,
) -> BisectResult:
    """Every commit that breaks some of the hunks failing at ``bad``, oldest first.

    Round 1 finds the first commit where any hunk failing at ``bad`` fails; the hunks it breaks
    are set aside and the search repeats for the rest, until every failing hunk is explained or
    skipped commits leave suspects. Without hunk detail (build, boot) there is one round on the
    status alone. Returns the first round's result with ``rounds`` holding every round.
    """
    cache = probe if isinstance(probe, ProbeCache) else ProbeCache(probe)
    good_name, bad_name = names or (good, bad)
    g, b = _resolve_pair(git_dir, good, bad)
    commits = check_range(git_dir, g, b, good_name=good_name, bad_name=bad_name)
    endpoint = _Search(git_dir, lambda c: cache(c).status)
    _endpoints(endpoint, g, b, good_name=good_name, bad_name=bad_name, stage=stage)
    start = _line_start(endpoint, g, b)
    at_bad = cache(b)
    remaining = set(at_bad.keys)
    rounds: list[BisectResult] = []
    while len(rounds) < max_rounds:
        left = frozenset(remaining)

        def predicate(commit: str, left: frozenset[tuple[str, str, int]] = left) -> Status:
            v = cache(commit)
            if not v.known or not left:
                return v.status
            return Status.FAIL if v.keys & left else Status.PASS

        search = _Search(git_dir, predicate)
        search.known.update({g: Status.PASS, b: Status.FAIL, start: Status.PASS})
        paths = _paths_of(h for h in at_bad.failing if h.key in left)
        runs_before = cache.runs
        result = _run(search, g, b, paths, commits, stage=stage, start=start)
        explained: tuple[HunkRef, ...] = ()
        if result.culprit is not None:
            explained = tuple(h for h in cache(result.culprit).failing if h.key in left)
        result = dataclasses.replace(result, hunks=explained, checks=cache.runs - runs_before)
        rounds.append(result)
        remaining -= {h.key for h in explained}
        if result.culprit is None or not explained or not remaining:
            break
    first = rounds[0]
    endpoint_steps = tuple(endpoint.steps)
    return dataclasses.replace(
        first,
        steps=endpoint_steps + first.steps,
        notes=tuple(endpoint.notes) + first.notes,
        checks=cache.runs,
        rounds=tuple(rounds),
        extra={"unexplained": sorted(remaining) if rounds[-1].culprit is None else []},
    )


# ---------------------------------------------------------------------------------------------
# adapters: the apply engine's report as a Verdict


def verdict_from_report(report: Any) -> Verdict:
    """A Verdict from an ``ApplyReport`` (``tracker.apply``): every failing hunk or file."""
    failing: list[HunkRef] = []
    for patch in report.patches:
        for f in patch.files:
            if not f.klass.is_failure:
                continue
            old = getattr(f, "old_path", None)
            bad_hunks = [h for h in f.hunks if h.klass.is_failure]
            if not bad_hunks:
                failing.append(HunkRef(patch.name, f.path, 0, f.klass.value, old_path=old))
            for h in bad_hunks:
                failing.append(
                    HunkRef(
                        patch.name,
                        f.path,
                        int(h.index),
                        h.klass.value,
                        expected_line=getattr(h, "expected_line", None),
                        want=tuple(getattr(h, "want", ()) or ()),
                        old_path=old,
                    )
                )
    return Verdict(report.status, report.summary, tuple(failing))


# ---------------------------------------------------------------------------------------------
# the patch set level: store, engine, database


def bisect_patchset(
    settings: Settings,
    db: Database | None,
    patchset_spec: str,
    good_version: str,
    bad_version: str,
    stage: str = "apply",
    *,
    target: str | None = None,
    store: bool = True,
) -> BisectResult:
    """Bisect ``patchset_spec`` (``name[@ver]``) between two releases of the store and record it.

    Each culprit found is stored as a ``Culprit`` row (when ``db`` is given and ``store``), with
    the hunks it broke, a diff excerpt and later commits in ``detail``. ``stage`` is ``apply``,
    or ``build``/``boot`` (results cached by tree hash under the cache dir).
    """
    from tracker import bisect_report
    from tracker.bisect_probe import make_probe
    from tracker.sources.store import ReleaseStore

    rs = ReleaseStore.open(settings)
    if not rs.exists():
        raise UserError(
            f"the release store {rs.git_dir()} is empty", hint="run `ktrack fetch` first"
        )
    git_dir = rs.git_dir()
    good_rev = _store_rev(rs, good_version)
    bad_rev = _store_rev(rs, bad_version)
    job = make_probe(settings, patchset_spec, stage=stage, target=target, db=db)
    result = find_breaks(
        git_dir, good_rev, bad_rev, job.cache, stage=stage, names=(good_version, bad_version)
    )
    result = bisect_report.describe(git_dir, result)
    result = dataclasses.replace(
        result,
        extra={
            **result.extra,
            "patchset": job.name,
            "patchset_version": job.version,
            "good": good_version,
            "bad": bad_version,
            "target": job.target,
        },
    )
    if db is not None and store:
        try:
            stored = bisect_report.store(db, result, job, good_version, bad_version)
            result = dataclasses.replace(result, extra={**result.extra, "stored": stored})
        except UserError as exc:  # the answer stands; say why it was not recorded
            result = dataclasses.replace(result, extra={**result.extra, "not_stored": str(exc)})
    return result


def _store_rev(store: Any, version: str) -> str:
    commit = store.resolve(version)
    if commit is None:
        raise UserError(
            f"release {version} is not in the store {store.git_dir()}",
            hint=f"run `ktrack fetch {version}` (a git feed brings the history bisect needs)",
        )
    return str(commit)


def history_available(git_dir: Path, good: str, bad: str) -> bool:
    """Whether ``git_dir`` holds the history from ``good`` to ``bad`` (``ktrack run`` asks)."""
    g, b = resolve(git_dir, good), resolve(git_dir, bad)
    if g is None or b is None or g == b:
        return False
    only_good, only_bad = left_right(git_dir, g, b)
    return only_good == 0 and only_bad > 0


@dataclass(frozen=True)
class AutoBisect:
    """What ``ktrack run`` did about one newly broken pair: a result, or why it did not bisect."""

    regression: Any
    result: BisectResult | None
    reason: str = ""

    def line(self) -> str:
        r = self.regression
        pair = f"{r.patchset}@{r.psv_version} {r.last_good_release}..{r.first_bad_release}"
        if self.result is None:
            return f"bisect {pair}: not run ({self.reason})"
        b = self.result.breaks[0] if self.result.breaks else None
        if b is None or b.commit is None:
            return f"bisect {pair}: {len(self.result.suspects)} suspects, no exact culprit"
        more = f" (+{len(self.result.breaks) - 1} more)" if len(self.result.breaks) > 1 else ""
        return f"bisect {pair}: culprit {b.commit.hash[:12]} {b.commit.subject!r}{more}"


def bisect_new_regressions(
    settings: Settings,
    db: Database,
    regressions: Iterable[Any],
    *,
    stages: Sequence[str] = ("apply",),
) -> list[AutoBisect]:
    """Bisect every newly opened release regression whose history the store holds.

    ``regressions`` are the ``RegressionDelta.new`` rows of a run (``patchset``, ``psv_version``,
    ``target``, ``kind``, ``stage``, ``last_good_release``, ``first_bad_release``). Only stages in
    ``stages`` are bisected (apply by default: a build bisect builds log2(n) kernels). Errors are
    reported per pair and never fail the run.
    """
    from tracker.sources.store import ReleaseStore

    rs = ReleaseStore.open(settings)
    out: list[AutoBisect] = []
    for reg in regressions:
        stage = reg.stage or "apply"
        if reg.kind != "release" or not reg.last_good_release:
            out.append(AutoBisect(reg, None, "no last good release"))
            continue
        if stage not in stages:
            out.append(AutoBisect(reg, None, f"{stage} bisects are not automatic"))
            continue
        good, bad = rs.resolve(reg.last_good_release), rs.resolve(reg.first_bad_release)
        if not rs.exists() or good is None or bad is None:
            out.append(AutoBisect(reg, None, "a release is not in the store"))
            continue
        if not history_available(rs.git_dir(), good, bad):
            out.append(AutoBisect(reg, None, "no history between them in the store"))
            continue
        try:
            result = bisect_patchset(
                settings,
                db,
                f"{reg.patchset}@{reg.psv_version}",
                reg.last_good_release,
                reg.first_bad_release,
                stage,
                target=None if stage == "apply" else reg.target,
            )
        except (UserError, InfraError) as exc:
            out.append(AutoBisect(reg, None, str(exc)))
            continue
        out.append(AutoBisect(reg, result))
    return out
