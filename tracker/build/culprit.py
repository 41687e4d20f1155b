"""Name the patch of a series that broke the build: inferred from the first error, or bisected.

- ``inferred``: the first error is in a file that exactly one patch of the series wrote: that patch
  (no build; the old single-writer rule).
- ``bisected``: the first error is in a file several patches wrote, in a file none wrote, at link
  time, or make failed without a recognised error: the release is built with the first k patches
  applied, by binary search between "none" (the release: the control run's business) and "all n"
  (known to fail), and the first k whose build fails names patch k. That is at most
  ``ceil(log2 n)`` builds (``max_builds`` below allows one more). The trees are one hard-linked
  copy of the patched tree whose touched files are rewritten for each k (a file is replaced, never
  written through a link), built into one O= dir kept across the probes (the same source path, so
  incremental builds are sound) with the shared ccache warm from the full build.

A probe that ends in ``error`` (our infrastructure) stops the search: the culprit is then the
single writer when there is one (``inferred``), else unknown, and the detail says why.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tracker import proc
from tracker.apply.report import PatchStep
from tracker.errors import InfraError
from tracker.sources.tree import Tree
from tracker.vocab import Outcome, Status

LINK = "(link)"  # logparse's file for a linker error


@dataclass(frozen=True)
class Culprit:
    """The patch a build failure is blamed on, and how that was found."""

    patch: str | None
    method: str  # "bisected" or "inferred"
    builds: int = 0
    probes: tuple[tuple[int, str], ...] = ()  # (patches applied, build status), in build order
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "patch": self.patch,
            "method": self.method,
            "builds": self.builds,
            "probes": [{"patches": k, "status": s} for k, s in self.probes],
            "note": self.note,
        }

    def suffix(self) -> str:
        """What the summary says after the error: ``(culprit: P, bisected in 3 builds)``."""
        if self.patch is None:
            return ""
        if self.method == "bisected":
            return f" (culprit: {self.patch}, bisected in {self.builds} build(s))"
        return f" (culprit: {self.patch}, inferred)"


def max_builds(n: int) -> int:
    """The most builds a bisection of ``n`` patches may take."""
    return math.ceil(math.log2(n)) + 1 if n >= 1 else 0


def writers(steps: Sequence[PatchStep], path: str) -> list[str]:
    """The patches that wrote ``path`` (content or mode), in series order."""
    return [s.name for s in steps if path in s.changes or path in s.modes]


def infer(steps: Sequence[PatchStep], file: str | None) -> Culprit | None:
    """The single writer of ``file`` (or the only patch), or None when a bisection is needed."""
    if len(steps) == 1:
        return Culprit(steps[0].name, "inferred", note="the only patch of the series")
    if file is None or file == LINK:
        return None
    names = writers(steps, file)
    if len(names) == 1:
        return Culprit(names[0], "inferred", note=f"the only patch that wrote {file}")
    return None


def search(n: int, fails: Callable[[int], bool | None]) -> tuple[int | None, list[int]]:
    """The smallest k in 1..n whose tree fails, given that n fails and 0 does not; ``fails(k)``
    returns None when the build could not say (the search stops: None). Also the ks built."""
    lo, hi = 0, n
    built: list[int] = []
    while hi - lo > 1:
        mid = (lo + hi) // 2
        built.append(mid)
        verdict = fails(mid)
        if verdict is None:
            return None, built
        if verdict:
            hi = mid
        else:
            lo = mid
    return hi, built


class SeriesTree:
    """A hard-linked copy of the fully patched tree that can be set to "the first k patches"."""

    def __init__(self, patched: Path, dest: Path, steps: Sequence[PatchStep], base: Tree) -> None:
        from tracker.sources.tree import safe_relpath

        self.dest = dest
        self.steps = steps
        paths = sorted({safe_relpath(p) for s in steps for p in (*s.changes, *s.modes)})
        base_content = base.read_many(paths)
        self.base = {p: (base_content.get(p), base.mode(p)) for p in paths}
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        proc.run(["cp", "-al", "--", os.fspath(patched), os.fspath(dest)], cwd=dest.parent,
                 timeout=1800, check=True)  # fmt: skip
        self.current = self.state(len(steps))

    def state(self, k: int) -> dict[str, tuple[bytes | None, int | None]]:
        """Every touched path's (content, mode) after the first ``k`` patches."""
        out = dict(self.base)
        for step in self.steps[:k]:
            for path, content in step.changes.items():
                out[path] = (content, step.modes.get(path, out[path][1] or 0o100644))
            for path, mode in step.modes.items():
                if path not in step.changes:
                    out[path] = (out[path][0], mode)
        return out

    def set(self, k: int) -> None:
        """Rewrite the files whose content or mode differs between now and "k patches"."""
        from tracker.apply.materialise import write_changes

        want = self.state(k)
        changes = {p: v[0] for p, v in want.items() if v != self.current.get(p)}
        modes = {p: want[p][1] or 0o100644 for p in changes if want[p][0] is not None}
        write_changes(self.dest, changes, modes)
        self.current = want


def name_culprit(
    outcome: Outcome,
    steps: Sequence[PatchStep],
    *,
    build_k: Callable[[int], Outcome] | None,
) -> Outcome:
    """``outcome`` (a build ``fail`` of the whole series) with its culprit in detail and summary.

    ``build_k(k)`` builds the release with the first k patches (None: no bisection possible).
    """
    first = outcome.detail.get("first_error") or {}
    file = first.get("file")
    culprit = infer(steps, file) if steps else None
    if culprit is None and steps:
        culprit = _bisect(steps, file, build_k)
    if culprit is None:
        return outcome
    detail = dict(outcome.detail)
    detail["culprit"] = culprit.to_json()
    text = first.get("text") or outcome.summary
    return replace(outcome, summary=f"{text}{culprit.suffix()}", detail=detail)


def _bisect(
    steps: Sequence[PatchStep], file: str | None, build_k: Callable[[int], Outcome] | None
) -> Culprit:
    names = writers(steps, file) if file and file != LINK else []
    fallback = Culprit(names[-1] if len(names) == 1 else None, "inferred")
    if build_k is None:
        return replace(fallback, note="no bisection possible here")
    statuses: dict[int, str] = {}
    stopped = ""

    def fails(k: int) -> bool | None:
        nonlocal stopped
        try:
            result = build_k(k)
        except InfraError as exc:
            result = Outcome(Status.ERROR, str(exc))
        statuses[k] = result.status.value
        if result.status is Status.ERROR:
            stopped = (
                f"the build with {k} patch(es) failed for our infrastructure: {result.summary}"
            )
            return None
        return result.status is Status.FAIL

    k, built = search(len(steps), fails)
    probes = tuple((b, statuses[b]) for b in built)
    if k is None:
        return replace(
            fallback, builds=len(built), probes=probes, note=f"bisect stopped: {stopped}"
        )
    return Culprit(steps[k - 1].name, "bisected", len(built), probes, _why(file, names))


def _why(file: str | None, names: list[str]) -> str:
    if file is None:
        return "make failed without a recognised error"
    if file == LINK:
        return "the first error is at link time"
    if not names:
        return f"no patch wrote {file}"
    return f"{len(names)} patches wrote {file}"


def probe_builder(
    *,
    patched: Path,
    config: Path,
    work: Path,
    steps: Sequence[PatchStep],
    base: Tree,
    build: Callable[[Path, Path, Path], Outcome],
) -> Callable[[int], Outcome]:
    """``build_k`` for :func:`name_culprit`: one tree (made on first use) and one O= dir, reused.

    ``build(src, out, log)`` builds a configured O= dir (``kbuild.build`` with the job's target).
    """
    tree: list[SeriesTree] = []
    out = work / "out"

    def build_k(k: int) -> Outcome:
        if not tree:
            tree.append(SeriesTree(patched, work / "src", steps, base))
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            shutil.copyfile(config, out / ".config")
        tree[0].set(k)
        return build(tree[0].dest, out, work / f"build-{k}.log")

    return build_k
