"""Applying a file's hunks the way GNU patch 2.7.6 does (``src/patch.c``), in memory.

Where each hunk lands is :mod:`tracker.apply.locate`'s job (GNU's ``locate_hunk``); here:

* a hunk is tried at fuzz 0, 1, ... up to ``min(max_fuzz, max(prefix, suffix context))``;
* only when the first hunk of a file fails at some fuzz is the swapped hunk tried at that same fuzz:
  a match means "Reversed (or previously applied)" and, as with ``patch -N``, the file is left alone;
* a hunk is applied as GNU's ``apply_hunk`` does: context comes from the file (not the patch),
  removed lines are skipped, added lines written, input lines beyond the end are simply absent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from tracker.apply.locate import Input, Pattern, hunk_pattern, locate
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


class _Output:
    """GNU's output state for one file: copy input up to a line, write lines, track the end.

    The output is a list of byte chunks; copying input lines copies one slice of the input.
    """

    def __init__(self, inp: Input) -> None:
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

    def apply(self, pat: Pattern, new_lines: list[bytes], where: int) -> bool:
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
    inp = Input(lines, data)
    out = _Output(inp)
    in_offset = 0
    results: list[HunkResult] = []
    for n, hunk in enumerate(hunks):
        if deadline is not None:
            deadline.check()
        pat = hunk_pattern(hunk, False)
        context = max(pat.prefix_context, pat.suffix_context)
        top = min(max_fuzz, context)
        fuzz = 0
        where = 0
        expected = pat.first + in_offset
        reversed_at: tuple[int, int, int] | None = None
        while True:
            where, new_offset = locate(inp, pat, fuzz, in_offset, out.last_frozen)
            if not where and n == 0 and detect_reverse:
                rpat = hunk_pattern(hunk, True)
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
    inp: Input,
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
    out.apply(hunk_pattern(hunks[0], True), hunks[0].old_lines(), where)
    for hunk in hunks[1:]:
        if deadline is not None:
            deadline.check()
        pat = hunk_pattern(hunk, True)
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
