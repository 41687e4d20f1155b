"""``ktrack port``: the golden ``ktrack.port/1`` JSON, the exact git and diff command lines, the
diff3 parser, the terminal view of hostile names, and the exit codes of bad input and broken tools.

Regenerate the golden file with ``KTRACK_REGEN_GOLDEN=1 pytest tests/unit/test_port_output.py``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from port_history import Setup, after, base_files, c_file, diff, edit, patchset, tarball_store
from rich.console import Console

from tracker.cli import main
from tracker.errors import InfraError
from tracker.port import merge as merging
from tracker.port.model import (
    Conflict,
    FilePort,
    HunkAction,
    HunkPort,
    PatchPort,
    PortReport,
    PortStatus,
    Upstream,
)
from tracker.port.output import diff_argv, split_header
from tracker.port.rename import grep_argv, parse_renames, renames_argv
from tracker.port.render import print_port
from tracker.port.resolve import number_clash, resolve
from tracker.port.upstream import is_ancestor_argv, log_lines_argv, log_pickaxe_argv

GOLDEN = Path(__file__).parent.parent / "fixtures" / "port" / "four-patches.json"
CTX = "kernel/ctx.c"


def _four(tmp_path: Path) -> Setup:
    """Four patches on one file: moved (offset), next to an upstream edit (merged), already
    upstream (dropped), and against a rewritten line (needs-human)."""
    base = base_files()[CTX]

    def add_after(fn: str) -> list[str]:
        return after(base, f"\tint {fn}_a = {len(fn)};\n", [f"\tvx_check_{fn[-1]}(p);\n"])

    line6 = "\tint ctx_fn_6_b = p->pid;\n"
    patches = {
        "0001-offset.patch": diff(CTX, base, add_after("ctx_fn_1")),
        "0002-merged.patch": diff(CTX, base, add_after("ctx_fn_3")),
        "0003-dropped.patch": diff(CTX, base, add_after("ctx_fn_5")),
        "0004-conflict.patch": diff(CTX, base, edit(base, line6, ["\tint ctx_fn_6_b = vx(p);\n"])),
    }
    setup = patchset(tmp_path, patches)
    ours = c_file(CTX, [f"new_fn_{i}" for i in range(2)] + [f"ctx_fn_{i}" for i in range(8)])
    ours = edit(ours, '\tpr_info("ctx_fn_3\\n");\n', ['\tpr_debug("ctx_fn_3\\n");\n'])
    ours = after(ours, "\tint ctx_fn_5_a = 8;\n", ["\tvx_check_5(p);\n"])
    ours = edit(ours, line6, ["\tint ctx_fn_6_b = task_pid_nr(p);\n"])
    tarball_store(setup.home, {"6.1": base_files(), "6.2": {**base_files(), CTX: ours}})
    return setup


def test_port_json_golden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = _four(tmp_path)
    rc = main(setup.argv("--json"))
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    if os.environ.get("KTRACK_REGEN_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(doc, indent=2) + "\n")
    assert doc == json.loads(GOLDEN.read_text())
    state = json.loads((setup.out / "port.json").read_text())
    assert {k: v for k, v in state.items() if k != "written"} == doc
    assert sorted(state["written"]) == [
        "0001-offset.patch",
        "0002-merged.patch",
        "0004-conflict.patch",
    ]


def test_port_terminal_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup = _four(tmp_path)
    assert main(setup.argv()) == 1
    out = capsys.readouterr().out
    assert "NEEDS-HUMAN" in out and "ported to 6.2 as 0.1+port1" in out
    for name, status in [("0001", "ported"), ("0002", "merged"), ("0003", "dropped")]:
        line = next(ln for ln in out.splitlines() if name in ln)
        assert status in line
    assert "<<<<<<< target 6.2:kernel/ctx.c" in out and "the release diff of this region:" in out


def test_hostile_names_and_code_reach_the_terminal_escaped() -> None:
    conflict = Conflict(
        "<<<<<<< x\n\x1b]0;pwned\x07\n=======\n",
        Upstream("commits", (("a" * 40, "evil \x1b[2J subject"),)),
        moved_to=("dir/\x1b[31mred.c",),
    )
    hunk = HunkPort(1, HunkAction.NEEDS_HUMAN, conflict=conflict)
    patch = PatchPort(
        "0001-\x1b[8mhidden.patch", PortStatus.NEEDS_HUMAN, (FilePort("f\u202e.c", (hunk,)),)
    )
    report = PortReport("demo", "0.1", "0.1+port1", "6.1", "6.2", 0, True, (patch,))
    buf = io.StringIO()
    print_port(Console(file=buf, force_terminal=False, width=200), report, None)
    text = buf.getvalue()
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "0001-\\x1b[8mhidden.patch" in text and "\\x1b]0;pwned\\x07" in text
    assert "evil \\x1b[2J subject" in text and "f\\u202e.c" in text


def test_command_lines_are_exact(tmp_path: Path) -> None:
    g, o, b, t = tmp_path / "s.git", tmp_path / "o", tmp_path / "b", tmp_path / "t"
    assert merging.merge_file_argv(o, b, t, ("ours", "base", "theirs")) == [
        "git", "merge-file", "--diff3", "-q", "--marker-size=7",
        "-L", "ours", "-L", "base", "-L", "theirs", str(o), str(b), str(t),
    ]  # fmt: skip
    assert renames_argv(g, "b1", "t1") == [
        "git", f"--git-dir={g}", "diff", "-M", "-l20000", "--name-status", "--diff-filter=R",
        "-z", "b1", "t1",
    ]  # fmt: skip
    assert grep_argv(g, "t1", "-e x") == [
        "git", f"--git-dir={g}", "grep", "-F", "-l", "-z", "-e", "-e x", "t1", "--",
    ]  # fmt: skip
    assert is_ancestor_argv(g, "b1", "t1") == [
        "git", f"--git-dir={g}", "merge-base", "--is-ancestor", "b1", "t1",
    ]  # fmt: skip
    assert log_lines_argv(g, "b1", "t1", "fs/a.c", 10, 12) == [
        "git", f"--git-dir={g}", "log", "--no-patch", "--format=%H%x09%s", "-n5",
        "-L10,12:fs/a.c", "b1..t1",
    ]  # fmt: skip
    assert log_pickaxe_argv(g, "b1", "t1", "fs/a.c", "-x") == [
        "git", f"--git-dir={g}", "log", "--format=%H%x09%s", "-n5", "-S", "-x", "b1..t1",
        "--", "fs/a.c",
    ]  # fmt: skip
    assert diff_argv(o, b, "a/x", "b/x") == [
        "diff", "-up", "--label", "a/x", "--label", "b/x", str(o), str(b),
    ]  # fmt: skip


def test_diff3_regions_and_renames_are_parsed() -> None:
    out = (
        b"a\n<<<<<<< ours\n1\n2\n||||||| base\n0\n=======\n3\n>>>>>>> theirs\nb\n"
        b"<<<<<<< ours\n||||||| base\nx\n=======\n>>>>>>> theirs\n"
        b"<<<<<<<< not a marker of ours\n"
    )
    assert merging.parse_regions(out) == (
        merging.Region((b"1\n", b"2\n"), (b"0\n",), (b"3\n",)),
        merging.Region((), (b"x\n",), ()),
    )
    assert parse_renames("R100\0a.c\0b/a.c\0R087\0c.c\0d.c\0") == {"a.c": "b/a.c", "c.c": "d.c"}


def test_split_header_keeps_the_mail_and_cuts_the_diffstat() -> None:
    mail = (
        b"From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\nWhy.\n---\n a.c | 1 +\n\n"
        b"diff --git a/a.c b/a.c\n--- a/a.c\n+++ b/a.c\n"
    )
    assert (
        split_header(mail) == b"From 1 Mon Sep 17 00:00:00 2001\nSubject: [PATCH] x\n\nWhy.\n---\n"
    )
    assert split_header(b"Plain text\n--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n") == b"Plain text\n"


def test_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = base_files()[CTX]
    setup = patchset(tmp_path, {"a.patch": diff(CTX, base, base[1:])})
    tarball_store(setup.home, {"6.1": base_files()})
    argv = setup.argv()
    assert main([*argv[:4], "port", "demo", "--to", "6.2"]) == 2
    assert "name the version to port" in capsys.readouterr().err
    assert main(setup.argv(to="6.9")) == 2  # neither in the store nor in the catalog
    assert "6.9 is not in the catalog" in capsys.readouterr().err
    assert main(setup.argv(to="6.1")) == 2
    assert "the base release and the target are both 6.1" in capsys.readouterr().err
    assert main(setup.argv(to="six")) == 2
    capsys.readouterr()
    source = tmp_path / "patches" / "demo" / "0.1"
    argv = setup.argv()
    argv[argv.index("--out") + 1] = str(source)
    assert main(argv) == 2 and (source / "a.patch").read_text().startswith("--- a/kernel/ctx.c")
    assert "the folder is not empty and holds no port.json" in capsys.readouterr().err


def test_a_missing_git_is_an_infrastructure_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InfraError, match="required tool not found: git"):
        merging.merge(b"a\n", b"b\n", b"c\n", ("o", "b", "t"))


def test_union_resolves_only_insertions_without_a_number_clash() -> None:
    out = (
        b"a\n<<<<<<< t\nup\n||||||| b\n=======\nmine\n>>>>>>> p\n"
        b"c\n<<<<<<< t\nx2\n||||||| b\nx\n=======\nx3\n>>>>>>> p\n"
        b"<<<<<<< t\n#define PR_N 7\n||||||| b\n=======\n#define PR_M 7\n>>>>>>> p\nz\n"
    )
    result, used = resolve(
        merging.MergeResult(out, merging.parse_regions(out)), b"#define PR_N 7\n"
    )
    assert used == ("union",)
    assert result.output.startswith(b"a\nup\nmine\nc\n<<<<<<< t\nx2\n")
    assert result.regions == (
        merging.Region((b"x2\n",), (b"x\n",), (b"x3\n",)),
        merging.Region((b"#define PR_N 7\n",), (), (b"#define PR_M 7\n",)),
    )
    assert number_clash((b"#define PR_M 0x7\n",), b"#define PR_N 7\n") == (
        "PR_M = 7 is taken by PR_N in the target"
    )
    assert number_clash((b"#define XY_M 7\n",), b"#define PR_N 7\n") == ""


def test_a_path_with_a_line_break_never_reaches_a_marker_or_a_header(tmp_path: Path) -> None:
    from tracker.errors import UserError
    from tracker.port.fileport import Releases
    from tracker.port.output import refreshed
    from tracker.port.series import PortedPatch

    rel = Releases(tmp_path, "6.1", "6.2", "b", "t", history=False, fuzz=0)
    labels = rel.labels("a\n>>>>>>> x.c", "a.c", "p\n=======")
    assert all("\n" not in label for label in labels)
    pp = PortedPatch(PatchPort("p", PortStatus.PORTED), None)  # type: ignore[arg-type]
    pp.before["x\n+++ b/evil"] = b"a\n"
    pp.after["x\n+++ b/evil"] = b"b\n"
    with pytest.raises(UserError, match="diff -u names a file on one line"):
        refreshed(pp, b"")


def test_no_git_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = _four(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(setup.argv()) == 3
    assert "infrastructure error: required tool not found: git" in capsys.readouterr().err
