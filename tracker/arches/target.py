"""A target: an architecture (``tracker/arches/<arch>.toml``) and a base config
("x86_64:tinyconfig").

The base config is one of the named configs (``tinyconfig``, ``defconfig``) or a path to a
``.config`` file (relative paths are resolved against ``base_dir``, the folder of the file that
named the target).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tracker.arches import loader
from tracker.arches.model import Arch
from tracker.errors import UserError

NAMED_CONFIGS = ("tinyconfig", "defconfig")


@dataclass(frozen=True)
class Target:
    """An architecture and a base config: a named config or an absolute path to a file."""

    arch: str
    config: str

    def __post_init__(self) -> None:
        known = loader.known()
        if self.arch not in known:
            raise UserError(
                f"unknown architecture {self.arch!r} (known: {', '.join(sorted(known))})"
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
        arch = loader.canonical(arch)
        if arch not in loader.known():
            raise UserError(
                f"target {text!r}: unknown architecture {arch!r} "
                f"(known: {', '.join(sorted(loader.known()))})"
            )
        if config not in NAMED_CONFIGS:
            path = Path(config).expanduser()
            if not path.is_absolute():
                path = (base_dir or Path.cwd()) / path
            config = str(path.resolve())
        return cls(arch=arch, config=config)

    @property
    def arch_info(self) -> Arch:
        return loader.known()[self.arch]

    @property
    def config_file(self) -> Path | None:
        """The base config file, or None for a named config."""
        return None if self.config in NAMED_CONFIGS else Path(self.config)

    def __str__(self) -> str:
        return f"{self.arch}:{self.config}"
