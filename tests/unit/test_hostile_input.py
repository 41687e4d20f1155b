"""Hostile input, issue 15 items 7-12 and 20: each case is one test that failed before its fix.

The names are listed in docs/SECURITY.md ("Hostile input: reports, patches and names").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_report import make_db, populate_sample

from tracker.apply.check import check_series
from tracker.cli import main as cli_main
from tracker.errors import UserError
from tracker.patchsets.diff import Series
from tracker.patchsets.formats import load_series
from tracker.patchsets.manifest import VersionSpec
from tracker.proc import run
from tracker.sources.tree import DirTree
from tracker.vocab import HunkClass, Status


@pytest.fixture
def sample_db(tmp_path: Path) -> str:
    db = make_db(tmp_path)
    with db.session() as s:
        populate_sample(s)
    return db.url


# --- 7: report --out never deletes what it did not write ------------------------------------


def test_report_out_refuses_a_folder_it_did_not_make(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "site"
    (out / "c").mkdir(parents=True)
    notes = out / "c" / "notes.html"
    notes.write_text("my notes")
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 2
    assert notes.read_text() == "my notes"
    assert sorted(p.name for p in out.rglob("*")) == ["c", "notes.html"]


def test_report_out_removes_only_its_own_stale_files(sample_db: str, tmp_path: Path) -> None:
    out = tmp_path / "site"
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 0
    pages = sorted(p.name for p in (out / "c").glob("*.html"))
    notes = out / "c" / "notes.html"
    notes.write_text("my notes")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    # a manifest edited to point out of the folder, at a folder, at a link: none is removed
    manifest = out / ".ktrack-report.json"
    doc = json.loads(manifest.read_text())
    (out / "link").symlink_to(outside)
    doc["files"].update(dict.fromkeys(["../outside.txt", "c", "link", "/etc/hostname"], "html"))
    manifest.write_text(json.dumps(doc))
    assert cli_main(["--db", sample_db, "report", "--out", str(out), "--patchset", "beta"]) == 0
    assert notes.read_text() == "my notes" and outside.read_text() == "keep"
    assert (out / "link").is_symlink()
    left = sorted(p.name for p in (out / "c").glob("*.html"))
    assert "notes.html" in left and len(left) < len(pages) + 1  # alpha's cells are gone
    assert cli_main(["--db", sample_db, "report", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "c").glob("*.html")) == sorted([*pages, "notes.html"])
    # a report in one format leaves the other formats' files alone
    assert cli_main(["--db", sample_db, "report", "--out", str(out), "--format", "json"]) == 0
    assert len(list((out / "c").glob("*.html"))) == len(pages) + 1
    assert (out / "index.html").is_file() and (out / "report.json").is_file()


# --- 8: a report of nothing that was asked for is bad input ---------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--run", "99999"], "no run 99999"),
        (["--patchset", "nope@1"], "no results for patch set 'nope'"),
        (["--patchset", "alpha@9.9"], "no results for alpha@9.9"),
    ],
)
def test_report_unknown_run_or_patchset_exits_2(
    sample_db: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    out = tmp_path / "site"
    assert cli_main(["--db", sample_db, "report", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert cli_main(["--db", sample_db, "matrix", *flags]) == 2  # the same for the matrix
    assert message in capsys.readouterr().err


# --- 9: a header without a hunk is bad input; a patch without a diff is a warning -----------


def _spec(source: Path, fmt: str = "diff") -> VersionSpec:
    return VersionSpec(
        version="1",
        base="6.1",
        format=fmt,
        source=source,
        strip=1,
        fuzz=0,
        kconfig=None,
        tests=None,
    )


def _gnu_dry_run(tree: Path, patch: Path) -> tuple[int, str]:
    res = run(["patch", "-p1", "--dry-run", "-i", str(patch)], cwd=tree, timeout=30)
    return res.returncode, res.stdout + res.stderr


def test_file_header_without_a_hunk_is_bad_input(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_bytes(b"a\nb\n")
    good = b"--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a\n+A\n"
    cases = {
        "alone.patch": (b"--- a/f.c\n+++ b/f.c\n", 1),
        "two.patch": (b"text\n--- a/g.c\n+++ b/g.c\n--- a/f.c\n+++ b/f.c\n", 2),
    }
    for name, (data, line) in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        with pytest.raises(UserError) as exc:
            load_series(_spec(f))
        assert f"{name}: line {line}: a file header without a hunk" in str(exc.value), name
    # GNU patch skips a stray header between real sections as garbage; so do we
    for name, data in {
        "after.patch": good + b"--- a/g.c\n+++ b/g.c\n",
        "before.patch": (b"--- a/g.c\n+++ b/g.c\n" + good),
    }.items():
        (tmp_path / name).write_bytes(data)
        (patch,) = load_series(_spec(tmp_path / name)).patches
        assert [f.path for f in patch.files] == ["f.c"]
    if shutil.which("patch"):  # the oracle: refuses the first two, applies the others
        for name in cases:
            rc, out = _gnu_dry_run(tree, tmp_path / name)
            assert rc == 2 and "Only garbage was found in the patch input" in out
        for name in ("after.patch", "before.patch"):
            assert _gnu_dry_run(tree, tmp_path / name) == (0, "checking file f.c\n")


def test_git_header_only_sections_stay_legitimate(tmp_path: Path) -> None:
    fixture = Path(__file__).parent.parent / "fixtures" / "patches" / "git-rename-mode-binary.patch"
    files = load_series(_spec(fixture)).patches[0].files
    assert len(files) == 8 and sum(1 for f in files if not f.hunks) == 2  # binary, mode change
    mode = tmp_path / "mode.patch"
    mode.write_bytes(b"diff --git a/f.c b/f.c\nold mode 100644\nnew mode 100755\n")
    (fp,) = load_series(_spec(mode)).patches[0].files
    assert (fp.old_mode, fp.new_mode, fp.hunks) == (0o100644, 0o100755, ())


@pytest.mark.parametrize("data", [b"", b"\n\n", b"Just a message.\n---\nno diff here\n"])
def test_patch_without_a_diff_is_a_warning_not_a_pass(tmp_path: Path, data: bytes) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    f = tmp_path / "text.patch"
    f.write_bytes(data)
    report = check_series(load_series(_spec(f)), DirTree(tree))
    (p,) = report.patches
    assert report.status is Status.WARN and p.empty and p.klass is HunkClass.CLEAN
    assert "appears to be empty" in p.note and "appears to be empty" in report.summary
    assert p.to_json()["empty"] is True


# --- 10: creating a file through a symbolic link with a modify-style header -----------------


def _link_patch(target: str) -> bytes:
    return (
        b"diff --git a/evil b/evil\nnew file mode 120000\n--- /dev/null\n+++ b/evil\n"
        b"@@ -0,0 +1 @@\n+" + target.encode() + b"\n\\ No newline at end of file\n"
    )


_THROUGH = b"--- a/evil/x\n+++ b/evil/x\n@@ -0,0 +1 @@\n+owned\n"


@pytest.mark.parametrize("where", ["made-by-a-patch", "in-the-tree", "in-tree-target"])
def test_create_through_a_symlink_with_a_modify_header_is_a_conflict(
    tmp_path: Path, where: str
) -> None:
    from tracker.apply.materialise import write_changes
    from tracker.patchsets.diff import parse_patch

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "tree"
    (root / "real").mkdir(parents=True)
    (root / "keep.c").write_bytes(b"x\n")
    patches = [parse_patch(_THROUGH, name="0002-through.patch")]
    if where == "made-by-a-patch":
        patches.insert(0, parse_patch(_link_patch(str(outside)), name="0001-link.patch"))
    else:
        (root / "evil").symlink_to(outside if where == "in-the-tree" else root / "real")
    report = check_series(Series("s", tuple(patches)), DirTree(root))
    f = report.patches[-1].files[0]
    assert report.status is Status.FAIL and f.klass is HunkClass.CONFLICT
    assert f.path == "evil/x" and "evil is a symbolic link" in f.note
    assert "evil/x" not in report.changes
    write_changes(root, report.changes, report.modes)  # what configure does: nothing to refuse
    assert list(outside.iterdir()) == [] and list((root / "real").iterdir()) == []
    if where == "in-the-tree" and shutil.which("patch"):  # the oracle refuses it too
        (tmp_path / "through.patch").write_bytes(_THROUGH)
        res = run(["patch", "-p1", "-i", str(tmp_path / "through.patch")], cwd=root, timeout=30)
        assert res.returncode == 1 and "Invalid file name evil/x" in res.stdout + res.stderr
        assert list(outside.iterdir()) == []


# --- a workspace for the commands: a git feed with one release and a quilt patch set ----------

NUMBERS = b"".join(b"%d\n" % i for i in range(1, 31))
HOSTILE = "\x1b]0;pwned\x07[/bold]x[link=https://evil.example]y[/link]\x1b[8m"
LATIN1 = b"caf\xe9.c"  # a name that is not UTF-8


def _git(repo: Path, *args: str) -> None:
    run(["git", "-C", str(repo), *args], cwd=repo, timeout=60, check=True)


def _mod(path: bytes, old: bytes = b"10", new: bytes = b"ten") -> bytes:
    return (
        b"--- a/"
        + path
        + b"\n+++ b/"
        + path
        + b"\n@@ -9,3 +9,3 @@\n 9\n-"
        + old
        + b"\n+"
        + new
        + b"\n 11\n"
    )


def _workspace(root: Path, patches: dict[str, bytes], target: str) -> Path:
    """``ws/``: a git feed (tag v6.1 with f.c and a Latin-1-named file) and patch set ``demo``."""
    repo = root / "linux"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "master")
    (repo / "f.c").write_bytes(NUMBERS)
    (repo / os.fsdecode(LATIN1)).write_bytes(NUMBERS)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "Linux 6.1")
    _git(repo, "tag", "v6.1")
    ws = root / "ws"
    q = ws / "patches" / "demo" / "q"
    q.mkdir(parents=True)
    for name, data in patches.items():
        (q / name).parent.mkdir(parents=True, exist_ok=True)
        (q / name).write_bytes(data)
    (q / "series").write_text("".join(f"{n}\n" for n in patches))
    (ws / "patches" / "demo" / "patchset.toml").write_text(
        f'name = "demo"\nsummary = {json.dumps("summary " + HOSTILE)}\n\n[[versions]]\n'
        'version = "1"\nbase = "6.1"\nformat = "quilt"\nsource = "q"\n\n[track]\n'
        f'kernels = ">=6.1"\ntargets = [{json.dumps(target)}]\n'
    )
    (ws / "ktrack.toml").write_text(
        f'[feeds.local]\nkind = "git"\nurl = "{repo}"\ntags = "v6.*"\n\n'
        '[patchsets]\npaths = ["patches"]\n\n[run]\nbaseline = false\n'
    )
    return ws


def _ktrack(ws: Path, *args: str, home: str = "data") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "COLUMNS": "400", "KTRACK_HOME": str(ws / home)}
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", *args],
        cwd=ws,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )


def _assert_safe(res: subprocess.CompletedProcess[bytes], *visible: str) -> str:
    """No raw escape, no markup eaten, no traceback: every hostile string shown as text."""
    out = res.stdout + res.stderr
    assert b"\x1b" not in out and b"\x07" not in out, out
    text = out.decode("utf-8")
    assert "Traceback" not in text and "internal error" not in text, text
    flat = "".join(text.split())  # tables may fold a long name
    for v in visible:
        assert "".join(v.split()) in flat, (v, text)
    return text


PNAME = "\x1b]0;pwned\x07[/bold]x[link=evil.example]y[/link]\x1b[8m.patch"
HOSTILE_PATH = "[/bold]\x1b[8mz.c"
HOSTILE_TARGET = "x86_64:[link=evil.example]cfg\x1b[8m"


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A patch set whose patch names, paths, lines, summary and target are hostile, and one
    patch with paths that are not UTF-8 (it fails on purpose: the path is then shown); the
    release synced."""
    created = HOSTILE_PATH.encode()
    patches = {
        "0001-latin1.patch": _mod(LATIN1, b"99", b"x")
        + b"--- /dev/null\n+++ b/new\xff.c\n@@ -0,0 +1 @@\n+new\n",
        "0002-path.patch": b"--- /dev/null\n+++ b/" + created + b"\n@@ -0,0 +1 @@\n+z\n",
        PNAME: _mod(b"f.c", HOSTILE.encode(), b"x"),
    }
    ws = _workspace(tmp_path_factory.mktemp("hostile"), patches, HOSTILE_TARGET)
    res = _ktrack(ws, "releases", "sync")
    assert res.returncode == 0, res.stderr
    return ws


def test_non_utf8_paths_check(hostile_ws: Path) -> None:
    res = _ktrack(hostile_ws, "check", "demo", "6.1")
    assert res.returncode == 1
    _assert_safe(res, "0001-latin1.patch", "caf\\xe9.c")
    res = _ktrack(hostile_ws, "check", "demo", "6.1", "--json")
    doc = json.loads(res.stdout)
    (f,) = [f for f in doc["patches"][0]["files"] if f["path"] == "caf\\xe9.c"]
    assert res.returncode == 1 and f["class"] == "conflict"  # read (not missing), then judged


def test_non_utf8_symlink_target_in_a_tree_folder(tmp_path: Path) -> None:
    from tracker.patchsets.diff import parse_patch

    root = tmp_path / "tree"
    root.mkdir()
    os.symlink(b"caf\xe9", bytes(root) + b"/lnk")
    patch = parse_patch(b"--- /dev/null\n+++ b/lnk/x\n@@ -0,0 +1 @@\n+x\n", name="p")
    report = check_series(Series("s", (patch,)), DirTree(root))
    assert report.patches[0].klass is HunkClass.CONFLICT and "lnk is a symbolic link" in (
        report.patches[0].files[0].note
    )


@pytest.mark.parametrize("executor", [["--executor", "inline"], ["--executor", "local", "-j", "2"]])
def test_non_utf8_paths_run(hostile_ws: Path, executor: list[str]) -> None:
    home = "data-" + executor[1]
    assert _ktrack(hostile_ws, "releases", "sync", home=home).returncode == 0
    res = _ktrack(hostile_ws, "run", "--stages", "apply", *executor, home=home)
    text = _assert_safe(res, "caf\\xe9.c")
    assert res.returncode == 0 and "1 fail" in text


# --- 12: terminal escapes and Rich markup in names are shown as text ------------------------

SHOWN_PNAME = "\\x1b]0;pwned\\x07[/bold]x[link=evil.example]y[/link]\\x1b[8m.patch"
SHOWN_TARGET = "[link=evil.example]cfg\\x1b[8m"


@pytest.fixture(scope="module")
def hostile_run(hostile_ws: Path) -> subprocess.CompletedProcess[bytes]:
    return _ktrack(hostile_ws, "run", "--stages", "apply", "--executor", "inline")


def test_hostile_names_check(hostile_ws: Path) -> None:
    res = _ktrack(hostile_ws, "check", "demo@1", "6.1")
    assert res.returncode == 1
    _assert_safe(res, SHOWN_PNAME, "\\x1b]0;pwned\\x07[/bold]x[link=https://evil.example]")


def test_hostile_names_run(hostile_run: subprocess.CompletedProcess[bytes]) -> None:
    text = _assert_safe(hostile_run, SHOWN_TARGET)
    assert hostile_run.returncode == 0 and "1 fail" in text


def test_hostile_names_matrix(
    hostile_ws: Path, hostile_run: subprocess.CompletedProcess[bytes]
) -> None:
    res = _ktrack(hostile_ws, "matrix")
    assert res.returncode == 0
    _assert_safe(res, SHOWN_TARGET, "apply:fail")
    res = _ktrack(hostile_ws, "matrix", "--markdown")
    assert res.returncode == 0 and b"\x1b" not in res.stdout


def test_hostile_names_plan(hostile_ws: Path) -> None:
    res = _ktrack(hostile_ws, "plan", "--stages", "apply")
    assert res.returncode == 0
    _assert_safe(res, SHOWN_TARGET, "demo@1")


def test_hostile_names_patchsets_list(hostile_ws: Path) -> None:
    res = _ktrack(hostile_ws, "patchsets", "list")
    assert res.returncode == 0
    _assert_safe(res, "summary \\x1b]0;pwned\\x07[/bold]x[link=https://evil.example]y[/link]")


def test_hostile_names_in_error_messages(hostile_ws: Path) -> None:
    res = _ktrack(hostile_ws, "check", f"demo@{HOSTILE}", "6.1")
    assert res.returncode == 2
    _assert_safe(res, "[/bold]x[link=https://evil.example]")


# --- 20: the placement search is bounded; the apply stage has a time limit -----------------


def _repeated(kind: str) -> tuple[bytes, bytes]:
    """(file, patch): 200 hunks whose context occurs ~100,000 times in the file but never with
    the hunk's own lines around it."""
    if kind == "one-line":
        line = b'\tpr_debug("the same context line");\n'
        data = line * 100_000
        body = b" %s-gone\n+new\n %s" % (line, line)
    else:  # every line of the hunk is common, the combination is nowhere
        data = b"a\nb\n" * 50_000
        body = b" a\n a\n-b\n+c\n b\n"
    size = body.count(b"\n") - 1
    hunks = [
        b"@@ -%d,%d +%d,%d @@\n" % (1 + i * 500, size, 1 + i * 500, size) + body for i in range(200)
    ]
    return data, b"--- a/f.c\n+++ b/f.c\n" + b"".join(hunks)


@pytest.mark.parametrize("kind", ["one-line", "two-lines"])
@pytest.mark.parametrize("fuzz", [0, 2])
def test_repeated_context_is_placed_in_bounded_time(tmp_path: Path, kind: str, fuzz: int) -> None:
    import resource

    from tracker.patchsets.diff import parse_patch

    data, patch_bytes = _repeated(kind)
    (tmp_path / "f.c").write_bytes(data)
    patch = parse_patch(patch_bytes, name="p.patch")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    report = check_series(Series("s", (patch,)), DirTree(tmp_path), fuzz=fuzz)
    spent = resource.getrusage(resource.RUSAGE_SELF).ru_utime - before
    hunks = report.patches[0].files[0].hunks
    assert spent < 3.0, f"{spent:.1f} s of CPU for a {len(patch_bytes)} byte patch"
    if shutil.which("patch"):  # the same verdict as GNU patch, hunk by hunk
        (tmp_path / "p.patch").write_bytes(patch_bytes)
        argv = ["patch", "-p1", "--dry-run", f"-F{fuzz}", "-i", str(tmp_path / "p.patch")]
        out = run(argv, cwd=tmp_path, timeout=120).stdout
        gnu_failed = {
            int(w.split()[1].lstrip("#"))
            for w in out.splitlines()
            if "FAILED" in w and w.startswith("Hunk")
        }
        ours_failed = {h.index for h in hunks if h.klass is HunkClass.CONFLICT}
        assert ours_failed == gnu_failed
    else:
        assert all(h.klass is HunkClass.CONFLICT for h in hunks)


def test_apply_timeout_is_an_infrastructure_error_not_a_verdict(tmp_path: Path) -> None:
    data, patch_bytes = _repeated("one-line")
    ws = _workspace(tmp_path, {"p.patch": patch_bytes}, "x86_64:tinyconfig")
    with (ws / "ktrack.toml").open("a") as fh:
        fh.write("apply_timeout = 0.000001\n")  # [run] is the last table
    assert _ktrack(ws, "releases", "sync").returncode == 0
    res = _ktrack(ws, "check", "demo", "6.1")
    err = _assert_safe(res)
    assert res.returncode == 3 and "longer than its limit of 1e-06 s" in err
    res = _ktrack(ws, "run", "--stages", "apply", "--executor", "inline")
    text = _assert_safe(res)
    assert res.returncode == 3 and "1 error" in text and "infrastructure error" in text
    from tracker.results.db import Database
    from tracker.results.models import Job, StageResult

    db = Database(f"sqlite:///{ws / 'data' / 'tracker.db'}")
    with db.session() as s:
        (stage,) = s.query(StageResult).all()
        (job,) = s.query(Job).all()
        assert (stage.stage, stage.status, stage.cause) == ("apply", "error", "infrastructure")
        assert job.status == "error" and "longer than its limit" in (stage.summary or "")
    db.dispose()
    for bad in ("-1", "0", "inf", '"5"'):
        (ws / "ktrack.toml").write_text(f"[run]\napply_timeout = {bad}\n")
        res = _ktrack(ws, "check", "demo", "6.1")
        assert res.returncode == 2 and b"run.apply_timeout" in res.stderr, bad


def test_coded_search_places_hunks_as_the_ranked_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line-code scan (for common lines) and the ranked walk over a rare line's places
    (GNU's order, checked against GNU patch elsewhere) agree on random files and hunks."""
    import random

    from tracker.apply import engine, locate
    from tracker.patchsets.diff import hunk_from_lines

    rnd = random.Random(15)
    words = [b"a\n", b"b\n", b"c\n", b"d\n"]
    for _ in range(1500):
        k = rnd.randint(1, 3)
        lines = [rnd.choice(words[: k + 1]) for _ in range(rnd.randint(0, 30))]
        hunks = []
        for index in range(1, rnd.randint(1, 4) + 1):
            body = [(rnd.choice(" -+  "), rnd.choice([*words[: k + 1], b"e\n"])) for _ in range(6)]
            start = rnd.randint(0, len(lines) + 2)
            hunks.append(hunk_from_lines(index, start, start, [*body, ("+", b"new\n")]))
        fuzz = rnd.randint(0, 2)
        monkeypatch.setattr(locate, "_FEW", 64)
        ranked = engine.patch_lines(lines, hunks, max_fuzz=fuzz)
        monkeypatch.setattr(locate, "_FEW", 0)
        coded = engine.patch_lines(lines, hunks, max_fuzz=fuzz)
        assert ranked == coded, (lines, hunks, fuzz)


def test_safe_console_prints_strings_as_text() -> None:
    """The console every command prints through: no markup, no emoji codes, escapes shown, the
    bytes of a name that is not UTF-8 as \\xNN (and the same in JSON, logs and the database)."""
    import io

    from tracker.safetext import SafeConsole, printable, unsurrogate

    name = os.fsdecode(b"caf\xe9.c")
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=200)
    console.print(f"{HOSTILE} :smile: {name}\nnext\tline")
    from rich.table import Table

    table = Table("a")
    table.add_row("[/bold]cell\x1b[2J")
    console.print(table)
    out = buf.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert printable(HOSTILE) in out and ":smile:" in out and "caf\\xe9.c" in out
    assert "\nnext" in out and "[/bold]cell\\x1b[2J" in out
    assert unsurrogate(name) == "caf\\xe9.c" and unsurrogate("plain \x1b") == "plain \x1b"
