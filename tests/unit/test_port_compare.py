"""``tracker.port.compare``: a proposal against a maintainer's port, patch by patch."""

from __future__ import annotations

from pathlib import Path

from tracker.port.compare import compare
from tracker.sources.tree import DirTree


def _quilt(folder: Path, patches: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "series").write_text("".join(f"{n}\n" for n in patches))
    for name, text in patches.items():
        (folder / name).write_text(text)
    return folder


def test_verdicts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_text("a\n{\n}\nb\n{\n}\nc\n")
    same = "--- a/f.c\n+++ b/f.c\n@@ -1,2 +1,3 @@\n a\n+x\n {\n"
    moved_numbers = "Header.\n--- a/f.c\n+++ b/f.c\n@@ -9,2 +9,3 @@\n a\n+x  \n {\n"
    # the same result, aligned differently: '{' kept before or after the added block
    left = "--- a/f.c\n+++ b/f.c\n@@ -3,4 +3,7 @@\n }\n+b\n+{\n+}\n b\n {\n }\n"
    right = "--- a/f.c\n+++ b/f.c\n@@ -3,4 +3,7 @@\n }\n b\n+{\n+}\n+b\n {\n }\n"
    other = "--- a/f.c\n+++ b/f.c\n@@ -7 +7 @@\n-c\n+d\n"
    mine = _quilt(
        tmp_path / "mine",
        {
            "0001-same.patch": same,
            "0002-Renumbered_patch.patch": moved_numbers,
            "0003-align.patch": left,
            "x.patch": other,
        },
    )
    theirs = _quilt(
        tmp_path / "theirs",
        {
            "0001-same.patch": same,
            "0007-renumbered-patch.patch": same,
            "0003-align.patch": right,
            "x.patch": other.replace("+d", "+e"),
            "new.patch": other,
        },
    )
    assert compare(mine, theirs) == {
        "0001-same.patch": "equal",
        "0007-renumbered-patch.patch": "equal",  # numbers, white space and headers aside
        "0003-align.patch": "different",
        "x.patch": "different",
        "new.patch": "missing",
    }
    with_tree = compare(mine, theirs, DirTree(tree))
    assert with_tree["0003-align.patch"] == "same-result" and with_tree["x.patch"] == "different"
