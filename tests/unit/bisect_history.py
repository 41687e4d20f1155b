"""Synthetic upstream histories for bisect tests and the bench, built with ``git fast-import``.

A history is a mainline of commits with side branches merged back (``--no-ff`` style merges),
mostly irrelevant commits (other files), harmless commits to the patched files (lines far from
the patch's hunks: at most an offset), and known breaking commits placed on purpose: a commit
that renames a function a hunk depends on, an evil merge, a side-branch commit, a commit that
rewrites a context line of another patch. The generator remembers which commit is which.

``GnuChecker`` is the tests' own apply checker: GNU ``patch`` on the files read from a commit,
per hunk, so the search is tested independently of the apply engine.
"""

from __future__ import annotations

import difflib
import random
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracker import proc
from tracker.bisect.model import HunkRef, Verdict
from tracker.vocab import Status

PROC = "fs/proc/base.c"
UTIL = "mm/util.c"
HEADER = "include/linux/proc_fs.h"
PROC_MOVED = "fs/proc/pid_status.c"


def _c_file(name: str, functions: list[str], churn: int) -> list[str]:
    lines = [f"/* {name}: synthetic */\n", "#include <linux/kernel.h>\n", "\n"]
    lines += [f"static int top_{k} = {k};\n" for k in range(churn)]
    lines.append("\n")
    for fn in functions:
        lines += [
            f"static int {fn}(struct seq_file *m)\n",
            "{\n",
            f"\tint a = {len(fn)};\n",
            "\tint b = 2;\n",
            f'\tseq_printf(m, "{fn}\\n");\n',
            "\treturn a + b;\n",
            "}\n",
            "\n",
        ]
    lines += [f"static int bottom_{k} = {k};\n" for k in range(churn)]
    return lines


def initial_tree(irrelevant: int = 120) -> dict[str, list[str]]:
    fillers = [f"proc_filler_{i}" for i in range(12)]
    tree = {
        PROC: _c_file(PROC, [*fillers[:6], "proc_pid_status", *fillers[6:]], 24),
        UTIL: _c_file(UTIL, [f"util_fn_{i}" for i in range(6)] + ["kstrdup_quotable"], 24),
        HEADER: ["/* proc_fs.h */\n", "int proc_pid_status(struct seq_file *m);\n"],
    }
    for i in range(irrelevant):
        tree[f"drivers/d{i % 17}/file{i}.c"] = [f"int v{i}_{k} = {k};\n" for k in range(12)]
    return tree


def make_patch(path: str, before: list[str], after: list[str]) -> bytes:
    diff = difflib.unified_diff(before, after, f"a/{path}", f"b/{path}", n=3)
    return "".join(diff).encode()


def patch_proc(tree: dict[str, list[str]]) -> bytes:
    """Adds a line right after ``proc_pid_status``'s opening: its context holds the signature."""
    before = tree[PROC]
    i = before.index("static int proc_pid_status(struct seq_file *m)\n")
    after = [*before[: i + 3], "\tvx_check(m);\n", *before[i + 3 :]]
    return make_patch(PROC, before, after)


def patch_util(tree: dict[str, list[str]]) -> bytes:
    before = tree[UTIL]
    i = before.index("static int kstrdup_quotable(struct seq_file *m)\n")
    after = [*before[: i + 4], "\tvx_account(m);\n", *before[i + 4 :]]
    return make_patch(UTIL, before, after)


def rename_proc(tree: dict[str, list[str]]) -> None:
    """The breaking change: ``proc_pid_status`` becomes ``proc_pid_show_status``."""
    for path in (PROC, HEADER):
        tree[path] = [ln.replace("proc_pid_status(", "proc_pid_show_status(") for ln in tree[path]]


def move_proc(tree: dict[str, list[str]]) -> None:
    """The file the proc patch modifies moves away (``git mv``): a missing-file break."""
    tree[PROC_MOVED] = tree.pop(PROC)


def retouch_proc(tree: dict[str, list[str]]) -> None:
    """A later commit rewriting the renamed signature line (touches the culprit's lines)."""
    tree[PROC] = [
        ln.replace(
            "proc_pid_show_status(struct seq_file *m)", "proc_pid_show_status(struct seq_file *sf)"
        )
        for ln in tree[PROC]
    ]


def break_util(tree: dict[str, list[str]]) -> None:
    """Rewrites a context line of the util patch's hunk."""
    tree[UTIL] = [
        ln.replace("\tint b = 2;\n", "\tint b = 3;\n")
        if i > 0 and "kstrdup_quotable" in tree[UTIL][i - 3]
        else ln
        for i, ln in enumerate(tree[UTIL])
    ]


@dataclass
class Builder:
    """Emits a fast-import stream; trees are kept per commit mark as dicts of line lists."""

    rng: random.Random
    stream: bytearray = field(default_factory=bytearray)
    trees: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    mark: int = 0
    time: int = 1_650_000_000
    subjects: dict[int, str] = field(default_factory=dict)

    def _data(self, text: bytes) -> None:
        self.stream += b"data %d\n" % len(text) + text + b"\n"

    def commit(
        self,
        parent: int | None,
        tree: dict[str, list[str]],
        subject: str,
        *,
        merge: int | None = None,
        author: str = "Dev One <dev1@example.org>",
        ref: str = "refs/heads/main",
    ) -> int:
        self.mark += 1
        self.time += 60
        m = self.mark
        self.stream += f"commit {ref}\nmark :{m}\n".encode()
        self.stream += f"author {author} {self.time} +0000\n".encode()
        self.stream += f"committer Maintainer <maint@example.org> {self.time} +0000\n".encode()
        self._data(f"{subject}\n\nSynthetic commit {m}.\n".encode())
        old = self.trees[parent] if parent is not None else {}
        if parent is not None:
            self.stream += f"from :{parent}\n".encode()
        if merge is not None:
            self.stream += f"merge :{merge}\n".encode()
        for path in sorted(set(old) | set(tree)):
            if path not in tree:
                self.stream += f"D {path}\n".encode()
            elif old.get(path) != tree[path]:
                self.stream += f"M 100644 inline {path}\n".encode()
                self._data("".join(tree[path]).encode())
        self.stream += b"\n"
        self.trees[m] = tree
        self.subjects[m] = subject
        return m

    def tag(self, name: str, mark: int) -> None:
        self.stream += f"reset refs/tags/{name}\nfrom :{mark}\n\n".encode()

    # -- kinds of commits -------------------------------------------------------------------
    def irrelevant(
        self,
        parent: int,
        avoid: frozenset[str] | set[str] = frozenset(),
        ref: str = "refs/heads/main",
    ) -> int:
        tree = dict(self.trees[parent])
        paths = [p for p in tree if p.startswith("drivers/") and p not in avoid]
        path = self.rng.choice(paths)
        lines = list(tree[path])
        k = self.rng.randrange(len(lines))
        lines[k] = f"int changed_{self.mark}_{k} = {self.rng.randrange(1000)};\n"
        tree[path] = lines
        return self.commit(parent, tree, f"{path.split('/')[1]}: tweak {path}", ref=ref)

    def harmless(self, parent: int, path: str, ref: str = "refs/heads/main") -> int:
        """Touch ``path`` far from any hunk: rewrite or insert a churn line (offsets only)."""
        tree = dict(self.trees[parent])
        lines = list(tree[path])
        zone = "top_" if self.rng.random() < 0.5 else "bottom_"
        idx = [i for i, ln in enumerate(lines) if ln.startswith(f"static int {zone}")]
        i = self.rng.choice(idx[1:-4] if zone == "top_" else idx[4:])
        new = f"static int {zone}x{self.mark} = {self.rng.randrange(1000)};\n"
        if self.rng.random() < 0.5:
            lines.insert(i, new)
        else:
            lines[i] = new
        tree[path] = lines
        return self.commit(parent, tree, f"{path}: churn", ref=ref)

    def changed(
        self,
        parent: int,
        edit: Callable[[dict[str, list[str]]], None],
        subject: str,
        ref: str = "refs/heads/main",
        author: str = "Culprit Person <culprit@example.org>",
    ) -> int:
        tree = dict(self.trees[parent])
        edit(tree)
        return self.commit(parent, tree, subject, ref=ref, author=author)


@dataclass
class History:
    git_dir: Path
    commits: dict[str, str]  # role -> commit hash ("culprit", "culprit2", "later", ...)
    patches: list[tuple[str, bytes]]
    total: int

    def rev(self, mark_name: str) -> str:
        return self.commits[mark_name]


def build_history(
    git_dir: Path,
    *,
    seed: int = 1,
    main_commits: int = 1500,
    side_branches: int = 40,
    relevant_rate: float = 0.08,
    scenario: str = "rename",
) -> History:
    """A history ``v6.1``..``v6.2`` with the breaking commits of ``scenario``:

    ``rename``: a mainline commit renames the function the proc patch's hunk depends on, and a
    later commit rewrites the renamed line; ``evil-merge``: a merge whose resolution renames it;
    ``side``: the rename is a commit in a side branch, found through its merge; ``two``: the
    rename breaks the proc patch and a later commit breaks the util patch; ``move``: the patched
    file is renamed away (the patch then fails with ``missing-file``).
    """
    rng = random.Random(seed)
    b = Builder(rng)
    head = b.commit(None, initial_tree(), "Initial import")
    for _ in range(10):
        head = b.irrelevant(head)
    good = head
    b.tag("v6.1", good)
    base_tree = b.trees[good]
    patches = [("0001-proc-vx-check.patch", patch_proc(base_tree))]
    if scenario == "two":
        patches.append(("0002-util-vx-account.patch", patch_util(base_tree)))

    roles: dict[str, int] = {}
    side_at = set(rng.sample(range(20, main_commits - 20), side_branches))
    break_at = int(main_commits * 0.55)
    second_at = int(main_commits * 0.8)
    later_at = int(main_commits * 0.9)
    relevant = [PROC, UTIL]
    step = 0
    while step < main_commits:
        due = step >= break_at and "culprit" not in roles
        if step in side_at or (due and scenario in ("side", "evil-merge")):
            fork = head
            n_side = rng.randint(4, 12)
            touched: set[str] = set()
            side = fork
            ref = f"refs/heads/side{step}"
            breaking_side = due and scenario == "side"
            for j in range(n_side):
                if breaking_side and j == n_side // 2:
                    side = b.changed(
                        side,
                        rename_proc,
                        "proc: rename proc_pid_status to proc_pid_show_status",
                        ref=ref,
                    )
                    roles["culprit"] = side
                    touched |= {PROC, HEADER}
                elif rng.random() < 0.3 and not breaking_side:
                    path = rng.choice([p for p in relevant if p in b.trees[side]])
                    side = b.harmless(side, path, ref=ref)
                    touched.add(path)
                else:
                    before = b.trees[side]
                    side = b.irrelevant(side, ref=ref)
                    touched |= {p for p in b.trees[side] if b.trees[side][p] is not before.get(p)}
            for _ in range(rng.randint(1, 6)):  # mainline moves on, away from the side's files
                head = b.irrelevant(head, avoid=touched)
                step += 1
            merged = dict(b.trees[head])
            for p in touched:
                merged[p] = b.trees[side][p]
            subject = f"Merge branch 'side{step}'"
            evil = due and scenario == "evil-merge"
            if evil:
                rename_proc(merged)
                subject = f"Merge branch 'side{step}' (fix up proc naming)"
            head = b.commit(head, merged, subject, merge=side, author="Merger <merger@example.org>")
            if evil:
                roles["culprit"] = head
            step += 1
            continue
        if due and scenario in ("rename", "two"):
            head = b.changed(
                head, rename_proc, "proc: rename proc_pid_status to proc_pid_show_status"
            )
            roles["culprit"] = head
        elif scenario == "two" and step >= second_at and "culprit2" not in roles:
            head = b.changed(
                head,
                break_util,
                "mm: util: count b from three",
                author="Other Person <other@example.org>",
            )
            roles["culprit2"] = head
        elif due and scenario == "move":
            head = b.changed(head, move_proc, "proc: move the status code to pid_status.c")
            roles["culprit"] = head
        elif (
            step >= later_at and "culprit" in roles and "later" not in roles and scenario != "move"
        ):
            head = b.changed(
                head,
                retouch_proc,
                "proc: name the seq_file sf",
                author="Later Person <later@example.org>",
            )
            roles["later"] = head
        elif rng.random() < relevant_rate:
            head = b.harmless(head, rng.choice([p for p in relevant if p in b.trees[head]]))
        else:
            head = b.irrelevant(head)
        step += 1
    b.tag("v6.2", head)
    b.stream += b"done\n"
    hashes = fast_import(git_dir, bytes(b.stream))
    commits = {name: hashes[m] for name, m in roles.items()}
    commits["good"], commits["bad"] = hashes[good], hashes[head]
    return History(git_dir, commits, patches, b.mark)


def fast_import(git_dir: Path, stream: bytes) -> dict[int, str]:
    git_dir.mkdir(parents=True, exist_ok=True)
    proc.run(["git", "init", "--quiet", "--bare", str(git_dir)], cwd=git_dir, check=True)
    marks = git_dir / "marks"
    proc.run(
        [
            "git",
            f"--git-dir={git_dir}",
            "fast-import",
            "--quiet",
            "--done",
            f"--export-marks={marks}",
        ],
        cwd=git_dir,
        input=stream,
        check=True,
    )
    proc.run(
        ["git", f"--git-dir={git_dir}", "symbolic-ref", "HEAD", "refs/heads/main"],
        cwd=git_dir,
        check=True,
    )
    out = {}
    for line in marks.read_text().splitlines():
        m, h = line.split()
        out[int(m[1:])] = h
    return out


def unrelated_store(git_dir: Path) -> None:
    """Two releases imported as tarballs would be: root commits that share no history."""
    b = Builder(random.Random(0))
    one = b.commit(None, initial_tree(5), "Import v6.1", ref="refs/heads/a")
    tree = initial_tree(5)
    rename_proc(tree)
    two = b.commit(None, tree, "Import v6.2", ref="refs/heads/b")
    b.tag("v6.1", one)
    b.tag("v6.2", two)
    b.stream += b"done\n"
    fast_import(git_dir, bytes(b.stream))


# -- the tests' checker -----------------------------------------------------------------------

_FILE_RE = re.compile(r"^\+\+\+ b/(\S+)", re.M)
_HUNK_RE = re.compile(r"^Hunk #(\d+) (FAILED|succeeded|ignored)", re.M)


def _hunk_wants(body: str) -> list[tuple[str, ...]]:
    out: list[list[str]] = []
    for line in body.splitlines():
        if line.startswith("@@"):
            out.append([])
        elif out and line[:1] in (" ", "-"):
            out[-1].append(line[1:])
    return [tuple(w) for w in out]


@dataclass
class GnuChecker:
    """Apply a series with GNU ``patch -F0`` to the files of a commit; a Verdict per hunk."""

    git_dir: Path
    patches: list[tuple[str, bytes]]
    calls: list[str] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)  # commits answered with ``error``

    def read(self, commit: str, path: str) -> bytes | None:
        res = proc.run(
            ["git", f"--git-dir={self.git_dir}", "cat-file", "blob", f"{commit}:{path}"],
            cwd=self.git_dir,
        )
        return res.stdout.encode() if res.ok else None

    def __call__(self, commit: str) -> Verdict:
        self.calls.append(commit)
        if commit in self.unknown:
            return Verdict(Status.ERROR, "cannot judge")
        failing: list[HunkRef] = []
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "t"
            for name, text in self.patches:
                body = text.decode()
                path = _FILE_RE.search(body).group(1)  # type: ignore[union-attr]
                target = root / path
                if not target.exists():
                    data = self.read(commit, path)
                    if data is None:
                        failing.append(HunkRef(name, path, 0, "missing-file"))
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                pfile = Path(tmp) / name
                pfile.write_bytes(text)
                res = proc.run(
                    [
                        "patch",
                        "-p1",
                        "-F0",
                        "-N",
                        "-t",
                        "--no-backup-if-mismatch",
                        "-r",
                        str(Path(tmp) / "rej"),
                        "-i",
                        str(pfile),
                    ],
                    cwd=root,
                )
                wants = _hunk_wants(body)
                for m in _HUNK_RE.finditer(res.stdout):
                    if m.group(2) == "FAILED":
                        n = int(m.group(1))
                        failing.append(HunkRef(name, path, n, "conflict", want=wants[n - 1]))
        status = Status.FAIL if failing else Status.PASS
        return Verdict(status, f"{len(failing)} failing", tuple(failing))
