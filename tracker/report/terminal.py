"""The matrix as a rich table in the terminal: one table per target, coloured ``stage:status`` cells."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tracker.report.matrix import Matrix
from tracker.results.queries import RegressionRow
from tracker.safetext import as_text
from tracker.vocab import Status

STYLES = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.ERROR: "magenta",  # our infrastructure: no verdict, never red
    Status.SKIP: "dim",
}


def render_matrix(matrix: Matrix, console: Console) -> None:
    """Print the matrix: rows patch set versions, columns releases (series newest first)."""
    if not matrix.rows:
        console.print("no finished jobs yet (run `ktrack run` first)", markup=False)
        return
    for target in matrix.targets:
        table = Table(title=as_text(target), show_lines=False, header_style="bold")
        table.add_column(Text("patch set"), no_wrap=True)
        releases = [
            r
            for r in matrix.releases
            if any((row.psv_id, r.id, target) in matrix.cells for row in matrix.rows)
        ]
        for rel in releases:
            table.add_column(as_text(rel.version), no_wrap=True)
        for row in matrix.rows:
            cells: list[Text] = [as_text(row.name)]
            seen = False
            for rel in releases:
                c = matrix.cells.get((row.psv_id, rel.id, target))
                if c is None:
                    cells.append(Text("·", style="dim"))
                else:
                    seen = True
                    cells.append(as_text(c.label + c.cause_note, style=STYLES[c.status]))
            if seen:
                table.add_row(*cells)
        console.print(table)
    counts = matrix.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(Text(f"{len(matrix.cells)} cells: {summary}"))


def render_regressions(rows: list[RegressionRow], console: Console, *, new_ids: set[int]) -> None:
    if not rows:
        console.print("no regressions", markup=False)
        return
    table = Table(header_style="bold")
    for name in ("id", "patch set", "target", "kind", "stage", "last good", "first bad", "state"):
        table.add_column(name, no_wrap=True)
    table.add_column("summary")
    for r in rows:
        state = (
            "NEW"
            if r.id in new_ids
            else ("open" if r.is_open else f"closed (run {r.closed_run_id})")
        )
        table.add_row(
            Text(str(r.id)),
            as_text(f"{r.patchset}@{r.psv_version}"),
            as_text(r.target),
            as_text(r.kind),
            as_text(r.stage or ""),
            as_text(r.last_good_release or "-"),
            as_text(r.first_bad_release),
            Text(state, style="bold red" if r.id in new_ids else ("red" if r.is_open else "green")),
            as_text(r.summary),
        )
    console.print(table)
