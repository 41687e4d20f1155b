"""Rich progress bars for downloads and imports (on stderr; silent when it is not a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tracker.releases.service import PhaseProgress


@contextmanager
def phase_bars(console: Console, *, enabled: bool = True) -> Iterator[PhaseProgress]:
    """A ``progress(version, phase, done, total)`` callback drawing one bar per version and phase."""
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled or not console.is_terminal,
        transient=False,
    )
    tasks: dict[tuple[str, str], TaskID] = {}

    def update(version: str, phase: str, done: int, total: int | None) -> None:
        key = (version, phase)
        if key not in tasks:
            tasks[key] = bars.add_task(f"{phase} {version}", total=total)
        bars.update(tasks[key], completed=done, total=total)

    with bars:
        yield update
