"""Compatibility ranges: the oldest and newest release a patch set version passes on, and how far
each of those releases was verified.

Per target, and over all targets together (a release counts there when no target fails on it and
at least one passes). Failing releases inside the range are listed: a range is not a promise that
every release in it works. A passing release is verified through the furthest stage its cell
passed (``apply`` for a release only apply-checked, ``test`` for one booted and tested); over all
targets, through the furthest stage any passing target reached. ``dkms_conf`` writes the DKMS
``BUILD_EXCLUSIVE_KERNEL_MIN``/``_MAX`` lines a packager pastes into ``dkms.conf``, from the
releases verified through ``build`` only: a patch set that merely applies is not known to build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker.report.matrix import Matrix
from tracker.results.queries import version_key
from tracker.vocab import Stage, Status

SCHEMA = "ktrack.ranges/1"
ALL_TARGETS = "*"
DKMS_STAGE = Stage.BUILD  # DKMS builds the module: only releases built with the set count


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
    failing: tuple[str, ...]  # every failing release, ascending
    verified: tuple[Stage, ...]  # per passing release (same order): the furthest stage it passed

    @property
    def verified_through(self) -> Stage | None:
        """The stage every passing release was verified through (the shallowest of them)."""
        return min(self.verified, key=lambda s: s.index, default=None)

    @property
    def verification(self) -> str:
        return verification_text(self)

    def levels(self) -> dict[str, Stage]:
        return dict(zip(self.passing, self.verified, strict=True))

    def through(self, stage: Stage) -> Range:
        """The range counting as passing only the releases verified through ``stage``."""
        levels = {v: s for v, s in self.levels().items() if s.index >= stage.index}
        verdicts = {v: False for v in self.failing} | {v: True for v in levels}
        return _range(self.patchset, self.version, self.target, verdicts, levels)

    def to_json(self) -> dict[str, Any]:
        through = self.verified_through
        return {
            "patchset": self.patchset,
            "patchset_version": self.version,
            "target": self.target,
            "oldest": self.oldest,
            "newest": self.newest,
            "passing": list(self.passing),
            "failing_inside": list(self.failing_inside),
            "tested": self.tested,
            "failing": list(self.failing),
            "verified": {v: s.value for v, s in self.levels().items()},
            "verified_through": through.value if through else None,
        }


def _range(
    patchset: str, version: str, target: str, verdicts: dict[str, bool], levels: dict[str, Stage]
) -> Range:
    ordered = sorted(verdicts, key=version_key)
    passing = [v for v in ordered if verdicts[v]]
    oldest = passing[0] if passing else None
    newest = passing[-1] if passing else None
    inside: list[str] = []
    if passing:
        lo, hi = version_key(passing[0]), version_key(passing[-1])
        inside = [v for v in ordered if not verdicts[v] and lo < version_key(v) < hi]
    return Range(
        patchset=patchset,
        version=version,
        target=target,
        oldest=oldest,
        newest=newest,
        passing=tuple(passing),
        failing_inside=tuple(inside),
        tested=len(ordered),
        failing=tuple(v for v in ordered if not verdicts[v]),
        verified=tuple(levels[v] for v in passing),
    )


def _deeper(a: Stage | None, b: Stage) -> Stage:
    return b if a is None or b.index > a.index else a


def compute_ranges(matrix: Matrix) -> list[Range]:
    """Per patch set version: one range per target, then the combined one."""
    out: list[Range] = []
    for row in matrix.rows:
        combined: dict[str, bool] = {}
        combined_levels: dict[str, Stage] = {}
        for target in matrix.targets:
            verdicts: dict[str, bool] = {}
            levels: dict[str, Stage] = {}
            for rel in matrix.releases:
                c = matrix.cells.get((row.psv_id, rel.id, target))
                if c is None or c.status in (Status.ERROR, Status.SKIP) or not c.gives_verdict:
                    continue  # no verdict
                if c.passes and c.furthest_stage is None:
                    continue  # nothing ran: no verdict
                verdicts[rel.version] = c.passes
                combined[rel.version] = combined.get(rel.version, True) and c.passes
                if c.passes and c.furthest_stage is not None:
                    levels[rel.version] = c.furthest_stage
                    combined_levels[rel.version] = _deeper(
                        combined_levels.get(rel.version), c.furthest_stage
                    )
            if verdicts:
                out.append(_range(row.patchset, row.version, target, verdicts, levels))
        if combined:
            out.append(_range(row.patchset, row.version, ALL_TARGETS, combined, combined_levels))
    return out


def verification_text(rng: Range) -> str:
    """``through test on 6.1, 6.12; through apply only on 6.13`` (deepest first)."""
    groups: dict[Stage, list[str]] = {}
    for v, s in rng.levels().items():
        groups.setdefault(s, []).append(v)
    parts = []
    for stage in sorted(groups, key=lambda s: s.index, reverse=True):
        only = " only" if stage.index < DKMS_STAGE.index else ""
        parts.append(f"through {stage.value}{only} on {', '.join(groups[stage])}")
    return "; ".join(parts)


def ranges_json(ranges: list[Range]) -> dict[str, Any]:
    return {"schema": SCHEMA, "ranges": [r.to_json() for r in ranges]}


def _quote(text: str) -> str:
    """A value for a dkms.conf (a shell fragment): only version characters survive."""
    return "".join(ch for ch in text if ch.isalnum() or ch in ".-_")


def dkms_conf(rng: Range) -> str:
    """DKMS lines for a combined range, from the releases verified through ``build`` only, with
    comments saying where they come from and which passing releases were left out."""
    built = rng.through(DKMS_STAGE)
    lines = [f"# ktrack: {_quote(rng.patchset)}@{_quote(rng.version)}, targets {rng.target}"]
    unbuilt = [v for v, s in rng.levels().items() if s.index < DKMS_STAGE.index]
    if unbuilt:
        lines.append(
            f"# left out, not verified through {DKMS_STAGE.value}: "
            + " ".join(f"{_quote(v)}({rng.levels()[v].value})" for v in unbuilt)
        )
    if built.oldest is None or built.newest is None:
        lines.append(f"# no release verified through {DKMS_STAGE.value} among {rng.tested} tested")
        return "\n".join(lines) + "\n"
    lines.append(
        f"# passes through {DKMS_STAGE.value} on {len(built.passing)} of {built.tested} releases "
        "with such a verdict; bounds are inclusive"
    )
    if built.failing_inside:
        lines.append(
            "# fails inside the range on: " + " ".join(_quote(v) for v in built.failing_inside)
        )
    lines.append(f'BUILD_EXCLUSIVE_KERNEL_MIN="{_quote(built.oldest)}"')
    lines.append(f'BUILD_EXCLUSIVE_KERNEL_MAX="{_quote(built.newest)}"')
    return "\n".join(lines) + "\n"
