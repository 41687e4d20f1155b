"""Hunk placement with offset and fuzz, ported from GNU patch 2.7.6 (``src/patch.c``).

The rules (see REFERENCE.md, "How GNU patch places a hunk"):

* a hunk is tried at fuzz 0, 1, ... up to ``min(max_fuzz, max(prefix, suffix context))``; fuzz k
  ignores up to k context lines at each end, from the shorter side first;
* at one fuzz, the search starts at the hunk's line plus the offset earlier hunks of the file needed
  and walks outward (+d before -d), never above the last line a previous hunk consumed
  (``locate_hunk``); the first match wins;
* a hunk without leading context that starts at line 1 only matches the start of the file, one with
  less trailing than leading context only the end;
* only when the first hunk of a file fails at some fuzz is the swapped hunk tried at that same fuzz:
  a match means "Reversed (or previously applied)" and, as with ``patch -N``, the file is left alone;
* a hunk is applied as GNU's ``apply_hunk`` does: context comes from the file (not the patch),
  removed lines are skipped, added lines written, input lines beyond the end are simply absent.

Instead of GNU's line-by-line walk, candidate positions come from a scan of the file's bytes for
the hunk's longest line; they are ranked in the exact order GNU's loop would visit them, so
the first match is the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.patchsets.diff import Hunk
from tracker.vocab import HunkClass


def split_lines(data: bytes) -> list[bytes]:
    """Split file content into lines that keep their ``\\n`` (only ``\\n`` ends a line)."""
    if not data:
        return []
    if b"\r" not in data:
        return data.splitlines(keepends=True)  # same split when there is no CR
    parts = data.split(b"\n")
    last = parts.pop()
    lines = [p + b"\n" for p in parts]
    if last:
        lines.append(last)
    return lines


@dataclass(frozen=True)
class HunkResult:
    """Where and how one hunk applied. ``line``: 1-based line of the file it landed on."""

    index: int
    klass: HunkClass
    offset: int = 0
    fuzz: int = 0
    line: int | None = None
    expected_line: int = 0


@dataclass(frozen=True)
class FileResult:
    """The verdict on one file's hunks and, when every hunk applied, the new lines."""

    hunks: tuple[HunkResult, ...]
    reversed: bool
    output: bytes | None

    @property
    def failed(self) -> bool:
        return any(h.klass is HunkClass.CONFLICT for h in self.hunks)


@dataclass(frozen=True)
class _Pattern:
    """One side of a hunk as the locator sees it."""

    lines: list[bytes]
    first: int
    prefix_context: int
    suffix_context: int
    kinds: bytes  # as seen from this side: '-' consumes input, '+' writes


def _pattern(hunk: Hunk, reverse: bool) -> _Pattern:
    if not reverse:
        return _Pattern(
            hunk.old_lines(), hunk.first, hunk.prefix_context, hunk.suffix_context, hunk.kinds
        )
    swapped = hunk.kinds.translate(bytes.maketrans(b"-+", b"+-"))
    return _Pattern(
        hunk.new_lines(), hunk.new_first, hunk.prefix_context, hunk.suffix_context, swapped
    )


class _Input:
    """The file being patched: its lines and its bytes."""

    def __init__(self, lines: Sequence[bytes], data: bytes | None = None) -> None:
        self.lines = lines
        self.data = b"".join(lines) if data is None else data

    def positions(self, line: bytes) -> list[int]:
        """Every 1-based line number whose text is ``line`` (``list.index`` runs in C)."""
        lines = self.lines
        out = []
        i = -1
        try:
            while True:
                i = lines.index(line, i + 1)
                out.append(i + 1)
        except ValueError:
            return out

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
    inp: _Input, pat: _Pattern, fuzz: int, in_offset: int, last_frozen: int
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

    if prefix_fuzz < 0 and pat.first <= 1:
        # can only match the start of the file
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
    if prefix_fuzz < 0:
        prefix_fuzz = 0

    if suffix_fuzz < 0:
        # can only match the end of the file
        offset = first_guess - (input_lines - pat_lines + 1)
        if offset <= max_neg_offset and inp.match(pat.lines, first_guess - offset, prefix_fuzz, 0):
            return first_guess - offset, in_offset - offset
        return 0, in_offset

    if max_pos_offset < 0:
        min_offset = first_guess - max_where
    elif max_neg_offset < 0:
        min_offset = first_guess - min_where
    else:
        min_offset = 0

    def rank(pos: int) -> tuple[int, int] | None:
        """The step of GNU's outward loop that visits ``pos`` first, or None."""
        best: tuple[int, int] | None = None
        o1 = pos - first_guess
        if min_offset <= o1 <= max_offset and o1 <= max_pos_offset:
            best = (o1, 0)
        o2 = first_guess - pos
        if min_offset <= o2 <= max_offset and o2 <= max_neg_offset:
            cand = (o2, 1)
            if best is None or cand < best:
                best = cand
        return best

    # fast path: the guess itself is GNU's first try whenever offset 0 is in range
    if (
        min_offset == 0
        and max_pos_offset >= 0
        and inp.match(pat.lines, first_guess, prefix_fuzz, suffix_fuzz)
    ):
        return first_guess, in_offset

    lo, hi = prefix_fuzz, pat_lines - suffix_fuzz
    if lo >= hi:
        # nothing left to compare: the first position of the loop wins
        for offset in range(min_offset, max_offset + 1):
            if offset <= max_pos_offset:
                return first_guess + offset, in_offset + offset
            if offset <= max_neg_offset:
                return first_guess - offset, in_offset - offset
        return 0, in_offset
    # candidates: where the most distinctive (longest) compared line occurs
    key_at = max(range(lo, hi), key=lambda j: len(pat.lines[j]))
    if pat.lines[key_at] == b"":
        positions = list(range(1, input_lines + 1))  # only possible for an empty last line
    else:
        positions = inp.positions(pat.lines[key_at])
    ranked = []
    for q in positions:
        pos = q - key_at
        r = rank(pos)
        if r is not None:
            ranked.append((r, pos))
    ranked.sort()
    for (offset, neg), pos in ranked:
        if inp.match(pat.lines, pos, prefix_fuzz, suffix_fuzz):
            return pos, in_offset + (-offset if neg else offset)
    return 0, in_offset


class _Output:
    """GNU's output state for one file: copy input up to a line, write lines, track the end.

    The output is a list of byte chunks; copying input lines copies one slice of the input.
    """

    def __init__(self, inp: _Input) -> None:
        self.inp = inp
        self.out: list[bytes] = []
        self.last_frozen = 0
        self.after_newline = True

    def _emit(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.after_newline:
            self.out.append(b"\n")
        self.out.append(chunk)
        self.after_newline = chunk.endswith(b"\n")

    def copy_till(self, lastline: int) -> bool:
        if self.last_frozen > lastline:
            return False  # "misordered hunks! output would be garbled"
        n = len(self.inp.lines)
        a, b = min(self.last_frozen, n), min(lastline, n)
        if b > a:
            self._emit(b"".join(self.inp.lines[a:b]))
        self.last_frozen = max(self.last_frozen, lastline)
        return True

    def apply(self, pat: _Pattern, new_lines: list[bytes], where: int) -> bool:
        """GNU ``apply_hunk`` for a unified hunk located at ``where``."""
        # check first, so that a refused hunk leaves the output untouched
        lead = len(pat.kinds) - len(pat.kinds.lstrip(b" "))
        if self.last_frozen > where + lead - 1:
            return False
        old = 0
        new = 0
        for k in pat.kinds:
            if k == 0x20:
                old += 1
                new += 1
            elif k == 0x2D:
                self.copy_till(where + old - 1)
                self.last_frozen += 1
                old += 1
            else:
                self.copy_till(where + old - 1)
                self._emit(new_lines[new])
                new += 1
        return True

    def finish(self) -> bytes:
        self.copy_till(len(self.inp.lines))
        return b"".join(self.out)


def _classify(fuzz: int, offset: int) -> HunkClass:
    if fuzz:
        return HunkClass.FUZZ
    if offset:
        return HunkClass.OFFSET
    return HunkClass.CLEAN


def patch_lines(
    lines: Sequence[bytes],
    hunks: Sequence[Hunk],
    *,
    max_fuzz: int = 0,
    detect_reverse: bool = True,
    data: bytes | None = None,
) -> FileResult:
    """Apply ``hunks`` to ``lines`` (``data``: the same, joined) the way ``patch -N -F<max_fuzz>`` would.

    Returns every hunk's verdict; ``output`` is the patched file when no hunk failed. When the first
    hunk only matches reversed, the file is "previously applied": it is left alone, and the other
    hunks are checked reversed too (already-applied if they match, conflict if not).
    """
    inp = _Input(lines, data)
    out = _Output(inp)
    in_offset = 0
    results: list[HunkResult] = []
    for n, hunk in enumerate(hunks):
        pat = _pattern(hunk, False)
        context = max(pat.prefix_context, pat.suffix_context)
        top = min(max_fuzz, context)
        fuzz = 0
        where = 0
        expected = pat.first + in_offset
        reversed_at: tuple[int, int, int] | None = None
        while True:
            where, new_offset = locate(inp, pat, fuzz, in_offset, out.last_frozen)
            if not where and n == 0 and detect_reverse:
                rpat = _pattern(hunk, True)
                rwhere, roffset = locate(inp, rpat, fuzz, in_offset, out.last_frozen)
                if rwhere:
                    reversed_at = (rwhere, roffset, fuzz)
                    break
            if where or fuzz >= top:
                break
            fuzz += 1
        if reversed_at is not None:
            return _reversed(inp, hunks, max_fuzz, reversed_at)
        if where:
            in_offset = new_offset  # GNU moves the offset even when apply_hunk then refuses
        if where and out.apply(pat, hunk.new_lines(), where):
            results.append(
                HunkResult(
                    index=hunk.index,
                    klass=_classify(fuzz, in_offset),
                    offset=in_offset,
                    fuzz=fuzz,
                    line=where,
                    expected_line=expected,
                )
            )
        else:
            results.append(
                HunkResult(index=hunk.index, klass=HunkClass.CONFLICT, expected_line=expected)
            )
    failed = any(r.klass is HunkClass.CONFLICT for r in results)
    return FileResult(tuple(results), False, None if failed else out.finish())


def _reversed(
    inp: _Input, hunks: Sequence[Hunk], max_fuzz: int, first: tuple[int, int, int]
) -> FileResult:
    """The file's first hunk is already there: check the others reversed, in order."""
    where, in_offset, fuzz = first
    out = _Output(inp)
    results = [
        HunkResult(
            index=hunks[0].index,
            klass=HunkClass.ALREADY_APPLIED,
            offset=in_offset,
            fuzz=fuzz,
            line=where,
            expected_line=hunks[0].new_first,
        )
    ]
    out.apply(_pattern(hunks[0], True), hunks[0].old_lines(), where)
    for hunk in hunks[1:]:
        pat = _pattern(hunk, True)
        top = min(max_fuzz, max(pat.prefix_context, pat.suffix_context))
        expected = pat.first + in_offset
        found = 0
        for f in range(top + 1):
            found, new_offset = locate(inp, pat, f, in_offset, out.last_frozen)
            if found and out.apply(pat, hunk.old_lines(), found):
                in_offset = new_offset
                results.append(
                    HunkResult(
                        index=hunk.index,
                        klass=HunkClass.ALREADY_APPLIED,
                        offset=in_offset,
                        fuzz=f,
                        line=found,
                        expected_line=expected,
                    )
                )
                break
            found = 0
        if not found:
            results.append(
                HunkResult(index=hunk.index, klass=HunkClass.CONFLICT, expected_line=expected)
            )
    return FileResult(tuple(results), True, None)
