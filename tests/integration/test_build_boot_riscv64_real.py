"""riscv64 on Debian's 6.1 tree, for real (slow; runs in CI): the architecture added by one data
file (``tracker/arches/riscv64.toml``). tinyconfig plus its boot options configures, the cross gcc
builds ``arch/riscv/boot/Image``, which boots on QEMU's ``virt`` through OpenSBI and runs a smoke
test compiled for riscv64 (static, against Debian's riscv64 cross libc). The guest's busybox is
the one scripts/setup builds from Debian's busybox source into the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_build import ccache_dir, kernel_source, linked_tree, machine_smoke_test  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.boot.qemu import boot_and_test  # noqa: E402
from tracker.build.kbuild import build  # noqa: E402
from tracker.build.kconfig import configure, parse_config  # noqa: E402
from tracker.vocab import Status  # noqa: E402

pytestmark = pytest.mark.slow

RISCV64 = Target.parse("riscv64:tinyconfig")
BUILD_TIMEOUT = 2400.0
LOG = Path(__file__).resolve().parents[1] / "fixtures/logs/boot-clean-riscv64.log"


def test_riscv64_cross_builds_and_boots_on_qemu_virt(tmp_path: Path) -> None:
    if not Path("/usr/src/linux-source-6.1.tar.xz").is_file():
        pytest.fail("linux-source-6.1 is not installed (apt-get install linux-source-6.1)")
    src, out = linked_tree(kernel_source(), tmp_path / "src"), tmp_path / "out"
    conf = configure(
        src, out, RISCV64, None, log=tmp_path / "configure.log", ccache_dir=ccache_dir()
    )
    assert conf.status is Status.PASS, conf.summary
    values = parse_config((out / ".config").read_text())
    assert all(values.get(s) == "y" for s in RISCV64.arch_info.boot_options)
    assert values["ARCH_RV64I"] == "y" and values.get("RISCV_M_MODE", "n") == "n"
    built = build(
        src, out, RISCV64, jobs=2, log=tmp_path / "build.log", ccache_dir=ccache_dir(),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert built.status is Status.PASS, built.summary
    image = built.artifacts["image"]
    assert image == out / "arch/riscv/boot/Image"
    assert image.read_bytes()[48:56] == b"RISCV\0\0\0"  # the riscv Image header's magic
    assert image.read_bytes()[56:60] == b"RSC\x05"
    tests = machine_smoke_test(tmp_path / "tests", "riscv64")
    boot, test = boot_and_test(
        image, RISCV64, tests, work=tmp_path / "boot", log=tmp_path / "boot.log", timeout=180
    )
    console = boot.log.read_text() if boot.log else ""
    assert (boot.status, boot.summary) == (Status.PASS, "booted"), console[-2000:]
    assert [(t["name"], t["status"], t["message"]) for t in test.detail["tests"]] == [
        ("machine", "pass", "riscv64")
    ]
    assert "qemu-system-riscv64 -machine virt -bios default" in console
    assert "OpenSBI" in console and "Linux version 6.1." in console
