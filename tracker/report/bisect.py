"""Bisect's output: the ``ktrack.bisect/1`` JSON document, the terminal lines, and the recorded
culprits as ``ktrack check`` and ``ktrack matrix`` show them next to a failing pair."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tracker.bisect.model import SCHEMA, BisectResult, Break, CommitInfo
from tracker.report.matrix import Matrix
from tracker.results.culprits import culprits_at
from tracker.results.db import Database
from tracker.results.models import Culprit
from tracker.results.queries import culprits


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
    scope = result.scope
    first = result.breaks[0] if result.breaks else None
    return {
        "schema": SCHEMA,
        "patchset": scope.patchset if scope else None,
        "patchset_version": scope.patchset_version if scope else None,
        "stage": result.stage,
        "good": {"release": scope.good if scope else None, "commit": result.good},
        "bad": {"release": scope.bad if scope else None, "commit": result.bad},
        "exact": all(b.commit is not None for b in result.breaks) if result.breaks else False,
        "culprit": first.commit.to_json() if first and first.commit else None,
        "breaks": [break_json(b) for b in result.breaks],
        "commits": result.commits,
        "candidates": result.candidates,
        "paths": list(result.paths),
        "checks": result.checks,
        "steps": [s.to_json() for s in result.steps]
        + [s.to_json() for r in result.rounds[1:] for s in r.steps],
        "unexplained": [list(k) for k in result.unexplained],
        "stored": result.stored,
    }


def commit_line(info: CommitInfo) -> str:
    return f"{info.hash[:12]} {info.subject!r} ({info.author}, {info.authored_at.date()})"


def render(result: BisectResult) -> list[str]:
    """Plain lines for the terminal."""
    scope = result.scope
    name = f"{scope.patchset}@{scope.patchset_version}" if scope else "?@?"
    good, bad = (scope.good, scope.bad) if scope else (result.good[:12], result.bad[:12])
    lines = [
        f"{name}: {good} (good) .. {bad} (bad), {result.stage} stage",
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
    """The culprits recorded for a failing ``ktrack check PATCHSET@VERSION KERNEL``
    (``results.culprits.culprits_at``), as ``culprit_json`` dicts with a ``line`` for the
    terminal."""
    return [
        {**culprit_json(row), "bad_release": bad, "line": culprit_line(row)}
        for row, bad in culprits_at(db, patchset, version, kernel, stage)
    ]


def matrix_culprits(session: Session, matrix: Matrix) -> list[dict[str, Any]]:
    """The recorded culprits of the matrix's failing cells (``tracker.report.matrix.Matrix``):
    one entry per (cell, commit) with the cell's coordinates and a ``line`` for the terminal."""
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
