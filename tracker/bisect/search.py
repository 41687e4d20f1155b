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
verdicts (which hunks fail); ``tracker.bisect.service.bisect_patchset`` wires the release store,
the probes (``tracker.bisect.probe``) and the results database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tracker.bisect.history import (
    check_range,
    first_parent_commits,
    line_entry,
    parents,
    resolve,
)
from tracker.bisect.model import (
    BisectResult,
    Check,
    HunkKey,
    HunkRef,
    Probe,
    Step,
    Verdict,
)
from tracker.errors import InfraError, UserError
from tracker.vocab import Status


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

        def predicate(commit: str, left: frozenset[HunkKey] = left) -> Status:
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
        unexplained=tuple(sorted(remaining)) if rounds[-1].culprit is None else (),
    )
