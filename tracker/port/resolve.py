"""The two merge rules beyond git's own, for conflicts a maintainer resolves without thinking.

* ``union``: both sides only inserted lines at the same place (an empty base section: an
  ``#include``, a ``case``, a Makefile line). Upstream's lines come first, then the patch's —
  unless both insertions hold the same top-level line (an include, a definition: not indented,
  12 characters or more): upstream took part of the patch, and a union would say it twice.
* ``append``: the patch only added lines right after (or before) lines that upstream then
  rewrote a little (a parameter added to a signature), so git sees the two touching. The
  rewritten lines come with the patch's additions after (or before) them. "A little": the base
  and the target's lines are at least 60% alike (``difflib`` ratio); a block upstream rewrote
  wholesale (a struct reorganised) is left to a human.

Neither applies when a ``#define NAME NUMBER`` the patch adds has its number taken by another
constant of the same prefix in the target (prctl, syscall, ioctl numbers): the merge would
compile into a duplicate ``case`` or, worse, an ABI clash.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from tracker.port.merge import MergeResult, Region, blocks

SIMILAR = 0.6
_DEFINE = re.compile(rb"^#define\s+([A-Za-z_]\w*)\s+(0[xX][0-9a-fA-F]+|\d+)\b")


def _numbered(lines: Iterable[bytes]) -> dict[str, tuple[str, int]]:
    """Top-level ``#define NAME NUMBER`` lines: name -> (family prefix, value)."""
    out = {}
    for line in lines:
        m = _DEFINE.match(line)
        if m:
            name = m.group(1).decode()
            out[name] = (name.split("_", 1)[0] + "_", int(m.group(2), 0))
    return out


def number_clash(added: Iterable[bytes], target: bytes) -> str:
    """A number the added lines define that another constant of the same family already has in
    the target, said in a sentence; empty when there is none."""
    taken = _numbered(target.splitlines())
    for name, (family, value) in _numbered(added).items():
        for other, (family2, value2) in taken.items():
            if other != name and family == family2 and value == value2:
                return f"{name} = {value} is taken by {other} in the target"
    return ""


def _shared(ours: tuple[bytes, ...], theirs: tuple[bytes, ...]) -> bool:
    """Whether both insertions hold the same top-level line (an ``#include``, a definition, a
    declaration: not indented, 12 characters or more): upstream took part of the patch, and a
    union would say it twice. Indented lines (``return -EINVAL;`` in two ``case`` blocks) repeat
    by nature and do not count."""
    top = {ln.rstrip() for ln in ours if ln[:1] not in (b" ", b"\t") and len(ln.strip()) >= 12}
    return any(ln.rstrip() in top for ln in theirs if ln[:1] not in (b" ", b"\t"))


def _ended(lines: tuple[bytes, ...]) -> list[bytes]:
    out = list(lines)
    if out and not out[-1].endswith(b"\n"):
        out[-1] += b"\n"
    return out


def _alike(a: tuple[bytes, ...], b: tuple[bytes, ...]) -> bool:
    return (
        difflib.SequenceMatcher(None, b"".join(a), b"".join(b), autojunk=False).ratio() >= SIMILAR
    )


def resolve_region(region: Region, target: bytes) -> tuple[str, list[bytes]] | None:
    """The rule that resolves ``region`` and the lines it gives, or None (a human's)."""
    base, ours, theirs = region.base, region.ours, region.theirs
    if not base:
        if number_clash(theirs, target) or _shared(ours, theirs):
            return None
        return "union", [*_ended(ours), *theirs]
    if not ours or len(theirs) <= len(base) or not _alike(base, ours):
        return None
    n = len(base)
    if theirs[:n] == base and not number_clash(theirs[n:], target):
        return "append", [*_ended(ours), *theirs[n:]]
    if theirs[-n:] == base and not number_clash(theirs[:-n], target):
        return "append", [*theirs[:-n], *ours]
    return None


def resolve(result: MergeResult, target: bytes) -> tuple[MergeResult, tuple[str, ...]]:
    """``result`` with every conflict a rule resolves replaced by its lines; the rules used."""
    out: list[bytes] = []
    left: list[Region] = []
    used: list[str] = []
    for raw, region in blocks(result.output):
        done = resolve_region(region, target) if region is not None else None
        if done is not None:
            used.append(done[0])
            out += done[1]
        else:
            out += raw
            if region is not None:
                left.append(region)
    return MergeResult(b"".join(out), tuple(left)), tuple(used)
