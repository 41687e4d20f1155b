"""Build and boot benchmarks for the configure/build/boot stages.

1. ccache: build release A with an empty ccache (cold), then A again in another directory (what
   a matrix of several patch sets on one release does), then release B of the same series with
   that cache; print both ratios to cold (goal: <= 0.3) and, for B, the hit count and the
   headers that every unit includes and that differ between A and B (a changed line there
   changes every unit's preprocessed text, so no per-unit cache can hit).
   A and B default to the two newest pristine ``linux_6.1.*.orig.tar.xz`` in
   $XDG_CACHE_HOME/ktrack/debian-src (``apt-get source --download-only linux=6.1.176-1`` and
   ``linux=6.1.170-3``: see ``apt-cache showsrc linux`` for what the archive holds), or
   ``--first TARBALL --other TARBALL``.
2. Boot-stage overhead: ``boot_and_test`` of the built kernel (initramfs made, QEMU run, console
   parsed) against a bare QEMU run of the same kernel and initramfs; print the difference of the
   medians (goal: < 0.5 s).

Run: ``.venv/bin/python bench/bench_build.py [--first T] [--other T] [--skip-build IMAGE]``
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

from conftest_build import REAL_CACHE, SOURCE_TARBALL, kernel_source, linked_tree  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.boot.qemu import QemuX86_64, boot_and_test  # noqa: E402
from tracker.build.kbuild import build  # noqa: E402
from tracker.build.kconfig import configure  # noqa: E402
from tracker.vocab import Status  # noqa: E402

TARGET = Target.parse("x86_64:tinyconfig")


def ccache_stats(cache: Path) -> str:
    out = subprocess.run(
        ["ccache", "-d", str(cache), "--print-stats"], capture_output=True, text=True
    ).stdout
    stats = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    hits = int(stats.get("direct_cache_hit", 0)) + int(stats.get("preprocessed_cache_hit", 0))
    misses = int(stats.get("cache_miss", 0))
    return f"{hits} hits / {misses} misses"


def timed_build(tree: Path, job: Path, cache: Path) -> tuple[float, Path]:
    src = linked_tree(tree, job / "src")
    out = job / "out"
    conf = configure(src, out, TARGET, None, log=job / "configure.log", ccache_dir=cache)
    if conf.status is not Status.PASS:
        raise SystemExit(f"configure {tree}: {conf.summary}")
    subprocess.run(["ccache", "-d", str(cache), "-z"], check=True, capture_output=True)
    start = time.monotonic()
    built = build(src, out, TARGET, jobs=2, log=job / "build.log", ccache_dir=cache, timeout=3600)
    elapsed = time.monotonic() - start
    if built.status is not Status.PASS:
        raise SystemExit(f"build {tree}: {built.status.value}: {built.summary}")
    print(f"  {tree.name}: {elapsed:.1f} s ({ccache_stats(cache)})", flush=True)
    return elapsed, built.artifacts["image"]


def common_headers(out: Path) -> set[str]:
    """Headers under include/ and arch/ that both init/main.o and kernel/fork.o depend on (read
    from Kbuild's .cmd dependency lists), relative to the source tree."""
    found: list[set[str]] = []
    for cmd in (out / "init/.main.o.cmd", out / "kernel/.fork.o.cmd"):
        deps = set()
        for token in cmd.read_text().replace("\\\n", " ").split():
            # fixdep writes source paths as the compiler saw them: ../src/..., or absolute
            token = token.removeprefix("$(srctree)/").removeprefix("../src/")
            if "/src/" in token and token.startswith("/"):
                token = token.split("/src/", 1)[1]
            if token.endswith(".h") and token.startswith(("include/", "arch/")):
                deps.add(token)
        found.append(deps)
    return found[0] & found[1]


def changed(tree_a: Path, tree_b: Path, files: set[str]) -> list[str]:
    def text(tree: Path, rel: str) -> bytes | None:
        path = tree / rel
        return path.read_bytes() if path.is_file() else None

    return sorted(f for f in files if text(tree_a, f) != text(tree_b, f))


def bench_ccache(first: Path, other: Path | None, work: Path, cache: Path | None) -> Path:
    tree_a = kernel_source(first)
    tree_b = kernel_source(other) if other is not None else None
    cache = cache or work / "ccache"
    print(f"ccache: cold {tree_a.name}, then again in another dir", flush=True)
    cold, image = timed_build(tree_a, work / "a", cache)
    again, _ = timed_build(tree_a, work / "a2", cache)
    print(f"  same release, another dir: {again:.1f}/{cold:.1f} = {again / cold:.2f}", flush=True)
    if tree_b is not None:
        warm, _ = timed_build(tree_b, work / "b", cache)
        print(f"  {tree_b.name} after {tree_a.name}: {warm:.1f}/{cold:.1f} = {warm / cold:.2f} "
              "(goal <= 0.3)")  # fmt: skip
        everywhere = common_headers(work / "a" / "out")
        diff = changed(tree_a, tree_b, everywhere)
        print(f"  of {len(everywhere)} headers included by both init/main.c and kernel/fork.c, "
              f"{len(diff)} differ between the releases: {', '.join(diff[:8]) or '-'}")  # fmt: skip
    return image


def newest_origs() -> list[Path]:
    """Pristine 6.1 tarballs in the debian-src cache, newest first."""
    found = (REAL_CACHE / "debian-src").glob("linux_6.1.*.orig.tar.xz")
    return sorted(found, key=lambda p: int(p.name.split(".")[2].split("-")[0]), reverse=True)


def bench_boot(image: Path, work: Path, boots: int) -> None:
    """Alternate stage runs and bare runs so that load changes hit both alike."""
    stage: list[float] = []
    bare: list[float] = []
    argv: list[str] = []
    for i in range(boots):
        start = time.monotonic()
        boot, _ = boot_and_test(
            image, TARGET, None, work=work / f"boot{i}", log=work / f"boot{i}.log", timeout=120
        )
        stage.append(time.monotonic() - start)
        if boot.status is not Status.PASS:
            raise SystemExit(f"boot: {boot.status.value}: {boot.summary}")
        argv = QemuX86_64().argv(image, work / f"boot{i}" / "initramfs.cpio.gz")
        start = time.monotonic()
        subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=120)
        bare.append(time.monotonic() - start)
    s, b = statistics.median(stage), statistics.median(bare)
    print(
        f"boot stage {s:.2f} s vs bare QEMU {b:.2f} s (medians of {boots}, alternated): "
        f"overhead {s - b:.2f} s (goal < 0.5 s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=Path, help="tarball of the release built first")
    parser.add_argument("--other", type=Path, help="tarball of a second point release")
    parser.add_argument("--same-only", action="store_true", help="skip the second release")
    parser.add_argument("--skip-build", type=Path, metavar="IMAGE", help="only the boot bench")
    parser.add_argument("--boots", type=int, default=7)
    parser.add_argument(
        "--ccache",
        type=Path,
        help="cache dir (default: a new empty one); a dir without entries for this config is "
        "as cold, and the printed miss count shows it",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ktrack-bench-", dir=REAL_CACHE) as tmp:
        work = Path(tmp)
        if args.skip_build:
            image = args.skip_build
        else:
            origs = newest_origs()
            first = args.first or (origs[0] if origs else SOURCE_TARBALL)
            other = args.other or next((o for o in origs if o != first), None)
            if other is None and not args.same_only:
                raise SystemExit("no second 6.1 release: pass --other TARBALL or --same-only")
            if args.same_only:
                other = None
            image = bench_ccache(first, other, work, args.ccache)
            keep = work / "bzImage"
            shutil.copy(image, keep)
            image = keep
        bench_boot(image, work, args.boots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
