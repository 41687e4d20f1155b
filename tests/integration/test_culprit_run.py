"""``ktrack run`` names the patch that broke a build: bisected when several patches wrote the
failing file, through the real stage loop on a synthetic kernel (tests/integration/synth.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402

from tests.integration.test_baseline import stages  # noqa: E402


def _patch(line: int, new: str) -> str:
    return (
        "--- a/kernel/fork.c\n+++ b/kernel/fork.c\n"
        f"@@ -{line - 1},3 +{line - 1},3 @@\n"
        f" /* fork.c line {line - 1} */\n-/* fork.c line {line} */\n+/* fork.c line {line} {new} */\n"
        f" /* fork.c line {line + 1} */\n"
    )


def test_run_bisects_the_series_to_the_patch_that_broke_the_build(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    ws = synth.workspace(tmp_path, repo)
    series = ws / "patches" / "demo" / "0.1"
    for p in series.iterdir():
        p.unlink()
    names = ["0001-first.patch", "0002-break.patch", "0003-third.patch"]
    (series / names[0]).write_text(_patch(5, "first"))
    (series / names[1]).write_text(_patch(10, "KTRACK_BREAK"))
    (series / names[2]).write_text(_patch(20, "third"))  # three writers of the failing file
    (series / "series").write_text("\n".join(names) + "\n")
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    r = synth.ktrack(ws, "run", "--stages", "build", "--executor", "inline")
    assert r.returncode == 0, r.stdout + r.stderr
    row = stages(ws)[("demo", "6.1")]["build"]
    assert (row.status, row.cause) == ("fail", "verdict"), row.summary
    assert row.summary == (
        "kernel/fork.c:10: broken on purpose (culprit: 0002-break.patch, bisected in 2 build(s))"
    )
    assert row.detail["culprit"]["probes"] == [
        {"patches": 1, "status": "pass"}, {"patches": 2, "status": "fail"},
    ]  # fmt: skip
    assert row.detail["baseline"]["status"] == "pass"  # the release alone builds: a verdict
    matrix = synth.ktrack(ws, "matrix", "--json")
    assert "bisected in 2 build(s)" in json.dumps(json.loads(matrix.stdout))
