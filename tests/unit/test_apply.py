"""The apply engine on small synthetic trees: every file operation and class, and the series rules."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from test_apply_differential import check_against_gnu  # noqa: E402

from tracker.apply.check import check_series  # noqa: E402
from tracker.apply.engine import patch_lines, split_lines  # noqa: E402
from tracker.patchsets.diff import Series, hunk_from_lines, parse_patch  # noqa: E402
from tracker.sources.tree import DirTree  # noqa: E402
from tracker.vocab import HunkClass, Status  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "patches"
HAVE_PATCH = shutil.which("patch") is not None


def _tree(root: Path, files: dict[str, bytes]) -> DirTree:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return DirTree(root)


def _series(*patches: bytes) -> Series:
    return Series(
        "s", tuple(parse_patch(p, name=f"{i + 1:04d}.patch") for i, p in enumerate(patches))
    )


NUMBERS = b"".join(b"%d\n" % i for i in range(1, 31))


def _mod(old: bytes, new: bytes, line: int, name: str = "f.c") -> bytes:
    return (
        b"--- a/%s\n+++ b/%s\n@@ -%d,7 +%d,7 @@\n" % (name.encode(), name.encode(), line, line)
        + b"".join(b" %d\n" % i for i in range(line, line + 3))
        + b"-"
        + old
        + b"\n+"
        + new
        + b"\n"
        + b"".join(b" %d\n" % i for i in range(line + 4, line + 7))
    )


def test_split_lines_keeps_newlines_and_only_splits_on_lf() -> None:
    assert split_lines(b"a\nb\r\nc") == [b"a\n", b"b\r\n", b"c"]
    assert split_lines(b"a\x0bb\n") == [b"a\x0bb\n"]
    assert split_lines(b"") == []


def test_clean_offset_and_conflict_lines(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": b"x\ny\n" + NUMBERS})
    report = check_series(_series(_mod(b"10", b"ten", 7)), tree)
    (h,) = report.patches[0].files[0].hunks
    assert (h.klass, h.offset, h.line, h.expected_line) == (HunkClass.OFFSET, 2, 9, 7)
    assert report.status is Status.WARN
    assert report.changes["f.c"] == b"x\ny\n" + NUMBERS.replace(b"\n10\n", b"\nten\n")

    report = check_series(_series(_mod(b"99", b"x", 7)), tree)
    (h,) = report.patches[0].files[0].hunks
    assert h.klass is HunkClass.CONFLICT and h.expected_line == 7
    assert report.status is Status.FAIL
    assert report.summary == "0001.patch: conflict in f.c hunk 1 at line 7"
    assert h.want[3] == "99" and h.have[0] == "5"  # the side-by-side view
    assert report.changes == {}


def test_fuzz_is_only_accepted_up_to_the_factor(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": NUMBERS.replace(b"\n13\n", b"\nthirteen\n")})
    patch = _series(_mod(b"10", b"ten", 7))
    assert check_series(patch, tree, fuzz=0).patches[0].klass is HunkClass.CONFLICT
    report = check_series(patch, tree, fuzz=1)
    (h,) = report.patches[0].files[0].hunks
    assert (h.klass, h.fuzz) == (HunkClass.FUZZ, 1)
    assert report.status is Status.WARN


def test_already_applied_patch_is_a_warning_to_drop_it(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": NUMBERS.replace(b"\n10\n", b"\nten\n")})
    report = check_series(_series(_mod(b"10", b"ten", 7)), tree)
    p = report.patches[0]
    assert p.klass is HunkClass.ALREADY_APPLIED
    assert "drop it" in p.note
    assert report.status is Status.WARN and "already applied" in report.summary
    assert report.changes == {}


def test_missing_file_and_file_exists(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"other.c": b"x\n", "new.c": b"different\n"})
    create = b"--- /dev/null\n+++ b/new.c\n@@ -0,0 +1 @@\n+hello\n"
    report = check_series(_series(_mod(b"10", b"ten", 7), create), tree)
    assert [p.klass for p in report.patches] == [HunkClass.MISSING_FILE, HunkClass.FILE_EXISTS]
    assert report.status is Status.FAIL
    # creating a file that is already there with the same content: already applied
    tree = _tree(tmp_path / "t2", {"new.c": b"hello\n"})
    assert check_series(_series(create), tree).patches[0].klass is HunkClass.ALREADY_APPLIED


def test_failed_patch_is_left_out_and_later_ones_marked(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": NUMBERS, "g.c": NUMBERS})
    series = _series(
        _mod(b"99", b"x", 7),  # fails
        _mod(b"20", b"twenty", 17),  # same file: may depend on the failed one
        _mod(b"10", b"ten", 7, name="g.c"),  # unrelated
    )
    report = check_series(series, tree)
    first, second, third = report.patches
    assert first.klass is HunkClass.CONFLICT
    assert second.klass is HunkClass.CLEAN and second.depends_on_failed
    assert second.depends_on == ("0001.patch",)
    assert not third.depends_on_failed
    assert report.touched == {"f.c": "0002.patch", "g.c": "0003.patch"}
    assert report.summary.startswith("0001.patch: conflict in f.c hunk 1")


def test_series_applies_in_order_on_the_patched_state(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": NUMBERS})
    report = check_series(_series(_mod(b"10", b"ten", 7), _mod(b"ten", b"TEN", 7)), tree)
    assert [p.klass for p in report.patches] == [HunkClass.CLEAN, HunkClass.CLEAN]
    assert b"\nTEN\n" in (report.changes["f.c"] or b"")
    assert report.status is Status.PASS and report.summary == "2 patches apply cleanly"


def test_git_rename_delete_new_dir_mode_and_binary(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "del.c": b"gone\n",
            "fs/b.c": b"keep\n",
            "fs/old/a.c": b"one\ntwo\nthree\n",
            "run.sh": b"#!/bin/sh\necho hi\n",
            "logo.bin": b"\x00\x01\x02",
            "nonl.txt": b"no newline",
        },
    )
    patch = (FIXTURES / "git-rename-mode-binary.patch").read_bytes()
    report = check_series(_series(patch), tree)
    files = {f.path: f for f in report.patches[0].files}
    assert files["logo.bin"].klass is HunkClass.CONFLICT and "binary" in files["logo.bin"].note
    assert report.status is Status.FAIL  # a binary patch cannot be applied: said, not crashed on
    # without the binary part everything applies
    text = (
        patch.split(b"diff --git a/logo.bin")[0]
        + b"diff --git a/nonl.txt"
        + patch.split(b"diff --git a/nonl.txt")[1]
    )
    report = check_series(_series(text), tree)
    assert report.status is Status.PASS, report.summary
    c = report.changes
    assert c["del.c"] is None
    assert c["fs/old/a.c"] is None and c["fs/new/a.c"] == b"one\nTWO\nthree\n"
    assert c["drivers/vx/vx.c"] == b"int vx;\n" and c["fs/c.c"] == b"keep\nkeep\nmore\n"
    assert c["nonl.txt"] == b"no newline\nnow"
    assert report.modes["run.sh"] == 0o100755
    assert report.modes["drivers/vx/Makefile"] == 0o100644


def test_crlf_files_match_only_crlf_patches(tmp_path: Path) -> None:
    patch = (FIXTURES / "crlf.patch").read_bytes()  # CRLF headers: GNU strips the CRs
    crlf = _tree(tmp_path / "crlf", {"win.txt": b"line one\r\nline two\r\n"})
    lf = _tree(tmp_path / "lf", {"win.txt": b"line one\nline two\n"})
    assert check_series(_series(patch), crlf).patches[0].klass is HunkClass.CONFLICT
    assert check_series(_series(patch), lf).patches[0].klass is HunkClass.CLEAN


@pytest.mark.skipif(not HAVE_PATCH, reason="GNU patch is required (apt-get install patch)")
@pytest.mark.parametrize(
    "files",
    [
        {"win.txt": b"line one\r\nline two\r\n"},
        {"win.txt": b"line one\nline two\n"},
    ],
)
def test_crlf_agrees_with_gnu_patch(tmp_path: Path, files: dict[str, bytes]) -> None:
    patch = (FIXTURES / "crlf.patch").read_bytes()
    check_against_gnu(tmp_path, [patch], {k: split_lines(v) for k, v in files.items()}, 0)


@pytest.mark.skipif(not HAVE_PATCH, reason="GNU patch is required (apt-get install patch)")
def test_git_features_agree_with_gnu_patch(tmp_path: Path) -> None:
    patch = (FIXTURES / "git-rename-mode-binary.patch").read_bytes()
    text = (
        patch.split(b"diff --git a/logo.bin")[0]
        + b"diff --git a/nonl.txt"
        + patch.split(b"diff --git a/nonl.txt")[1]
    )
    files = {
        "del.c": [b"gone\n"],
        "fs/b.c": [b"keep\n"],
        "fs/old/a.c": [b"one\n", b"two\n", b"three\n"],
        "run.sh": [b"#!/bin/sh\n", b"echo hi\n"],
        "nonl.txt": [b"no newline"],
    }
    check_against_gnu(tmp_path, [text], files, 0)


def test_hunk_search_prefers_the_nearest_match_and_positive_side() -> None:
    lines = [b"a\n", b"x\n", b"a\n", b"y\n", b"a\n"]
    hunk = hunk_from_lines(1, 3, 3, [("-", b"a\n"), ("+", b"b\n")])
    r = patch_lines(lines, [hunk])
    assert r.hunks[0].line == 3 and r.hunks[0].klass is HunkClass.CLEAN
    hunk = hunk_from_lines(1, 2, 2, [("-", b"a\n"), ("+", b"b\n")])
    r = patch_lines(lines, [hunk])
    assert (r.hunks[0].line, r.hunks[0].offset) == (3, 1)  # +1 is tried before -1


def test_empty_series_and_empty_patch(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": b"x\n"})
    report = check_series(Series("s", ()), tree)
    assert report.status is Status.PASS and report.summary == "empty series: nothing to apply"
    report = check_series(_series(b"Just a message, no diff.\n"), tree)
    assert report.patches[0].klass is HunkClass.CLEAN and report.patches[0].empty
    assert report.status is Status.WARN and "appears to be empty" in report.patches[0].note


def test_json_shape(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"f.c": b"x\ny\n" + NUMBERS})
    doc = check_series(_series(_mod(b"10", b"ten", 7), _mod(b"99", b"x", 20)), tree).to_json()
    assert doc["schema"] == "ktrack.check/1" and doc["status"] == "fail"
    p1, p2 = doc["patches"]
    assert p1["class"] == "offset"
    assert p1["files"][0]["hunks"][0] == {
        "index": 1,
        "class": "offset",
        "offset": 2,
        "fuzz": 0,
        "line": 9,
        "expected_line": 7,
    }
    assert p2["files"][0]["hunks"][0] == {"index": 1, "class": "conflict", "expected_line": 20}


COPY = (
    b"diff --git a/src.c b/dst.c\nsimilarity index 80%\ncopy from src.c\ncopy to dst.c\n"
    b"--- a/src.c\n+++ b/dst.c\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
    b"diff --git a/old.c b/moved/new.c\nsimilarity index 100%\nrename from old.c\n"
    b"rename to moved/new.c\n"
)


def test_copy_and_pure_rename(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"src.c": b"one\ntwo\nthree\n", "old.c": b"x\n"})
    report = check_series(_series(COPY), tree)
    assert report.status is Status.PASS, report.summary
    assert report.changes == {
        "dst.c": b"one\n2\nthree\n",
        "old.c": None,
        "moved/new.c": b"x\n",
    }


@pytest.mark.skipif(not HAVE_PATCH, reason="GNU patch is required (apt-get install patch)")
def test_copy_and_pure_rename_agree_with_gnu_patch(tmp_path: Path) -> None:
    files = {"src.c": [b"one\n", b"two\n", b"three\n"], "old.c": [b"x\n"]}
    check_against_gnu(tmp_path, [COPY], files, 0)


TWICE = (
    b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n"
    b"--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\n 1\n-two\n+TWO\n 3\n"
)


@pytest.mark.skipif(not HAVE_PATCH, reason="GNU patch is required (apt-get install patch)")
def test_one_file_twice_in_a_patch_follows_real_application(tmp_path: Path) -> None:
    """``patch --dry-run`` checks the second section against the original file and fails it;
    the real ``patch`` (what quilt runs) applies both in turn. The engine does what patch does."""
    from tracker.apply.gnu import patch_argv
    from tracker.proc import run

    tree = _tree(tmp_path / "t", {"f": NUMBERS})
    report = check_series(_series(TWICE), tree)
    assert report.status is Status.PASS
    pf = tmp_path / "p.diff"
    pf.write_bytes(TWICE)
    real = run(patch_argv(pf, dry_run=False), cwd=tmp_path / "t", timeout=30)
    assert real.ok, real.stdout
    assert (tmp_path / "t" / "f").read_bytes() == report.changes["f"]
