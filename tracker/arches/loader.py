"""Read the architecture data files (``tracker/arches/<name>.toml``) into ``Arch`` values.

Each file is validated by the project's pydantic layer (``tracker.schema``): an unknown key, a
wrong type or a missing field is a UserError naming the file and the key. Adding an architecture
is adding a file here (and its packages to scripts/setup).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

from pydantic import Field

from tracker.arches.model import Arch
from tracker.errors import UserError
from tracker.schema import AS_TUPLE, Table, Text, read_toml, validate

FOLDER = Path(__file__).parent
Names = Annotated[tuple[Text, ...], AS_TUPLE]
Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]


class MakeTable(Table):
    arch: Text
    srcarch: Text
    cross_compile: str
    image_target: Text
    image_path: Text


class QemuTable(Table):
    binary: Text
    console: Text
    early: Names = ()
    machine: Text | None = None
    cpu: Text | None = None
    kvm_cpu: Text | None = None
    bios: Text | None = None


class KconfigTable(Table):
    boot: Annotated[tuple[Symbol, ...], AS_TUPLE]


class InitramfsTable(Table):
    busybox: Text | None = None
    busybox_from: Text


class PackagesTable(Table):
    compiler: Text
    libc: Text
    qemu: Text


class ArchFile(Table):
    aliases: Names = ()
    make: MakeTable
    qemu: QemuTable
    kconfig: KconfigTable
    initramfs: InitramfsTable
    packages: PackagesTable


def load_file(path: Path) -> Arch:
    """One architecture's data file; its name is the file's stem."""
    data = validate(ArchFile, read_toml(path, "architecture file"), str(path))
    busybox = Path(data.initramfs.busybox) if data.initramfs.busybox else None
    if busybox is not None and not busybox.is_absolute():
        raise UserError(f"{path}: initramfs.busybox: not an absolute path: {busybox}")
    return Arch(
        name=path.stem,
        aliases=data.aliases,
        kernel_arch=data.make.arch,
        srcarch=data.make.srcarch,
        cross_compile=data.make.cross_compile,
        image_target=data.make.image_target,
        image_path=data.make.image_path,
        qemu=data.qemu.binary,
        console=data.qemu.console,
        early_args=data.qemu.early,
        machine=data.qemu.machine,
        cpu=data.qemu.cpu,
        kvm_cpu=data.qemu.kvm_cpu,
        bios=data.qemu.bios,
        boot_options=data.kconfig.boot,
        busybox=busybox,
        busybox_from=data.initramfs.busybox_from,
        compiler_package=data.packages.compiler,
        libc_package=data.packages.libc,
        qemu_package=data.packages.qemu,
    )


def load_folder(folder: Path) -> dict[str, Arch]:
    """Every ``*.toml`` of ``folder``, by name; an alias naming two arches is a UserError."""
    arches = {p.stem: load_file(p) for p in sorted(folder.glob("*.toml"))}
    seen: dict[str, str] = {}
    for arch in arches.values():
        for alias in arch.aliases:
            other = seen.setdefault(alias, arch.name)
            if other != arch.name or alias in arches:
                raise UserError(f"{folder}: alias {alias!r} of {arch.name} is already taken")
    return arches


@functools.cache
def known() -> Mapping[str, Arch]:
    """The architectures shipped with ktrack, by name (read once)."""
    return MappingProxyType(load_folder(FOLDER))


def canonical(name: str) -> str:
    """``name`` or the architecture it is an alias of (unknown names come back unchanged)."""
    for arch in known().values():
        if name in arch.aliases:
            return arch.name
    return name


def get(name: str) -> Arch:
    """The architecture called ``name`` (or an alias of it); unknown is a UserError."""
    arches = known()
    arch = arches.get(canonical(name))
    if arch is None:
        raise UserError(f"unknown architecture {name!r} (known: {', '.join(sorted(arches))})")
    return arch
