"""``--kernels latest``: each set's tracked releases narrowed to the newest of each series (what
a scheduled matrix builds, while apply covers every release)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402


def planned(ws: Path, *args: str) -> list[str]:
    r = synth.ktrack(ws, "plan", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return [job["release"] for job in json.loads(r.stdout)["jobs"]]


def test_latest_narrows_each_sets_tracked_releases(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.0.9", "6.1", "6.1.1", "6.1.2", "6.2", "6.2.1"])
    ws = synth.workspace(tmp_path, repo)  # [track] kernels = ">=6.1"
    r = synth.ktrack(ws, "releases", "sync")
    assert r.returncode == 0, r.stderr
    assert planned(ws) == ["6.1", "6.1.1", "6.1.2", "6.2", "6.2.1"]
    assert planned(ws, "--kernels", "latest") == ["6.1.2", "6.2.1"]  # 6.0.9 is not tracked
    assert planned(ws, "--kernels", "all,latest") == ["6.0.9", "6.1.2", "6.2.1"]
    assert planned(ws, "--kernels", "<6.1.2,latest") == ["6.0.9", "6.1.1"]
