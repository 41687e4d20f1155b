"""Shared pieces of the hostile-input suites (issue 15): the release-store fixture, tarballs
with extra (hostile) members, and ``Kt`` (from conftest_releases) to run ``ktrack``."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from conftest_releases import Kt, make_tarball, tree_files

from tracker.sources.store import ReleaseStore

__all__ = ["Kt", "member", "store", "tarball_with"]


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "store.git")


def member(name: str, type_: bytes, link: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = type_, link, 0o644
    return info


def tarball_with(
    tmp_path: Path, extra: list[tarfile.TarInfo], name: str = "linux-6.1.tar.xz"
) -> Path:
    """linux-6.1.tar.xz of the small tree plus ``extra`` members."""
    return make_tarball(tmp_path / name, tree_files("6.1"), top="linux-6.1", extra=extra)
