"""``patchset.toml``: what a patch set is, which versions it has, what the matrix covers.

Loaded into frozen dataclasses and validated on load; every error names the file and the field
(``patches/vcontext/patchset.toml: versions[0].fuzz: ...``). Paths are relative to the folder that
holds the manifest. See DESIGN.md, "Files a user writes".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker.errors import UserError
from tracker.versions import KernelVersion

MANIFEST = "patchset.toml"
FORMATS = ("diff", "quilt", "mbox", "git")
MAX_FUZZ = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TARGET = re.compile(r"^[a-z0-9_]+:[^\s:]+$")
_TOP = {"name", "summary", "homepage", "versions", "track"}
_VERSION = {"version", "base", "format", "source", "strip", "fuzz", "kconfig", "tests", "range"}
_TRACK = {"kernels", "targets"}


@dataclass(frozen=True)
class VersionSpec:
    """One version of a patch set: its files and how to apply them."""

    version: str
    base: str
    format: str
    source: Path
    strip: int = 1
    fuzz: int = 0
    kconfig: Path | None = None
    tests: Path | None = None
    range: str | None = None  # git format: the commit range (default v<base>..HEAD)

    @property
    def base_version(self) -> KernelVersion:
        return KernelVersion.parse(self.base)


@dataclass(frozen=True)
class TrackSpec:
    """Which releases and targets the matrix covers."""

    kernels: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    """A patch set as its ``patchset.toml`` describes it."""

    name: str
    summary: str
    homepage: str | None
    path: Path
    versions: tuple[VersionSpec, ...]
    track: TrackSpec

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def newest(self) -> VersionSpec:
        return max(self.versions, key=lambda v: version_key(v.version))

    def version(self, version: str) -> VersionSpec:
        for v in self.versions:
            if v.version == version:
                return v
        known = ", ".join(v.version for v in self.versions)
        raise UserError(f"patch set {self.name!r} has no version {version!r} (known: {known})")


def version_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of patch set version strings: 0.9 < 0.10 < 1.0-rc1 (numbers compare as numbers)."""
    parts = re.findall(r"\d+|[A-Za-z]+", text)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _field(where: str, value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UserError(f"{where}: expected {what}, got {type(value).__name__} {value!r}")
    return value


def _str(
    path: Path, table: dict[str, Any], key: str, where: str, required: bool = True
) -> str | None:
    if key not in table:
        if required:
            raise UserError(f"{path}: {where}{key}: missing (required)")
        return None
    value = _field(f"{path}: {where}{key}", table[key], str, "a string")
    if required and not value.strip():
        raise UserError(f"{path}: {where}{key}: must not be empty")
    return str(value)


def _unknown(path: Path, table: dict[str, Any], known: set[str], where: str) -> None:
    extra = sorted(set(table) - known)
    if extra:
        raise UserError(
            f"{path}: {where}unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(known))})"
        )


def _path(path: Path, value: str, where: str, *, must_exist: bool, kind: str = "") -> Path:
    p = Path(value).expanduser()
    full = p if p.is_absolute() else (path.parent / p)
    if must_exist and not full.exists():
        raise UserError(f"{path}: {where}: {kind or 'path'} not found: {full}")
    return full


def _version(path: Path, i: int, table: Any) -> VersionSpec:
    where = f"versions[{i}]."
    _field(f"{path}: versions[{i}]", table, dict, "a table")
    _unknown(path, table, _VERSION, where)
    version = _str(path, table, "version", where)
    assert version is not None
    if not _NAME.match(version):
        raise UserError(f"{path}: {where}version: {version!r} is not a plain version string")
    base = _str(path, table, "base", where)
    assert base is not None
    try:
        KernelVersion.parse(base)
    except UserError as exc:
        raise UserError(f"{path}: {where}base: {exc.message}", hint=exc.hint) from None
    fmt = _str(path, table, "format", where)
    if fmt not in FORMATS:
        raise UserError(f"{path}: {where}format: {fmt!r} is not one of {', '.join(FORMATS)}")
    source_text = _str(path, table, "source", where)
    assert source_text is not None
    source = _path(path, source_text, f"{where}source", must_exist=True, kind=f"{fmt} source")
    strip = _field(f"{path}: {where}strip", table.get("strip", 1), int, "an integer")
    if not 0 <= strip <= 16:
        raise UserError(f"{path}: {where}strip: {strip} is not between 0 and 16")
    fuzz = _field(f"{path}: {where}fuzz", table.get("fuzz", 0), int, "an integer")
    if not 0 <= fuzz <= MAX_FUZZ:
        raise UserError(f"{path}: {where}fuzz: {fuzz} is not between 0 and {MAX_FUZZ}")
    kconfig_text = _str(path, table, "kconfig", where, required=False)
    kconfig = (
        _path(path, kconfig_text, f"{where}kconfig", must_exist=True, kind="Kconfig fragment")
        if kconfig_text
        else None
    )
    if kconfig is not None and not kconfig.is_file():
        raise UserError(f"{path}: {where}kconfig: not a file: {kconfig}")
    tests_text = _str(path, table, "tests", where, required=False)
    tests = (
        _path(path, tests_text, f"{where}tests", must_exist=True, kind="tests folder")
        if tests_text
        else None
    )
    if tests is not None and not tests.is_dir():
        raise UserError(f"{path}: {where}tests: not a folder: {tests}")
    rng = _str(path, table, "range", where, required=False)
    if rng is not None and fmt != "git":
        raise UserError(f"{path}: {where}range: only the git format takes a commit range")
    if fmt == "quilt" and source.is_dir() and not (source / "series").is_file():
        raise UserError(f"{path}: {where}source: quilt folder without a 'series' file: {source}")
    if fmt in ("diff",) and not source.is_file():
        raise UserError(f"{path}: {where}source: a diff must be a file: {source}")
    return VersionSpec(
        version=version,
        base=base,
        format=fmt,
        source=source,
        strip=strip,
        fuzz=fuzz,
        kconfig=kconfig,
        tests=tests,
        range=rng,
    )


def load_manifest(path: Path) -> Manifest:
    """Read and validate one ``patchset.toml``."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the manifest: {exc.strerror}") from None
    _unknown(path, data, _TOP, "")
    name = _str(path, data, "name", "")
    assert name is not None
    if not _NAME.match(name):
        raise UserError(f"{path}: name: {name!r} must be letters, digits, '.', '_', '+' or '-'")
    summary = _str(path, data, "summary", "")
    assert summary is not None
    homepage = _str(path, data, "homepage", "", required=False)
    raw_versions = _field(
        f"{path}: versions", data.get("versions", []), list, "[[versions]] tables"
    )
    if not raw_versions:
        raise UserError(f"{path}: versions: at least one [[versions]] table is required")
    versions = tuple(_version(path, i, t) for i, t in enumerate(raw_versions))
    seen: set[str] = set()
    for v in versions:
        if v.version in seen:
            raise UserError(f"{path}: versions: version {v.version!r} appears twice")
        seen.add(v.version)
    track_table = _field(f"{path}: track", data.get("track", {}), dict, "a [track] table")
    _unknown(path, track_table, _TRACK, "track.")
    oldest = min(v.base_version for v in versions)
    kernels = _str(path, track_table, "kernels", "track.", required=False) or f">={oldest}"
    targets_raw = _field(
        f"{path}: track.targets",
        track_table.get("targets", ["x86_64:tinyconfig"]),
        list,
        "a list of 'arch:config' strings",
    )
    targets = []
    for j, t in enumerate(targets_raw):
        _field(f"{path}: track.targets[{j}]", t, str, "an 'arch:config' string")
        if not _TARGET.match(t):
            raise UserError(
                f"{path}: track.targets[{j}]: {t!r} is not 'arch:config' (e.g. x86_64:tinyconfig)"
            )
        targets.append(t)
    return Manifest(
        name=name,
        summary=summary,
        homepage=homepage,
        path=path,
        versions=versions,
        track=TrackSpec(kernels=kernels, targets=tuple(targets)),
    )


def discover(paths: Iterable[Path]) -> list[Manifest]:
    """Every ``<dir>/<name>/patchset.toml`` (or ``<dir>/patchset.toml``) under ``paths``, by name."""
    found: dict[str, Manifest] = {}
    for root in paths:
        root = Path(root)
        candidates = []
        if (root / MANIFEST).is_file():
            candidates.append(root / MANIFEST)
        if root.is_dir():
            candidates += sorted(p / MANIFEST for p in root.iterdir() if (p / MANIFEST).is_file())
        for c in candidates:
            m = load_manifest(c)
            if m.name in found and found[m.name].path.resolve() != c.resolve():
                raise UserError(
                    f"{c}: name: patch set {m.name!r} is already defined in {found[m.name].path}"
                )
            found[m.name] = m
    return sorted(found.values(), key=lambda m: m.name)


def resolve(paths: Iterable[Path], spec: str) -> tuple[Manifest, VersionSpec]:
    """``name`` (its newest version) or ``name@version``; a UserError lists the known ones."""
    name, _, version = spec.partition("@")
    manifests = discover(paths)
    for m in manifests:
        if m.name == name:
            return m, (m.version(version) if version else m.newest)
    known = ", ".join(m.name for m in manifests) or "none found"
    raise UserError(
        f"unknown patch set {name!r} (known: {known})",
        hint="patch sets are folders with a patchset.toml under [patchsets] paths",
    )
