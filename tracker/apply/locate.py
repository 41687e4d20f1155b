"""Where a hunk lands: GNU patch 2.7.6's ``locate_hunk`` (``src/patch.c``), verdict for verdict.

The rules (see REFERENCE.md, "How GNU patch places a hunk"):

* a hunk is tried at fuzz 0, 1, ... up to ``min(max_fuzz, max(prefix, suffix context))``; fuzz k
  ignores up to k context lines at each end, from the shorter side first;
* at one fuzz, the search starts at the hunk's line plus the offset earlier hunks of the file needed
  and walks outward (+d before -d), never above the last line a previous hunk consumed
  (``locate_hunk``); the first match wins;
* a hunk without leading context that starts at line 1 only matches the start of the file, one with
  less trailing than leading context only the end;

Instead of GNU's line-by-line walk, the places of the hunk's longest compared line are found
(``list.index``, in C) and ranked in the exact order GNU's loop would visit them, so the first
match is the same one. When that line is common (more than ``_FEW`` places: a context line
repeated 100,000 times), the file is written once as a string of fixed-width line codes (equal
lines, equal codes) and the compared lines as a needle: ``bytes.find`` upward and ``rfind``
downward give the first match of each of GNU's two runs of positions in linear time. Either way
the verdict is GNU's, and no hunk costs more than a scan of its file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.patchsets.diff import Hunk

_FEW = 64  # up to this many places of a hunk's longest line are tried one by one


@dataclass(frozen=True)
class Pattern:
    """One side of a hunk as the locator sees it."""

    lines: list[bytes]
    first: int
    prefix_context: int
    suffix_context: int
    kinds: bytes  # as seen from this side: '-' consumes input, '+' writes


def hunk_pattern(hunk: Hunk, reverse: bool) -> Pattern:
    if not reverse:
        return Pattern(
            hunk.old_lines(), hunk.first, hunk.prefix_context, hunk.suffix_context, hunk.kinds
        )
    swapped = hunk.kinds.translate(bytes.maketrans(b"-+", b"+-"))
    return Pattern(
        hunk.new_lines(), hunk.new_first, hunk.prefix_context, hunk.suffix_context, swapped
    )


def _code(n: int, width: int) -> bytes:
    """Line code ``n`` in ``width`` bytes: only the first byte has its high bit set, so a match
    of a needle of codes can only start on a code boundary."""
    out = [0x80 | (n & 0x7F)]
    for _ in range(width - 1):
        n >>= 7
        out.append(n & 0x7F)
    return bytes(out)


class Input:
    """The file being patched: its lines, its bytes and (built on first use) its line codes."""

    def __init__(self, lines: Sequence[bytes], data: bytes | None = None) -> None:
        self.lines = lines
        self.data = b"".join(lines) if data is None else data
        self._codes: dict[bytes, bytes] | None = None
        self._coded = b""
        self._width = 4 if len(lines) < 1 << 28 else 8

    def _encode(self) -> dict[bytes, bytes]:
        codes: dict[bytes, bytes] = {}
        parts = []
        width = self._width
        for line in self.lines:
            c = codes.get(line)
            if c is None:
                c = codes[line] = _code(len(codes), width)
            parts.append(c)
        self._coded = b"".join(parts)
        self._codes = codes
        return codes

    def positions(self, line: bytes, limit: int) -> list[int] | None:
        """Every 1-based line number whose text is ``line``; None past ``limit`` of them."""
        lines = self.lines
        out: list[int] = []
        i = -1
        try:
            while len(out) <= limit:
                i = lines.index(line, i + 1)  # runs in C
                out.append(i + 1)
        except ValueError:
            return out
        return None

    def needle(self, lines: Sequence[bytes]) -> bytes | None:
        """The codes of ``lines``; None when one of them is not in the file at all."""
        codes = self._codes if self._codes is not None else self._encode()
        out = []
        for line in lines:
            c = codes.get(line)
            if c is None:
                return None
            out.append(c)
        return b"".join(out)

    def find(self, needle: bytes, first: int, last: int, *, downward: bool) -> int:
        """The 1-based line in ``[first, last]`` where ``needle`` starts: the lowest one, or the
        highest when ``downward``; 0 when there is none."""
        if first > last or first < 1:
            return 0
        w = self._width
        start, end = (first - 1) * w, (last - 1) * w + len(needle)
        at = (
            self._coded.rfind(needle, start, end)
            if downward
            else self._coded.find(needle, start, end)
        )
        return 0 if at < 0 else at // w + 1

    def match(self, pat: list[bytes], base: int, prefix_fuzz: int, suffix_fuzz: int) -> bool:
        """GNU ``patch_match``: pattern lines 1+pf..n-sf against input from base+pf."""
        lines = self.lines
        n = len(lines)
        iline = base + prefix_fuzz
        for pline in range(prefix_fuzz, len(pat) - suffix_fuzz):
            if 1 <= iline <= n:
                if lines[iline - 1] != pat[pline]:
                    return False
            elif pat[pline] != b"":
                return False
            iline += 1
        return True


def locate(
    inp: Input, pat: Pattern, fuzz: int, in_offset: int, last_frozen: int
) -> tuple[int, int]:
    """GNU ``locate_hunk``: (where, new in_offset); where 0 means no match."""
    first_guess = pat.first + in_offset
    pat_lines = len(pat.lines)
    input_lines = len(inp.lines)
    context = max(pat.prefix_context, pat.suffix_context)
    prefix_fuzz = fuzz + pat.prefix_context - context
    suffix_fuzz = fuzz + pat.suffix_context - context
    max_where = input_lines - (pat_lines - suffix_fuzz) + 1
    min_where = last_frozen + 1
    max_pos_offset = max_where - first_guess
    max_neg_offset = first_guess - min_where
    max_offset = max(max_pos_offset, max_neg_offset)

    if not pat_lines:
        return first_guess, in_offset
    if first_guess <= max_neg_offset:
        max_neg_offset = first_guess - 1

    if prefix_fuzz < 0 and pat.first <= 1 or suffix_fuzz < 0:
        return _anchored(
            inp, pat, (prefix_fuzz, suffix_fuzz), in_offset, last_frozen, max_pos_offset
        )
    prefix_fuzz = max(prefix_fuzz, 0)

    if max_pos_offset < 0:
        min_offset = first_guess - max_where
    elif max_neg_offset < 0:
        min_offset = first_guess - min_where
    else:
        min_offset = 0

    # fast path: the guess itself is GNU's first try whenever offset 0 is in range
    if (
        min_offset == 0
        and max_pos_offset >= 0
        and inp.match(pat.lines, first_guess, prefix_fuzz, suffix_fuzz)
    ):
        return first_guess, in_offset

    lo, hi = prefix_fuzz, pat_lines - suffix_fuzz
    if lo >= hi:  # nothing left to compare: the first position of the loop wins
        offset = min_offset
        if offset <= max_offset and offset <= max_pos_offset:
            return first_guess + offset, in_offset + offset
        if offset <= max_offset and offset <= max_neg_offset:
            return first_guess - offset, in_offset - offset
        return 0, in_offset
    # a rare line of the hunk: try the few places it occurs, in the order GNU's loop would
    offsets = (min_offset, max_offset, max_pos_offset, max_neg_offset)
    found = _ranked(inp, pat, (lo, hi), first_guess, offsets)
    if found is not None:
        return (found, in_offset + found - first_guess) if found else (0, in_offset)
    # a common one: GNU's loop visits first_guess + o (o <= max_pos_offset) then first_guess - o
    # (o <= max_neg_offset) for o = min_offset, min_offset + 1, ...: two runs of positions, each
    # searched in the line codes
    up = _first_match(
        inp, pat, lo, hi, first_guess + min_offset, first_guess + min(max_offset, max_pos_offset)
    )
    down = _first_match(
        inp,
        pat,
        lo,
        hi,
        first_guess - min(max_offset, max_neg_offset),
        first_guess - min_offset,
        downward=True,
    )
    if up is None and down is None:
        return 0, in_offset
    if down is None or (up is not None and up - first_guess <= first_guess - down):
        assert up is not None
        return up, in_offset + (up - first_guess)
    return down, in_offset + (down - first_guess)


def _ranked(
    inp: Input,
    pat: Pattern,
    compared: tuple[int, int],
    first_guess: int,
    offsets: tuple[int, int, int, int],
) -> int | None:
    """The first match among the places of the longest compared line, ranked as GNU's loop
    visits them (0: none matches); None when that line is too common to try one by one."""
    lo, hi = compared
    key_at = max(range(lo, hi), key=lambda j: len(pat.lines[j]))
    if not pat.lines[key_at]:
        return None
    positions = inp.positions(pat.lines[key_at], _FEW)
    if positions is None:
        return None
    ranked = sorted(
        (r, q - key_at)
        for q in positions
        if (r := _rank(q - key_at, first_guess, offsets)) is not None
    )
    for _, pos in ranked:
        if inp.match(pat.lines, pos, lo, len(pat.lines) - hi):
            return pos
    return 0


def _rank(pos: int, first_guess: int, offsets: tuple[int, int, int, int]) -> tuple[int, int] | None:
    """The step of GNU's outward loop that visits ``pos`` first, or None."""
    min_offset, max_offset, max_pos_offset, max_neg_offset = offsets
    best: tuple[int, int] | None = None
    o1 = pos - first_guess
    if min_offset <= o1 <= max_offset and o1 <= max_pos_offset:
        best = (o1, 0)
    o2 = first_guess - pos
    if min_offset <= o2 <= max_offset and o2 <= max_neg_offset and (best is None or (o2, 1) < best):
        best = (o2, 1)
    return best


def _anchored(
    inp: Input,
    pat: Pattern,
    fuzz: tuple[int, int],
    in_offset: int,
    last_frozen: int,
    max_pos_offset: int,
) -> tuple[int, int]:
    """``locate`` for a hunk that can only match the start of the file (no leading context,
    at line 1) or only its end (less trailing than leading context)."""
    prefix_fuzz, suffix_fuzz = fuzz
    first_guess = pat.first + in_offset
    pat_lines, input_lines = len(pat.lines), len(inp.lines)
    if prefix_fuzz < 0 and pat.first <= 1:
        if suffix_fuzz < 0 and (pat_lines != input_lines or pat.prefix_context < last_frozen):
            return 0, in_offset
        offset = 1 - first_guess
        if (
            last_frozen <= pat.prefix_context
            and offset <= max_pos_offset
            and inp.match(pat.lines, first_guess + offset, 0, suffix_fuzz)
        ):
            return first_guess + offset, in_offset + offset
        return 0, in_offset
    prefix_fuzz = max(prefix_fuzz, 0)
    max_neg_offset = first_guess - (last_frozen + 1)
    offset = first_guess - (input_lines - pat_lines + 1)
    if offset <= max_neg_offset and inp.match(pat.lines, first_guess - offset, prefix_fuzz, 0):
        return first_guess - offset, in_offset - offset
    return 0, in_offset


def _first_match(
    inp: Input, pat: Pattern, lo: int, hi: int, first: int, last: int, *, downward: bool = False
) -> int | None:
    """The first position in ``first..last`` (walked upward, or downward) where the pattern's
    lines ``lo..hi-1`` match; positions whose compared lines run off the file are GNU's too
    (a line off the file matches only an empty pattern line) and are tried one by one."""
    if first > last:
        return None
    n = len(inp.lines)
    below = (first, min(last, -lo))  # the first compared line is above line 1
    above = (max(first, n - hi + 2), last)  # the last compared line is past the end
    inside = (max(first, 1 - lo), min(last, n - hi + 1))

    def one_by_one(a: int, b: int, must_be_empty: bytes) -> int | None:
        if a > b or must_be_empty != b"":
            return None
        for pos in range(b, a - 1, -1) if downward else range(a, b + 1):
            if inp.match(pat.lines, pos, lo, len(pat.lines) - hi):
                return pos
        return None

    def scan() -> int | None:
        if inside[0] > inside[1]:
            return None
        needle = inp.needle(pat.lines[lo:hi])
        if needle is None:  # a compared line the file does not have matches nowhere
            return None
        at = inp.find(needle, inside[0] + lo, inside[1] + lo, downward=downward)
        return at - lo if at else None

    parts = [
        lambda: one_by_one(*below, pat.lines[lo]),
        scan,
        lambda: one_by_one(*above, pat.lines[hi - 1]),
    ]
    for part in reversed(parts) if downward else parts:
        found = part()
        if found is not None:
            return found
    return None
