"""Synthetic kernels for pipeline tests: a git repository whose tags are releases, with a
Makefile that answers the configure and build goals ktrack runs (tinyconfig, olddefconfig, bzImage)
in a few milliseconds, or slowly when told (``KTRACK_FAKE_BUILD_SECONDS``), or by filling the disk
(``KTRACK_FAKE_BUILD_BYTES``; ``KTRACK_FAKE_CONFIG_BYTES`` fills it at olddefconfig), compiles
kernel/fork.c with ``$(CC)`` when ``KTRACK_FAKE_COMPILE`` is set, and fails once (then passes) when
``KTRACK_FAKE_FLAKY`` names a file that does not exist yet. A tree whose kernel/ folder holds the word ``KTRACK_BREAK`` fails
to build with a compiler-style error naming that file and line; ``KTRACK_WARN(name)`` there gives
a warning 'unused variable "name"' at that line, and the build goes on. ``olddefconfig`` drops
every ``KTRACK_DROP`` symbol, and fails when kernel/ holds ``KTRACK_NOCONFIG``. A tree with both
``NO_VX`` and ``vx_count`` (what ``PATCH`` adds) fails: an upstream change that breaks the set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FORK_C = (
    "".join(f"/* fork.c line {i} */\n" for i in range(1, 40))
    + "int copy_process(void)\n{\n\treturn 0;\n}\n"
)

MAKEFILE = """\
# a stand-in for Kbuild: enough for ktrack's configure and build stages
O ?= .
SECONDS_ ?= $(KTRACK_FAKE_BUILD_SECONDS)
BYTES_ ?= $(KTRACK_FAKE_BUILD_BYTES)
CONFIG_BYTES_ ?= $(KTRACK_FAKE_CONFIG_BYTES)
COMPILE_ ?= $(KTRACK_FAKE_COMPILE)
FLAKY_ ?= $(KTRACK_FAKE_FLAKY)
.PHONY: tinyconfig defconfig olddefconfig bzImage
tinyconfig defconfig:
\tprintf 'CONFIG_64BIT=y\\n' > $(O)/.config
olddefconfig:
\t@if [ -n "$(CONFIG_BYTES_)" ]; then head -c $(CONFIG_BYTES_) /dev/zero > $(O)/.fill; fi
\t@sed -i '/KTRACK_DROP/d' $(O)/.config
\t@if grep -rqs KTRACK_NOCONFIG kernel; then echo 'kernel/Kconfig:1: syntax error' >&2; exit 1; fi
bzImage:
\t@if [ -n "$(SECONDS_)" ]; then sleep $(SECONDS_); fi
\t@if [ -n "$(BYTES_)" ]; then head -c $(BYTES_) /dev/zero > $(O)/vmlinux.o; fi
\t@if grep -rn KTRACK_BREAK kernel > $(O)/broken; then \\
\t  sed 's/^\\([^:]*:[0-9]*\\):.*/\\1:2: error: broken on purpose/' $(O)/broken >&2; exit 2; fi
\t@if [ -n "$(FLAKY_)" ] && [ ! -e "$(FLAKY_)" ]; then touch "$(FLAKY_)"; \\
\t  echo "kernel/fork.c:1:2: error: failed once" >&2; exit 2; fi
\t@if [ -n "$(COMPILE_)" ]; then $(CC) -c -o $(O)/fork.o kernel/fork.c; fi
\t@if grep -rqs NO_VX kernel && grep -rqs vx_count kernel; then \\
\t  echo "kernel/fork.c:42:2: error: 'vx_count' undeclared (NO_VX)" >&2; exit 2; fi
\t@grep -rn 'KTRACK_WARN([a-z_]*)' kernel | \\
\t  sed 's/^\\([^:]*:[0-9]*\\):.*KTRACK_WARN(\\([a-z_]*\\)).*/\\1:3: warning: unused variable "\\2"/' >&2 || true
\tmkdir -p $(O)/arch/x86/boot && printf 'kernel\\n' > $(O)/arch/x86/boot/bzImage
"""

PATCH = """\
Subject: [PATCH] fork: count contexts

--- a/kernel/fork.c
+++ b/kernel/fork.c
@@ -39,5 +39,6 @@
 /* fork.c line 39 */
 int copy_process(void)
 {
+\tvx_count++;
 \treturn 0;
 }
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def kernel_repo(root: Path, releases: list[str]) -> Path:
    """A repository with one commit and tag per release (``6.1`` -> tag ``v6.1``)."""
    repo = root / "linux"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "master")
    (repo / "kernel").mkdir()
    (repo / "kernel" / "fork.c").write_text(FORK_C)
    (repo / "Makefile").write_text(MAKEFILE)
    for i, version in enumerate(releases):
        (repo / "VERSION").write_text(f"{version}\n{i}\n")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"Linux {version}")
        git(repo, "tag", f"v{version}")
    return repo


def workspace(root: Path, repo: Path, *, name: str = "demo") -> Path:
    """A folder with ktrack.toml (a git feed on ``repo``) and a one-patch quilt set ``name``."""
    ws = root / "ws"
    series = ws / "patches" / name / "0.1"
    series.mkdir(parents=True)
    (series / "0001-fork-count-contexts.patch").write_text(PATCH)
    (series / "series").write_text("0001-fork-count-contexts.patch\n")
    (ws / "patches" / name / "patchset.toml").write_text(
        f'name = "{name}"\nsummary = "demo"\n\n[[versions]]\nversion = "0.1"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "0.1"\n\n[track]\nkernels = ">=6.1"\ntargets = ["x86_64:tinyconfig"]\n'
    )
    (ws / "ktrack.toml").write_text(
        f'[feeds.local]\nkind = "git"\nurl = "{repo}"\ntags = "v6.*"\n\n[patchsets]\npaths = ["patches"]\n'
    )
    return ws


def ktrack_argv(ws: Path, *args: str, home: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "tracker.cli", "--home", str(home or ws / "data"), *args]


def ktrack(
    ws: Path,
    *args: str,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(
        ktrack_argv(ws, *args, home=home),
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full,
    )
