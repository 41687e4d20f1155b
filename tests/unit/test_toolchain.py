"""The toolchain identity that caches and job reuse key on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tracker.arches.target import Target
from tracker.build import toolchain
from tracker.vocab import Stage


def _fake_tool(bindir: Path, name: str, line: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\necho '{line}'\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture()
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("gcc", "ld", "make", "qemu-system-x86_64"):
        _fake_tool(bindir, tool, f"{tool} 1.0")
    monkeypatch.setenv("PATH", str(bindir))
    toolchain.tool_version.cache_clear()
    yield bindir
    toolchain.tool_version.cache_clear()


def test_identity_names_each_tool_with_its_version_line(fake_path: Path) -> None:
    ident = toolchain.identity(Target.parse("x86_64:tinyconfig"))
    assert ident["gcc"] == "gcc 1.0"
    assert ident["ld"] == "ld 1.0"
    assert ident["qemu"] == "qemu-system-x86_64 1.0"
    assert ident["logic"] == str(toolchain.STAGE_LOGIC_VERSION)


def test_a_new_compiler_changes_the_fingerprint(fake_path: Path) -> None:
    target = Target.parse("x86_64:tinyconfig")
    before = toolchain.fingerprint(target)
    _fake_tool(fake_path, "gcc", "gcc 2.0")
    toolchain.tool_version.cache_clear()
    assert toolchain.fingerprint(target) != before


def test_qemu_matters_only_for_boot_and_test(fake_path: Path) -> None:
    target = Target.parse("x86_64:tinyconfig")
    build_only = toolchain.fingerprint(target, (Stage.APPLY, Stage.CONFIGURE, Stage.BUILD))
    _fake_tool(fake_path, "qemu-system-x86_64", "qemu 9.9")
    toolchain.tool_version.cache_clear()
    assert toolchain.fingerprint(target, (Stage.APPLY, Stage.CONFIGURE, Stage.BUILD)) == build_only
    assert "qemu 9.9" in toolchain.identity(target)["qemu"]


def test_a_missing_tool_is_part_of_the_identity(fake_path: Path) -> None:
    (fake_path / "ld").unlink()
    assert toolchain.identity(Target.parse("x86_64:tinyconfig"))["ld"] == "missing"
