"""Naming the patch that broke a build: inferred from a single writer, or bisected over the series
with real builds of the fake Kbuild tree, counted exactly."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from conftest_kbuild import fake_kernel

from tracker.apply.check import check_series
from tracker.apply.materialise import write_changes
from tracker.apply.report import PatchStep
from tracker.arches.target import Target
from tracker.build.culprit import (
    SeriesTree,
    max_builds,
    name_culprit,
    probe_builder,
    search,
)
from tracker.build.kbuild import build
from tracker.patchsets.diff import Series, parse_patch
from tracker.sandbox import SandboxMode
from tracker.sources.tree import DirTree
from tracker.vocab import Outcome, Status

X86 = Target.parse("x86_64:tinyconfig")
FORK = b"int copy_process(void)\n{\n\treturn 0;\n}\n"


def test_search_finds_the_first_failing_k_within_the_bound() -> None:
    for n in range(1, 70):
        for bad in range(1, n + 1):
            calls: list[int] = []

            def fails(k: int, bad: int = bad, calls: list[int] = calls) -> bool:
                calls.append(k)
                return k >= bad

            k, built = search(n, fails)
            assert k == bad and built == calls
            assert len(built) <= math.ceil(math.log2(n)) < max_builds(n)  # the +1 is spare


def test_search_stops_when_a_build_cannot_say() -> None:
    assert search(8, lambda k: None) == (None, [4])


def _step(i: int, files: dict[str, bytes | None]) -> PatchStep:
    return PatchStep(f"{i:04d}.patch", files, {})


def _break(where: str) -> dict[str, bytes | None]:
    """What a breaking patch writes: the fake build then fails with an error at ``where``."""
    return {"BUILD_RC": b"2", "BUILD_STDERR": f"{where}: error: broken\n".encode()}


def _series_tree(tmp_path: Path, steps: list[PatchStep]) -> tuple[Path, Path, DirTree]:
    """The release (a fake kernel), and the tree with every step written over a copy of it."""
    base = fake_kernel(tmp_path / "release")
    (base / "kernel").mkdir()
    (base / "kernel" / "fork.c").write_bytes(FORK)
    (base / "BUILD_RC").write_text("0")
    patched = tmp_path / "job" / "src"
    shutil.copytree(base, patched)
    for step in steps:
        write_changes(patched, step.changes, step.modes)
    out = tmp_path / "job" / "out"
    out.mkdir()
    (out / ".config").write_text("CONFIG_64BIT=y\n")
    return patched, out, DirTree(base)


def _builder(tmp_path: Path, steps: list[PatchStep]):  # type: ignore[no-untyped-def]
    patched, out, base = _series_tree(tmp_path, steps)

    def build_at(src: Path, o: Path, log: Path) -> Outcome:
        return build(src, o, X86, jobs=1, log=log, ccache_dir=tmp_path / "cc", timeout=60,
                     sandbox_mode=SandboxMode.NONE)  # fmt: skip

    full = build_at(patched, out, tmp_path / "full.log")
    assert full.status is Status.FAIL
    work = tmp_path / "job" / "culprit"
    build_k = probe_builder(
        patched=patched, config=out / ".config", work=work, steps=steps, base=base, build=build_at
    )
    return full, build_k, work


def _bisect_builds(work: Path) -> int:
    calls = work / "out" / "make-calls"
    if not calls.exists():
        return 0
    return sum(1 for line in calls.read_text().splitlines() if line.startswith("bzImage"))


def test_error_in_a_file_several_patches_wrote_is_bisected(tmp_path: Path) -> None:
    steps = [_step(i, {f"p{i}.c": b"x\n"}) for i in range(1, 9)]
    steps[1].changes["kernel/fork.c"] = FORK + b"/* 2 */\n"
    steps[4].changes.update(
        {"kernel/fork.c": FORK + b"/* 5 */\n", **_break("@SRC@/kernel/fork.c:3:1")}
    )
    steps[6].changes["kernel/fork.c"] = FORK + b"/* 7 */\n"
    full, build_k, work = _builder(tmp_path, steps)
    out = name_culprit(full, steps, build_k=build_k)
    assert out.status is Status.FAIL
    assert out.summary == "kernel/fork.c:3: broken (culprit: 0005.patch, bisected in 3 build(s))"
    assert out.detail["culprit"] == {
        "patch": "0005.patch", "method": "bisected", "builds": 3,
        "probes": [{"patches": 4, "status": "pass"}, {"patches": 6, "status": "fail"},
                   {"patches": 5, "status": "fail"}],
        "note": "3 patches wrote kernel/fork.c",
    }  # fmt: skip
    assert _bisect_builds(work) == 3  # one O= dir, reused by every probe
    # the probes rewrote their own hard-linked copy: the job's patched tree is as it was
    assert (tmp_path / "job" / "src" / "kernel" / "fork.c").read_bytes() == FORK + b"/* 7 */\n"
    assert (work / "src" / "kernel" / "fork.c").read_bytes() == FORK + b"/* 5 */\n"


def test_link_error_is_bisected(tmp_path: Path) -> None:
    steps = [_step(i, {f"p{i}.c": b"x\n"}) for i in range(1, 6)]
    steps[2].changes.update(
        {"BUILD_RC": b"2", "BUILD_STDERR": b"ld: error: undefined symbol: vx_count\n"}
    )
    full, build_k, work = _builder(tmp_path, steps)
    out = name_culprit(full, steps, build_k=build_k)
    assert out.summary == (
        "(link): error: undefined symbol: vx_count (culprit: 0003.patch, bisected in 2 build(s))"
    )
    assert out.detail["culprit"]["patch"] == "0003.patch"
    assert out.detail["culprit"]["method"] == "bisected"
    assert out.detail["culprit"]["note"] == "the first error is at link time"
    assert [p["patches"] for p in out.detail["culprit"]["probes"]] == [2, 3]
    assert _bisect_builds(work) == 2


def test_error_in_a_file_no_patch_wrote_is_bisected(tmp_path: Path) -> None:
    steps = [_step(i, {f"p{i}.c": b"x\n"}) for i in range(1, 7)]
    steps[5].changes.update(_break("@SRC@/init/main.c:9:1"))
    full, build_k, work = _builder(tmp_path, steps)
    out = name_culprit(full, steps, build_k=build_k)
    assert out.summary == "init/main.c:9: broken (culprit: 0006.patch, bisected in 3 build(s))"
    assert out.detail["culprit"]["note"] == "no patch wrote init/main.c"
    assert _bisect_builds(work) == 3 == max_builds(6) - 1


def test_a_single_writer_is_inferred_without_a_build(tmp_path: Path) -> None:
    steps = [_step(i, {f"p{i}.c": b"x\n"}) for i in range(1, 5)]
    steps[2].changes.update(
        {"kernel/fork.c": FORK + b"/* 3 */\n", **_break("@SRC@/kernel/fork.c:2:1")}
    )
    full, build_k, work = _builder(tmp_path, steps)
    out = name_culprit(full, steps, build_k=build_k)
    assert out.summary == "kernel/fork.c:2: broken (culprit: 0003.patch, inferred)"
    assert out.detail["culprit"] == {"patch": "0003.patch", "method": "inferred", "builds": 0,
                                     "probes": [], "note": "the only patch that wrote kernel/fork.c"}  # fmt: skip
    assert not work.exists()  # no bisection tree, no build


def test_a_probe_that_errors_stops_the_bisection(tmp_path: Path) -> None:
    steps = [_step(i, {"kernel/fork.c": FORK + b"/* %d */\n" % i}) for i in range(1, 5)]
    failed = Outcome(
        Status.FAIL, "kernel/fork.c:1: x",
        {"first_error": {"file": "kernel/fork.c", "line": 1, "text": "kernel/fork.c:1: x"}},
    )  # fmt: skip
    out = name_culprit(failed, steps, build_k=lambda k: Outcome(Status.ERROR, "disk full"))
    assert out.summary == "kernel/fork.c:1: x"  # no culprit named
    assert out.detail["culprit"]["patch"] is None
    assert out.detail["culprit"]["note"] == (
        "bisect stopped: the build with 2 patch(es) failed for our infrastructure: disk full"
    )


def test_series_tree_sets_any_k_and_back(tmp_path: Path) -> None:
    steps = [
        _step(1, {"kernel/fork.c": FORK + b"/* 1 */\n", "new.c": b"new\n"}),
        _step(2, {"kernel/fork.c": None}),
        _step(3, {"new.c": b"newer\n", "kernel/fork.c": b"back\n"}),
    ]
    patched, _, base = _series_tree(tmp_path, steps)
    tree = SeriesTree(patched, tmp_path / "copy", steps, base)
    fork, new = tree.dest / "kernel" / "fork.c", tree.dest / "new.c"
    tree.set(0)
    assert fork.read_bytes() == FORK and not new.exists()
    tree.set(2)
    assert not fork.exists() and new.read_bytes() == b"new\n"
    tree.set(3)
    assert fork.read_bytes() == b"back\n" and new.read_bytes() == b"newer\n"
    tree.set(1)
    assert fork.read_bytes() == FORK + b"/* 1 */\n"
    assert (
        patched / "kernel" / "fork.c"
    ).read_bytes() == b"back\n"  # hard links not written through


def test_check_series_records_what_each_applied_patch_wrote(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text("one\n")
    p1 = b"--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-one\n+two\n"
    p2 = b"--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-two\n+three\n--- /dev/null\n+++ b/b.c\n@@ -0,0 +1 @@\n+b\n"
    series = Series("s", (parse_patch(p1, name="0001.patch"), parse_patch(p2, name="0002.patch")))
    report = check_series(series, DirTree(tmp_path))
    assert [(s.name, s.changes) for s in report.steps] == [
        ("0001.patch", {"a.c": b"two\n"}),
        ("0002.patch", {"a.c": b"three\n", "b.c": b"b\n"}),
    ]


@pytest.mark.parametrize("n", [1, 2, 8, 9, 100])
def test_max_builds(n: int) -> None:
    assert max_builds(n) == {1: 1, 2: 2, 8: 4, 9: 5, 100: 8}[n]
