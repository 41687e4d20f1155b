"""GNU ``patch`` as a reference: its command line and a parser for what it says per file and hunk.

The differential tests and ``bench/bench_apply.py`` run GNU patch beside the engine; both build
the command here (``patch_argv``, pure) and read its verdicts with ``parse_output``. The flags are
those quilt-style checking needs: ``-N`` (a reversed patch is "previously applied", skip it),
``-t`` (never ask), ``-F`` the fuzz factor, no backup or reject files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from enum import Enum

from tracker.apply.report import PatchReport
from tracker.patchsets.diff import Patch
from tracker.vocab import HunkClass


def patch_argv(
    patch_file: str | os.PathLike[str], *, strip: int = 1, fuzz: int = 0, dry_run: bool = True
) -> list[str]:
    """The ``patch`` command that applies (or checks) one patch file in the current directory."""
    argv = ["patch"]
    if dry_run:
        argv.append("--dry-run")
    argv += [
        "-N",
        "-t",
        f"-F{fuzz}",
        f"-p{strip}",
        "--no-backup-if-mismatch",
        "-r",
        "-",
        "-i",
        os.fspath(patch_file),
    ]
    return argv


class GnuFile(Enum):
    """How GNU patch dealt with one file section."""

    CHECKED = "checked"  # hunks tried; see the hunk verdicts
    MISSING = "missing"  # "can't find file to patch"
    EXISTS = "exists"  # "would create the file ..., which already exists"
    DELETE_MISSING = "delete-missing"  # "would delete the file ..., which does not exist"
    REVERSED = "reversed"  # "Reversed (or previously applied) patch detected"
    NOT_DELETED = "not-deleted"  # "Not deleting file ... as content differs"
    BINARY = "binary"  # "git binary diffs are not supported"
    NOT_REGULAR = "not-regular"  # "File ... is not a regular file -- refusing to patch"


@dataclass(frozen=True)
class GnuHunk:
    index: int
    ok: bool
    line: int
    fuzz: int = 0
    offset: int = 0


@dataclass
class GnuSection:
    """One file section as GNU patch reported it; unmentioned hunks applied exactly."""

    kind: GnuFile
    name: str = ""
    hunks: dict[int, GnuHunk] = field(default_factory=dict)


_HUNK_OK = re.compile(
    r"^Hunk #(\d+) succeeded at (-?\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?\.$"
)
_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (-?\d+)(?: \(different line endings\))?\.$")
_CHECKING = re.compile(r"^(?:checking|patching) (?:file|symbolic link) (.*?)(?: \(.*\))?$")


def parse_output(text: str) -> list[GnuSection]:
    """GNU patch's stdout, one :class:`GnuSection` per file section, in order."""
    sections: list[GnuSection] = []
    pending_create: GnuSection | None = None
    for line in text.splitlines():
        m = _CHECKING.match(line)
        if m:
            sections.append(GnuSection(GnuFile.CHECKED, m.group(1).strip("'")))
            continue
        if line.startswith("The next patch would create the file"):
            pending_create = GnuSection(GnuFile.EXISTS)
            sections.append(pending_create)
            continue
        if line.startswith(("The next patch would delete the file", "The next patch would empty")):
            sections.append(GnuSection(GnuFile.DELETE_MISSING))
            continue
        if line.startswith("File ") and line.endswith("is not a regular file -- refusing to patch"):
            sections.append(GnuSection(GnuFile.NOT_REGULAR))
            continue
        if line.startswith("can't find file to patch"):
            sections.append(GnuSection(GnuFile.MISSING))
            continue
        if line.startswith("Reversed (or previously applied) patch detected!") and sections:
            sections[-1].kind = GnuFile.REVERSED
            continue
        if line.startswith("Not deleting file") and sections:
            sections[-1].kind = GnuFile.NOT_DELETED
            continue
        if "git binary diffs are not supported" in line:
            if sections and sections[-1].kind is GnuFile.CHECKED and not sections[-1].hunks:
                sections[-1].kind = GnuFile.BINARY
            else:
                sections.append(GnuSection(GnuFile.BINARY))
            continue
        m = _HUNK_OK.match(line)
        if m and sections:
            idx = int(m.group(1))
            sections[-1].hunks[idx] = GnuHunk(
                idx,
                True,
                int(m.group(2)),
                fuzz=int(m.group(3) or 0),
                offset=int(m.group(4) or 0),
            )
            continue
        m = _HUNK_FAILED.match(line)
        if m and sections:
            idx = int(m.group(1))
            sections[-1].hunks[idx] = GnuHunk(idx, False, int(m.group(2)))
    return sections


def disagreements(patch: Patch, report: PatchReport, sections: list[GnuSection]) -> list[str]:
    """Where the engine's verdicts on one patch differ from GNU patch's (empty: they agree).

    Per file section: a missing file, an existing file to create, a deleted file already gone, a
    reversed file must be named alike; per hunk the class, fuzz, offset and the output line GNU
    prints (``where`` plus the lines earlier hunks of the file added) must be equal.
    """
    out: list[str] = []
    name = patch.name
    if len(sections) != len(report.files):
        return [
            f"{name}: GNU patch reported {len(sections)} file(s), the engine {len(report.files)}"
        ]
    for fp, ours, gnu in zip(patch.files, report.files, sections, strict=True):
        where = f"{name}: {ours.path}"
        k = ours.klass
        if gnu.kind is GnuFile.MISSING:
            if k is not HunkClass.MISSING_FILE:
                out.append(f"{where}: GNU: no file to patch; engine: {k.value}")
            continue
        if gnu.kind is GnuFile.EXISTS:
            if k not in (HunkClass.FILE_EXISTS, HunkClass.ALREADY_APPLIED):
                out.append(f"{where}: GNU: file to create exists; engine: {k.value}")
            continue
        if gnu.kind is GnuFile.DELETE_MISSING:
            if k is not HunkClass.ALREADY_APPLIED:
                out.append(f"{where}: GNU: file to delete is gone; engine: {k.value}")
            continue
        if gnu.kind is GnuFile.REVERSED:
            if not ours.hunks or ours.hunks[0].klass is not HunkClass.ALREADY_APPLIED:
                out.append(f"{where}: GNU: reversed (previously applied); engine: {k.value}")
            continue
        if gnu.kind in (GnuFile.NOT_DELETED, GnuFile.BINARY, GnuFile.NOT_REGULAR):
            if k is not HunkClass.CONFLICT:
                out.append(f"{where}: GNU: {gnu.kind.value}; engine: {k.value}")
            continue
        if k in (HunkClass.MISSING_FILE, HunkClass.FILE_EXISTS):
            out.append(f"{where}: GNU checked the file; engine: {k.value}")
            continue
        out_offset = 0
        for hunk, h in zip(fp.hunks, ours.hunks, strict=True):
            g = gnu.hunks.get(h.index)
            if g is None:
                g = GnuHunk(h.index, True, 0)
                if h.klass is not HunkClass.CLEAN:
                    out.append(f"{where} hunk {h.index}: GNU: clean; engine: {h.klass.value}")
            elif not g.ok:
                if h.klass is not HunkClass.CONFLICT:
                    out.append(f"{where} hunk {h.index}: GNU: FAILED; engine: {h.klass.value}")
            elif h.klass is HunkClass.CONFLICT:
                out.append(f"{where} hunk {h.index}: GNU: succeeded; engine: conflict")
            elif (h.fuzz, h.offset) != (g.fuzz, g.offset) or (
                g.line and h.line is not None and h.line + out_offset != g.line
            ):
                out.append(
                    f"{where} hunk {h.index}: GNU: line {g.line} fuzz {g.fuzz} offset "
                    f"{g.offset}; engine: line {h.line}+{out_offset} fuzz {h.fuzz} "
                    f"offset {h.offset}"
                )
            if g.ok and h.klass is not HunkClass.CONFLICT:
                out_offset += hunk.new_len - hunk.old_len
    return out
