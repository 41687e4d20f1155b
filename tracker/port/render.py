"""The human view of a port: one row per patch, then each conflict in diff3 form beside its cause.

Every name, path, commit subject and line of code comes from a patch or the release: it reaches the
terminal through :mod:`tracker.safetext` (escaped, never parsed as markup).
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from tracker.port.model import HunkAction, PatchPort, PortReport, PortStatus
from tracker.safetext import as_text, printable

STYLE = {
    PortStatus.PORTED: "green",
    PortStatus.KEPT: "cyan",
    PortStatus.DROPPED: "magenta",
    PortStatus.MERGED: "yellow",
    PortStatus.NEEDS_HUMAN: "bold red",
}
MAX_CONFLICTS = 20  # shown in full; the output folder and the JSON have them all


def _detail(p: PatchPort) -> str:
    counts: dict[str, int] = {}
    for h in p.hunks():
        counts[h.action.value] = counts.get(h.action.value, 0) + 1
    rules = [h.resolution for h in p.hunks() if h.resolution]
    bits = [", ".join(f"{n} {a}" for a, n in counts.items())]
    if rules:
        bits.append(
            "review: " + ", ".join(f"{rules.count(r)} by {r}" for r in dict.fromkeys(rules))
        )
    bits += [f"{f.path} followed from {f.followed_from}" for f in p.files if f.followed_from]
    bits += [f"{f.path}: {f.note}" for f in p.files if f.note]
    if p.note:
        bits.append(p.note)
    return "; ".join(b for b in bits if b)


def table(report: PortReport) -> Table:
    t = Table(show_lines=False, expand=False)
    t.add_column("#", justify="right", style="dim")
    t.add_column("patch", overflow="fold")
    t.add_column("status")
    t.add_column("detail", overflow="fold")
    for n, p in enumerate(report.patches, 1):
        t.add_row(
            str(n),
            as_text(p.name),
            Text(p.status.value, style=STYLE[p.status]),
            as_text(_detail(p)),
        )
    return t


def _block(text: str) -> Text:
    """Lines of code, each escaped on its own (tabs kept), joined by real newlines."""
    return Text("\n".join(printable(ln, keep_tab=True) for ln in text.splitlines()))


def _conflicts(report: PortReport) -> list[RenderableType]:
    out: list[RenderableType] = []
    for p in report.patches:
        for f in p.files:
            for h in f.hunks:
                if h.action is not HunkAction.NEEDS_HUMAN or h.conflict is None:
                    continue
                if len(out) >= MAX_CONFLICTS:
                    return out
                c = h.conflict
                parts = [Text(printable(f"{p.name}: {f.path} hunk {h.index}"), style="bold")]
                if c.diff3:
                    parts.append(_block(c.diff3))
                if c.note:
                    parts.append(as_text(f"not merged: {c.note}", "yellow"))
                if c.moved_to:
                    parts.append(
                        as_text("its lines are now in: " + ", ".join(c.moved_to), "yellow")
                    )
                if c.upstream.kind == "commits":
                    for commit, subject in c.upstream.commits:
                        parts.append(as_text(f"upstream: {commit[:12]} {subject}", "cyan"))
                elif c.upstream.kind == "release-diff":
                    parts.append(Text("the release diff of this region:", style="cyan"))
                    parts.append(_block(c.upstream.diff))
                out.append(Group(*parts))
    return out


def render(report: PortReport, out: str | None) -> RenderableType:
    head = (
        f"{report.patchset} {report.from_version} (written for {report.base_release}) "
        f"ported to {report.target} as {report.candidate}"
    )
    status = Text(report.status.value.upper(), style=STYLE[report.status])
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items())
    lines: list[RenderableType] = [as_text(head), Text.assemble(status, "  ", counts)]
    if out:
        lines.append(as_text(f"written to {out}"))
    lines.append(table(report))
    lines += _conflicts(report)
    return Group(*lines)


def print_port(console: Console, report: PortReport, out: str | None) -> None:
    console.print(render(report, out))
