"""What the apply stage found: per patch, file and hunk, and every form it is shown in.

The report renders itself, in one place: the one-line summary (:meth:`ApplyReport.of`), the
``ktrack.check/1`` JSON (``to_json``), the stage log (:meth:`ApplyReport.log_text`) and the
terminal view (:meth:`ApplyReport.rich`: patches worst first, conflicts beside the release's
text). Patch names, paths and the lines of patches and files are untrusted: on the terminal each
is shown as ``Text`` through :mod:`tracker.safetext` (control characters escaped, never parsed as
markup); in the JSON, the summary and the log they are kept UTF-8 (``unsurrogate``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracker.safetext import unsurrogate
from tracker.vocab import HunkClass, Status

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

SCHEMA = "ktrack.check/1"
STYLE = {
    HunkClass.CLEAN: "green",
    HunkClass.OFFSET: "cyan",
    HunkClass.FUZZ: "yellow",
    HunkClass.ALREADY_APPLIED: "magenta",
    HunkClass.FILE_EXISTS: "red",
    HunkClass.MISSING_FILE: "red",
    HunkClass.CONFLICT: "bold red",
}
STATUS_STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}
MAX_CONFLICTS = 20  # hunks shown side by side; the JSON has them all


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

    def where_failed(self, line_word: str) -> tuple[FileReport, HunkReport | None, str] | None:
        """The first failing file and where in it: ``path hunk N <line_word> line L``."""
        hit = self.first_failure()
        if hit is None:
            return None
        f, h = hit
        text = f.path
        if h is not None and f.klass is HunkClass.CONFLICT:
            text += f" hunk {h.index}"
            if h.expected_line:
                text += f" {line_word} line {h.expected_line}"
        return f, h, text

    def detail(self) -> str:
        """The table's detail column: where it failed, or how far it drifted; notes."""
        bits = []
        if self.klass.is_failure:
            hit = self.where_failed("near")
            if hit is not None:
                f, _, text = hit
                bits.append(f"{text} ({f.note})" if f.note else text)
        elif self.klass in (HunkClass.OFFSET, HunkClass.FUZZ):
            if self.max_fuzz:
                bits.append(f"fuzz {self.max_fuzz}")
            bits.append(f"offset {self.total_offset} lines")
        if self.note:
            bits.append(self.note)
        if self.depends_on_failed:
            bits.append("after failed " + ", ".join(self.depends_on))
        return "; ".join(bits)

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

    @classmethod
    def of(
        cls,
        patches: Iterable[PatchReport],
        *,
        changes: dict[str, bytes | None] | None = None,
        modes: dict[str, int] | None = None,
        touched: dict[str, str] | None = None,
        steps: tuple[PatchStep, ...] = (),
    ) -> ApplyReport:
        """The report of ``patches`` (in series order), its status and summary derived."""
        reports = tuple(patches)
        status = _status(reports)
        return cls(
            status=status,
            summary=unsurrogate(_summary(reports, status)),  # names are bytes: keep it UTF-8
            patches=reports,
            changes=changes or {},
            modes=modes or {},
            touched=touched or {},
            steps=steps,
        )

    @property
    def klass(self) -> HunkClass:
        return max((p.klass for p in self.patches), default=HunkClass.CLEAN)

    def worst_first(self) -> list[tuple[int, PatchReport]]:
        """(series position, patch) pairs, worst class first, then series order."""
        indexed = list(enumerate(self.patches, 1))
        return sorted(indexed, key=lambda ip: (-ip[1].klass.severity, ip[0]))

    def log_text(self) -> str:
        """The apply stage's log: every patch, file and hunk with its class, then the verdict."""
        lines = []
        for patch in self.patches:
            lines.append(f"{patch.klass.value:16} {patch.name}")
            for f in patch.files:
                lines.append(f"  {f.klass.value:14} {f.path}")
                for h in f.hunks:
                    where = f" at line {h.line}" if h.line else ""
                    lines.append(f"    hunk {h.index}: {h.klass.value}{where}")
        lines.append(f"verdict: {self.status.value}: {self.summary}")
        return unsurrogate("\n".join(lines) + "\n")  # a path that is not UTF-8 is logged as \xNN

    def rich(self, *, heading: str = "") -> RenderableType:
        """The terminal view: status and summary, the patch table, the first conflicts."""
        from rich.console import Group
        from rich.text import Text

        from tracker.safetext import as_text

        status = Text(self.status.value.upper(), style=STATUS_STYLE.get(self.status, ""))
        line = Text.assemble(status, "  ", as_text(self.summary))
        if heading:
            line = Text.assemble(as_text(heading), "\n", line)
        parts: list[RenderableType] = [line]
        if self.patches:
            parts.append(self.summary_table())
        parts += self.conflicts()
        return Group(*parts)

    def summary_table(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        from tracker.safetext import as_text

        table = Table(title=None, show_lines=False, expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("patch", overflow="fold")
        table.add_column("class")
        table.add_column("hunks", justify="right")
        table.add_column("detail", overflow="fold")
        for n, p in self.worst_first():
            table.add_row(
                str(n),
                as_text(p.name),
                Text(p.klass.value, style=STYLE[p.klass]),
                str(p.hunk_count),
                as_text(p.detail()),
            )
        return table

    def conflicts(self) -> list[RenderableType]:
        """The first :data:`MAX_CONFLICTS` conflicting hunks, each beside the release's lines."""
        out: list[RenderableType] = []
        for _, p in self.worst_first():
            for f in p.files:
                for h in f.hunks:
                    if h.klass is HunkClass.CONFLICT and (h.want or h.have):
                        if len(out) >= MAX_CONFLICTS:
                            return out
                        out.append(_side_by_side(p, f, h))
        return out

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


def _side_by_side(patch: PatchReport, f: FileReport, h: HunkReport) -> Table:
    from rich.table import Table
    from rich.text import Text

    from tracker.safetext import as_text, printable

    title = f"{patch.name}: {f.path} hunk {h.index}"
    if h.expected_line:
        title += f", expected at line {h.expected_line}"
    side = Table(title=as_text(title), title_justify="left", expand=True, show_lines=False)
    side.add_column("the patch expects", overflow="fold", ratio=1)
    start = h.expected_line or 1
    side.add_column(f"the release has (from line {start})", overflow="fold", ratio=1)
    rows = max(len(h.want), len(h.have))
    for i in range(rows):
        want = h.want[i] if i < len(h.want) else ""
        have = h.have[i] if i < len(h.have) else ""
        style = "" if want == have else "red"
        side.add_row(
            Text(printable(want, keep_tab=True), style=style),
            Text(printable(have, keep_tab=True), style=style),
        )
    return side


def _status(reports: tuple[PatchReport, ...]) -> Status:
    status = max((r.klass for r in reports), default=HunkClass.CLEAN).status()
    if status is Status.PASS and any(r.empty for r in reports):
        return Status.WARN  # never a silent pass: a patch with no diff is a finding
    return status


def _summary(reports: tuple[PatchReport, ...], status: Status) -> str:
    n = len(reports)
    if n == 0:
        return "empty series: nothing to apply"
    if status is Status.FAIL:
        failed = [r for r in reports if r.klass.is_failure]
        first = failed[0]
        text = f"{first.name}: {first.klass.value}"
        hit = first.where_failed("at")
        if hit is not None:
            f, h, where = hit
            text = f"{first.name}: {f.klass.value} in {where}"
            if h is None and f.note and f.klass is HunkClass.CONFLICT:
                text += f" ({f.note})"
        if len(failed) > 1:
            text += f" (+{len(failed) - 1} more failing patch{'es' if len(failed) > 2 else ''})"
        return text
    counts: dict[HunkClass, int] = {}
    for r in reports:
        counts[r.klass] = counts.get(r.klass, 0) + 1
    if status is Status.PASS:
        return f"{n} patch{'es' if n != 1 else ''} apply cleanly"
    parts = [
        f"{counts[k]} {k.value}"
        for k in (HunkClass.ALREADY_APPLIED, HunkClass.FUZZ, HunkClass.OFFSET)
        if counts.get(k)
    ]
    empty = [r.name for r in reports if r.empty]
    if empty:
        names = ", ".join(empty[:3]) + (", ..." if len(empty) > 3 else "")
        verb = "appears" if len(empty) == 1 else "appear"
        parts.append(f"{len(empty)} {verb} to be empty, no diff in it ({names})")
    text = f"{n} patch{'es' if n != 1 else ''} apply; " + ", ".join(parts)
    if counts.get(HunkClass.ALREADY_APPLIED):
        text += " (already applied: drop them)"
    return text
