"""Three-way merge of one file with real ``git merge-file --diff3``.

ours = the file in the target (as the earlier ported patches left it), base = the file in the
release the patch set version was written for, theirs = base with the patch applied. The merge
runs on private temporary files; git writes the result into the ``ours`` copy (not ``-p``, whose
text the process wrapper would decode: kernel files are bytes, not always UTF-8).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker import proc
from tracker.errors import InfraError

MARKER = 7
_OPEN, _BASE, _SEP, _CLOSE = (c * MARKER for c in (b"<", b"|", b"=", b">"))


def merge_file_argv(
    ours: Path, base: Path, theirs: Path, labels: tuple[str, str, str]
) -> list[str]:
    """The merge command: diff3 style (the base section is shown), the result into ``ours``."""
    return [
        "git",
        "merge-file",
        "--diff3",
        "-q",
        f"--marker-size={MARKER}",
        "-L",
        labels[0],
        "-L",
        labels[1],
        "-L",
        labels[2],
        str(ours),
        str(base),
        str(theirs),
    ]


@dataclass(frozen=True)
class Region:
    """One conflict of a diff3 merge: the three sides' lines."""

    ours: tuple[bytes, ...]
    base: tuple[bytes, ...]
    theirs: tuple[bytes, ...]

    def text(self, labels: tuple[str, str, str]) -> str:
        """The region in diff3 form, decoded for a report."""

        def block(lines: tuple[bytes, ...]) -> str:
            out = b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines)
            return out.decode("utf-8", "replace")

        return (
            f"{'<' * MARKER} {labels[0]}\n{block(self.ours)}"
            f"{'|' * MARKER} {labels[1]}\n{block(self.base)}"
            f"{'=' * MARKER}\n{block(self.theirs)}"
            f"{'>' * MARKER} {labels[2]}\n"
        )


@dataclass(frozen=True)
class MergeResult:
    """The merged bytes (conflict markers included when ``regions``) and the conflicts."""

    output: bytes
    regions: tuple[Region, ...]

    @property
    def clean(self) -> bool:
        return not self.regions


def _marker(line: bytes, marker: bytes) -> bool:
    return line.startswith(marker) and (len(line) == MARKER or line[MARKER : MARKER + 1] in b" \n")


def blocks(output: bytes) -> Iterator[tuple[list[bytes], Region | None]]:
    """The merge output as runs of plain lines (region None) and conflicts (their raw lines)."""
    plain: list[bytes] = []
    raw: list[bytes] = []
    side: list[list[bytes]] | None = None
    part = 0
    for line in output.splitlines(keepends=True):
        if side is None:
            if _marker(line, _OPEN):
                if plain:
                    yield plain, None
                plain, raw, side, part = [], [line], [[], [], []], 0
            else:
                plain.append(line)
            continue
        raw.append(line)
        if part == 0 and _marker(line, _BASE):
            part = 1
        elif part in (0, 1) and _marker(line, _SEP):
            part = 2
        elif part == 2 and _marker(line, _CLOSE):
            yield raw, Region(tuple(side[0]), tuple(side[1]), tuple(side[2]))
            side = None
        else:
            side[part].append(line)
    if side is not None:
        plain = raw + plain  # an unterminated block is text
    if plain:
        yield plain, None


def parse_regions(output: bytes) -> tuple[Region, ...]:
    """The conflicts of a ``--diff3`` merge output (markers of our fixed size)."""
    return tuple(r for _, r in blocks(output) if r is not None)


def merge(
    ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str], *, timeout: float = 120
) -> MergeResult:
    """Merge with git; InfraError when git fails (binary input, a missing git, a timeout)."""
    with tempfile.TemporaryDirectory(prefix="ktrack-merge-") as tmp:
        d = Path(tmp)
        paths = (d / "ours", d / "base", d / "theirs")
        for p, data in zip(paths, (ours, base, theirs), strict=True):
            p.write_bytes(data)
        res = proc.run(merge_file_argv(*paths, labels), cwd=d, timeout=timeout)
        if res.returncode < 0 or res.returncode > 127:
            tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise InfraError(f"git merge-file failed ({res.returncode}): {tail}")
        output = paths[0].read_bytes()
    regions = parse_regions(output) if res.returncode else ()
    if res.returncode and not regions:
        raise InfraError(f"git merge-file reported {res.returncode} conflict(s) but wrote none")
    return MergeResult(output, regions)
