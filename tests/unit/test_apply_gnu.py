"""The GNU patch oracle: its command line and the parser of what it prints."""

from __future__ import annotations

from pathlib import Path

from tracker.apply.gnu import GnuFile, GnuHunk, parse_output, patch_argv

OUTPUT = """\
The next patch would create the file new.c,
which already exists!  Skipping patch.
1 out of 1 hunk ignored
The next patch would delete the file gone.c,
which does not exist!  Skipping patch.
1 out of 1 hunk ignored
can't find file to patch at input line 17
Perhaps you used the wrong -p or --strip option?
The text leading up to this was:
--------------------------
|--- a/nofile.c
|+++ b/nofile.c
--------------------------
No file to patch.  Skipping patch.
1 out of 1 hunk ignored
checking file g.c
Hunk #1 succeeded at 5 (offset 2 lines).
Hunk #2 FAILED at 20.
Hunk #3 succeeded at 41 with fuzz 1 (offset -1 line).
1 out of 3 hunks FAILED
checking file 'with space.c'
Reversed (or previously applied) patch detected!  Skipping patch.
2 out of 2 hunks ignored
checking file fs/new/a.c (renamed from fs/old/a.c)
File link.txt is not a regular file -- refusing to patch
1 out of 1 hunk ignored
"""


def test_parse_output_sections_in_order() -> None:
    sections = parse_output(OUTPUT)
    assert [s.kind for s in sections] == [
        GnuFile.EXISTS,
        GnuFile.DELETE_MISSING,
        GnuFile.MISSING,
        GnuFile.CHECKED,
        GnuFile.REVERSED,
        GnuFile.CHECKED,
        GnuFile.NOT_REGULAR,
    ]
    g = sections[3]
    assert g.name == "g.c"
    assert g.hunks == {
        1: GnuHunk(1, True, 5, fuzz=0, offset=2),
        2: GnuHunk(2, False, 20),
        3: GnuHunk(3, True, 41, fuzz=1, offset=-1),
    }
    assert sections[4].name == "with space.c"
    assert sections[5].name == "fs/new/a.c"


def test_patch_argv() -> None:
    assert patch_argv(Path("/p/0001.patch"), strip=1, fuzz=2) == [
        "patch",
        "--dry-run",
        "-N",
        "-t",
        "-F2",
        "-p1",
        "--no-backup-if-mismatch",
        "-r",
        "-",
        "-i",
        "/p/0001.patch",
    ]
    assert "--dry-run" not in patch_argv(Path("x"), dry_run=False)
