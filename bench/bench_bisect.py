"""Benchmark: bisect a 10,000-commit range; goals <= 15 apply checks and < 5 s.

Generates (``git fast-import``) a history v6.1..v6.2 of 10,000+ commits with merges, irrelevant
commits, harmless commits to the patched file and one commit that renames the function the
patch's hunk depends on. Then, side by side on the same range and the same patch:

* ktrack: ``find_breaks`` with the real apply engine on store TreeViews (no checkout), then the
  report (commit facts, diff excerpt, later commits), timed together;
* ``git bisect run patch -p1 --dry-run -F0 -N`` in a checkout (the tool a user would reach
  for), plain and with the same pathspec narrowing (``git bisect start BAD GOOD -- PATH``).

Prints both figures against the goals and the ratios; exits 1 if a goal is missed or an answer
differs.

    .venv/bin/python bench/bench_bisect.py [--commits 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from bisect_history import PROC, build_history  # noqa: E402

from tracker import proc  # noqa: E402
from tracker.bisect import describe  # noqa: E402
from tracker.bisect.probe import apply_probe  # noqa: E402
from tracker.bisect.search import ProbeCache, find_breaks  # noqa: E402
from tracker.patchsets.diff import Series, parse_patch  # noqa: E402
from tracker.sources.git import commit_graph_argv  # noqa: E402

MAX_CHECKS = 15
MAX_SECONDS = 5.0


def git_bisect(git_dir: Path, work: Path, patch: Path, paths: list[str]) -> tuple[str, int, float]:
    """``git bisect run`` with GNU patch as the test; (culprit, steps, seconds)."""
    if not work.exists():
        proc.run(
            ["git", "clone", "--quiet", str(git_dir), str(work)], cwd=git_dir.parent, check=True
        )
    start = time.monotonic()
    proc.run(["git", "bisect", "start", "v6.2", "v6.1", "--", *paths], cwd=work, check=True)
    try:
        res = proc.run(
            [
                "git",
                "bisect",
                "run",
                "patch",
                "-p1",
                "--dry-run",
                "-F0",
                "-N",
                "-s",
                "-f",
                "-i",
                str(patch),
            ],
            cwd=work,
            check=True,
        )
    finally:
        took = time.monotonic() - start
        proc.run(["git", "bisect", "reset", "--quiet"], cwd=work)
    m = re.search(r"^([0-9a-f]{40}) is the first bad commit", res.stdout, re.M)
    steps = len(re.findall(r"^running ", res.stdout, re.M))
    return (m.group(1) if m else "?"), steps, took


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--commits", type=int, default=10000, help="commits in the range (at least)")
    ap.add_argument("--keep", type=Path, help="keep the generated repository here")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="ktrack-bench-bisect-"))
    git_dir = root / "upstream.git"
    t0 = time.monotonic()
    if git_dir.exists():
        shutil.rmtree(git_dir)
    main_commits = int(args.commits * 0.9)
    h = build_history(
        git_dir,
        seed=2024,
        main_commits=main_commits,
        side_branches=max(args.commits // 60, 10),
        relevant_rate=0.03,
        scenario="rename",
    )
    count = int(
        proc.run(
            ["git", f"--git-dir={git_dir}", "rev-list", "--count", "v6.1..v6.2"],
            cwd=git_dir,
            check=True,
        ).stdout
    )
    merges = int(
        proc.run(
            ["git", f"--git-dir={git_dir}", "rev-list", "--count", "--merges", "v6.1..v6.2"],
            cwd=git_dir,
            check=True,
        ).stdout
    )
    print(
        f"history: {count} commits in v6.1..v6.2 ({merges} merges), generated in {time.monotonic() - t0:.1f} s"
    )
    if count < args.commits:
        print(f"FAIL: only {count} commits generated")
        return 1

    series = Series("bench", tuple(parse_patch(text, name=name) for name, text in h.patches))
    ok = True
    runs = []
    for label in ("no commit-graph", "commit-graph"):
        if label == "commit-graph":  # what the store should write after a fetch
            proc.run(
                commit_graph_argv(git_dir),
                cwd=git_dir,
                check=True,
            )
        cache = ProbeCache(apply_probe(git_dir, series, 0))
        start = time.monotonic()
        result = find_breaks(git_dir, "v6.1", "v6.2", cache)
        search = time.monotonic() - start
        result = describe.describe(git_dir, result)
        took = time.monotonic() - start
        exact = result.culprit == h.commits["culprit"]
        ok = ok and exact and result.checks <= MAX_CHECKS and took < MAX_SECONDS
        runs.append((result.checks, took))
        print(
            f"ktrack bisect ({label}): {result.checks} apply checks (goal <= {MAX_CHECKS}), "
            f"{took:.2f} s (goal < {MAX_SECONDS:.0f} s; search {search:.2f} s + report "
            f"{took - search:.2f} s); {result.candidates} candidates touch {PROC}; "
            f"culprit {'exact' if exact else 'WRONG'} {str(result.culprit)[:12]}"
        )
    checks, took = runs[1]  # the peers run on the same repository, commit-graph written

    patch = root / h.patches[0][0]
    patch.write_bytes(h.patches[0][1])
    work = root / "work"
    peers = []
    for label, paths in (("git bisect run", []), ("git bisect run -- PATH", [PROC])):
        culprit, steps, secs = git_bisect(git_dir, work, patch, paths)
        same = culprit == h.commits["culprit"]
        peers.append((label, steps, secs))
        print(
            f"{label}: {steps} checks, {secs:.2f} s; culprit {'exact' if same else 'DIFFERENT'} {culprit[:12]}"
        )
        ok = ok and same
    for label, steps, secs in peers:
        print(
            f"ratio vs {label}: checks {checks / max(steps, 1):.2f}x, time {took / max(secs, 1e-9):.2f}x"
        )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print("goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
