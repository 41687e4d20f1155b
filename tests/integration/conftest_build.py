"""Helpers for the real-kernel build and boot tests: the cached Debian 6.1 tree and cheap copies.

Imported explicitly by ``test_build_boot_real*.py`` and ``bench/bench_build.py``. The cache
location is read when this module is imported, before any fixture isolates XDG dirs, so that
the extracted tree and ccache survive between runs; ``KTRACK_TEST_CACHE`` overrides it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tracker.config import default_cache

SOURCE_TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
REAL_CACHE = Path(os.environ.get("KTRACK_TEST_CACHE") or default_cache())


def kernel_source(tarball: Path = SOURCE_TARBALL, cache: Path = REAL_CACHE) -> Path:
    """The extracted tree of ``tarball`` under ``cache/kernel-src`` (extracted once, atomically)."""
    name = tarball.name.split(".tar")[0]
    root = cache / "kernel-src"
    dest = root / name
    if (dest / "Makefile").is_file():
        return dest
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)], check=True)
        (top,) = list(tmp.iterdir())
        os.rename(top, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def linked_tree(base: Path, dest: Path) -> Path:
    """A copy of ``base`` at ``dest`` made of hard links (seconds for a kernel tree).

    Never write into it in place: ``replace_file`` unlinks before writing.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(base), str(dest)], check=True)
    return dest


def replace_file(tree: Path, relpath: str, text: str) -> None:
    path = tree / relpath
    path.unlink()
    path.write_text(text, encoding="utf-8")


def ccache_dir(cache: Path = REAL_CACHE) -> Path:
    return cache / "ccache"


def machine_smoke_test(tests: Path, machine: str) -> Path:
    """A smoke-test folder at ``tests`` whose one C test passes when the guest's ``uname -m`` is
    ``machine`` (compiled for the guest: a test built for the host could not run there)."""
    tests.mkdir()
    (tests / "machine.c").write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <sys/utsname.h>\n"
        "int main(void) { struct utsname u; uname(&u);\n"
        f'  printf("KTRACK-TEST machine %s %s\\n", strcmp(u.machine, "{machine}") ? "fail" : "pass",'
        " u.machine); return 0; }\n"
    )
    (tests / "run").write_text("#!/bin/sh\n./machine\n")
    return tests
