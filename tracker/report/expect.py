"""What a matrix must show: a TOML file of expected cells, checked by ``ktrack matrix --expect``.

```toml
complete = true                  # every cell of the matrix must be matched by a rule below

[[cell]]
patchset = "vcontext"
version = "0.1"
series = "6.1"                   # every release of the series; or release = "6.1.192"
target = "x86_64:tinyconfig"     # optional: every target
stage = "test"                   # the furthest stage the cell shows
status = "pass"                  # its status
```

Every rule must match at least one cell (a rule about nothing is an error: the run did not cover
it), and every cell a rule matches must show exactly that stage and status. ``scripts/demo`` uses
this to prove the shipped patch sets: each passes through ``test`` on its own kernel and fails at
``apply`` on the other.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.errors import UserError
from tracker.report.matrix import Cell, Matrix, Release, Row
from tracker.safetext import printable
from tracker.vocab import Stage, Status

_KEYS = {"patchset", "version", "series", "release", "target", "stage", "status"}


@dataclass(frozen=True)
class Expectation:
    patchset: str
    version: str
    series: str | None
    release: str | None
    target: str | None
    stage: Stage
    status: Status

    def matches(self, row: Row, rel: Release, target: str) -> bool:
        return (
            row.patchset == self.patchset
            and row.version == self.version
            and (self.series is None or rel.series == self.series)
            and (self.release is None or rel.version == self.release)
            and (self.target is None or target == self.target)
        )

    @property
    def label(self) -> str:
        where = f"release {self.release}" if self.release else f"series {self.series}"
        on = f" on {self.target}" if self.target else ""
        return f"{self.patchset}@{self.version} × {where}{on}"


@dataclass(frozen=True)
class Expectations:
    cells: tuple[Expectation, ...]
    complete: bool


def _field(table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = table.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise UserError(f"{where}.{key}: expected a non-empty string")
    return value


def _expectation(table: Any, where: str) -> Expectation:
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    series = _field(table, "series", where, required=False)
    release = _field(table, "release", where, required=False)
    if (series is None) == (release is None):
        raise UserError(f"{where}: give exactly one of series and release")
    try:
        stage = Stage(_field(table, "stage", where))
        status = Status(_field(table, "status", where))
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    return Expectation(
        patchset=str(_field(table, "patchset", where)),
        version=str(_field(table, "version", where)),
        series=series,
        release=release,
        target=_field(table, "target", where, required=False),
        stage=stage,
        status=status,
    )


def load_expectations(path: Path) -> Expectations:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read expectations: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: malformed TOML: {exc}") from exc
    unknown = sorted(set(data) - {"complete", "cell"})
    if unknown:
        raise UserError(f"{path}: unknown key {unknown[0]!r} (known: complete, cell)")
    complete = data.get("complete", False)
    if not isinstance(complete, bool):
        raise UserError(f"{path}: complete: expected true or false")
    tables = data.get("cell", [])
    if not isinstance(tables, list) or not tables:
        raise UserError(f"{path}: no [[cell]] expectations")
    cells = tuple(_expectation(t, f"{path}: cell[{i}]") for i, t in enumerate(tables))
    return Expectations(cells, complete)


def _shown(cell: Cell) -> str:
    return f"{cell.label} ({cell.reason})" if cell.reason else cell.label


def check(matrix: Matrix, expected: Expectations) -> list[str]:
    """One line per difference between the matrix and the expectations; empty when it agrees."""
    problems: list[str] = []
    matched: set[tuple[int, int, str]] = set()
    for exp in expected.cells:
        hits = 0
        for row, rel, target, cell in matrix.iter_cells():
            if not exp.matches(row, rel, target):
                continue
            hits += 1
            matched.add((row.psv_id, rel.id, target))
            if (cell.furthest_stage, cell.status) != (exp.stage, exp.status):
                problems.append(
                    f"{row.name} × {rel.version} × {target}: expected "
                    f"{exp.stage.value}:{exp.status.value}, got {_shown(cell)}"
                )
        if hits == 0:
            problems.append(f"{exp.label}: expected {exp.stage.value}:{exp.status.value}, no cell")
    if expected.complete:
        for row, rel, target, cell in matrix.iter_cells():
            if (row.psv_id, rel.id, target) not in matched:
                problems.append(
                    f"{row.name} × {rel.version} × {target}: unexpected cell {_shown(cell)}"
                )
    return [printable(p) for p in problems]
