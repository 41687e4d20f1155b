"""What bisect tells about a culprit: commit facts, the diff at the conflict, later touches.

Also the ``ktrack.bisect/1`` JSON, the terminal lines, the ``culprit`` rows and the query that
``ktrack check`` and the matrix use to show a culprit next to a failing pair.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from tracker import proc
from tracker.bisect import (
    GIT_TIMEOUT,
    SCHEMA,
    BisectResult,
    Break,
    CommitInfo,
    HunkRef,
    git_argv,
)
from tracker.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tracker.bisect_probe import ProbeJob
    from tracker.results.db import Database
    from tracker.results.models import Culprit

EXCERPT_LINES = 16
LATER_MAX = 20
_FORMAT = "%H%x00%P%x00%an <%ae>%x00%aI%x00%cI%x00%s%x00"
_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


# ---------------------------------------------------------------------------------------------
# git facts


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


def _git(git_dir: Path, argv: list[str]) -> proc.Result:
    return proc.run(argv, cwd=git_dir, timeout=GIT_TIMEOUT, check=True)


def commit_infos(git_dir: Path, commits: Sequence[str]) -> list[CommitInfo]:
    """Subject, author and dates of ``commits``, in the order given."""
    if not commits:
        return []
    out = _git(git_dir, show_argv(git_dir, commits)).stdout
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


@dataclass(frozen=True)
class DiffHunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[str, ...]  # with their ' ', '-', '+' prefix

    def side(self, kind: str) -> list[str]:
        return [ln[1:] for ln in self.lines if ln[:1] == kind]


def parse_diff(text: bytes | str) -> dict[str, tuple[list[str], list[DiffHunk]]]:
    """A unified git diff: per new path, its header lines and hunks."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    files: dict[str, tuple[list[str], list[DiffHunk]]] = {}
    header: list[str] = []
    hunks: list[DiffHunk] = []
    cur: list[str] | None = None
    spec: tuple[int, int, int, int] | None = None
    path = None

    def close_hunk() -> None:
        nonlocal cur, spec
        if cur is not None and spec is not None:
            hunks.append(DiffHunk(*spec, tuple(cur)))
        cur, spec = None, None

    for raw in data.split(b"\n"):
        line = raw.decode("utf-8", "replace")
        if raw.startswith(b"diff --git "):
            close_hunk()
            header, hunks = [line], []
            path = line.rsplit(" b/", 1)[-1]
            files[path] = (header, hunks)
            continue
        m = _HUNK_RE.match(raw)
        if m and path is not None:
            close_hunk()
            a, b, c, d = m.groups()
            spec = (int(a), int(b or 1), int(c), int(d or 1))
            cur = [line]
            continue
        if cur is not None and raw[:1] in (b" ", b"-", b"+", b"\\"):
            cur.append(line)
        elif cur is None and path is not None:
            header.append(line)
    close_hunk()
    return files


def _norm(line: str) -> str:
    return line.strip()


def _significant(lines: Iterable[str]) -> set[str]:
    return {n for n in (_norm(x) for x in lines) if sum(c.isalnum() for c in n) >= 3}


def _pick(hunks: list[DiffHunk], refs: Sequence[HunkRef]) -> list[DiffHunk]:
    """The culprit's diff hunks at the place of the conflict."""
    if not hunks:
        return []
    want = _significant(line for r in refs for line in r.want)
    if want:
        scored = [(len(_significant(h.side("-")) & want), i) for i, h in enumerate(hunks)]
        best = [hunks[i] for s, i in scored if s > 0]
        if best:
            return best[:2]
    lines = [r.expected_line for r in refs if r.expected_line]
    if not lines:
        return hunks[:1]

    def dist(h: DiffHunk) -> int:
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
        diff = parse_diff(_git(git_dir, diff_argv(git_dir, parent, info.hash, [path])).stdout)
        entry = diff.get(path)
        deleted = entry is not None and any(ln.startswith("deleted file") for ln in entry[0])
        if entry is None or deleted or all(r.index == 0 for r in prefs):
            if renames is None:
                res = _git(git_dir, renames_argv(git_dir, parent, info.hash)).stdout
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
        headers, hunks = entry
        picked = _pick(hunks, prefs)
        out.append(f"--- a/{path}")
        out.append(f"+++ b/{path}")
        for h in picked:
            out.extend(_clip(h.lines))
            region = _significant(h.side("+")) or _significant(h.side(" "))
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
        text = _git(git_dir, later_argv(git_dir, culprit, bad, path)).stdout
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


# ---------------------------------------------------------------------------------------------
# output


def break_json(b: Break) -> dict[str, Any]:
    out: dict[str, Any] = {
        "culprit": b.commit.to_json() if b.commit is not None else None,
        "files": list(b.files),
        "hunks": [h.to_json() for h in b.hunks],
        "excerpt": b.excerpt,
        "later": [c.to_json() for c in b.later],
    }
    if b.commit is None:
        out["suspects"] = [c.to_json() for c in b.suspects]
    if b.via_merge:
        out["via_merge"] = b.via_merge
    if b.notes:
        out["notes"] = list(b.notes)
    return out


def to_json(result: BisectResult) -> dict[str, Any]:
    """The ``ktrack.bisect/1`` document.

    ``culprit``: the first break's commit (``commit``, ``subject``, ``author``, ``date``,
    ``committed_at``, ``merge``) or null when skipped commits left suspects; ``breaks``: one per
    culprit, oldest first, each with ``files``, ``hunks`` (``patch``, ``path``, ``hunk``,
    ``class``, ``expected_line``), ``excerpt`` (the culprit's diff at the conflict), ``later``
    (commits that rewrote those lines since), ``via_merge``, ``suspects``, ``notes``; ``exact``;
    ``commits`` in good..bad, ``candidates`` after narrowing to ``paths``, ``checks`` run and
    every ``steps`` entry (``commit``, ``status``, ``role``); ``unexplained`` failing hunks.
    """
    extra = result.extra
    first = result.breaks[0] if result.breaks else None
    return {
        "schema": SCHEMA,
        "patchset": extra.get("patchset"),
        "patchset_version": extra.get("patchset_version"),
        "stage": result.stage,
        "good": {"release": extra.get("good"), "commit": result.good},
        "bad": {"release": extra.get("bad"), "commit": result.bad},
        "exact": all(b.commit is not None for b in result.breaks) if result.breaks else False,
        "culprit": first.commit.to_json() if first and first.commit else None,
        "breaks": [break_json(b) for b in result.breaks],
        "commits": result.commits,
        "candidates": result.candidates,
        "paths": list(result.paths),
        "checks": result.checks,
        "steps": [s.to_json() for s in result.steps]
        + [s.to_json() for r in result.rounds[1:] for s in r.steps],
        "unexplained": [list(k) for k in extra.get("unexplained", [])],
        "stored": extra.get("stored", 0),
    }


def commit_line(info: CommitInfo) -> str:
    return f"{info.hash[:12]} {info.subject!r} ({info.author}, {info.authored_at.date()})"


def render(result: BisectResult) -> list[str]:
    """Plain lines for the terminal."""
    extra = result.extra
    lines = [
        f"{extra.get('patchset', '?')}@{extra.get('patchset_version', '?')}: "
        f"{extra.get('good', result.good[:12])} (good) .. {extra.get('bad', result.bad[:12])} "
        f"(bad), {result.stage} stage",
        f"{result.commits} commits in range, {result.candidates} touch "
        f"{', '.join(result.paths) or 'the tree'}; {result.checks} checks",
    ]
    for n, b in enumerate(result.breaks, 1):
        lines.append("")
        if b.commit is None:
            lines.append(f"break {n}: not exact, one of {len(b.suspects)} suspects:")
            lines.extend(f"  {commit_line(c)}" for c in b.suspects)
        else:
            c = b.commit
            kind = " (merge)" if c.is_merge else ""
            lines.append(f"break {n}: culprit {c.hash}{kind}")
            lines.append(f"  subject: {c.subject}")
            lines.append(f"  author:  {c.author}")
            lines.append(f"  date:    {c.authored_at.isoformat()}")
            if b.via_merge:
                lines.append(f"  merged by {b.via_merge[:12]}")
        for h in b.hunks:
            where = f" (expected at line {h.expected_line})" if h.expected_line else ""
            what = "file" if h.index == 0 else f"hunk {h.index}"
            lines.append(f"  broke {h.patch}: {h.path} {what}: {h.klass}{where}")
        if b.excerpt:
            lines.append("  diff at the conflict:")
            lines.extend(f"    {ln}" for ln in b.excerpt.splitlines())
        if b.later:
            lines.append("  later commits on the same lines:")
            lines.extend(f"    {commit_line(c)}" for c in b.later)
        lines.extend(f"  note: {note}" for note in b.notes)
    return lines


# ---------------------------------------------------------------------------------------------
# the database


def store(
    db: Database, result: BisectResult, job: ProbeJob, good_version: str, bad_version: str
) -> int:
    """Record one Culprit row per exact break and target (replacing an earlier bisect of the
    same pair); returns the number of rows."""
    from tracker.results.models import Culprit

    with db.session() as session:
        psv = _patchset_version(session, job)
        good = _release(session, good_version)
        bad = _release(session, bad_version)
        now = datetime.now(UTC)
        n = 0
        for target in job.targets or (job.target,):
            session.execute(
                delete(Culprit).where(
                    Culprit.patchset_version_id == psv,
                    Culprit.target == target,
                    Culprit.stage == result.stage,
                    Culprit.good_release_id == good,
                    Culprit.bad_release_id == bad,
                )
            )
            for i, b in enumerate(result.breaks):
                if b.commit is None:
                    continue
                session.add(
                    Culprit(
                        patchset_version_id=psv,
                        target=target,
                        stage=result.stage,
                        good_release_id=good,
                        bad_release_id=bad,
                        commit=b.commit.hash,
                        subject=b.commit.subject,
                        author=b.commit.author,
                        committed_at=b.commit.committed_at,
                        detail=_detail(result, b, i),
                        found_at=now,
                    )
                )
                n += 1
        return n


def _detail(result: BisectResult, b: Break, i: int) -> dict[str, Any]:
    assert b.commit is not None
    return {
        "break": i + 1,
        "of": len(result.breaks),
        "date": b.commit.authored_at.isoformat(),
        "merge": b.commit.is_merge,
        "files": list(b.files),
        "hunks": [h.to_json() for h in b.hunks],
        "excerpt": b.excerpt,
        "later": [c.to_json() for c in b.later],
        "via_merge": b.via_merge,
        "checks": result.checks,
        "commits": result.commits,
        "candidates": result.candidates,
        "notes": list(b.notes),
    }


def _patchset_version(session: Session, job: ProbeJob) -> int:
    from tracker.pipeline import record
    from tracker.pipeline.plan import JobSpec

    spec = JobSpec(
        patchset=job.name,
        version=job.version,
        content_hash=job.content_hash,
        manifest=job.manifest,
        release="",
        target=job.target,
        stages=(job.stage,),
    )
    return int(record.patchset_version(session, spec, job.base).id)


def _release(session: Session, version: str) -> int:
    from tracker.pipeline import record

    try:
        return int(record.release(session, version).id)
    except UserError as exc:
        raise UserError(
            f"cannot record the culprit: {exc.message}",
            hint="run `ktrack releases sync`, or pass --no-store",
        ) from exc


def culprits_for(
    session: Session,
    patchset_version_id: int,
    bad_release_id: int,
    stage: str | None = None,
) -> list[Culprit]:
    """The culprits recorded for a failing (patch set version, release), newest bisect first;
    ``ktrack check`` and the matrix show them next to the failure."""
    from tracker.results.models import Culprit

    q = select(Culprit).where(
        Culprit.patchset_version_id == patchset_version_id,
        Culprit.bad_release_id == bad_release_id,
    )
    if stage is not None:
        q = q.where(Culprit.stage == stage)
    return list(session.scalars(q.order_by(Culprit.found_at.desc(), Culprit.id)).all())


def culprit_line(row: Culprit) -> str:
    """One line for a Culprit row: ``culprit 1a2b3c4d5e6f "subject" (author, date)``."""
    detail = row.detail or {}
    when = str(detail.get("date") or (row.committed_at.isoformat() if row.committed_at else ""))
    files = ", ".join(detail.get("files", [])[:3])
    where = f" in {files}" if files else ""
    return f"culprit {row.commit[:12]} {row.subject!r} ({row.author}, {when[:10]}){where}"


def culprit_json(row: Culprit) -> dict[str, Any]:
    detail = row.detail or {}
    return {
        "commit": row.commit,
        "subject": row.subject,
        "author": row.author,
        "date": detail.get("date"),
        "stage": row.stage,
        "files": detail.get("files", []),
        "hunks": detail.get("hunks", []),
    }


def culprits_for_check(
    db: Database, patchset: str, version: str, kernel: str, stage: str = "apply"
) -> list[dict[str, Any]]:
    """The culprits recorded for a failing ``ktrack check PATCHSET@VERSION KERNEL``: those of the
    newest bisected bad release at or before ``kernel`` (a later release fails for the same
    reason), one per commit, as ``culprit_json`` dicts with a ``line`` for the terminal."""
    from tracker.results.models import Culprit, KernelRelease, Patchset, PatchsetVersion
    from tracker.versions import KernelVersion

    want = KernelVersion.try_parse(kernel)
    if want is None:
        return []
    with db.session() as session:
        rows = session.execute(
            select(Culprit, KernelRelease.version)
            .join(PatchsetVersion, Culprit.patchset_version_id == PatchsetVersion.id)
            .join(Patchset, PatchsetVersion.patchset_id == Patchset.id)
            .join(KernelRelease, Culprit.bad_release_id == KernelRelease.id)
            .where(
                Patchset.name == patchset,
                PatchsetVersion.version == version,
                Culprit.stage == stage,
            )
        ).all()
        best: tuple[Any, str] | None = None
        for _row, bad in rows:
            kv = KernelVersion.try_parse(bad)
            if kv is not None and kv <= want and (best is None or kv > best[0]):
                best = (kv, bad)
        if best is None:
            return []
        out: dict[str, dict[str, Any]] = {}
        for row, bad in rows:
            if bad == best[1] and row.commit not in out:
                out[row.commit] = {
                    **culprit_json(row),
                    "bad_release": bad,
                    "line": culprit_line(row),
                }
        return sorted(out.values(), key=lambda d: d.get("date") or "")


def matrix_culprits(session: Session, matrix: Any) -> list[dict[str, Any]]:
    """The recorded culprits of the matrix's failing cells (``tracker.report.matrix.Matrix``):
    one entry per (cell, commit) with the cell's coordinates and a ``line`` for the terminal."""
    from tracker.results.queries import culprits

    known = culprits(session)
    out: list[dict[str, Any]] = []
    for row, rel, target, cell in matrix.iter_cells():
        if not cell.is_break:
            continue
        for c in known.get((row.psv_id, target, rel.version), []):
            out.append(
                {
                    "patchset": row.patchset,
                    "patchset_version": row.version,
                    "release": rel.version,
                    "target": target,
                    "stage": c.stage,
                    "good_release": c.good_release,
                    "commit": c.commit,
                    "subject": c.subject,
                    "author": c.author,
                    "committed_at": c.committed_at.isoformat() if c.committed_at else None,
                    "line": f"{row.name} {c.good_release}..{rel.version} [{target}]: culprit "
                    f"{c.commit[:12]} {c.subject!r} ({c.author})",
                }
            )
    return out
