"""What the apply stage found: per patch, file and hunk, and the ``ktrack.check/1`` JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracker.safetext import unsurrogate
from tracker.vocab import HunkClass, Status

SCHEMA = "ktrack.check/1"


@dataclass(frozen=True)
class HunkReport:
    """One hunk: its class, offset (GNU's cumulative offset) and fuzz, where it landed.

    ``line`` is the 1-based line of the file (as it stood before the patch) where the hunk landed;
    ``expected_line`` where it was looked for first. For a conflict, ``want`` holds the lines the
    hunk expected and ``have`` the file's lines at that place, for a side-by-side view.
    """

    index: int
    klass: HunkClass
    offset: int = 0
    fuzz: int = 0
    line: int | None = None
    expected_line: int | None = None
    want: tuple[str, ...] = ()
    have: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "class": self.klass.value}
        if self.klass in (HunkClass.CLEAN, HunkClass.OFFSET, HunkClass.FUZZ):
            out.update(offset=self.offset, fuzz=self.fuzz, line=self.line)
        elif self.klass is HunkClass.ALREADY_APPLIED:
            out.update(line=self.line)
        if self.expected_line is not None:
            out["expected_line"] = self.expected_line
        return out


@dataclass(frozen=True)
class FileReport:
    """One file section of a patch; ``note`` explains a class the hunks do not (binary, ...)."""

    path: str
    klass: HunkClass
    hunks: tuple[HunkReport, ...] = ()
    note: str = ""
    old_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": unsurrogate(self.path),
            "class": self.klass.value,
            "hunks": [h.to_json() for h in self.hunks],
        }
        if self.note:
            out["note"] = unsurrogate(self.note)
        if self.old_path and self.old_path != self.path:
            out["old_path"] = unsurrogate(self.old_path)
        return out


@dataclass(frozen=True)
class PatchReport:
    """One patch: its worst class, its files, and whether it may hinge on an earlier failure."""

    name: str
    klass: HunkClass
    files: tuple[FileReport, ...] = ()
    depends_on_failed: bool = False
    depends_on: tuple[str, ...] = ()
    note: str = ""
    sha256: str = ""  # of the patch's bytes
    empty: bool = False  # no diff in it at all (quilt: "appears to be empty"): a warning

    @property
    def hunk_count(self) -> int:
        return sum(len(f.hunks) for f in self.files)

    @property
    def max_fuzz(self) -> int:
        return max((h.fuzz for f in self.files for h in f.hunks), default=0)

    @property
    def total_offset(self) -> int:
        return sum(abs(h.offset) for f in self.files for h in f.hunks)

    def first_failure(self) -> tuple[FileReport, HunkReport | None] | None:
        for f in self.files:
            if f.klass.is_failure:
                for h in f.hunks:
                    if h.klass.is_failure:
                        return f, h
                return f, None
        return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": unsurrogate(self.name),
            "class": self.klass.value,
            "files": [f.to_json() for f in self.files],
        }
        if self.depends_on_failed:
            out["depends_on_failed"] = True
            out["depends_on"] = [unsurrogate(d) for d in self.depends_on]
        if self.note:
            out["note"] = unsurrogate(self.note)
        if self.empty:
            out["empty"] = True
        if self.sha256:
            out["sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class PatchStep:
    """What one applied patch of a series wrote: path -> new content (None: deleted) and new
    git modes. The tree after the first k patches is the release plus steps[:k] in order (what
    the build stage bisects to name the patch that broke a build)."""

    name: str
    changes: dict[str, bytes | None]
    modes: dict[str, int]


@dataclass(frozen=True)
class ApplyReport:
    """The apply stage's verdict for one (series, tree) pair.

    ``changes`` maps every path the applied patches touched to its new content (None: deleted),
    ``modes`` their new git modes, ``touched`` the last patch that wrote each path, ``steps``
    what each applied patch wrote, in series order.
    """

    status: Status
    summary: str
    patches: tuple[PatchReport, ...]
    changes: dict[str, bytes | None] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    touched: dict[str, str] = field(default_factory=dict)
    steps: tuple[PatchStep, ...] = ()

    @property
    def klass(self) -> HunkClass:
        return max((p.klass for p in self.patches), default=HunkClass.CLEAN)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.patches:
            out[p.klass.value] = out.get(p.klass.value, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "status": self.status.value,
            "summary": unsurrogate(self.summary),
            "counts": self.counts(),
            "patches": [p.to_json() for p in self.patches],
        }
