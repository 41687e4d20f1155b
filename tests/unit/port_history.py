"""Synthetic releases for the port tests: a base and a target tree in a release store under
``tmp_path`` (tarball imports: no history; or a git feed: the history between them), a patch set
written for the base, and the command line that ports it.

Imported explicitly by tests/unit/test_port*.py.
"""

from __future__ import annotations

import difflib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest_releases import make_tarball

from tracker.sources.store import ReleaseStore

Files = dict[str, list[str]]


def c_file(name: str, functions: list[str], top: int = 0) -> list[str]:
    """A C file of small functions; every line is distinct enough for the engine and git."""
    lines = [f"/* {name} */\n", "#include <linux/kernel.h>\n", "\n"]
    lines += [f"static int top_{k} = {k};\n" for k in range(top)]
    for fn in functions:
        lines += [
            f"int {fn}(struct task_struct *p)\n",
            "{\n",
            f"\tint {fn}_a = {len(fn)};\n",
            f"\tint {fn}_b = p->pid;\n",
            f'\tpr_info("{fn}\\n");\n',
            f"\treturn {fn}_a + {fn}_b;\n",
            "}\n",
            "\n",
        ]
    return lines


def base_files() -> Files:
    return {
        "kernel/ctx.c": c_file("kernel/ctx.c", [f"ctx_fn_{i}" for i in range(8)]),
        "fs/proc/base.c": c_file("fs/proc/base.c", [f"proc_fn_{i}" for i in range(8)]),
        "Makefile": ["VERSION = 6\n", "PATCHLEVEL = 1\n"],
    }


def edit(lines: list[str], old: str, new: list[str]) -> list[str]:
    """``lines`` with the line ``old`` replaced by ``new`` (exactly one occurrence)."""
    assert lines.count(old) == 1, old
    i = lines.index(old)
    return [*lines[:i], *new, *lines[i + 1 :]]


def after(lines: list[str], anchor: str, new: list[str]) -> list[str]:
    i = lines.index(anchor)
    return [*lines[: i + 1], *new, *lines[i + 1 :]]


def diff(path: str, before: list[str], after_: list[str]) -> str:
    return "".join(difflib.unified_diff(before, after_, f"a/{path}", f"b/{path}", n=3))


def _encode(files: Files) -> dict[str, bytes]:
    return {p: "".join(lines).encode() for p, lines in files.items()}


def tarball_store(home: Path, releases: dict[str, Files]) -> ReleaseStore:
    """A store of ``home`` holding each release as an imported tarball (no history)."""
    store = ReleaseStore(home / "store.git")
    home.mkdir(parents=True, exist_ok=True)
    for version, files in releases.items():
        tb = make_tarball(home / f"linux-{version}.tar.gz", _encode(files), top=f"linux-{version}")
        store.import_tarball(version, tb)
        tb.unlink()
    return store


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ}
    ).stdout


def git_store(home: Path, base: Files, steps: list[tuple[str, Files]], target: str) -> ReleaseStore:
    """A store fetched from a git repository: ``v6.1`` = ``base``, then one commit per step
    (subject, whole tree), the last one tagged ``target``."""
    repo = home / "upstream"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "master")

    def commit(files: Files, subject: str) -> None:
        for p in _git(repo, "ls-files").splitlines():
            (repo / p).unlink()
        for p, data in _encode(files).items():
            (repo / p).parent.mkdir(parents=True, exist_ok=True)
            (repo / p).write_bytes(data)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", subject)

    commit(base, "Linux 6.1")
    _git(repo, "tag", "v6.1")
    for subject, files in steps:
        commit(files, subject)
    _git(repo, "tag", f"v{target}")
    store = ReleaseStore(home / "store.git")
    store.fetch_git(str(repo), "v*")
    return store


@dataclass(frozen=True)
class Setup:
    cfg: Path
    home: Path
    out: Path

    def argv(self, *extra: str, to: str = "6.2") -> list[str]:
        return [
            "--config", str(self.cfg), "--home", str(self.home),
            "port", "demo@0.1", "--to", to, "--out", str(self.out), *extra,
        ]  # fmt: skip


def patchset(tmp_path: Path, patches: dict[str, str], *, header: str = "") -> Setup:
    """``demo`` 0.1 (base 6.1, quilt, fuzz 0) holding ``patches`` in order."""
    ps = tmp_path / "patches" / "demo"
    q = ps / "0.1"
    q.mkdir(parents=True)
    (q / "series").write_text("".join(f"{n}\n" for n in patches))
    for name, text in patches.items():
        (q / name).write_text(header + text)
    (q / "kconfig").write_text("CONFIG_DEMO=y\n")
    (ps / "tests").mkdir()
    (ps / "tests" / "run").write_text("#!/bin/sh\nexit 0\n")
    (ps / "patchset.toml").write_text(
        'name = "demo"\nsummary = "a demo"\n\n[[versions]]\nversion = "0.1"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "0.1"\nkconfig = "0.1/kconfig"\ntests = "tests"\n'
    )
    cfg = tmp_path / "ktrack.toml"
    cfg.write_text(f'[patchsets]\npaths = ["{tmp_path / "patches"}"]\n')
    return Setup(cfg, tmp_path / "home", tmp_path / "out")
