"""A real kernel tarball (Debian's linux-source-6.1) in the release store, read through TreeView
and checked against GNU tar reading the same tarball."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest_store import SOURCES, real_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def linux61() -> tuple[object, str]:
    if not SOURCES["6.1"].is_file():
        pytest.fail(f"{SOURCES['6.1']} is missing: install the Debian package linux-source-6.1")
    return real_store("6.1")


def test_every_member_is_in_the_store(linux61: tuple, tmp_path: Path) -> None:
    store, version = linux61
    listing = subprocess.run(
        ["tar", "-tvf", str(SOURCES["6.1"])], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    files = {}
    for line in listing:
        kind, name = line[0], line.split(None, 5)[5]
        if kind == "d":
            continue
        name = name.split(" -> ")[0].split(" link to ")[0]
        files[name.split("/", 1)[1]] = kind  # strip linux-source-6.1/
    with store.tree(version) as tree:
        paths = tree.paths()
        assert set(paths) == set(files)
        assert len(paths) > 70_000
        links = [p for p, k in files.items() if k == "l"]
        assert links and all(tree.mode(p) == 0o120000 for p in links[:50])


def test_treeview_reads_what_tar_extracts(linux61: tuple, tmp_path: Path) -> None:
    store, version = linux61
    picks = [
        "Makefile",
        "kernel/sched/core.c",
        "fs/proc/base.c",
        "scripts/checkpatch.pl",
        "include/linux/sched.h",
        "arch/x86/Kconfig",
        "Documentation/process/submitting-patches.rst",
        "drivers/net/loopback.c",
    ]
    subprocess.run(
        ["tar", "-xf", str(SOURCES["6.1"]), "-C", str(tmp_path)]
        + [f"linux-source-6.1/{p}" for p in picks],
        check=True,
    )
    root = tmp_path / "linux-source-6.1"
    with store.tree(version) as tree:
        got = tree.read_many(picks)
        for p in picks:
            assert got[p] == (root / p).read_bytes(), p
        assert tree.mode("scripts/checkpatch.pl") == 0o100755
        assert tree.mode("Makefile") == 0o100644
        make = got["Makefile"] or b""
        sub = version.split(".")
        assert f"VERSION = {sub[0]}\nPATCHLEVEL = {sub[1]}\n".encode() in make
        assert tree.read("no/such/file.c") is None


def test_batch_read_is_fast(linux61: tuple) -> None:
    store, version = linux61
    with store.tree(version) as tree:
        paths = [p for p in tree.paths() if p.startswith(("fs/", "kernel/", "mm/"))][::5][:400]
        start = time.monotonic()
        got = tree.read_many(paths)
        elapsed = time.monotonic() - start
    assert len(got) == 400 and all(v is not None for v in got.values())
    assert elapsed < 2.0  # bench/bench_store.py measures the real figure (goal 0.2 s)
