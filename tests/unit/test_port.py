"""``ktrack port`` on synthetic releases: each step (engine, merge, rename, human), dropped
patches, the output folder and the rerun that keeps the maintainer's fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from port_history import (
    Setup,
    after,
    base_files,
    c_file,
    diff,
    edit,
    git_store,
    patchset,
    tarball_store,
)

from tracker.apply.check import check_series
from tracker.cli import main
from tracker.patchsets.formats import load_series
from tracker.patchsets.manifest import load_manifest
from tracker.sources.store import ReleaseStore

CTX = "kernel/ctx.c"
PROC = "fs/proc/base.c"


def _patch_ctx(fn: str = "ctx_fn_5") -> str:
    """Adds a check after ``fn``'s second line."""
    base = base_files()[CTX]
    return diff(CTX, base, after(base, f"\tint {fn}_a = {len(fn)};\n", ["\tvx_check(p);\n"]))


def _run(
    setup: Setup, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    rc = main(setup.argv("--json", *extra))
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def _hunks(doc: dict[str, Any], patch: int = 0) -> list[dict[str, Any]]:
    return [h for f in doc["patches"][patch]["files"] for h in f["hunks"]]


def _target(**changes: list[str]) -> dict[str, list[str]]:
    files = base_files()
    files.update(changes)
    return files


def test_offset_beyond_the_fuzz_window_is_applied_and_refreshed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """40 new lines above the hunk: the engine places it (offset 40); the refreshed patch
    carries the new line numbers and applies to the target at offset 0."""
    setup = patchset(
        tmp_path, {"0001-ctx.patch": _patch_ctx()}, header="From: a@b\nSubject: ctx\n\n"
    )
    moved = c_file(CTX, [f"new_fn_{i}" for i in range(5)] + [f"ctx_fn_{i}" for i in range(8)])
    store = tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: moved})})
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["status"] == "ported" and doc["history"] is False
    assert _hunks(doc) == [{"index": 1, "action": "offset", "offset": 40, "fuzz": 0, "line": 84}]
    text = (setup.out / "0001-ctx.patch").read_text()
    assert text.startswith("From: a@b\nSubject: ctx\n\n--- a/kernel/ctx.c\n+++ b/kernel/ctx.c\n")
    assert "@@ -84,6 +84,7 @@ int ctx_fn_4(struct task_struct *p)\n" in text
    spec = load_manifest(setup.out / "patchset.toml").version("0.1+port1")
    assert (spec.base, spec.format, spec.fuzz) == ("6.2", "quilt", 0)
    assert spec.kconfig is not None and spec.kconfig.read_text() == "CONFIG_DEMO=y\n"
    with store.tree("6.2") as tree:
        report = check_series(load_series(spec), tree)
    assert [p.klass.value for p in report.patches] == ["clean"]


def test_upstream_edit_next_to_the_hunk_is_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream rewrote a context line of the hunk (one line between): fuzz 0 refuses it, the
    three-way merge takes it, and the result holds both changes."""
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    base = base_files()[CTX]
    ours = edit(base, '\tpr_info("ctx_fn_5\\n");\n', ['\tpr_debug("ctx_fn_5\\n");\n'])
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["status"] == "merged"
    assert _hunks(doc) == [{"index": 1, "action": "merged"}]
    text = (setup.out / "0001-ctx.patch").read_text()
    assert "+\tvx_check(p);\n" in text and ' \tpr_debug("ctx_fn_5\\n");\n' in text
    assert not (setup.out / "conflicts" / "0001-ctx.patch.txt").exists()


def test_renamed_file_is_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream moved kernel/ctx.c to kernel/vx/ctx.c (and edited it): the port follows it."""
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    files = base_files()
    ours = edit(files.pop(CTX), "/* kernel/ctx.c */\n", ["/* moved */\n"])
    files["kernel/vx/ctx.c"] = ours
    tarball_store(setup.home, {"6.1": base_files(), "6.2": files})
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["status"] == "ported"
    (f,) = doc["patches"][0]["files"]
    assert (f["path"], f["followed_from"]) == ("kernel/vx/ctx.c", CTX)
    assert f["hunks"][0]["action"] == "clean"
    text = (setup.out / "0001-ctx.patch").read_text()
    assert "--- a/kernel/vx/ctx.c\n+++ b/kernel/vx/ctx.c\n" in text


def test_function_moved_to_another_file_needs_a_human_naming_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    fns = [f"ctx_fn_{i}" for i in range(8)]
    rest = c_file(CTX, [f for f in fns if f != "ctx_fn_5"])
    moved_to = c_file("kernel/ctx_five.c", ["ctx_fn_5"])
    tarball_store(
        setup.home,
        {"6.1": base_files(), "6.2": _target(**{CTX: rest, "kernel/ctx_five.c": moved_to})},
    )
    rc, doc = _run(setup, capsys)
    assert rc == 1 and doc["status"] == "needs-human"
    (h,) = _hunks(doc)
    assert h["action"] == "needs-human"
    assert h["conflict"]["moved_to"] == ["kernel/ctx_five.c"]
    assert "+\tvx_check(p);" not in h["conflict"]["diff3"]  # diff3 shows sides, not a diff
    assert "\tvx_check(p);\n" in h["conflict"]["diff3"]
    assert h["conflict"]["upstream"]["kind"] == "release-diff"
    assert "-int ctx_fn_5(struct task_struct *p)\n" in h["conflict"]["upstream"]["diff"]
    conflicts = (setup.out / "conflicts" / "0001-ctx.patch.txt").read_text()
    assert "its lines are now in: kernel/ctx_five.c" in conflicts


def test_patch_already_upstream_is_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = base_files()[CTX]
    taken = after(base, "\tint ctx_fn_5_a = 8;\n", ["\tvx_check(p);\n"])
    proc_patch = diff(
        PROC,
        base_files()[PROC],
        edit(base_files()[PROC], "\tint proc_fn_1_b = p->pid;\n", ["\tint proc_fn_1_b = 1;\n"]),
    )
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx(), "0002-proc.patch": proc_patch})
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: taken})})
    rc, doc = _run(setup, capsys)
    assert rc == 0
    assert [(p["name"], p["status"]) for p in doc["patches"]] == [
        ("0001-ctx.patch", "dropped"),
        ("0002-proc.patch", "ported"),
    ]
    assert doc["patches"][0]["note"] == "already in the target: upstream took it"
    assert (setup.out / "series").read_text() == "0002-proc.patch\n"
    assert not (setup.out / "0001-ctx.patch").exists()


def _conflicting(tmp_path: Path) -> tuple[Setup, list[str]]:
    """The patch rewrites a line upstream rewrote differently."""
    base = base_files()[CTX]
    line = "\tint ctx_fn_5_b = p->pid;\n"
    patch = diff(CTX, base, edit(base, line, ["\tint ctx_fn_5_b = vx_pid(p);\n"]))
    setup = patchset(tmp_path, {"0001-ctx.patch": patch})
    return setup, edit(base, line, ["\tint ctx_fn_5_b = task_pid_nr(p);\n"])


def test_true_conflict_needs_a_human_with_diff3_and_the_release_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, ours = _conflicting(tmp_path)
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 1
    (h,) = _hunks(doc)
    c = h["conflict"]
    assert c["diff3"] == (
        "<<<<<<< target 6.2:kernel/ctx.c\n\tint ctx_fn_5_b = task_pid_nr(p);\n"
        "||||||| base 6.1:kernel/ctx.c\n\tint ctx_fn_5_b = p->pid;\n"
        "=======\n\tint ctx_fn_5_b = vx_pid(p);\n"
        ">>>>>>> 0001-ctx.patch\n"
    )
    assert (
        "-\tint ctx_fn_5_b = p->pid;\n+\tint ctx_fn_5_b = task_pid_nr(p);\n"
        in c["upstream"]["diff"]
    )
    assert "moved_to" not in c
    # the patch stays in the series without its conflicting hunk: nothing left to write
    assert (setup.out / "series").read_text() == "0001-ctx.patch\n"
    assert "task_pid_nr" in (setup.out / "conflicts" / "0001-ctx.patch.txt").read_text()


def test_true_conflict_names_the_upstream_commit_when_the_store_has_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, ours = _conflicting(tmp_path)
    unrelated = _target(**{PROC: [*base_files()[PROC], "/* tail */\n"]})
    git_store(
        setup.home,
        base_files(),
        [("proc: a tail", unrelated), ("ctx: use task_pid_nr()", {**unrelated, CTX: ours})],
        "6.2",
    )
    rc, doc = _run(setup, capsys)
    assert rc == 1 and doc["history"] is True
    (h,) = _hunks(doc)
    commits = h["conflict"]["upstream"]["commits"]
    assert [c["subject"] for c in commits] == ["ctx: use task_pid_nr()"]
    store = ReleaseStore(setup.home / "store.git")
    assert store.resolve(commits[0]["commit"]) == store.resolve("v6.2")


def test_rerun_keeps_the_maintainers_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup, ours = _conflicting(tmp_path)
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    assert _run(setup, capsys)[0] == 1
    fixed = diff(
        CTX,
        ours,
        edit(ours, "\tint ctx_fn_5_b = task_pid_nr(p);\n", ["\tint ctx_fn_5_b = vx_pid(p);\n"]),
    )
    mine = setup.out / "0001-ctx.patch"
    mine.write_text("my fix\n\n" + fixed)
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["patches"][0]["status"] == "kept"
    assert mine.read_text() == "my fix\n\n" + fixed
    assert not (setup.out / "conflicts" / "0001-ctx.patch.txt").exists()
    # a third run still knows the file is the maintainer's
    assert _run(setup, capsys)[0] == 0 and mine.read_text() == "my fix\n\n" + fixed


def test_insertions_at_one_place_merge_upstream_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both sides add an include after the same line: git calls it a conflict; the port puts
    upstream's line first, then the patch's, and says so (``resolution: union``)."""
    base = base_files()[CTX]
    anchor = "#include <linux/kernel.h>\n"
    setup = patchset(
        tmp_path,
        {"0001-inc.patch": diff(CTX, base, after(base, anchor, ["#include <linux/vx.h>\n"]))},
    )
    ours = after(base, anchor, ["#include <linux/ksm.h>\n", "#include <linux/lsm.h>\n"])
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["status"] == "merged"
    assert _hunks(doc) == [{"index": 1, "action": "merged", "resolution": "union"}]
    assert main(setup.argv()) == 0
    assert "1 merged; review: 1 by union" in capsys.readouterr().out
    text = (setup.out / "0001-inc.patch").read_text()
    assert " #include <linux/ksm.h>\n #include <linux/lsm.h>\n+#include <linux/vx.h>\n" in text


def test_an_inserted_number_that_upstream_took_needs_a_human(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The patch adds PR_SET_VX 3 where upstream added PR_SET_NEW 3: a union would compile
    into a duplicate case or a broken ABI, so the hunk waits for a human, who is told why."""
    head = "include/uapi/linux/prctl.h"
    base = [
        "#ifndef _PRCTL_H\n",
        "#define _PRCTL_H\n",
        "#define PR_SET_A 1\n",
        "#define PR_SET_B 2\n",
        "\n",
        "#endif\n",
    ]
    setup = patchset(
        tmp_path, {"0001-pr.patch": diff(head, base, after(base, "\n", ["#define PR_SET_VX 3\n"]))}
    )
    ours = after(base, "\n", ["#define PR_SET_NEW 3\n"])
    tarball_store(setup.home, {"6.1": {**base_files(), head: base}, "6.2": _target(**{head: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 1
    (h,) = _hunks(doc)
    assert h["action"] == "needs-human"
    assert h["conflict"]["note"] == "PR_SET_VX = 3 is taken by PR_SET_NEW in the target"
    conflicts = (setup.out / "conflicts" / "0001-pr.patch.txt").read_text()
    assert "-- not merged: PR_SET_VX = 3 is taken by PR_SET_NEW in the target\n" in conflicts
    assert main(setup.argv()) == 1
    assert "not merged: PR_SET_VX = 3 is taken by PR_SET_NEW" in capsys.readouterr().out


def test_the_base_release_is_the_newest_of_the_series_in_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """6.1 and 6.1.5 in the store: a version written for "6.1" is ported from 6.1.5; --from
    names another. Either way the edit next to the hunk merges."""
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    base = base_files()[CTX]
    later = edit(base, '\tpr_info("ctx_fn_5\\n");\n', ['\tpr_debug("ctx_fn_5\\n");\n'])
    tarball_store(
        setup.home,
        {"6.1": base_files(), "6.1.5": _target(**{CTX: later}), "6.2": _target(**{CTX: later})},
    )
    rc, doc = _run(setup, capsys)
    assert rc == 0 and doc["base_release"] == "6.1.5" and _hunks(doc)[0]["action"] == "merged"
    rc, doc = _run(setup, capsys, "--from", "6.1")
    assert rc == 0 and doc["base_release"] == "6.1" and _hunks(doc)[0]["action"] == "merged"


def test_no_release_of_the_base_series_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    tarball_store(setup.home, {"6.2": base_files()})
    assert main(setup.argv()) == 2
    assert "no release of the 6.1 series (the base of 0.1) in the store or catalog" in (
        capsys.readouterr().err
    )


def test_lines_added_after_a_line_upstream_rewrote_a_little_are_appended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The patch annotates a signature upstream then extended by a parameter (PREEMPT_RT's
    sparse annotations on 6.12.107): the annotation follows the new signature (``append``)."""
    base = base_files()[CTX]
    sig = "int ctx_fn_5(struct task_struct *p)\n"
    annotated = after(base, sig, ["\t__releases(&p->lock)\n"])
    setup = patchset(tmp_path, {"0001-ann.patch": diff(CTX, base, annotated)})
    ours = edit(
        base, sig, ["int ctx_fn_5(struct task_struct *p,\n", "\t\t struct wake_q_head *q)\n"]
    )
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 0 and _hunks(doc) == [{"index": 1, "action": "merged", "resolution": "append"}]
    text = (setup.out / "0001-ann.patch").read_text()
    assert " \t\t struct wake_q_head *q)\n+\t__releases(&p->lock)\n {\n" in text


def test_a_block_upstream_rewrote_wholesale_is_not_appended_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = base_files()[CTX]
    sig = "int ctx_fn_5(struct task_struct *p)\n"
    setup = patchset(tmp_path, {"0001-ann.patch": diff(CTX, base, after(base, sig, ["\t__x\n"]))})
    ours = edit(base, sig, ["static long totally_other(void *q, unsigned flags)\n"])
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 1 and _hunks(doc)[0]["action"] == "needs-human"


def test_a_file_the_patch_creates_and_upstream_created_too_needs_a_human(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = "kernel/vx.c"
    created = diff(new, [], ["int vx;\n"]).replace(f"--- a/{new}", "--- /dev/null")
    setup = patchset(tmp_path, {"0001-new.patch": created})
    tarball_store(
        setup.home, {"6.1": base_files(), "6.2": _target(**{new: ["int upstream_vx;\n"]})}
    )
    rc, doc = _run(setup, capsys)
    assert rc == 1
    (f,) = doc["patches"][0]["files"]
    assert f["note"] == "the patch creates a file the tree already has"
    assert [h["action"] for h in f["hunks"]] == ["needs-human"]
    assert "upstream_vx" not in (setup.out / "0001-new.patch").read_text()


def test_insertions_sharing_a_line_are_not_pasted_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream took the patch's first include and added another: a union would include it twice."""
    base = base_files()[CTX]
    anchor = "#include <linux/kernel.h>\n"
    patch = diff(
        CTX, base, after(base, anchor, ["#include <linux/vx.h>\n", "#include <linux/vy.h>\n"])
    )
    setup = patchset(tmp_path, {"0001-inc.patch": patch})
    ours = after(base, anchor, ["#include <linux/vx.h>\n", "#include <linux/ksm.h>\n"])
    tarball_store(setup.home, {"6.1": base_files(), "6.2": _target(**{CTX: ours})})
    rc, doc = _run(setup, capsys)
    assert rc == 1 and _hunks(doc)[0]["action"] == "needs-human"


def test_a_moved_function_names_the_commit_that_moved_it_when_the_store_has_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = patchset(tmp_path, {"0001-ctx.patch": _patch_ctx()})
    fns = [f"ctx_fn_{i}" for i in range(8)]
    moved = _target(
        **{
            CTX: c_file(CTX, [f for f in fns if f != "ctx_fn_5"]),
            "kernel/ctx_five.c": c_file("kernel/ctx_five.c", ["ctx_fn_5"]),
        }
    )
    tail = {**moved, PROC: [*base_files()[PROC], "/* tail */\n"]}
    git_store(
        setup.home,
        base_files(),
        [("ctx: move ctx_fn_5() to its own file", moved), ("proc: a tail", tail)],
        "6.2",
    )
    rc, doc = _run(setup, capsys)
    assert rc == 1
    (h,) = _hunks(doc)
    assert h["conflict"]["moved_to"] == ["kernel/ctx_five.c"]
    subjects = [c["subject"] for c in h["conflict"]["upstream"]["commits"]]
    assert subjects == ["ctx: move ctx_fn_5() to its own file"]
