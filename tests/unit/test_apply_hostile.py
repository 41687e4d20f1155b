"""Hostile input: each case ends in a clear UserError or a recorded verdict, never a traceback
and never a write outside the tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tracker.apply.check import check_series
from tracker.apply.materialise import write_changes
from tracker.errors import UserError
from tracker.patchsets.diff import Series, parse_patch
from tracker.patchsets.formats import load_series
from tracker.patchsets.manifest import VersionSpec
from tracker.proc import run
from tracker.sources.tree import DirTree
from tracker.vocab import HunkClass, Status


def _spec(source: Path, fmt: str = "diff", strip: int = 1) -> VersionSpec:
    return VersionSpec(
        version="1",
        base="6.1",
        format=fmt,
        source=source,
        strip=strip,
        fuzz=0,
        kconfig=None,
        tests=None,
    )


def _quilt(root: Path, series: str, patches: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "series").write_text(series)
    for name, data in patches.items():
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize(
    ("patch", "strip", "message"),
    [
        (b"--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", 0, "absolute path"),
        (b"--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", 1, "escapes"),
        (
            b"diff --git a/x b/../x\nnew file mode 100644\n--- /dev/null\n+++ b/../x\n@@ -0,0 +1 @@\n+a\n",
            1,
            "escapes",
        ),
        (b"--- a/f\n+++ b/f\n@@ -1,2 +1,2\n-a\n+b\n", 1, "malformed hunk header"),
        (b"--- a/f\n+++ b/f\n@@ -a +1 @@\n-a\n+b\n", 1, "malformed hunk header"),
    ],
)
def test_bad_patches_are_user_errors(
    tmp_path: Path, patch: bytes, strip: int, message: str
) -> None:
    f = tmp_path / "evil.patch"
    f.write_bytes(patch)
    with pytest.raises(UserError) as exc:
        load_series(_spec(f, strip=strip))
    assert message in str(exc.value) and "evil.patch: line" in str(exc.value)


def test_symlink_out_of_the_tree_is_neither_read_nor_written(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.c").write_bytes(b"secret\n")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "link").symlink_to(outside)
    modify = b"--- a/link/secret.c\n+++ b/link/secret.c\n@@ -1 +1 @@\n-secret\n+owned\n"
    create = b"--- /dev/null\n+++ b/link/new.c\n@@ -0,0 +1 @@\n+owned\n"
    series = Series(
        "s", (parse_patch(modify, name="0001.patch"), parse_patch(create, name="0002.patch"))
    )
    report = check_series(series, DirTree(root))
    assert report.patches[0].klass is HunkClass.MISSING_FILE  # not read through the link
    f = report.patches[1].files[0]
    assert f.klass is HunkClass.CONFLICT and "symbolic link" in f.note
    assert report.status is Status.FAIL
    write_changes(root, report.changes, report.modes)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.c"]
    assert (outside / "secret.c").read_bytes() == b"secret\n"


def test_a_patch_made_symlink_is_not_followed_later(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "tree"
    root.mkdir()
    (root / "keep.c").write_bytes(b"x\n")
    link = (
        b"diff --git a/esc b/esc\nnew file mode 120000\n--- /dev/null\n+++ b/esc\n"
        b"@@ -0,0 +1 @@\n+" + str(outside).encode() + b"\n\\ No newline at end of file\n"
    )
    through = b"--- /dev/null\n+++ b/esc/new.c\n@@ -0,0 +1 @@\n+owned\n"
    series = Series("s", (parse_patch(link, name="0001"), parse_patch(through, name="0002")))
    report = check_series(series, DirTree(root))
    assert report.patches[0].klass is HunkClass.CLEAN
    assert report.patches[1].klass is HunkClass.CONFLICT
    write_changes(root, report.changes, report.modes)
    assert (root / "esc").is_symlink()
    assert list(outside.iterdir()) == []
    # and the writer refuses to go through a link even when asked directly
    with pytest.raises(UserError, match="not a directory"):
        write_changes(root, {"esc/x.c": b"owned\n"}, {})
    assert list(outside.iterdir()) == []
    # nor does it write through an existing symlinked file: the link is replaced
    (root / "file-link").symlink_to(outside / "target")
    write_changes(root, {"file-link": b"data\n"}, {})
    assert not (outside / "target").exists() and (root / "file-link").read_bytes() == b"data\n"


def test_empty_series_is_a_recorded_pass(tmp_path: Path) -> None:
    q = _quilt(tmp_path / "q", "# nothing yet\n\n", {})
    series = load_series(_spec(q, "quilt"))
    assert series.patches == ()
    report = check_series(series, DirTree(tmp_path))
    assert report.status is Status.PASS and report.summary == "empty series: nothing to apply"


def test_series_naming_a_missing_file(tmp_path: Path) -> None:
    q = _quilt(tmp_path / "q", "a.patch\n# comment\nmissing.patch -p1\n", {"a.patch": b""})
    with pytest.raises(UserError) as exc:
        load_series(_spec(q, "quilt"))
    assert "series: entry 2: patch file not found: missing.patch" in str(exc.value)


def test_series_entry_climbing_out(tmp_path: Path) -> None:
    (tmp_path / "outside.patch").write_bytes(b"")
    q = _quilt(tmp_path / "q", "../outside.patch\n", {})
    with pytest.raises(UserError, match="escapes"):
        load_series(_spec(q, "quilt"))


_BIG = """
import resource, sys
from pathlib import Path
from tracker.apply.check import check_series
from tracker.patchsets.formats import load_series
from tracker.patchsets.manifest import VersionSpec
from tracker.proc import run
from tracker.sources.tree import DirTree
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
spec = VersionSpec(version="1", base="6.1", format="diff", source=Path(sys.argv[1]), strip=1,
                   fuzz=0, kconfig=None, tests=None)
report = check_series(load_series(spec), DirTree(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(report.status.value, len(report.changes), before * 1024, after * 1024)
"""


def test_fifty_megabyte_patch_in_bounded_memory(tmp_path: Path) -> None:
    """A 50 MB patch (a new subsystem: 400 new files of 128 KiB) parses and checks in memory
    proportional to its size: the parsed patch plus the resulting files, not a multiple of it."""
    line = b"+line %07d of a generated driver, padding to sixty-four bytes.\n"
    body = b"".join(line % i for i in range(2048))
    chunk_header = b"--- /dev/null\n+++ b/drivers/big/f%03d.c\n@@ -0,0 +1,2048 @@\n"
    path = tmp_path / "big.patch"
    with path.open("wb") as fh:
        for i in range(400):
            fh.write(chunk_header % i)
            fh.write(body)
    size = path.stat().st_size
    assert size > 50_000_000
    root = tmp_path / "tree"
    root.mkdir()
    res = run([sys.executable, "-c", _BIG, str(path), str(root)], cwd=tmp_path, timeout=600)
    assert res.ok, res.stderr
    status, changed, before, after = res.stdout.split()
    assert (status, changed) == ("pass", "400")
    grown = int(after) - int(before)
    # the patch text once (parsed) + the new files once (changes) + small change
    assert grown < 3 * size, f"grew {grown / 1e6:.0f} MB for a {size / 1e6:.0f} MB patch"


def test_garbage_is_not_a_patch_and_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "noise.patch"
    f.write_bytes(os.urandom(4096).replace(b"\n@@", b"\n@!").replace(b"\n---", b"\n-!-"))
    series = load_series(_spec(f))
    report = check_series(series, DirTree(tmp_path))
    assert report.status is Status.WARN and "appears to be empty" in report.patches[0].note


def test_patching_a_symlink_that_points_out_is_refused(tmp_path: Path) -> None:
    """GNU patch: "File link.txt is not a regular file -- refusing to patch"; so do we."""
    import shutil as _shutil

    from tracker.apply.gnu import disagreements, parse_output, patch_argv

    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret\n")
    root = tmp_path / "tree"
    root.mkdir()
    (root / "link.txt").symlink_to(outside)
    data = b"--- a/link.txt\n+++ b/link.txt\n@@ -1 +1 @@\n-secret\n+owned\n"
    patch = parse_patch(data, name="0001.patch")
    report = check_series(Series("s", (patch,)), DirTree(root))
    (f,) = report.patches[0].files
    assert f.klass is HunkClass.CONFLICT and "symbolic link" in f.note
    write_changes(root, report.changes, report.modes)
    assert outside.read_bytes() == b"secret\n"
    if _shutil.which("patch"):
        pf = tmp_path / "p.diff"
        pf.write_bytes(data)
        out = run(patch_argv(pf), cwd=root, timeout=30)
        assert disagreements(patch, report.patches[0], parse_output(out.stdout)) == []
