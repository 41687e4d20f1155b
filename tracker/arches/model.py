"""What ktrack knows about one architecture, as read from its data file (``<name>.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Arch:
    """One architecture: how to build its kernel, boot it in QEMU and fill its initramfs."""

    name: str  # the name in a target ("x86_64", "arm64"): the data file's stem
    aliases: tuple[str, ...]  # other names a target may use ("aarch64")
    kernel_arch: str  # make ARCH=
    srcarch: str  # the folder under arch/
    cross_compile: str  # make CROSS_COMPILE= ("" for the host)
    image_target: str  # make target that builds the boot image
    image_path: str  # the image, relative to the O= dir
    qemu: str  # qemu-system-* binary
    console: str  # the serial console device name in the guest
    early_args: tuple[str, ...]  # kernel arguments for the console before the serial driver is up
    machine: str | None  # QEMU -machine (None: QEMU's default board)
    cpu: str | None  # QEMU -cpu under TCG (None: the board's default)
    kvm_cpu: str | None  # QEMU -cpu under KVM
    bios: str | None  # QEMU -bios ("default": the firmware QEMU ships)
    boot_options: tuple[str, ...]  # Kconfig symbols a busybox boot on the serial console needs
    busybox: Path | None  # the static busybox for the guest (None: the cache, see busybox_path)
    busybox_from: str  # how to get that busybox (a hint for the user)
    compiler_package: str  # Debian packages: the (cross) C compiler,
    libc_package: str  # its static C library (the smoke tests are built static),
    qemu_package: str  # the package holding ``qemu``

    @property
    def native(self) -> bool:
        """Whether this is the host's architecture (no cross compiler)."""
        return not self.cross_compile

    @property
    def compiler(self) -> str:
        """The C compiler for the guest (also builds the smoke tests)."""
        return f"{self.cross_compile}gcc"

    def busybox_path(self, cache: Path) -> Path:
        """The static busybox: the file named in the data file, or ``cache/busybox/<name>/busybox``
        (where scripts/setup puts one for an arch whose busybox Debian cannot install here)."""
        return self.busybox or cache / "busybox" / self.name / "busybox"

    def qemu_machine_args(self, accel: str) -> list[str]:
        """The board, CPU and firmware arguments for ``accel`` ("tcg" or "kvm")."""
        args: list[str] = []
        if self.machine:
            args += ["-machine", self.machine]
        cpu = (self.kvm_cpu or self.cpu) if accel == "kvm" else self.cpu
        if cpu:
            args += ["-cpu", cpu]
        if self.bios:
            args += ["-bios", self.bios]
        return args
