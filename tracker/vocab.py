"""The vocabulary of results shared by every stage: stages, statuses and hunk classes.

Each is an Enum with a documented order so that "the worst of" is one ``max()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any


class OrderedEnum(Enum):
    """An Enum totally ordered by declaration order (the first member is the least).

    ``max()`` of members is the worst; comparing members of two different enums is a TypeError.
    """

    @cached_property
    def severity(self) -> int:
        """The member's place in declaration order."""
        return type(self)._member_names_.index(self._name_)

    def _rank_of(self, other: object) -> int | None:
        return (
            other.severity if isinstance(other, OrderedEnum) and type(other) is type(self) else None
        )

    def __lt__(self, other: object) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.severity < rank

    def __le__(self, other: object) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.severity <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.severity > rank

    def __ge__(self, other: object) -> bool:
        rank = self._rank_of(other)
        return NotImplemented if rank is None else self.severity >= rank


class Stage(Enum):
    """Pipeline stages in the order they run."""

    APPLY = "apply"
    CONFIGURE = "configure"
    BUILD = "build"
    BOOT = "boot"
    TEST = "test"

    @property
    def index(self) -> int:
        return list(Stage).index(self)

    @classmethod
    def parse_list(cls, text: str) -> tuple[Stage, ...]:
        from tracker.errors import UserError

        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise UserError("empty stage list", hint="e.g. --stages apply,configure,build")
        out = []
        for n in names:
            try:
                out.append(cls(n))
            except ValueError:
                known = ", ".join(s.value for s in cls)
                raise UserError(f"unknown stage {n!r} (known: {known})") from None
        return tuple(sorted(set(out), key=lambda s: s.index))


class Status(OrderedEnum):
    """A stage's status. Severity order, worst last: skip < pass < warn < error < fail."""

    SKIP = "skip"
    PASS = "pass"
    WARN = "warn"
    ERROR = "error"
    FAIL = "fail"

    @property
    def proceeds(self) -> bool:
        """Whether the next stage runs after this one."""
        return self in (Status.PASS, Status.WARN)


class HunkClass(OrderedEnum):
    """How a hunk, file or patch applies. Order, worst last (a patch takes its worst)."""

    CLEAN = "clean"
    OFFSET = "offset"
    FUZZ = "fuzz"
    ALREADY_APPLIED = "already-applied"
    FILE_EXISTS = "file-exists"
    MISSING_FILE = "missing-file"
    CONFLICT = "conflict"

    @property
    def is_failure(self) -> bool:
        return self in (HunkClass.CONFLICT, HunkClass.MISSING_FILE, HunkClass.FILE_EXISTS)

    def status(self, *, fuzz_allowed: bool = True) -> Status:
        """The stage status this class leads to."""
        if self.is_failure:
            return Status.FAIL
        if self is HunkClass.CLEAN:
            return Status.PASS
        return Status.WARN


class Cause(Enum):
    """Why a stage did not simply pass: who the outcome speaks about.

    - ``verdict``: the patch set is judged (a ``fail`` or ``warn`` that is its own);
    - ``upstream``: the release fails the same way without the patch set (no verdict);
    - ``infrastructure``: ours failed (disk, tool, timeout, network, a corrupt store): no verdict;
    - ``bad-input``: the patch set or the settings are invalid.

    Exit codes, bisect and reports read the cause, never the summary's wording.
    """

    VERDICT = "verdict"
    UPSTREAM = "upstream"
    INFRASTRUCTURE = "infrastructure"
    BAD_INPUT = "bad-input"

    @classmethod
    def default_for(cls, status: Status) -> Cause | None:
        """The cause a status implies when the stage named none: a ``fail`` or ``warn`` is a
        verdict, an ``error`` is ours; ``pass`` and ``skip`` have none."""
        if status in (Status.FAIL, Status.WARN):
            return cls.VERDICT
        if status is Status.ERROR:
            return cls.INFRASTRUCTURE
        return None

    @property
    def gives_verdict(self) -> bool:
        return self is Cause.VERDICT


@dataclass
class Outcome:
    """What one stage returns: its status, its cause, a one-line reason, structured detail,
    artifacts. ``cause`` defaults from the status (see ``Cause.default_for``); a stage that knows
    better (an ``error`` from bad input, a failure the release has without the patch set) says so.
    """

    status: Status
    summary: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)
    log: Path | None = None
    cause: Cause | None = None

    def __post_init__(self) -> None:
        if self.cause is None:
            self.cause = Cause.default_for(self.status)
        elif self.status in (Status.PASS, Status.SKIP):
            self.cause = None  # nothing to explain
