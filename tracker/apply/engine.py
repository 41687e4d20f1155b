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

Instead of GNU's line-by-line walk, the file is written once as a string of fixed-width line
codes (equal lines, equal codes) and the hunk's compared lines as a needle: ``bytes.find`` upward
from the guess and ``bytes.rfind`` downward give the nearest match on each side in linear time, and
the nearer one (the upward one on a tie) is the one GNU's outward loop would reach first. So the
verdict is GNU's, exactly, and a context line repeated 100,000 times costs one scan, not 100,000
comparisons per hunk.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from tracker.errors import InfraError
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


class Deadline:
    """A time limit on applying: ``check()`` raises an InfraError once it has passed."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise InfraError(
                f"the apply stage took longer than its limit of {self.seconds:g} s",
                hint="raise [run] apply_timeout in ktrack.toml if the series is that large",
            )


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


def _code(n: int, width: int) -> bytes:
    """Line code ``n`` in ``width`` bytes: only the first byte has its high bit set, so a match
    of a needle of codes can only start on a code boundary."""
    out = [0x80 | (n & 0x7F)]
    for _ in range(width - 1):
        n >>= 7
        out.append(n & 0x7F)
    return bytes(out)


class _Input:
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
    # GNU's loop visits first_guess + o (o <= max_pos_offset) then first_guess - o (o <=
    # max_neg_offset) for o = min_offset, min_offset + 1, ...: two contiguous runs of positions
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


def _anchored(
    inp: _Input,
    pat: _Pattern,
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
    inp: _Input, pat: _Pattern, lo: int, hi: int, first: int, last: int, *, downward: bool = False
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
    deadline: Deadline | None = None,
) -> FileResult:
    """Apply ``hunks`` to ``lines`` (``data``: the same, joined) the way ``patch -N -F<max_fuzz>`` would.

    Returns every hunk's verdict; ``output`` is the patched file when no hunk failed. When the first
    hunk only matches reversed, the file is "previously applied": it is left alone, and the other
    hunks are checked reversed too (already-applied if they match, conflict if not).
    """
    if not lines and len(hunks) == 1 and hunks[0].kinds.count(b"+") == len(hunks[0].kinds):
        # a new file: the hunk's text is the file, shared rather than copied (a 50 MB patch of
        # new files would otherwise be held twice)
        h = hunks[0]
        found = HunkResult(h.index, HunkClass.CLEAN, 0, 0, line=h.first, expected_line=h.first)
        return FileResult((found,), False, h.text)
    inp = _Input(lines, data)
    out = _Output(inp)
    in_offset = 0
    results: list[HunkResult] = []
    for n, hunk in enumerate(hunks):
        if deadline is not None:
            deadline.check()
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
            return _reversed(inp, hunks, max_fuzz, reversed_at, deadline)
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
    inp: _Input,
    hunks: Sequence[Hunk],
    max_fuzz: int,
    first: tuple[int, int, int],
    deadline: Deadline | None = None,
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
        if deadline is not None:
            deadline.check()
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
