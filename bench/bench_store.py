"""Release-store benchmarks, in one run, printed as ratios against what a user would otherwise do.

1. Import speed: ``ReleaseStore.import_tarball`` of Debian's linux-source-6.1 tarball into a fresh
   store vs ``tar xf`` of the same file (goal: <= 1.5x).
2. Disk: the store after importing 6.1 and 6.12 vs one extracted 6.1 tree, both measured with
   ``du -sB1`` (allocated bytes; goal: <= 40%).
3. Batch reads (best of 3): a fresh ``TreeView`` (starting and reaping its ``git cat-file
   --batch`` included) reading the files that Debian's 6.1 quilt series touches (~300 of them
   for 6.1.176-1; from ``linux_6.1.*.debian.tar.xz`` in $XDG_CACHE_HOME/ktrack/debian-src, else
   a fixed sample of 400 paths), vs reading the same files from the extracted tree (goal: < 0.2 s).

Run: ``.venv/bin/python bench/bench_store.py [--repeat N] [--keep]``. Everything is written to a
temporary folder under $XDG_CACHE_HOME/ktrack/bench (same file system as the cache) and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))

from conftest_store import REAL_CACHE, SOURCES, debian_version  # noqa: E402

from tracker.sources.store import ReleaseStore  # noqa: E402
from tracker.sources.tree import DirTree  # noqa: E402


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sB1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def series_paths(debian_tarball: Path) -> list[str]:
    """The files Debian's quilt series touches, in series order, from its debian.tar.xz."""
    patches: dict[str, bytes] = {}
    series = b""
    with tarfile.open(debian_tarball) as tar:
        for m in tar:
            if not m.isfile() or not m.name.startswith("debian/patches/"):
                continue
            data = tar.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == "debian/patches/series":
                series = data
            else:
                patches[m.name.removeprefix("debian/patches/")] = data
    seen: dict[str, None] = {}
    for line in series.decode().splitlines():
        name = line.split("#", 1)[0].strip().split(" ")[0]
        if not name or name not in patches:
            continue
        for pl in patches[name].decode("utf-8", "replace").splitlines():
            if pl.startswith(("+++ ", "--- ")):
                target = pl[4:].split("\t")[0].strip()
                if target != "/dev/null" and "/" in target:
                    seen.setdefault(target.split("/", 1)[1], None)
    return list(seen)


CPU: list[float] = []  # the CPU seconds of the last timed() call (ours and our children's)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    """Wall seconds of ``fn()``; its CPU seconds (this process and every child) go to CPU."""
    r0, c0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    start = time.monotonic()
    fn()
    wall = time.monotonic() - start
    r1, c1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    CPU.append(c1 - c0 + (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=1, help="take the best of N for tar and import")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    for src in SOURCES.values():
        if not src.is_file():
            print(
                f"missing {src}: apt-get install linux-source-6.1 linux-source-6.12",
                file=sys.stderr,
            )
            return 2
    v61, v612 = debian_version("6.1"), debian_version("6.12")
    (REAL_CACHE / "bench").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="store-", dir=REAL_CACHE / "bench"))
    try:
        tree = work / "tree"
        t_tar: list[float] = []
        t_imp: list[float] = []
        cpu_tar: list[float] = []
        cpu_imp: list[float] = []
        untar = ["tar", "xf", str(SOURCES["6.1"]), "-C", str(tree)]
        for _ in range(args.repeat):
            drop(tree)
            tree.mkdir()
            t_tar.append(timed(lambda: subprocess.run(untar, check=True)))
            cpu_tar.append(CPU[-1])
            drop(work / "store.git")
            store = ReleaseStore(work / "store.git")
            t_imp.append(timed(lambda: store.import_tarball(v61, SOURCES["6.1"])))  # noqa: B023
            cpu_imp.append(CPU[-1])
        tree = tree / "linux-source-6.1"
        d_tree = du(tree)
        d_store61 = du(store.path)
        t_imp612 = timed(lambda: store.import_tarball(v612, SOURCES["6.12"]))
        d_store = du(store.path)

        debs = sorted((REAL_CACHE / "debian-src").glob("linux_6.1.*.debian.tar.xz"))
        with store.tree(v61) as view:
            all_paths = set(view.paths())
        if debs:
            wanted = series_paths(debs[-1])
            source = f"files touched by {debs[-1].name}'s series"
        else:
            wanted = sorted(all_paths)[:: max(1, len(all_paths) // 400)][:400]
            source = "400 paths sampled from the tree (no debian.tar.xz in the cache)"
        present = [p for p in wanted if p in all_paths]
        got: dict[str, bytes | None] = {}

        def read_store() -> None:  # a fresh TreeView: cat-file started, used and reaped
            with store.tree(v61) as view:
                got.update(view.read_many(present))

        t_read = min(timed(read_store) for _ in range(3))
        cpu_read = min(CPU[-3:])
        dir_tree = DirTree(tree)
        t_dir = min(timed(lambda: dir_tree.read_many(present)) for _ in range(3))
        cpu_dir = min(CPU[-3:])
        assert all(got[p] == dir_tree.read(p) for p in present), "TreeView and the tree disagree"

        best_tar, best_imp = min(t_tar), min(t_imp)
        rows = [
            (
                "import 6.1 / tar xf 6.1",
                f"{best_imp:.1f} s / {best_tar:.1f} s",
                best_imp / best_tar,
                "<= 1.5",
            ),
            (
                "store (6.1 + 6.12) / one extracted tree",
                f"{d_store / 2**20:.0f} MiB / {d_tree / 2**20:.0f} MiB",
                d_store / d_tree,
                "<= 0.40",
            ),
            (
                f"TreeView read of {len(present)} files / DirTree",
                f"{t_read * 1000:.0f} ms / {t_dir * 1000:.0f} ms",
                t_read / t_dir if t_dir else float("inf"),
                "TreeView < 200 ms",
            ),
        ]
        print(
            f"release store benchmark: {SOURCES['6.1'].name} ({v61}), {SOURCES['6.12'].name} ({v612})"
        )
        for name, figures, ratio, goal in rows:
            print(f"  {name:<45} {figures:<28} ratio {ratio:5.2f}   goal {goal}")
        print(
            f"  (6.12 import into the 6.1 store: {t_imp612:.1f} s; store after 6.1 alone: {d_store61 / 2**20:.0f} MiB)"
        )
        print(f"  read set: {source}; {len(wanted)} paths, {len(present)} in the 6.1 tree")
        print(
            f"  CPU seconds (all processes): import {min(cpu_imp):.1f} / tar xf {min(cpu_tar):.1f}"
            f" = {min(cpu_imp) / min(cpu_tar):.2f}; load average {os.getloadavg()[0]:.1f}"
            f" on {os.cpu_count()} CPUs (wall ratios are only fair on an idle machine)"
        )
        print(f"  CPU seconds of the batch read: TreeView {cpu_read:.3f} / DirTree {cpu_dir:.3f}")
        print(
            json.dumps(
                {
                    "schema": "ktrack.bench-store/1",
                    "tar_s": t_tar,
                    "import_s": t_imp,
                    "tar_cpu_s": cpu_tar,
                    "import_cpu_s": cpu_imp,
                    "load": os.getloadavg()[0],
                    "import_612_s": t_imp612,
                    "tree_bytes": d_tree,
                    "store_61_bytes": d_store61,
                    "store_bytes": d_store,
                    "read_files": len(present),
                    "treeview_read_s": t_read,
                    "treeview_read_cpu_s": cpu_read,
                    "dirtree_read_s": t_dir,
                }
            )
        )
        ok = best_imp / best_tar <= 1.5 and d_store / d_tree <= 0.40 and t_read < 0.2
        return 0 if ok else 1
    finally:
        if not args.keep:
            drop(work)


if __name__ == "__main__":
    sys.exit(main())
