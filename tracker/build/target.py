"""A build target: an architecture and a base config ("x86_64:tinyconfig").

The base config is one of the named configs (``tinyconfig``, ``defconfig``) or a path to a
``.config`` file (relative paths are resolved against ``base_dir``, the folder of the file that
named the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracker.errors import UserError


@dataclass(frozen=True)
class Arch:
    """What ktrack knows about one architecture: kernel ARCH, toolchain, image, QEMU."""

    name: str  # the name in a target ("x86_64", "arm64")
    kernel_arch: str  # make ARCH=
    srcarch: str  # the folder under arch/
    cross_compile: str  # make CROSS_COMPILE= ("" for the host)
    image_target: str  # make target that builds the boot image
    image_path: str  # the image, relative to the O= dir
    qemu: str  # qemu-system-* binary
    console: str  # the serial console device name in the guest


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        name="x86_64",
        kernel_arch="x86_64",
        srcarch="x86",
        cross_compile="",
        image_target="bzImage",
        image_path="arch/x86/boot/bzImage",
        qemu="qemu-system-x86_64",
        console="ttyS0",
    ),
    "arm64": Arch(
        name="arm64",
        kernel_arch="arm64",
        srcarch="arm64",
        cross_compile="aarch64-linux-gnu-",
        image_target="Image",
        image_path="arch/arm64/boot/Image",
        qemu="qemu-system-aarch64",
        console="ttyAMA0",
    ),
}

_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "aarch64": "arm64"}

NAMED_CONFIGS = ("tinyconfig", "defconfig")


@dataclass(frozen=True)
class Target:
    """An architecture and a base config: a named config or an absolute path to a file."""

    arch: str
    config: str

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise UserError(
                f"unknown architecture {self.arch!r} (known: {', '.join(sorted(ARCHES))})"
            )
        if not self.config:
            raise UserError(f"target {self.arch}: empty base config")

    @classmethod
    def parse(cls, text: str, base_dir: Path | None = None) -> Target:
        """Parse ``ARCH:CONFIG``; CONFIG is tinyconfig, defconfig or a path to a config file."""
        arch, sep, config = text.strip().partition(":")
        if not sep or not arch or not config:
            raise UserError(
                f"malformed target {text!r}",
                hint="write ARCH:CONFIG, e.g. x86_64:tinyconfig or arm64:path/to/file.config",
            )
        arch = _ALIASES.get(arch, arch)
        if arch not in ARCHES:
            raise UserError(
                f"target {text!r}: unknown architecture {arch!r} "
                f"(known: {', '.join(sorted(ARCHES))})"
            )
        if config not in NAMED_CONFIGS:
            path = Path(config).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            config = str(path.resolve())
        return cls(arch=arch, config=config)

    @property
    def arch_info(self) -> Arch:
        return ARCHES[self.arch]

    @property
    def config_file(self) -> Path | None:
        """The base config file, or None for a named config."""
        return None if self.config in NAMED_CONFIGS else Path(self.config)

    def __str__(self) -> str:
        return f"{self.arch}:{self.config}"
