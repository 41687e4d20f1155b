"""Markdown: the matrix as a table, and a summary for a pull request or issue comment.

Every name and reason is escaped: HTML characters become entities and Markdown punctuation is
backslash-escaped, so a patch called ``<script>…`` or ``a|b`` renders as text and keeps the table.
"""

from __future__ import annotations

from tracker.report.data import ReportData
from tracker.report.matrix import Matrix
from tracker.report.ranges import ALL_TARGETS, compute_ranges, verification_text
from tracker.safetext import printable
from tracker.vocab import Status

MAX_COLUMNS = 12  # releases shown per target in the summary table (newest first)
ICONS = {
    Status.PASS: "✅",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.ERROR: "🛠️",
    Status.SKIP: "➖",
}
_MD_SPECIAL = set("\\`*_{}[]()#+!|~>")


def escape(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    out: list[str] = []
    for ch in printable(" ".join(str(text).split())):  # control characters escaped too
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _cell_text(label: str, status: Status) -> str:
    return f"{ICONS[status]} {label}"


def matrix_markdown(matrix: Matrix, *, max_columns: int | None = None) -> str:
    """One table per target: rows patch set versions, columns releases newest first."""
    if not matrix.rows:
        return "_No finished jobs yet._\n"
    parts: list[str] = []
    for target in matrix.targets:
        rels = [
            r
            for r in matrix.releases
            if any((row.psv_id, r.id, target) in matrix.cells for row in matrix.rows)
        ]
        hidden = 0
        if max_columns is not None and len(rels) > max_columns:
            hidden = len(rels) - max_columns
            rels = rels[:max_columns]
        parts.append(f"#### {escape(target)}\n")
        parts.append("| patch set | " + " | ".join(escape(r.version) for r in rels) + " |")
        parts.append("|---|" + "---|" * len(rels))
        for row in matrix.rows:
            cells = []
            for rel in rels:
                c = matrix.cells.get((row.psv_id, rel.id, target))
                cells.append(_cell_text(c.label + c.cause_note, c.status) if c else "·")
            if any(c != "·" for c in cells):
                parts.append(f"| {escape(row.name)} | " + " | ".join(cells) + " |")
        if hidden:
            parts.append(f"\n_{hidden} older releases not shown._")
        parts.append("")
    return "\n".join(parts) + "\n"


def summary_markdown(data: ReportData) -> str:
    """A comment-sized summary: counts, open regressions, ranges and the newest releases."""
    m = data.matrix
    counts = m.counts()
    lines = ["### ktrack compatibility report", ""]
    lines.append(
        f"{len(m.rows)} patch set versions × {len(m.releases)} releases × "
        f"{len(m.targets)} targets: "
        + ", ".join(f"{ICONS[s]} {counts[s.value]} {s.value}" for s in Status if counts[s.value])
    )
    lines.append("")
    open_regs = [r for r in data.regressions if r.is_open]
    if open_regs:
        lines += ["#### Open regressions", ""]
        lines += [
            "| patch set | target | stage | last good | first bad | summary |",
            "|---|---|---|---|---|---|",
        ]
        for r in open_regs:
            lines.append(
                f"| {escape(f'{r.patchset}@{r.psv_version}')} | {escape(r.target)} | "
                f"{escape(r.stage or '')} | {escape(r.last_good_release or '-')} | "
                f"{escape(r.first_bad_release)} | {escape(r.summary)} |"
            )
        lines.append("")
    else:
        lines += ["No open regressions.", ""]
    combined = [r for r in compute_ranges(m) if r.target == ALL_TARGETS]
    if combined:
        lines += [
            "#### Compatibility ranges",
            "",
            "| patch set | oldest | newest | fails inside | verified |",
            "|---|---|---|---|---|",
        ]
        for rg in combined:
            lines.append(
                f"| {escape(f'{rg.patchset}@{rg.version}')} | {escape(rg.oldest or '-')} | "
                f"{escape(rg.newest or '-')} | {escape(', '.join(rg.failing_inside) or '-')} | "
                f"{escape(verification_text(rg) or '-')} |"
            )
        lines.append("")
    lines += ["#### Newest releases", "", matrix_markdown(m, max_columns=MAX_COLUMNS)]
    return "\n".join(lines)
