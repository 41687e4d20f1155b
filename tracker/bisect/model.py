"""What bisect works with: a failing hunk, a verdict at a commit, a step of the search, a commit's
facts, one break (a culprit and what it broke) and the result of a search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.vocab import Status

SCHEMA = "ktrack.bisect/1"

Check = Callable[[str], Status]


HunkKey = tuple[str, str, int]  # (patch, path, hunk index)


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
    def key(self) -> HunkKey:
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
    def keys(self) -> frozenset[HunkKey]:
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
class Scope:
    """What was bisected: the patch set version, the releases as named, the target."""

    patchset: str
    patchset_version: str
    good: str
    bad: str
    target: str


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
    unexplained: tuple[HunkKey, ...] = ()  # failing at bad, left when suspects ended the search
    scope: Scope | None = None  # set by ``bisect_patchset``
    stored: int = 0  # culprit rows recorded
    not_stored: str | None = None  # why the culprit was not recorded

    @property
    def exact(self) -> bool:
        return self.culprit is not None
