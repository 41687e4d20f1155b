"""Shared pieces of the hostile-input suites (issue 15): a ``ktrack`` runner with a private
home, the release-store fixture, and tarballs with extra (hostile) members."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from conftest_releases import make_tarball, tree_files

from tracker.cli import main
from tracker.sources.store import ReleaseStore


class Kt:
    """``ktrack`` in-process with a private home and config; returns (rc, stdout, stderr)."""

    def __init__(self, tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = tmp_path / "home"
        self.config = tmp_path / "ktrack.toml"
        self.config.write_text(config)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["--config", str(self.config), "--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    @property
    def store(self) -> ReleaseStore:
        return ReleaseStore(self.home / "store.git")


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
