"""Forward-port measured on the real patch sets: ``ktrack port`` of a version against the
maintainer's own port (a later version in ``patches/``), patch by patch.

For each patch of the hand-made version: is the proposal's patch of the same name equal to it
once whitespace runs and hunk line numbers are normalised (``equal``), do at least the changed
lines (``+``/``-``) agree in order (``same-change``), or do both leave the same files on the
target (``same-result``)? See ``tracker/port/compare.py``. Also the hunks GNU patch
refuses at the set's fuzz (everything not ``clean``/``offset``/``fuzz``/``already-applied``) and
how many of them the port merged automatically.

The releases come from the store of ``--home`` (see scripts/demo for a mirror of Debian's kernel
sources; ``ktrack fetch`` imports them). Nothing is built.

Run: ``.venv/bin/python bench/port_real.py --config C --home H vcontext@0.1 0.2 --to 6.12.117``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tracker.patchsets.manifest import resolve
from tracker.port.compare import compare


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--home", required=True)
    ap.add_argument("spec", help="the version to port, e.g. vcontext@0.1")
    ap.add_argument("reference", help="the maintainer's port of it, e.g. 0.2")
    ap.add_argument("--to", required=True)
    args = ap.parse_args()
    ktrack = str(Path(sys.executable).with_name("ktrack"))
    with tempfile.TemporaryDirectory(prefix="ktrack-port-bench-") as tmp:
        out = Path(tmp) / "out"
        argv = [ktrack, "--config", args.config, "--home", args.home, "port", args.spec]
        argv += ["--to", args.to, "--out", str(out), "--json"]
        res = subprocess.run(argv, capture_output=True, text=True, check=False)
        if res.returncode not in (0, 1):
            print(res.stderr, file=sys.stderr)
            return res.returncode
        doc = json.loads(res.stdout)
        from tracker.config import load

        settings = load(args.config, home=args.home)
        name = args.spec.partition("@")[0]
        _, ref = resolve(settings.patchset_paths, f"{name}@{args.reference}")
        from tracker.sources.store import ReleaseStore

        with ReleaseStore.open(settings).tree(doc["target"]) as tree:
            verdict = compare(out, ref.source, tree, ref.fuzz)
    refused = merged = 0
    for p in doc["patches"]:
        for f in p["files"]:
            for h in f["hunks"]:
                if h["action"] in ("merged", "needs-human"):
                    refused += 1
                    merged += h["action"] == "merged"
    print(f"{args.spec} -> {args.to} (base {doc['base_release']}): {doc['counts']}")
    print(f"  hunks: {doc['hunks']}; GNU patch refuses {refused}, merged automatically {merged}")
    for p in doc["patches"]:
        print(f"  {p['name']}: {p['status']}")
    for name, v in verdict.items():
        print(f"  {args.reference}'s {name}: {v}")
    counts: dict[str, int] = {}
    for v in verdict.values():
        counts[v] = counts.get(v, 0) + 1
    print(f"  against {args.reference}: {counts} of {len(verdict)} patches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
