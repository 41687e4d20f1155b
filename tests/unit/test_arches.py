"""The architecture data files (tracker/arches/*.toml): loading, validation, and riscv64 (the arch
added by one file) reaching make, QEMU, Kconfig, the initramfs, doctor and scripts/setup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.arches import loader
from tracker.arches.target import Target
from tracker.boot.initramfs import busybox_for, compile_argv
from tracker.boot.qemu import Qemu, machine_for
from tracker.build.kbuild import make_argv
from tracker.build.kconfig import requested_options
from tracker.doctor import Health, arch_tools, check_guest_busybox
from tracker.errors import UserError

RISCV64 = Target.parse("riscv64:tinyconfig")
SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup"

GOOD = """\
aliases = ["toy"]
[make]
arch = "toyarch"
srcarch = "toy"
cross_compile = "toy-linux-gnu-"
image_target = "Image"
image_path = "arch/toy/boot/Image"
[qemu]
binary = "qemu-system-toy"
console = "ttyT0"
[kconfig]
boot = ["PRINTK"]
[initramfs]
busybox_from = "build it"
[packages]
compiler = "gcc-toy-linux-gnu"
libc = "libc6-dev-toy-cross"
qemu = "qemu-system-misc"
"""


def test_every_shipped_arch_loads_with_its_facts() -> None:
    arches = loader.known()
    assert sorted(arches) == ["arm64", "riscv64", "x86_64"]
    rv = arches["riscv64"]
    assert (rv.kernel_arch, rv.srcarch, rv.cross_compile) == (
        "riscv",
        "riscv",
        "riscv64-linux-gnu-",
    )
    assert (rv.image_target, rv.image_path) == ("Image", "arch/riscv/boot/Image")
    assert (rv.qemu, rv.console, rv.machine, rv.bios) == (
        "qemu-system-riscv64",
        "ttyS0",
        "virt",
        "default",
    )
    assert arches["x86_64"].native and not rv.native
    assert loader.get("aarch64") is arches["arm64"] and loader.canonical("amd64") == "x86_64"
    with pytest.raises(UserError, match="unknown architecture 'riscv'"):
        loader.get("riscv")


def test_riscv64_qemu_command_line_exact() -> None:
    assert machine_for(RISCV64) == Qemu(loader.get("riscv64"))
    assert Qemu(loader.get("riscv64")).argv(Path("/o/Image"), Path("/w/i.gz")) == [
        "qemu-system-riscv64", "-machine", "virt", "-bios", "default",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
        "-no-reboot", "-m", "256", "-accel", "tcg",
        "-kernel", "/o/Image", "-initrd", "/w/i.gz",
        "-append", "console=ttyS0 earlycon=uart8250,mmio,0x10000000 panic=-1 oops=panic",
    ]  # fmt: skip


def test_riscv64_make_compile_and_boot_options() -> None:
    assert make_argv(Path("/s"), Path("/o"), RISCV64, ["Image"], jobs=2, niceness=None) == [
        "make", "-C", "/s", "O=/o", "ARCH=riscv", "CROSS_COMPILE=riscv64-linux-gnu-",
        "CC=ccache riscv64-linux-gnu-gcc", "HOSTCC=ccache gcc", "LOCALVERSION=", "-j2", "Image",
    ]  # fmt: skip
    assert compile_argv(RISCV64, Path("/t/a.c"), Path("/b/a"))[:2] == [
        "riscv64-linux-gnu-gcc",
        "-static",
    ]
    wanted = requested_options(RISCV64, "CONFIG_FPU=n\n")
    assert {"MMU", "SOC_VIRT", "SERIAL_8250_CONSOLE", "SERIAL_OF_PLATFORM"} <= set(wanted)
    assert wanted["FPU"] == "n"  # the fragment overrides the arch's boot options


def test_riscv64_busybox_and_doctor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bb = tmp_path / "ktrack/busybox/riscv64/busybox"
    assert busybox_for("riscv64") == bb and busybox_for("x86_64") == Path("/bin/busybox")
    missing = check_guest_busybox(loader.get("riscv64"))
    assert (missing.name, missing.health, missing.required) == (
        "busybox-static:riscv64",
        Health.MISSING,
        False,
    )
    assert "scripts/setup" in missing.fix and "busybox source" in missing.fix
    tools = {t.command: t for t in arch_tools()}
    assert (tools["riscv64-linux-gnu-gcc"].package, tools["riscv64-linux-gnu-gcc"].required) == (
        "gcc-riscv64-linux-gnu",
        False,
    )
    assert (tools["qemu-system-riscv64"].stage, tools["qemu-system-riscv64"].package) == (
        "boot (riscv64)",
        "qemu-system-misc",
    )
    assert tools["qemu-system-x86_64"].required and "gcc" not in tools  # the host's gcc: TOOLS


def test_scripts_setup_installs_every_arch_package() -> None:
    listed = re.search(r"PACKAGES=\((.*?)\)", SETUP.read_text(), re.S)
    assert listed is not None
    packages = set(listed.group(1).split())
    for arch in loader.known().values():
        assert {arch.compiler_package, arch.libc_package, arch.qemu_package} <= packages, arch.name


def _write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "arches"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text)
    return folder


def test_a_good_file_loads_and_its_name_is_the_stem(tmp_path: Path) -> None:
    arch = loader.load_folder(_write(tmp_path, "toy64", GOOD))["toy64"]
    assert (arch.name, arch.aliases, arch.boot_options) == ("toy64", ("toy",), ("PRINTK",))
    assert arch.busybox_path(Path("/c")) == Path("/c/busybox/toy64/busybox")
    assert arch.qemu_machine_args("kvm") == [] and arch.early_args == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('console = "ttyT0"', 'console = "ttyT0"\nconsle = "x"'), "qemu.consle"),
        (GOOD.replace('binary = "qemu-system-toy"\n', ""), "qemu.binary"),
        (GOOD.replace('boot = ["PRINTK"]', 'boot = ["PRINTK y"]'), "kconfig.boot"),
        (GOOD.replace('boot = ["PRINTK"]', "boot = 3"), "kconfig.boot"),
        (
            GOOD.replace('busybox_from = "build it"', 'busybox = "bin/bb"\nbusybox_from = "x"'),
            "absolute",
        ),
        (GOOD.replace('aliases = ["toy"]', "aliases = [1]"), "aliases"),
        (GOOD + "[extra\n", "malformed TOML"),
    ],
)
def test_a_bad_file_is_a_user_error_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    folder = _write(tmp_path, "toy64", text)
    with pytest.raises(UserError, match=re.escape(message)) as info:
        loader.load_folder(folder)
    assert str(folder / "toy64.toml") in str(info.value)


def test_an_alias_taken_twice_is_a_user_error(tmp_path: Path) -> None:
    _write(tmp_path, "toy64", GOOD)
    folder = _write(tmp_path, "toy32", GOOD)
    with pytest.raises(UserError, match="alias 'toy'"):
        loader.load_folder(folder)
