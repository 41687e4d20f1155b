"""Memory benchmark: the peak RSS of ``ktrack check`` on a 50 MB patch, as a ratio to its size.

The case (generated, so it needs no download): a synthetic kernel-shaped tree of ``--files``
source files of 2,048 lines, and one diff of about ``--size`` MB that modifies every one of them
(a hunk every 16 lines: a new subsystem's churn) and creates new files of 128 KiB until the size
is reached (a new driver tree, as OpenVZ's or VServer's single diffs do).

Measured, each as a whole process (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper that
runs only it):

1. ``ktrack check demo DIR --tree TREE --json`` (goal: peak RSS <= 3x the patch size);
2. ``ktrack --version``: the interpreter and imports alone, for scale;
3. GNU ``patch -p1 --dry-run`` on a copy of the tree: the peer, which streams the patch.

Run: ``.venv/bin/python bench/bench_memory.py [--size MB]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LINE = b"\tvalue = compute_something(%7d, table[%7d]); /* line of a file */\n"  # 64 bytes
LINES_PER_FILE = 2048

_MEASURE = """
import resource, subprocess, sys
res = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(res.returncode, peak)
sys.stderr.write(res.stderr.decode(errors="replace")[-2000:])
"""


def peak_rss(argv: list[str], cwd: Path) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of ``argv`` run alone as a child of a fresh wrapper."""
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *argv], cwd=cwd, capture_output=True, text=True
    )
    rc, peak = out.stdout.split()
    if out.stderr.strip():
        print(f"   ({argv[0]} said: {out.stderr.strip().splitlines()[-1]})")
    return int(rc), int(peak)


def _file_lines(seed: int) -> list[bytes]:
    return [LINE % (seed * LINES_PER_FILE + i, i) for i in range(LINES_PER_FILE)]


def generate(root: Path, size: int, files: int) -> tuple[Path, Path]:
    """(tree, patch): the tree of ``files`` files and one diff of about ``size`` bytes."""
    tree = root / "tree"
    for n in range(files):
        d = tree / "drivers" / f"sub{n % 16:02d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"file{n:04d}.c").write_bytes(b"".join(_file_lines(n)))
    patch = root / "big.patch"
    with patch.open("wb") as fh:
        for n in range(files):
            name = f"drivers/sub{n % 16:02d}/file{n:04d}.c".encode()
            fh.write(b"--- a/%s\n+++ b/%s\n" % (name, name))
            lines = _file_lines(n)
            for at in range(8, LINES_PER_FILE - 8, 16):  # 1-based line `at` changes
                fh.write(b"@@ -%d,7 +%d,7 @@\n" % (at - 3, at - 3))
                for i in range(at - 4, at + 3):
                    if i == at - 1:
                        fh.write(b"-" + lines[i] + b"+" + lines[i].replace(b"line", b"LINE"))
                    else:
                        fh.write(b" " + lines[i])
        n = 0
        while fh.tell() < size:
            body = b"".join(b"+" + ln for ln in _file_lines(100_000 + n))
            fh.write(b"--- /dev/null\n+++ b/drivers/new/f%05d.c\n" % n)
            fh.write(b"@@ -0,0 +1,%d @@\n" % LINES_PER_FILE)
            fh.write(body)
            n += 1
    return tree, patch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=float, default=50, help="patch size in MB (default 50)")
    ap.add_argument("--files", type=int, default=160, help="files the patch modifies")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ktrack-bench-mem-") as tmp:
        root = Path(tmp)
        tree, patch = generate(root, int(args.size * 1e6), args.files)
        size = patch.stat().st_size
        ps = root / "patches" / "demo"
        ps.mkdir(parents=True)
        shutil.move(patch, ps / "big.patch")
        (ps / "patchset.toml").write_text(
            'name = "demo"\nsummary = "a 50 MB diff"\n\n[[versions]]\nversion = "1"\nbase = "6.1"\nformat = "diff"\n'
            'source = "big.patch"\n'
        )
        (root / "ktrack.toml").write_text('[patchsets]\npaths = ["patches"]\n')
        ktrack = [sys.executable, "-m", "tracker.cli", "--home", str(root / "home")]
        print(f"patch: {size / 1e6:.1f} MB ({args.files} files modified, the rest created)")
        rc, k_peak = peak_rss(
            [*ktrack, "check", "demo", "6.1", "--tree", str(tree), "--json"], root
        )
        check = subprocess.run(
            [*ktrack, "check", "demo", "6.1", "--tree", str(tree), "--json"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        status = json.loads(check.stdout)["status"] if check.stdout else f"exit {check.returncode}"
        _, base = peak_rss([*ktrack, "--version"], root)
        g_rc, g_peak = peak_rss(
            ["patch", "-p1", "--dry-run", "-s", "-i", str(ps / "big.patch")], tree
        )
        print(f"{'':32}{'peak RSS':>12}{'x patch':>10}")
        print(f"{'ktrack check (' + status + ')':32}{k_peak / 1e6:>10.0f} MB{k_peak / size:>9.2f}x")
        print(f"{'  of which imports alone':32}{base / 1e6:>10.0f} MB{base / size:>9.2f}x")
        print(
            f"{'GNU patch --dry-run (exit ' + str(g_rc) + ')':32}{g_peak / 1e6:>10.0f} MB{g_peak / size:>9.2f}x"
        )
        goal = "met" if k_peak <= 3 * size else "NOT met"
        print(
            f"goal: ktrack peak <= 3x the patch size: {goal} ({k_peak / size:.2f}x); "
            f"GNU patch uses {k_peak / max(g_peak, 1):.0f}x less"
        )
        if rc not in (0, 1):
            sys.exit(f"ktrack check failed (exit {rc})")


if __name__ == "__main__":
    main()
