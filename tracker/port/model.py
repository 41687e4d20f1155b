"""What a forward-port found: per patch, file and hunk, and the ``ktrack.port/1`` JSON.

A hunk is ported by one of these actions, tried in order (DESIGN.md, "port"):

* ``clean`` / ``offset`` / ``fuzz``: the apply engine placed it on the target as GNU patch would;
* ``merged``: a three-way merge (the base release, the base with the patch, the target) took it
  without a conflict;
* ``already-applied``: the target already has it (upstream took it);
* ``needs-human``: what is left, with the conflict in diff3 form beside the upstream change.

A patch's status is the worst of its hunks': ``ported`` < ``kept`` < ``dropped`` < ``merged`` <
``needs-human``. ``kept`` is a patch the maintainer fixed by hand in the output folder (a rerun
keeps it as written); ``dropped`` a patch whose every hunk is already in the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

SCHEMA = "ktrack.port/1"


class HunkAction(Enum):
    """How one hunk reached the target."""

    CLEAN = "clean"
    OFFSET = "offset"
    FUZZ = "fuzz"
    ALREADY_APPLIED = "already-applied"
    MERGED = "merged"
    NEEDS_HUMAN = "needs-human"

    @property
    def automatic(self) -> bool:
        return self is not HunkAction.NEEDS_HUMAN


class PortStatus(Enum):
    """A patch's outcome. Order, worst last (a report takes its worst)."""

    PORTED = "ported"
    KEPT = "kept"
    DROPPED = "dropped"
    MERGED = "merged"
    NEEDS_HUMAN = "needs-human"

    @property
    def severity(self) -> int:
        return list(PortStatus).index(self)


def worst_status(statuses: list[PortStatus]) -> PortStatus:
    return max(statuses, key=lambda s: s.severity, default=PortStatus.PORTED)


@dataclass(frozen=True)
class Upstream:
    """The upstream change behind a conflict: commits when the store has the history between
    the two releases, else the release diff of the region (``diff``)."""

    kind: str  # "commits" | "release-diff" | "none"
    commits: tuple[tuple[str, str], ...] = ()  # (hash, subject)
    diff: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "commits":
            out["commits"] = [{"commit": c, "subject": s} for c, s in self.commits]
        elif self.kind == "release-diff":
            out["diff"] = self.diff
        return out


@dataclass(frozen=True)
class Conflict:
    """One hunk that needs a human: the diff3 text (base, theirs, ours) and its cause."""

    diff3: str
    upstream: Upstream
    moved_to: tuple[str, ...] = ()  # target files that now hold the hunk's lines
    note: str = ""  # why an apparently mergeable hunk was not merged (a number clash)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"diff3": self.diff3, "upstream": self.upstream.to_json()}
        if self.moved_to:
            out["moved_to"] = list(self.moved_to)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class HunkPort:
    """One hunk: how it was ported, where it landed (``line``, for engine actions).

    ``resolution``: for a merged hunk, the rule beyond git's own that took it (``union``,
    ``append``: see ``resolve.py``); review those first.
    """

    index: int
    action: HunkAction
    offset: int = 0
    fuzz: int = 0
    line: int | None = None
    conflict: Conflict | None = None
    resolution: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "action": self.action.value}
        if self.action in (HunkAction.CLEAN, HunkAction.OFFSET, HunkAction.FUZZ):
            out.update(offset=self.offset, fuzz=self.fuzz, line=self.line)
        if self.resolution:
            out["resolution"] = self.resolution
        if self.conflict is not None:
            out["conflict"] = self.conflict.to_json()
        return out


@dataclass(frozen=True)
class FilePort:
    """One file section; ``followed_from`` is its name in the base release when upstream
    renamed or moved the file and the port followed it."""

    path: str
    hunks: tuple[HunkPort, ...] = ()
    followed_from: str | None = None
    note: str = ""

    @property
    def needs_human(self) -> bool:
        return any(h.action is HunkAction.NEEDS_HUMAN for h in self.hunks) or (
            not self.hunks and bool(self.note)
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "hunks": [h.to_json() for h in self.hunks]}
        if self.followed_from:
            out["followed_from"] = self.followed_from
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class PatchPort:
    """One patch of the series: its outcome and the refreshed patch's file name (None: dropped)."""

    name: str
    status: PortStatus
    files: tuple[FilePort, ...] = ()
    note: str = ""

    def hunks(self) -> list[HunkPort]:
        return [h for f in self.files for h in f.hunks]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status.value,
            "files": [f.to_json() for f in self.files],
        }
        if self.note:
            out["note"] = self.note
        return out


def status_of(files: tuple[FilePort, ...]) -> PortStatus:
    """A patch's status from its files: dropped when every hunk is already in the target."""
    actions = [h.action for f in files for h in f.hunks]
    if any(f.needs_human for f in files):
        return PortStatus.NEEDS_HUMAN
    if HunkAction.MERGED in actions:
        return PortStatus.MERGED
    if actions and all(a is HunkAction.ALREADY_APPLIED for a in actions):
        return PortStatus.DROPPED
    return PortStatus.PORTED


@dataclass(frozen=True)
class PortReport:
    """The whole port: which releases, the candidate version and every patch's outcome."""

    patchset: str
    from_version: str
    candidate: str
    base_release: str
    target: str
    fuzz: int
    history: bool  # whether the store holds the upstream history between the two releases
    patches: tuple[PatchPort, ...] = field(default=())

    @property
    def status(self) -> PortStatus:
        return worst_status([p.status for p in self.patches])

    @property
    def automatic(self) -> bool:
        return self.status is not PortStatus.NEEDS_HUMAN

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.patches:
            out[p.status.value] = out.get(p.status.value, 0) + 1
        return out

    def hunk_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.patches:
            for h in p.hunks():
                out[h.action.value] = out.get(h.action.value, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "patchset": self.patchset,
            "from_version": self.from_version,
            "candidate_version": self.candidate,
            "base_release": self.base_release,
            "target": self.target,
            "fuzz": self.fuzz,
            "history": self.history,
            "status": self.status.value,
            "counts": self.counts(),
            "hunks": self.hunk_counts(),
            "patches": [p.to_json() for p in self.patches],
        }
