"""The unified/git diff parser: names, strip levels, git headers, hunks, markers, bad input."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.apply.check import check_series
from tracker.errors import UserError
from tracker.patchsets.diff import FileOp, Series, iter_files, parse_patch, strip_path
from tracker.vocab import Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "patches"


def test_strip_path_follows_gnu_patch() -> None:
    assert strip_path("a/fs/proc/base.c", 1) == "fs/proc/base.c"
    assert strip_path("linux-6.1.orig/fs/x.c", 1) == "fs/x.c"
    assert strip_path("a//b/c", 1) == "b/c"
    assert strip_path("x.c", 0) == "x.c"
    assert strip_path("x.c", 1) is None  # too few components
    assert strip_path("/etc/passwd", 1) == "etc/passwd"


def test_plain_unified_diff_with_timestamps_and_section() -> None:
    patch = parse_patch(
        b"Index: fs/x.c\n"
        b"===================================================================\n"
        b"--- linux-6.1.orig/fs/x.c\t2023-01-01 10:00:00.000000000 +0100\n"
        b"+++ linux-6.1/fs/x.c\t2023-01-02 10:00:00.000000000 +0100\n"
        b"@@ -10,3 +10,4 @@ static int foo(void)\n"
        b" a\n"
        b"-b\n"
        b"+B\n"
        b"+C\n"
        b" c\n",
        name="p",
    )
    (f,) = patch.files
    assert (f.old_path, f.new_path, f.op) == ("fs/x.c", "fs/x.c", FileOp.MODIFY)
    (h,) = f.hunks
    assert (h.old_start, h.old_len, h.new_start, h.new_len) == (10, 3, 10, 4)
    assert h.kinds == b" -++ "
    assert h.section == "static int foo(void)"
    assert h.old_lines() == [b"a\n", b"b\n", b"c\n"]
    assert h.new_lines() == [b"a\n", b"B\n", b"C\n", b"c\n"]
    assert (h.prefix_context, h.suffix_context) == (1, 1)


def test_git_headers_new_deleted_renamed_copied_mode() -> None:
    data = (
        b"diff --git a/new.c b/new.c\n"
        b"new file mode 100755\n"
        b"index 0000000..e69de29\n"
        b"--- /dev/null\n"
        b"+++ b/new.c\n"
        b"@@ -0,0 +1,2 @@\n"
        b"+x\n"
        b"+y\n"
        b"diff --git a/gone.c b/gone.c\n"
        b"deleted file mode 100644\n"
        b"--- a/gone.c\n"
        b"+++ /dev/null\n"
        b"@@ -1 +0,0 @@\n"
        b"-z\n"
        b"diff --git a/old name.c b/new name.c\n"
        b"similarity index 100%\n"
        b"rename from old name.c\n"
        b"rename to new name.c\n"
        b"diff --git a/src.c b/dst.c\n"
        b"similarity index 90%\n"
        b"copy from src.c\n"
        b"copy to dst.c\n"
        b"--- a/src.c\n"
        b"+++ b/dst.c\n"
        b"@@ -1 +1 @@\n"
        b"-q\n"
        b"+r\n"
        b"diff --git a/run.sh b/run.sh\n"
        b"old mode 100644\n"
        b"new mode 100755\n"
    )
    files = parse_patch(data, name="p").files
    assert [(f.op, f.old_path, f.new_path) for f in files] == [
        (FileOp.CREATE, None, "new.c"),
        (FileOp.DELETE, "gone.c", None),
        (FileOp.RENAME, "old name.c", "new name.c"),
        (FileOp.COPY, "src.c", "dst.c"),
        (FileOp.MODIFY, "run.sh", "run.sh"),
    ]
    assert files[0].new_mode == 0o100755
    assert files[4].old_mode == 0o100644 and files[4].new_mode == 0o100755
    assert files[2].hunks == ()


def test_quoted_git_names() -> None:
    data = (
        b'diff --git "a/t\\303\\251st\\tx.c" "b/t\\303\\251st\\tx.c"\n'
        b'--- "a/t\\303\\251st\\tx.c"\n'
        b'+++ "b/t\\303\\251st\\tx.c"\n'
        b"@@ -1 +1 @@\n-a\n+b\n"
    )
    (f,) = parse_patch(data, name="p").files
    assert f.new_path == "t\u00e9st\tx.c"


def test_no_newline_markers_trim_their_side() -> None:
    data = b"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"
    (h,) = parse_patch(data, name="p").files[0].hunks
    assert h.old_lines() == [b"a\n", b"b"]
    assert h.new_lines() == [b"a\n", b"b\n"]


def test_blank_context_lines_and_chopped_tail_are_context() -> None:
    # mailers eat the space of blank context lines and trailing blank lines
    data = b"--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n a\n\n-b\n+B\n c\n"
    (h,) = parse_patch(data, name="p").files[0].hunks
    assert h.old_lines() == [b"a\n", b"\n", b"b\n", b"c\n"]
    data = b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n-a\n+A\n b\n"
    (h,) = parse_patch(data, name="p").files[0].hunks
    assert h.old_lines() == [b"a\n", b"b\n", b"\n"]


def test_crlf_patch_headers_strip_crs() -> None:
    data = b"--- a/f\r\n+++ b/f\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
    (h,) = parse_patch(data, name="p").files[0].hunks
    assert h.old_lines() == [b"a\n"]
    # a CRLF line inside an LF patch stays CRLF
    data = b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\r\n+b\r\n"
    (h,) = parse_patch(data, name="p").files[0].hunks
    assert h.old_lines() == [b"a\r\n"]


def test_mail_text_around_the_diff_is_ignored() -> None:
    data = (
        b"From 1234 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\nWhy.\n---\n f | 2 +-\n\n"
        b"diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
        b"-- \n2.39.2\n"
    )
    (f,) = parse_patch(data, name="p").files
    assert f.path == "f" and len(f.hunks) == 1


def test_binary_sections_are_recorded() -> None:
    data = (
        b"diff --git a/logo.png b/logo.png\nindex 1..2 100644\nGIT binary patch\n"
        b"literal 3\nKcmZ?wbN~PV00031\n\nliteral 0\nHcmV?d00001\n\n"
        b"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
        b"diff --git a/x.bin b/x.bin\nindex 1..2 100644\nBinary files a/x.bin and b/x.bin differ\n"
    )
    files = parse_patch(data, name="p").files
    assert [(f.path, f.binary) for f in files] == [
        ("logo.png", True),
        ("f", False),
        ("x.bin", True),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"--- a/f\n+++ b/f\n@@ -1,x +1 @@\n-a\n+b\n", "malformed hunk header"),
        (b"--- a/f\n+++ b/f\n@@ -1,8 +1,8 @@\n-a\n+b\n", "unexpected end of file"),
        (b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n-b\n+c\n", "more old lines"),
        (b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n a\n", "changes nothing"),
        (b"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-a\n*b\n+c\n", "unexpected line"),
        (b"--- a/../../x\n+++ b/../../x\n@@ -1 +1 @@\n-a\n+b\n", "escapes the tree"),
        (b"--- f\n+++ f\n@@ -1 +1 @@\n-a\n+b\n", "cannot strip 1"),
        (b"--- a/f\n+++ b/f\n@@ -99999999999999999999 +1 @@\n-a\n+b\n", "malformed"),
    ],
)
def test_bad_input_is_a_user_error_naming_patch_and_line(data: bytes, message: str) -> None:
    with pytest.raises(UserError) as exc:
        parse_patch(data, name="0001-x.patch")
    assert message in str(exc.value)
    assert "0001-x.patch: line" in str(exc.value)


def test_absolute_path_with_p0_is_refused() -> None:
    with pytest.raises(UserError, match="escapes the tree|absolute"):
        parse_patch(b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", name="p", strip=0)


def test_streaming_parse_of_a_compressed_patch() -> None:
    body = b"".join(b"--- a/f%d\n+++ b/f%d\n@@ -1 +1 @@\n-a\n+b\n" % (i, i) for i in range(100))
    stream = gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(body)))
    names = [f.path for f in iter_files(stream, name="big.gz")]  # type: ignore[arg-type]
    assert names == [f"f{i}" for i in range(100)]


def _golden() -> list[Path]:
    return sorted(FIXTURES.glob("*.patch"))


@pytest.mark.parametrize("path", _golden(), ids=lambda p: p.name)
def test_golden_samples(path: Path) -> None:
    """tests/fixtures/patches/NAME.patch parses into NAME.json (files, ops, hunk shapes)."""
    expected = json.loads(path.with_suffix(".json").read_text())
    patch = parse_patch(path.read_bytes(), name=path.name, strip=expected.get("strip", 1))
    got = [
        {
            "op": f.op.value,
            "old": f.old_path,
            "new": f.new_path,
            "binary": f.binary,
            "new_mode": f.new_mode,
            "hunks": [
                [h.old_start, h.old_len, h.new_start, h.new_len, h.kinds.decode()] for h in f.hunks
            ],
        }
        for f in patch.files
    ]
    assert got == expected["files"]


TOKENS = [
    b"--- a/f\n",
    b"+++ b/f\n",
    b"--- /dev/null\n",
    b"+++ /dev/null\n",
    b"diff --git a/f b/f\n",
    b"diff --git a/x y\n",
    b"@@ -1,2 +1,2 @@\n",
    b"@@ -0,0 +1 @@\n",
    b"@@ -1 +0,0 @@\n",
    b"@@ -3,0 +4,2 @@ fn\n",
    b"@@ -1,99999 +1 @@\n",
    b" ctx\n",
    b"-old\n",
    b"+new\n",
    b"\n",
    b"\t\n",
    b"\\ No newline at end of file\n",
    b"new file mode 100644\n",
    b"deleted file mode 100755\n",
    b"old mode 100644\n",
    b"new mode 1007x5\n",
    b"rename from f\n",
    b"rename to ../g\n",
    b"copy to g\n",
    b"index 000..111 100644\n",
    b"GIT binary patch\n",
    b"literal 3\n",
    b"Binary files a/f and b/f differ\n",
    b"*** a/f\n",
    b"-- \n",
    b"\r\n",
    b"\xff\xfe\x00garbage\n",
    b'diff --git "a/q\\"x" "b/q\\"x"\n',
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.integers(0, 2))
def test_any_input_parses_or_is_a_user_error(parts: list[bytes], strip: int) -> None:
    """Whatever the bytes, the parser returns a Patch or raises a UserError: never a traceback."""
    try:
        patch = parse_patch(b"".join(parts), name="fuzz.patch", strip=strip)
    except UserError as exc:
        assert str(exc).startswith("fuzz.patch")
        return
    for f in patch.files:
        for p in (f.old_path, f.new_path):
            assert p is None or (not p.startswith("/") and ".." not in p.split("/"))
    # and whatever parsed, the engine judges without crashing, on a file or without it
    for files in ({"f": b"ctx\nold\nctx\n"}, {"f": b"new"}, {}):
        report = check_series(Series("s", (patch,)), _MemTree(files))
        assert report.status in (Status.PASS, Status.WARN, Status.FAIL)


class _MemTree:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | None]:
        return {p: self.files.get(p) for p in paths}

    def mode(self, path: str) -> int | None:
        return 0o100644 if path in self.files else None


def test_rename_with_unsplittable_git_names_uses_the_other_headers() -> None:
    with_hunk = (
        b"diff --git a/old name b/x b/new name b/y\nsimilarity index 90%\n"
        b"rename from old name b/x\nrename to new name b/y\n"
        b"--- a/old name b/x\n+++ b/new name b/y\n@@ -1 +1 @@\n-a\n+b\n"
    )
    (f,) = parse_patch(with_hunk, name="p").files
    assert (f.op, f.old_path, f.new_path) == (FileOp.RENAME, "old name b/x", "new name b/y")
    pure = (
        b"diff --git a/old name b/x b/new name b/y\nsimilarity index 100%\n"
        b"rename from old name b/x\nrename to new name b/y\n"
    )
    (f,) = parse_patch(pure, name="p").files
    assert (f.op, f.old_path, f.new_path) == (FileOp.RENAME, "old name b/x", "new name b/y")
