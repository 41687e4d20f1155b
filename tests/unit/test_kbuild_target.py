"""Targets: "ARCH:CONFIG" parsing, arch facts, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.arches.target import Target
from tracker.errors import UserError


def test_named_configs_round_trip() -> None:
    t = Target.parse("x86_64:tinyconfig")
    assert (t.arch, t.config, str(t)) == ("x86_64", "tinyconfig", "x86_64:tinyconfig")
    assert t.config_file is None
    a = Target.parse(" aarch64:defconfig ")
    assert str(a) == "arm64:defconfig"
    assert a.arch_info.image_path == "arch/arm64/boot/Image"
    assert a.arch_info.cross_compile == "aarch64-linux-gnu-"
    assert Target.parse("amd64:tinyconfig") == t


def test_config_file_is_resolved_against_base_dir(tmp_path: Path) -> None:
    t = Target.parse("x86_64:configs/my.config", base_dir=tmp_path)
    assert t.config_file == (tmp_path / "configs/my.config").resolve()
    assert str(t) == f"x86_64:{(tmp_path / 'configs/my.config').resolve()}"


@pytest.mark.parametrize("text", ["riscv:defconfig", "tinyconfig", "x86_64:", ":defconfig", ""])
def test_bad_targets_are_user_errors(text: str) -> None:
    with pytest.raises(UserError):
        Target.parse(text)


def test_direct_construction_validates_arch() -> None:
    with pytest.raises(UserError, match="unknown architecture 'mips'"):
        Target("mips", "tinyconfig")
