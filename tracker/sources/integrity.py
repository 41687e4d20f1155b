"""Checks on what the release store holds: symlinks that leave a release's tree, objects that
cannot be read.

The import refuses an escaping link (``fastimport.py``); a git feed's tags and stores written
before that check are not imported through it, so :func:`escaping_links` runs again before a
tree is written to disk. :func:`damaged_releases` is ``doctor``'s object check.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tracker import proc
from tracker.sources import git
from tracker.sources.fastimport import MODE_LINK, resolve_in_tree
from tracker.sources.treeview import TreeView

_OID = re.compile(r"\b[0-9a-f]{40}\b")


def link_entries(git_dir: Path, commit: str) -> dict[str, str]:
    """``{path: blob id}`` of every symlink in the tree of ``commit``."""
    res = proc.run(git.ls_tree_argv(git_dir, commit), cwd=git_dir, timeout=600, check=True)
    out: dict[str, str] = {}
    for record in res.stdout.split("\0"):
        meta, _, path = record.partition("\t")
        fields = meta.split()
        if len(fields) == 3 and fields[0] == MODE_LINK:
            out[path] = fields[2]
    return out


def escaping_links(git_dir: Path, commit: str) -> list[tuple[str, str]]:
    """``(path, target)`` of every symlink of ``commit`` that resolves outside its tree."""
    entries = link_entries(git_dir, commit)
    if not entries:
        return []
    with TreeView(git_dir, commit) as view:
        blobs = view.read_objects(list(entries.values()))
    links: dict[str, str] = {}
    for (path, _), ans in zip(entries.items(), blobs, strict=True):
        links[path] = ans[1].decode("utf-8", "surrogateescape") if ans else "<unreadable object>"
    bad = []
    for path, target in sorted(links.items()):
        if not target or "\0" in target or target == "<unreadable object>":
            bad.append((path, target))
            continue
        joined = posixpath.join(posixpath.dirname(path), target)
        if target.startswith("/") or resolve_in_tree(links, joined) is None:
            bad.append((path, target))
    return bad


@dataclass(frozen=True)
class Damage:
    """What ``git fsck --full`` found, and the releases whose trees hold a damaged object."""

    problems: tuple[str, ...]
    releases: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.problems


def damaged_releases(git_dir: Path, tags: dict[str, str], timeout: float = 3600) -> Damage:
    """Read and hash every object of the store; name the tags whose trees reach a bad one."""
    res = proc.run(git.fsck_argv(git_dir), cwd=git_dir, timeout=timeout)
    lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
    problems = tuple(ln for ln in lines if not ln.startswith(("Checking", "notice:")))
    if res.ok and not problems:
        return Damage((), ())
    bad = set(_OID.findall("\n".join(problems)))
    damaged = []
    for tag, commit in sorted(tags.items()):
        walk = proc.run(
            git.ls_tree_argv(git_dir, commit, folders=True),
            cwd=git_dir,
            timeout=timeout,
        )
        ids = {commit}
        for record in walk.stdout.split("\0"):
            fields = record.partition("\t")[0].split()
            if len(fields) == 3:
                ids.add(fields[2])
        if not walk.ok or ids & bad:
            damaged.append(tag)
    return Damage(problems or (f"git fsck exited {res.returncode}",), tuple(damaged))


def salvage_pack(git_dir: Path, idx: Path, report: str, timeout: float = 6 * 3600) -> None:
    """Replace a damaged pack by one of its objects that are neither damaged nor elsewhere.

    ``report`` is what ``verify-pack`` said (it names the damaged objects). The objects the
    store lacks without this pack are copied into a new pack, read from the old one moved into
    a scratch repository; the old pack is deleted only once the new one is in place. Raises
    InfraError (and leaves the pack) when that copy fails.
    """
    listed = proc.run(git.show_index_argv(), cwd=git_dir, input=idx.read_bytes(), check=True)
    oids = [row.split()[1] for row in listed.stdout.splitlines() if len(row.split()) >= 2]
    bad = set(_OID.findall(report))
    scratch = Path(tempfile.mkdtemp(prefix="salvage-", dir=git_dir / "tmp"))
    try:
        proc.run(git.init_argv(scratch), cwd=scratch, check=True)
        parts = sorted(idx.parent.glob(f"{idx.stem}.*"))
        for part in parts:  # the store without the pack: what does it still have?
            os.replace(part, scratch / "objects" / "pack" / part.name)
        try:
            have = proc.run(
                git.cat_file_check_argv(git_dir),
                cwd=git_dir,
                timeout=timeout,
                input="".join(f"{o}\n" for o in oids).encode(),
                check=True,
            )
            missing = {ln.split()[0] for ln in have.stdout.splitlines() if ln.endswith(" missing")}
            keep = [o for o in oids if o in missing and o not in bad]
            if keep:
                proc.run(
                    git.pack_objects_argv(scratch, git_dir / "objects" / "pack" / "pack"),
                    cwd=scratch,
                    timeout=timeout,
                    input="".join(f"{o}\n" for o in keep).encode(),
                    check=True,
                )  # fmt: skip
        except BaseException:
            for part in parts:  # put it back: a failed salvage loses nothing
                os.replace(scratch / "objects" / "pack" / part.name, part)
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def set_aside_damaged_loose(git_dir: Path, timeout: float = 6 * 3600) -> list[str]:
    """Move loose objects ``git fsck --full`` finds damaged into ``tmp/damaged/`` (a refetch
    cannot write an object the store claims to have: git compares with the damaged copy)."""
    res = proc.run(git.fsck_argv(git_dir), cwd=git_dir, timeout=timeout)
    if res.ok:
        return []
    moved = []
    aside = git_dir / "tmp" / "damaged"
    for oid in sorted(set(_OID.findall(res.stderr + res.stdout))):
        loose = git_dir / "objects" / oid[:2] / oid[2:]
        if loose.is_file():
            aside.mkdir(parents=True, exist_ok=True)
            os.replace(loose, aside / oid)
            moved.append(oid)
    return moved
