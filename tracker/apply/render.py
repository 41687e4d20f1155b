"""The human view of an ApplyReport: patches worst first, conflicts beside the release's text.

Patch names, paths and the lines of patches and files are untrusted: each is shown as ``Text``
through :mod:`tracker.safetext` (control characters escaped, never parsed as markup).
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tracker.apply.report import ApplyReport, FileReport, HunkReport, PatchReport
from tracker.safetext import as_text, printable
from tracker.vocab import HunkClass, Status

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


def worst_first(report: ApplyReport) -> list[tuple[int, PatchReport]]:
    """(series position, patch) pairs, worst class first, then series order."""
    indexed = list(enumerate(report.patches, 1))
    return sorted(indexed, key=lambda ip: (-ip[1].klass.severity, ip[0]))


def _detail(p: PatchReport) -> str:
    bits = []
    if p.klass.is_failure:
        hit = p.first_failure()
        if hit is not None:
            f, h = hit
            text = f"{f.path}"
            if h is not None and f.klass is HunkClass.CONFLICT:
                text += f" hunk {h.index}"
                if h.expected_line:
                    text += f" near line {h.expected_line}"
            if f.note:
                text += f" ({f.note})"
            bits.append(text)
    elif p.klass in (HunkClass.OFFSET, HunkClass.FUZZ):
        if p.max_fuzz:
            bits.append(f"fuzz {p.max_fuzz}")
        bits.append(f"offset {p.total_offset} lines")
    if p.note:
        bits.append(p.note)
    if p.depends_on_failed:
        bits.append("after failed " + ", ".join(p.depends_on))
    return "; ".join(bits)


def summary_table(report: ApplyReport) -> Table:
    table = Table(title=None, show_lines=False, expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("patch", overflow="fold")
    table.add_column("class")
    table.add_column("hunks", justify="right")
    table.add_column("detail", overflow="fold")
    for n, p in worst_first(report):
        table.add_row(
            str(n),
            as_text(p.name),
            Text(p.klass.value, style=STYLE[p.klass]),
            str(p.hunk_count),
            as_text(_detail(p)),
        )
    return table


def _conflict(patch: PatchReport, f: FileReport, h: HunkReport) -> RenderableType:
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


def conflicts(report: ApplyReport) -> list[RenderableType]:
    out: list[RenderableType] = []
    for _, p in worst_first(report):
        for f in p.files:
            for h in f.hunks:
                if h.klass is HunkClass.CONFLICT and (h.want or h.have):
                    if len(out) >= MAX_CONFLICTS:
                        return out
                    out.append(_conflict(p, f, h))
    return out


def render(report: ApplyReport, *, heading: str = "") -> RenderableType:
    status = Text(report.status.value.upper(), style=STATUS_STYLE.get(report.status, ""))
    line = Text.assemble(status, "  ", as_text(report.summary))
    if heading:
        line = Text.assemble(as_text(heading), "\n", line)
    parts: list[RenderableType] = [line]
    if report.patches:
        parts.append(summary_table(report))
    parts += conflicts(report)
    return Group(*parts)


def print_report(console: Console, report: ApplyReport, *, heading: str = "") -> None:
    console.print(render(report, heading=heading))
