"""``ktrack bisect --stage build`` with real (stand-in Kbuild) builds and the control run: an
upstream commit that does not build by itself is skipped, never named as the culprit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402


def commit(repo: Path, message: str, files: dict[str, str | None]) -> str:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    synth.git(repo, "add", "-A")
    synth.git(repo, "commit", "-q", "-m", message)
    return synth.git(repo, "rev-parse", "HEAD").strip()


def test_build_bisect_skips_commits_broken_by_themselves(tmp_path: Path) -> None:
    repo = synth.kernel_repo(tmp_path, ["6.1"])
    c = [commit(repo, "docs: one", {"README": "1\n"})]
    c.append(commit(repo, "docs: two", {"README": "2\n"}))
    c.append(commit(repo, "sched: does not build", {"kernel/sched.c": "KTRACK_BREAK\n"}))
    c.append(commit(repo, "sched: still broken", {"kernel/sched.h": "/* x */\n"}))
    c.append(commit(repo, "sched: fix the build", {"kernel/sched.c": None}))
    culprit = commit(repo, "vx: drop the counter", {"kernel/vx.h": "/* NO_VX */\n"})
    c.append(culprit)
    c.append(commit(repo, "docs: three", {"README": "3\n"}))
    (repo / "VERSION").write_text("6.2\n")
    c.append(commit(repo, "Linux 6.2", {}))
    synth.git(repo, "tag", "v6.2")
    ws = synth.workspace(tmp_path, repo)
    assert synth.ktrack(ws, "releases", "sync").returncode == 0
    r = synth.ktrack(ws, "fetch", "6.1", "6.2")
    assert r.returncode == 0, r.stderr
    r = synth.ktrack(
        ws, "bisect", "demo@0.1", "--good", "6.1", "--bad", "6.2", "--stage", "build", "--json"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["exact"] is True, doc
    assert doc["culprit"]["commit"] == culprit
    assert doc["culprit"]["subject"] == "vx: drop the counter"
    assert len(doc["breaks"]) == 1
    # the search met the commits that do not build by themselves and skipped them
    skipped = {step["commit"] for step in doc["steps"] if step["status"] == "skip"}
    assert skipped and skipped <= {c[2], c[3]}, doc["steps"]
