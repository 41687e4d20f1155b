"""Hostile sources (issue 15): tarballs, feeds, a damaged release store, a damaged database.

One test per case; docs/SECURITY.md's table names them. Each failed before its fix.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from conftest_releases import git, make_tarball, tree_files

from tracker.errors import InfraError
from tracker.sources.fastimport import HostileTarball
from tracker.sources.store import ReleaseStore

DEEP = "a/b/c/d/e/f/g/h/i/j"
UP10 = "/".join([".."] * 10)


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "store.git")


def _member(name: str, type_: bytes, link: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = type_, link, 0o644
    return info


def _tar(tmp_path: Path, extra: list[tarfile.TarInfo], name: str = "linux-6.1.tar.xz") -> Path:
    return make_tarball(tmp_path / name, tree_files("6.1"), top="linux-6.1", extra=extra)


# -- 1. links judged where they end up ------------------------------------------------------
def test_hard_link_to_an_in_tree_symlink_is_judged_where_it_lands(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = _tar(
        tmp_path,
        [
            _member(f"linux-6.1/{DEEP}/lnk", tarfile.SYMTYPE, f"{UP10}/etc"),
            _member("linux-6.1/etc_host", tarfile.LNKTYPE, f"linux-6.1/{DEEP}/lnk"),
        ],
    )
    with pytest.raises(HostileTarball, match="etc_host") as info:
        store.import_tarball("6.1", tb)
    assert "outside the tree" in str(info.value)
    assert not store.has("6.1")


def test_symlink_chain_through_a_hard_linked_symlink_is_refused(
    store: ReleaseStore, tmp_path: Path
) -> None:
    # `up` is harmless where it is (a/b/up -> ../..: the root); its hard link at the top is not,
    # and `x` only escapes by passing through that copy
    tb = _tar(
        tmp_path,
        [
            _member("linux-6.1/a/b/up", tarfile.SYMTYPE, "../.."),
            _member("linux-6.1/top_up", tarfile.LNKTYPE, "linux-6.1/a/b/up"),
            _member("linux-6.1/x", tarfile.SYMTYPE, "top_up/etc"),
        ],
    )
    with pytest.raises(HostileTarball, match="outside the tree"):
        store.import_tarball("6.1", tb)
    assert not store.has("6.1")


def test_hard_link_to_an_in_tree_symlink_that_stays_inside_is_kept(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = _tar(
        tmp_path,
        [
            _member("linux-6.1/kernel/sched/lnk", tarfile.SYMTYPE, "core.c"),
            _member("linux-6.1/kernel/sched/lnk2", tarfile.LNKTYPE, "linux-6.1/kernel/sched/lnk"),
        ],
    )
    store.import_tarball("6.1", tb)
    with store.tree("6.1") as t:
        assert t.read("kernel/sched/lnk2") == b"core.c"
        assert t.mode("kernel/sched/lnk2") == 0o120000


def _store_with_escaping_link(tmp_path: Path, store: ReleaseStore) -> None:
    """A git feed whose tag holds a symlink out of the tree (git itself accepts it)."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    (repo / "Makefile").write_text("VERSION = 6.1\n")
    (repo / "d").mkdir()
    (repo / "d" / "ok").symlink_to("../Makefile")
    (repo / "etc_host").symlink_to(f"{UP10}/etc")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Linux 6.1")
    git(repo, "tag", "v6.1")
    assert store.fetch_git(str(repo), "v6.*") == ["6.1"]


def test_materialize_never_writes_a_link_that_escapes(store: ReleaseStore, tmp_path: Path) -> None:
    _store_with_escaping_link(tmp_path, store)
    dest = tmp_path / "work"
    with pytest.raises(InfraError, match="etc_host") as info:
        store.materialize("6.1", dest)
    assert "v6.1" in str(info.value) or "6.1" in str(info.value)
    assert not (dest / "etc_host").is_symlink()
    assert not any(p.is_symlink() for p in dest.rglob("*")) if dest.exists() else True


# -- 13. a broken tarball is the source's fault: exit 3 ----------------------------------------
def test_truncated_tar_xz_is_an_infra_error(store: ReleaseStore, tmp_path: Path) -> None:
    tb = _tar(tmp_path, [])
    cut = tmp_path / "linux-cut.tar.xz"
    cut.write_bytes(tb.read_bytes()[: tb.stat().st_size // 2])
    with pytest.raises(InfraError, match="linux-cut.tar.xz"):
        store.import_tarball("6.1", cut)
    assert not store.has("6.1")


def test_corrupt_tar_header_is_an_infra_error(store: ReleaseStore, tmp_path: Path) -> None:
    plain = make_tarball(tmp_path / "linux-6.1.tar", tree_files("6.1"), top="linux-6.1")
    data = bytearray(plain.read_bytes())
    data[512 + 10] ^= 0x55  # the second header's name: its checksum no longer matches
    plain.write_bytes(bytes(data))
    with pytest.raises(InfraError, match="linux-6.1.tar") as info:
        store.import_tarball("6.1", plain)
    assert "checksum" in str(info.value)
    assert not store.has("6.1")
