"""Compatibility ranges: the oldest and newest release a patch set version passes on.

Per target, and over all targets together (a release counts there when no target fails on it and
at least one passes). Failing releases inside the range are listed: a range is not a promise that
every release in it works. ``dkms_conf`` writes the DKMS ``BUILD_EXCLUSIVE_KERNEL_MIN``/``_MAX``
lines a packager pastes into ``dkms.conf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.report.matrix import Matrix, Row
from tracker.results.queries import version_key
from tracker.vocab import Status

SCHEMA = "ktrack.ranges/1"
ALL_TARGETS = "*"


@dataclass(frozen=True)
class Range:
    patchset: str
    version: str
    target: str  # ALL_TARGETS for the combined range
    oldest: str | None
    newest: str | None
    passing: tuple[str, ...]  # ascending
    failing_inside: tuple[str, ...]  # failing releases between oldest and newest
    tested: int  # releases with a verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "patchset": self.patchset,
            "patchset_version": self.version,
            "target": self.target,
            "oldest": self.oldest,
            "newest": self.newest,
            "passing": list(self.passing),
            "failing_inside": list(self.failing_inside),
            "tested": self.tested,
        }


def _range(row: Row, target: str, verdicts: dict[str, bool]) -> Range:
    ordered = sorted(verdicts, key=version_key)
    passing = [v for v in ordered if verdicts[v]]
    oldest = passing[0] if passing else None
    newest = passing[-1] if passing else None
    inside: list[str] = []
    if passing:
        lo, hi = version_key(passing[0]), version_key(passing[-1])
        inside = [v for v in ordered if not verdicts[v] and lo < version_key(v) < hi]
    return Range(
        patchset=row.patchset,
        version=row.version,
        target=target,
        oldest=oldest,
        newest=newest,
        passing=tuple(passing),
        failing_inside=tuple(inside),
        tested=len(ordered),
    )


def compute_ranges(matrix: Matrix) -> list[Range]:
    """Per patch set version: one range per target, then the combined one."""
    out: list[Range] = []
    for row in matrix.rows:
        combined: dict[str, bool] = {}
        for target in matrix.targets:
            verdicts: dict[str, bool] = {}
            for rel in matrix.releases:
                c = matrix.cells.get((row.psv_id, rel.id, target))
                if c is None or c.status in (Status.ERROR, Status.SKIP) or not c.gives_verdict:
                    continue  # no verdict
                verdicts[rel.version] = c.passes
                combined[rel.version] = combined.get(rel.version, True) and c.passes
            if verdicts:
                out.append(_range(row, target, verdicts))
        if combined:
            out.append(_range(row, ALL_TARGETS, combined))
    return out


def ranges_json(ranges: list[Range]) -> dict[str, Any]:
    return {"schema": SCHEMA, "ranges": [r.to_json() for r in ranges]}


def _quote(text: str) -> str:
    """A value for a dkms.conf (a shell fragment): only version characters survive."""
    return "".join(ch for ch in text if ch.isalnum() or ch in ".-_")


def dkms_conf(rng: Range) -> str:
    """DKMS lines for a combined range, with a comment saying where they come from."""
    lines = [f"# ktrack: {_quote(rng.patchset)}@{_quote(rng.version)}, targets {rng.target}"]
    if rng.oldest is None or rng.newest is None:
        lines.append(f"# no passing release among {rng.tested} tested")
        return "\n".join(lines) + "\n"
    lines.append(
        f"# passes on {len(rng.passing)} of {rng.tested} tested releases; bounds are inclusive"
    )
    if rng.failing_inside:
        lines.append(
            "# fails inside the range on: " + " ".join(_quote(v) for v in rng.failing_inside)
        )
    lines.append(f'BUILD_EXCLUSIVE_KERNEL_MIN="{_quote(rng.oldest)}"')
    lines.append(f'BUILD_EXCLUSIVE_KERNEL_MAX="{_quote(rng.newest)}"')
    return "\n".join(lines) + "\n"
