"""Differential tests: the engine's verdicts against GNU ``patch --dry-run -N -F<fuzz>``.

Hypothesis builds random files over a small alphabet (so lines repeat and the search order
matters), a series of edits made into patches by GNU ``diff -U<n>``, and a target tree that drifted
from the patches' base (lines inserted, removed or changed elsewhere, files missing or present).
The series is checked by the engine, and by GNU patch in order on a materialised copy of the target
(a patch GNU accepts is then applied for real, a failing one is left out, as quilt would). Every
file and hunk verdict must agree, and so must the final content of every file.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.apply.check import check_series
from tracker.apply.gnu import disagreements, parse_output, patch_argv
from tracker.patchsets.diff import Series, parse_patch
from tracker.proc import run
from tracker.sources.tree import DirTree

pytestmark = pytest.mark.skipif(
    shutil.which("patch") is None or shutil.which("diff") is None,
    reason="GNU patch and diff are required (apt-get install patch diffutils)",
)

ALPHABET = [b"a\n", b"b\n", b"c\n", b"{\n", b"}\n", b"\n", b"x = 1;\n", b"return 0;\n"]


def _lines(draw: st.DrawFn, unique_from: int, n_max: int = 30) -> list[bytes]:
    n = draw(st.integers(0, n_max))
    out = []
    for i in range(n):
        if draw(st.booleans()):
            out.append(draw(st.sampled_from(ALPHABET)))
        else:
            out.append(b"line %d\n" % (unique_from + i))
    if out and draw(st.integers(0, 9)) == 0:
        out[-1] = out[-1].rstrip(b"\n") or b"z"  # no newline at end of file
    if out and draw(st.integers(0, 12)) == 0:
        out[0] = out[0].rstrip(b"\n") + b"\r\n"  # a CRLF line
    return out


def _edit(draw: st.DrawFn, lines: list[bytes], tag: int, max_edits: int = 4) -> list[bytes]:
    out = list(lines)
    for e in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(["ins", "del", "chg"]))
        pos = draw(st.integers(0, len(out)))
        if op == "ins" or not out:
            k = draw(st.integers(1, 3))
            out[pos:pos] = [b"new %d.%d.%d\n" % (tag, e, j) for j in range(k)]
        elif op == "del":
            pos = min(pos, len(out) - 1)
            del out[pos : pos + draw(st.integers(1, 3))]
        else:
            pos = min(pos, len(out) - 1)
            out[pos] = draw(st.sampled_from([*ALPHABET, b"changed %d.%d\n" % (tag, e)]))
    # keep a missing final newline only at the very end
    for i in range(len(out) - 1):
        if not out[i].endswith(b"\n"):
            out[i] += b"\n"
    return out


@st.composite
def cases(draw: st.DrawFn) -> dict:
    n_files = draw(st.integers(1, 3))
    base = {f"f{i}.c": _lines(draw, 100 * i) for i in range(n_files)}
    versions = [dict(base)]
    n_patches = draw(st.integers(1, 3))
    for p in range(n_patches):
        cur = dict(versions[-1])
        for name in list(cur):
            if draw(st.integers(0, 3)):
                cur[name] = _edit(draw, cur[name], tag=p)
        if draw(st.integers(0, 6)) == 0:
            cur[f"new{p}.c"] = _lines(draw, 1000 + p, 6) or [b"only\n"]
        if len(cur) > 1 and draw(st.integers(0, 8)) == 0:
            del cur[draw(st.sampled_from(sorted(cur)))]
        versions.append(cur)
    # the target drifted from the base
    target = {}
    for name, lines in base.items():
        if draw(st.integers(0, 10)) == 0:
            continue  # the release lacks this file
        target[name] = _edit(draw, lines, tag=50, max_edits=3) if draw(st.booleans()) else lines
    if draw(st.integers(0, 8)) == 0:
        # upstream already has the first patch's change to some file
        name = draw(st.sampled_from(sorted(versions[1])))
        if name in target or name not in base:
            target[name] = versions[1][name]
    context = draw(st.integers(0, 3))
    fuzz = draw(st.integers(0, 2))
    return {"versions": versions, "target": target, "context": context, "fuzz": fuzz}


def _write(root: Path, files: dict[str, list[bytes]]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"".join(lines))


def make_diff(work: Path, old: dict, new: dict, context: int) -> bytes:
    """A patch from ``old`` to ``new`` (dicts of name -> lines) made by GNU diff, -p1 names."""
    out = b""
    for name in sorted(set(old) | set(new)):
        a = work / "a" / name
        b = work / "b" / name
        a.parent.mkdir(parents=True, exist_ok=True)
        b.parent.mkdir(parents=True, exist_ok=True)
        a.write_bytes(b"".join(old.get(name, [])))
        b.write_bytes(b"".join(new.get(name, [])))
        left = f"a/{name}" if name in old else "/dev/null"
        right = f"b/{name}" if name in new else "/dev/null"
        argv = ["diff", "-a", f"-U{context}", "--label", left, "--label", right, str(a), str(b)]
        res = run(argv, cwd=work, timeout=30)
        assert res.returncode in (0, 1), res.stderr
        out += res.stdout.encode("utf-8", "surrogateescape")
    return out


def check_against_gnu(tmp: Path, patches: list[bytes], target: dict, fuzz: int) -> None:
    tree = tmp / "tree"
    _write(tree, target)
    series = Series(
        "s", tuple(parse_patch(p, name=f"{i:04d}.patch", strip=1) for i, p in enumerate(patches))
    )
    report = check_series(series, DirTree(tree), fuzz=fuzz)

    gnu_tree = tmp / "gnu"
    shutil.copytree(tree, gnu_tree)
    problems: list[str] = []
    for i, (data, patch, ours) in enumerate(
        zip(patches, series.patches, report.patches, strict=True)
    ):
        pf = tmp / f"{i:04d}.patch"
        pf.write_bytes(data)
        dry = run(patch_argv(pf, fuzz=fuzz), cwd=gnu_tree, timeout=30)
        assert dry.returncode in (0, 1), dry.stdout + dry.stderr
        problems += disagreements(patch, ours, parse_output(dry.stdout))
        if not ours.klass.is_failure:
            real = run(patch_argv(pf, fuzz=fuzz, dry_run=False), cwd=gnu_tree, timeout=30)
            assert "FAILED" not in real.stdout, real.stdout
    assert not problems, "\n".join(problems)
    # the engine's result is GNU's result
    for path, content in report.changes.items():
        on_disk = gnu_tree / path
        if content is None:
            assert not on_disk.exists(), path
        else:
            assert on_disk.read_bytes() == content, path


@settings(
    max_examples=int(os.environ.get("KTRACK_DIFF_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
def test_verdicts_agree_with_gnu_patch(
    tmp_path_factory: pytest.TempPathFactory, case: dict
) -> None:
    tmp = tmp_path_factory.mktemp("diff")
    versions = case["versions"]
    patches = []
    for i in range(1, len(versions)):
        work = tmp / f"mk{i}"
        patches.append(make_diff(work, versions[i - 1], versions[i], case["context"]))
    patches = [p for p in patches if p]
    if not patches:
        return
    check_against_gnu(tmp, patches, case["target"], case["fuzz"])


def test_fixed_case_offsets_fuzz_and_failure(tmp_path: Path) -> None:
    """A hand-made case that exercises offset, fuzz 1 and a failed hunk in one file."""
    base = {"f.c": [b"line %d\n" % i for i in range(1, 41)]}
    new = {"f.c": list(base["f.c"])}
    new["f.c"][4] = b"five\n"
    new["f.c"][19] = b"twenty\n"
    new["f.c"][34] = b"thirty-five\n"
    patch = make_diff(tmp_path / "mk", base, new, 3)
    target = list(base["f.c"])
    target[0:0] = [b"drift\n", b"drift\n"]  # hunk 1 at offset 2
    target[19 + 2 + 2] = b"context changed\n"  # fuzz 1 for hunk 2 (last context line)
    target[34 + 2] = b"conflict\n"  # hunk 3 cannot apply
    for fuzz in (0, 1, 2):
        check_against_gnu(tmp_path / f"F{fuzz}", [patch], {"f.c": target}, fuzz)
