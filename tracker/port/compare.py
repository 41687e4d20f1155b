"""A proposed port against a maintainer's own port of the same version, patch by patch.

``equal``: the same file sections and hunk lines once runs of white space are folded and hunk line
numbers ignored (headers and descriptions are not compared); ``same-change``: at least the changed
lines (``+``/``-``) agree in order, file by file (context or placement differ); ``different``;
``missing``: the proposal has no patch of that name (dropped, or a different series).
"""

from __future__ import annotations

import re
from pathlib import Path

from tracker.patchsets.diff import Patch, parse_patch
from tracker.patchsets.formats import parse_series_file
from tracker.sources.tree import safe_relpath

_WS = re.compile(rb"\s+")
Body = list[tuple[str, list[tuple[int, bytes]]]]


def _norm(line: bytes) -> bytes:
    return _WS.sub(b" ", line).strip()


def body(patch: Patch, *, changes_only: bool) -> Body:
    out = []
    for f in patch.files:
        lines = [
            (kind, _norm(text))
            for h in f.hunks
            for kind, text in zip(h.kinds, h.lines(), strict=True)
            if not (changes_only and kind == 0x20)
        ]
        out.append((f.path, lines))
    return sorted(out)


def load_quilt(folder: Path) -> dict[str, Patch]:
    series = parse_series_file((folder / "series").read_bytes(), str(folder / "series"), 1)
    return {
        name: parse_patch((folder / safe_relpath(name)).read_bytes(), name=name, strip=strip)
        for name, strip in series
    }


def verdict(got: Patch | None, ref: Patch) -> str:
    if got is None:
        return "missing"
    if body(got, changes_only=False) == body(ref, changes_only=False):
        return "equal"
    if body(got, changes_only=True) == body(ref, changes_only=True):
        return "same-change"
    return "different"


def compare(proposal: Path, reference: Path) -> dict[str, str]:
    """Each patch of the ``reference`` quilt folder and how the ``proposal``'s compares."""
    mine, theirs = load_quilt(proposal), load_quilt(reference)
    return {name: verdict(mine.get(name), ref) for name, ref in theirs.items()}
