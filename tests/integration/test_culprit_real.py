"""Bisecting a series to the patch that broke a real kernel build (slow; runs in CI).

Four patches all write init/main.c; the third adds a syntax error. The first error's file has
four writers, so the culprit is bisected: the 6.1 tree with the first 2 patches (builds), then 3
(fails): exactly 2 builds in one reused O= dir, ccache-warm (about 1 to 2 minutes in all).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_build import ccache_dir, kernel_source, linked_tree, replace_file  # noqa: E402

from tracker.apply.report import PatchStep  # noqa: E402
from tracker.arches.target import Target  # noqa: E402
from tracker.build.culprit import name_culprit, probe_builder  # noqa: E402
from tracker.build.kbuild import build  # noqa: E402
from tracker.build.kconfig import configure  # noqa: E402
from tracker.sources.tree import DirTree  # noqa: E402
from tracker.vocab import Outcome, Status  # noqa: E402

pytestmark = pytest.mark.slow

TARGET = Target.parse("x86_64:tinyconfig")
MARK = "\tkernel_init_freeable();\n"


def test_a_real_build_failure_is_bisected_to_its_patch(tmp_path: Path) -> None:
    if not Path("/usr/src/linux-source-6.1.tar.xz").is_file():
        pytest.fail("linux-source-6.1 is not installed (apt-get install linux-source-6.1)")
    base = kernel_source()
    text = (base / "init/main.c").read_text()
    at = text.index(MARK) + len(MARK)
    lines = ["\t/* ktrack: patch 1 */\n", "\t/* ktrack: patch 2 */\n", "\tint ktrack_broken = ;\n",
             "\t/* ktrack: patch 4 */\n"]  # fmt: skip
    steps, current = [], text
    for i, line in enumerate(lines, 1):
        current = current[:at] + line + current[at:]  # each patch inserts above the last one
        steps.append(PatchStep(f"000{i}-main.patch", {"init/main.c": current.encode()}, {}))
    broken_line = text[:at].count("\n") + 2  # below patch 4's line
    src = linked_tree(base, tmp_path / "job" / "src")
    replace_file(src, "init/main.c", current)
    out = tmp_path / "job" / "out"
    conf = configure(src, out, TARGET, None, log=tmp_path / "configure.log",
                     ccache_dir=ccache_dir())  # fmt: skip
    assert conf.status is Status.PASS, conf.summary

    def build_at(s: Path, o: Path, log: Path) -> Outcome:
        return build(s, o, TARGET, jobs=2, log=log, ccache_dir=ccache_dir(), timeout=2400)

    full = build_at(src, out, tmp_path / "build.log")
    assert full.status is Status.FAIL, full.summary
    work = tmp_path / "job" / "culprit"
    build_k = probe_builder(patched=src, config=out / ".config", work=work, steps=steps,
                            base=DirTree(base), build=build_at)  # fmt: skip
    named = name_culprit(full, steps, build_k=build_k)
    assert named.summary == (
        f"init/main.c:{broken_line}: expected expression before ';' token "
        "(culprit: 0003-main.patch, bisected in 2 build(s))"
    )
    assert named.detail["culprit"]["probes"] == [
        {"patches": 2, "status": "pass"}, {"patches": 3, "status": "fail"},
    ]  # fmt: skip
    assert sorted(p.name for p in work.glob("build-*.log")) == ["build-2.log", "build-3.log"]
