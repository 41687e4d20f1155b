"""What a culprit commit touched: its facts, its diff at the place of the conflict, and the later
commits that rewrote the same lines (what a fixed patch must now match)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from tracker.bisect.history import git_argv, run_git
from tracker.bisect.model import BisectResult, Break, CommitInfo, HunkRef
from tracker.errors import InfraError, UserError
from tracker.patchsets.diff import FileOp, FilePatch, Hunk, parse_patch

EXCERPT_LINES = 16
LATER_MAX = 20
_FORMAT = "%H%x00%P%x00%an <%ae>%x00%aI%x00%cI%x00%s%x00"


def show_argv(git_dir: Path, commits: Sequence[str]) -> list[str]:
    return git_argv(git_dir, "log", "--no-walk=unsorted", f"--format={_FORMAT}", *commits)


def diff_argv(git_dir: Path, parent: str, commit: str, paths: Sequence[str]) -> list[str]:
    return git_argv(
        git_dir, "diff", "--no-color", "--no-ext-diff", "-U3", parent, commit, "--", *paths
    )


def renames_argv(git_dir: Path, parent: str, commit: str) -> list[str]:
    return git_argv(
        git_dir, "diff", "--no-color", "-M", "--name-status", "--diff-filter=DR", parent, commit
    )


def later_argv(git_dir: Path, culprit: str, bad: str, path: str) -> list[str]:
    return git_argv(
        git_dir,
        "log",
        "--no-merges",
        "--reverse",
        "--no-color",
        "--no-ext-diff",
        "-p",
        "-U0",
        "--format=%x01%H",
        bad,
        f"^{culprit}",
        "--",
        path,
    )


def commit_infos(git_dir: Path, commits: Sequence[str]) -> list[CommitInfo]:
    """Subject, author and dates of ``commits``, in the order given."""
    if not commits:
        return []
    out = run_git(git_dir, show_argv(git_dir, commits)).stdout
    fields = out.split("\0")
    infos = []
    for i in range(0, len(fields) - 6 + 1, 6):
        h, ps, author, adate, cdate, subject = (f.strip("\n") for f in fields[i : i + 6])
        infos.append(
            CommitInfo(
                hash=h,
                subject=subject,
                author=author,
                authored_at=datetime.fromisoformat(adate),
                committed_at=datetime.fromisoformat(cdate),
                parents=tuple(ps.split()),
            )
        )
    return infos


def commit_info(git_dir: Path, commit: str) -> CommitInfo:
    return commit_infos(git_dir, [commit])[0]


def _text(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip("\n")


def side(h: Hunk, kind: str) -> list[str]:
    """The lines of ``h`` of one kind (``" "``, ``"-"`` or ``"+"``), as text."""
    k = ord(kind)
    return [_text(ln) for c, ln in zip(h.kinds, h.lines(), strict=True) if c == k]


def _range(start: int, n: int) -> str:
    return str(start) if n == 1 else f"{start},{n}"


def hunk_lines(h: Hunk) -> list[str]:
    """``h`` as git prints it: the ``@@`` line, then each line with its prefix."""
    head = f"@@ -{_range(h.old_start, h.old_len)} +{_range(h.new_start, h.new_len)} @@"
    out = [f"{head} {h.section}" if h.section else head]
    for c, ln in zip(h.kinds, h.lines(), strict=True):
        out.append(chr(c) + _text(ln))
        if not ln.endswith(b"\n"):
            out.append("\\ No newline at end of file")
    return out


def file_diff(git_dir: Path, parent: str, commit: str, path: str) -> FilePatch | None:
    """The diff of ``path`` from ``parent`` to ``commit`` (None: unchanged)."""
    text = run_git(git_dir, diff_argv(git_dir, parent, commit, [path])).stdout
    try:
        patch = parse_patch(text.encode("utf-8"), name=f"{commit[:12]}:{path}")
    except UserError as exc:  # git's own output: not the user's input
        raise InfraError(f"cannot read git's diff of {commit[:12]}: {exc.message}") from exc
    return next((f for f in patch.files if f.path == path), None)


def _norm(line: str) -> str:
    return line.strip()


def _significant(lines: Iterable[str]) -> set[str]:
    return {n for n in (_norm(x) for x in lines) if sum(c.isalnum() for c in n) >= 3}


def _pick(hunks: Sequence[Hunk], refs: Sequence[HunkRef]) -> list[Hunk]:
    """The culprit's diff hunks at the place of the conflict."""
    if not hunks:
        return []
    want = _significant(line for r in refs for line in r.want)
    if want:
        scored = [(len(_significant(side(h, "-")) & want), i) for i, h in enumerate(hunks)]
        best = [hunks[i] for s, i in scored if s > 0]
        if best:
            return best[:2]
    lines = [r.expected_line for r in refs if r.expected_line]
    if not lines:
        return list(hunks[:1])

    def dist(h: Hunk) -> int:
        return min(
            0
            if h.new_start <= ln < h.new_start + max(h.new_len, 1)
            else min(abs(ln - h.new_start), abs(ln - h.new_start - h.new_len))
            for ln in lines
        )

    return [min(hunks, key=dist)]


def _clip(lines: Sequence[str], limit: int = EXCERPT_LINES) -> list[str]:
    if len(lines) <= limit:
        return list(lines)
    return [*lines[: limit - 1], f"... ({len(lines) - limit + 1} more lines)"]


def diff_excerpt(
    git_dir: Path, info: CommitInfo, refs: Sequence[HunkRef]
) -> tuple[str, dict[str, set[str]]]:
    """A short excerpt of the culprit's diff where each failing file conflicts, and per file the
    lines it wrote there (to find later commits that touched the same lines)."""
    if not info.parents:
        return "", {}
    parent = info.parents[0]
    out: list[str] = []
    regions: dict[str, set[str]] = {}
    by_path: dict[str, list[HunkRef]] = {}
    for r in refs:
        by_path.setdefault(r.path, []).append(r)
    renames: list[str] | None = None
    for path, prefs in by_path.items():
        entry = file_diff(git_dir, parent, info.hash, path)
        deleted = entry is not None and entry.op is FileOp.DELETE
        if entry is None or deleted or all(r.index == 0 for r in prefs):
            if renames is None:
                res = run_git(git_dir, renames_argv(git_dir, parent, info.hash)).stdout
                renames = res.splitlines()
            moved = [ln for ln in renames if path in ln.split("\t")[1:2]]
            for ln in moved:
                parts = ln.split("\t")
                if parts[0].startswith("R") and len(parts) == 3:
                    out.append(f"{path}: renamed to {parts[2]} ({parts[0][1:]}% similar)")
                else:
                    out.append(f"{path}: deleted")
            if entry is None or deleted or moved:
                continue
        picked = _pick(entry.hunks, prefs)
        out.append(f"--- a/{path}")
        out.append(f"+++ b/{path}")
        for h in picked:
            out.extend(_clip(hunk_lines(h)))
            region = _significant(side(h, "+")) or _significant(side(h, " "))
            regions.setdefault(path, set()).update(region)
    return "\n".join(out), regions


def later_commits(
    git_dir: Path, culprit: str, bad: str, regions: dict[str, set[str]]
) -> list[CommitInfo]:
    """Commits after the culprit (up to ``bad``) whose diffs remove or rewrite lines it wrote at
    the place of the conflict: the lines a fixed patch must now match."""
    hits: list[str] = []
    for path, region in regions.items():
        if not region:
            continue
        text = run_git(git_dir, later_argv(git_dir, culprit, bad, path)).stdout
        for block in text.split("\x01")[1:]:
            head, _, body = block.partition("\n")
            removed = {
                _norm(ln[1:])
                for ln in body.splitlines()
                if ln.startswith("-") and not ln.startswith("---")
            }
            if removed & region and head.strip() not in hits:
                hits.append(head.strip())
    return commit_infos(git_dir, hits[:LATER_MAX])


def describe(git_dir: Path, result: BisectResult) -> BisectResult:
    """``result`` with one Break per round: commit facts, hunks, diff excerpt, later commits."""
    breaks: list[Break] = []
    for r in result.rounds or (result,):
        if r.culprit is None:
            breaks.append(
                Break(
                    commit=None,
                    suspects=tuple(commit_infos(git_dir, list(r.suspects[:LATER_MAX]))),
                    hunks=(),
                    via_merge=r.via_merge,
                    notes=r.notes,
                )
            )
            continue
        info = commit_info(git_dir, r.culprit)
        excerpt, regions = diff_excerpt(git_dir, info, r.hunks)
        later = later_commits(git_dir, info.hash, result.bad, regions)
        breaks.append(
            Break(
                commit=info,
                suspects=(info,),
                hunks=r.hunks,
                excerpt=excerpt,
                later=tuple(later),
                via_merge=r.via_merge,
                notes=r.notes,
            )
        )
    return dataclasses.replace(result, breaks=tuple(breaks))
