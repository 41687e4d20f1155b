"""Apply-engine benchmark, measured in one run and printed as ratios against GNU patch.

The case: Debian's 6.1 quilt series (165 patches in linux_6.1.176-1.debian.tar.xz) against the
pristine 6.12 release (linux_6.12.38.orig.tar.xz), both from ``apt-get source`` and cached in
$XDG_CACHE_HOME/ktrack (see tests/integration/conftest_apply.py; the first run downloads and
imports them into the release store).

1. ktrack: ``check_series`` of the parsed series against the stored release, a fresh ``TreeView``
   each time (its ``git cat-file`` process and reads included): time per (series, release) pair,
   the median of ``--repeat`` runs (goal: <= 0.25 s). Parsing the series (once per series, shared
   by every release) is printed apart.
2. GNU patch in series order on an already extracted tree: for each patch ``patch --dry-run -N
   -F0``, then the real ``patch`` when it applies (a failing patch is left out, as in ktrack and
   quilt) (goal: ktrack faster). Also the dry-run alone per patch, which is cheaper but does not
   give in-order verdicts (a later patch is checked without the earlier ones).
3. ``tar xf`` of the release tarball plus (2): what a user without a store does (goal: >= 50x).

Run: ``.venv/bin/python bench/bench_apply.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from conftest_apply import REAL_CACHE, STORE, debian_source, load  # noqa: E402

from tracker.apply.check import check_series  # noqa: E402
from tracker.apply.gnu import patch_argv  # noqa: E402
from tracker.sources.store import ReleaseStore  # noqa: E402


def gnu_in_order(tree: Path, files: list[tuple[Path, int]], *, apply: bool) -> tuple[float, int]:
    """Seconds for GNU patch over the series in order; the number of patches it accepted."""
    ok = 0
    start = time.perf_counter()
    for f, strip in files:
        dry = subprocess.run(patch_argv(f, strip=strip), cwd=tree, capture_output=True)
        if dry.returncode == 0:
            ok += 1
            if apply:
                subprocess.run(
                    patch_argv(f, strip=strip, dry_run=False), cwd=tree, capture_output=True
                )
    return time.perf_counter() - start, ok


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    src61 = debian_source("6.1")
    src612 = debian_source("6.12")
    t = time.perf_counter()
    series, raws = load(src61)
    t_load = time.perf_counter() - t
    store = ReleaseStore(STORE)
    commit = store.import_tarball(src612.upstream, src612.orig_tarball)

    ours = []
    report = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        with store.tree(commit) as tree:
            report = check_series(series, tree, fuzz=0)
        ours.append(time.perf_counter() - t)
    assert report is not None
    t_ours = statistics.median(ours)
    ours_ok = sum(
        1 for p in report.patches if not p.klass.is_failure and p.klass.value != "already-applied"
    )

    bench = REAL_CACHE / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="apply-", dir=bench) as tmp:
        work = Path(tmp)
        pdir = work / "patches"
        pdir.mkdir()
        files = []
        for i, raw in enumerate(raws):
            f = pdir / f"{i:04d}.patch"
            with raw.open() as fh:
                f.write_bytes(fh.read())
            files.append((f, raw.strip))
        subprocess.run(["sync"], check=False)
        t = time.perf_counter()
        subprocess.run(["tar", "xf", str(src612.orig_tarball), "-C", str(work)], check=True)
        t_tar = time.perf_counter() - t
        tree = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("linux"))
        t_dry, _ = gnu_in_order(tree, files, apply=False)
        t_order, gnu_ok = gnu_in_order(tree, files, apply=True)
        shutil.rmtree(tree, ignore_errors=True)

    n = len(series.patches)
    print(f"series: Debian {src61.version} ({n} patches) on linux {src612.upstream} (stored)")
    print(f"  ktrack parse the series (once per series)        {t_load:8.3f} s")
    print(
        f"  ktrack check per (series, release) pair          {t_ours:8.3f} s"
        f"   (median of {args.repeat}: {', '.join(f'{x:.3f}' for x in ours)}; goal <= 0.25 s)"
    )
    print(f"  GNU patch in order on an extracted tree          {t_order:8.3f} s")
    print(f"  GNU patch --dry-run alone per patch (no order)   {t_dry:8.3f} s")
    print(f"  tar xf the release                               {t_tar:8.3f} s")
    print(f"  tar xf + GNU patch in order                      {t_tar + t_order:8.3f} s")
    print("ratios (how many times faster ktrack is):")
    print(f"  vs tar xf + patch in order      {(t_tar + t_order) / t_ours:8.1f}x   (goal >= 50x)")
    print(f"  vs patch in order, extracted    {t_order / t_ours:8.1f}x   (goal > 1x)")
    print(f"  vs dry-run alone, extracted     {t_dry / t_ours:8.1f}x")
    print(f"  vs parse + check (first release of a new series): {t_order / (t_load + t_ours):.1f}x")
    print(f"patches applied: ktrack {ours_ok}, GNU patch {gnu_ok}  ({report.summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
