"""Apply-engine benchmark, measured in one run and printed as ratios against GNU patch.

The case: Debian's 6.1 quilt series (165 patches in linux_6.1.176-1.debian.tar.xz) against the
pristine 6.12 release (linux_6.12.38.orig.tar.xz), both from ``apt-get source`` and cached in
$XDG_CACHE_HOME/ktrack (see tests/integration/conftest_apply.py; the first run downloads and
imports them into the release store).

1. ktrack: ``check_series`` of the parsed series against the stored release, a fresh ``TreeView``
   each time (its ``git cat-file`` process and reads included): time per (series, release) pair,
   the median of ``--repeat`` runs (goal: <= 0.25 s). Parsing the series (once per series, shared
   by every release) is printed apart, and so is the check on a view that is already open (the
   store's process started once per release, as a run over many patch sets does).
2. GNU patch in series order on an already extracted tree: for each patch ``patch --dry-run -N
   -F0``, then the real ``patch`` when it applies (a failing patch is left out, as in ktrack and
   quilt) (goal: ktrack faster). Also the dry-run alone per patch, which is cheaper but does not
   give in-order verdicts (a later patch is checked without the earlier ones).
3. ``tar xf`` of the release tarball plus (2): what a user without a store does (goal: >= 50x).

Wall times on a shared machine swing with its load, so CPU seconds (this process and its children,
``getrusage``) are printed beside them; the two sides are measured interleaved.

Run: ``.venv/bin/python bench/bench_apply.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import resource
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


def cpu() -> float:
    """CPU seconds used so far by this process and its finished children (load-independent)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def gnu_in_order(
    tree: Path, files: list[tuple[Path, int]], *, apply: bool
) -> tuple[float, float, int]:
    """(wall, cpu) seconds for GNU patch over the series in order; patches it accepted."""
    ok = 0
    c0, t0 = cpu(), time.perf_counter()
    for f, strip in files:
        dry = subprocess.run(patch_argv(f, strip=strip), cwd=tree, capture_output=True)
        if dry.returncode == 0:
            ok += 1
            if apply:
                subprocess.run(
                    patch_argv(f, strip=strip, dry_run=False), cwd=tree, capture_output=True
                )
    return time.perf_counter() - t0, cpu() - c0, ok


def _fmt(xs: list[float]) -> str:
    return ", ".join(f"{x:.3f}" for x in xs)


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
        c0, t0 = cpu(), time.perf_counter()
        subprocess.run(["tar", "xf", str(src612.orig_tarball), "-C", str(work)], check=True)
        t_tar, c_tar = time.perf_counter() - t0, cpu() - c0
        tree = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("linux"))

        ours: list[tuple[float, float]] = []
        order: list[tuple[float, float]] = []
        dry: list[tuple[float, float]] = []
        report = None
        gnu_ok = 0
        for i in range(args.repeat):  # interleaved, so both sides see the same machine load
            c0, t0 = cpu(), time.perf_counter()
            with store.tree(commit) as view:
                report = check_series(series, view, fuzz=0)
            ours.append((time.perf_counter() - t0, cpu() - c0))
            copy = work / f"copy{i}"  # GNU patch replaces files by rename: hard links are safe
            subprocess.run(["cp", "-al", str(tree), str(copy)], check=True)
            w, c, gnu_ok = gnu_in_order(copy, files, apply=True)
            order.append((w, c))
            w, c, _ = gnu_in_order(tree, files, apply=False)
            dry.append((w, c))
            shutil.rmtree(copy, ignore_errors=True)
        shutil.rmtree(tree, ignore_errors=True)
    warm: list[tuple[float, float]] = []
    with store.tree(commit) as view:  # a matrix run keeps one view per release open
        check_series(series, view, fuzz=0)
        for _ in range(args.repeat):
            c0, t0 = cpu(), time.perf_counter()
            check_series(series, view, fuzz=0)
            warm.append((time.perf_counter() - t0, cpu() - c0))
    assert report is not None
    ours_ok = sum(
        1 for p in report.patches if not p.klass.is_failure and p.klass.value != "already-applied"
    )

    def med(xs: list[tuple[float, float]], k: int) -> float:
        return statistics.median(x[k] for x in xs)

    w_ours, c_ours = med(ours, 0), med(ours, 1)
    w_order, c_order = med(order, 0), med(order, 1)
    w_dry, c_dry = med(dry, 0), med(dry, 1)
    n = len(series.patches)
    print(f"series: Debian {src61.version} ({n} patches) on linux {src612.upstream} (stored)")
    print(
        f"median of {args.repeat} interleaved runs; wall seconds (CPU seconds, children included)"
    )
    print(f"  ktrack parse the series (once per series)        {t_load:7.3f}")
    print(
        f"  ktrack check per (series, release) pair          {w_ours:7.3f} ({c_ours:.3f})"
        f"   goal <= 0.25 s; runs: {_fmt([x[0] for x in ours])}"
    )
    print(
        f"  ktrack check, release view already open          {med(warm, 0):7.3f} ({med(warm, 1):.3f})"
        "   (a run reuses one view per release)"
    )
    print(f"  GNU patch in order on an extracted tree          {w_order:7.3f} ({c_order:.3f})")
    print(f"  GNU patch --dry-run alone per patch (no order)   {w_dry:7.3f} ({c_dry:.3f})")
    print(f"  tar xf the release (once)                        {t_tar:7.3f} ({c_tar:.3f})")
    print("ratios, how many times faster ktrack is: wall (CPU)")
    print(
        f"  vs tar xf + patch in order      {(t_tar + w_order) / w_ours:7.1f}x"
        f" ({(c_tar + c_order) / c_ours:.1f}x)   goal >= 50x"
    )
    print(
        f"  vs patch in order, extracted    {w_order / w_ours:7.1f}x ({c_order / c_ours:.1f}x)   goal > 1x"
    )
    print(f"  vs dry-run alone, extracted     {w_dry / w_ours:7.1f}x ({c_dry / c_ours:.1f}x)")
    print(f"patches applied: ktrack {ours_ok}, GNU patch {gnu_ok}  ({report.summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
