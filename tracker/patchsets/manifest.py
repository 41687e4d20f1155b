"""``patchset.toml``: what a patch set is, which versions it has, what the matrix covers.

Loaded into frozen dataclasses and validated on load; every error names the file and the field
(``patches/vcontext/patchset.toml: versions[0].fuzz: ...``). Paths are relative to the folder that
holds the manifest. See DESIGN.md, "Files a user writes".
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from tracker.errors import UserError
from tracker.schema import AS_TUPLE, Table, Text, read_toml, validate
from tracker.versions import KernelSpec, KernelVersion

MANIFEST = "patchset.toml"
FORMATS = ("diff", "quilt", "mbox", "git")
MAX_FUZZ = 2
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_TARGET = re.compile(r"^[a-z0-9_]+:[^\s:]+$")


def _set_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} must be letters, digits, '.', '_', '+' or '-'")
    return value


def _version_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a plain version string")
    return value


def kernel_version(value: str) -> str:
    """A pydantic check: ``value`` parses as a kernel version (the text is kept)."""
    try:
        KernelVersion.parse(value)
    except UserError as exc:
        raise ValueError(exc.message) from None
    return value


def _kernel_spec(value: str) -> str:
    try:
        KernelSpec.parse(value)
    except UserError as exc:
        raise ValueError(exc.message) from None
    return value


def _target(value: str) -> str:
    if not _TARGET.match(value):
        raise ValueError(f"{value!r} is not 'arch:config' (e.g. x86_64:tinyconfig)")
    return value


class VersionTable(Table):
    """One ``[[versions]]`` table as written (one line per key)."""

    version: Annotated[str, AfterValidator(_version_name)]
    base: Annotated[Text, AfterValidator(kernel_version)]
    format: Literal["diff", "quilt", "mbox", "git"]
    source: Text
    strip: Annotated[int, Field(ge=0, le=16)] = 1
    fuzz: Annotated[int, Field(ge=0, le=MAX_FUZZ)] = 0
    kconfig: Text | None = None
    tests: Text | None = None
    range: Text | None = None


class TrackTable(Table):
    kernels: Annotated[Text, AfterValidator(_kernel_spec)] | None = None
    targets: Annotated[tuple[Annotated[str, AfterValidator(_target)], ...], AS_TUPLE] = (
        "x86_64:tinyconfig",
    )


class ManifestFile(Table):
    """A ``patchset.toml`` as written."""

    name: Annotated[Text, AfterValidator(_set_name)]
    summary: Text
    homepage: str | None = None
    versions: Annotated[tuple[VersionTable, ...], AS_TUPLE] = ()
    track: TrackTable = TrackTable()


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


def _inside(path: Path, value: str, where: str, kind: str) -> Path:
    """``value`` (relative to the manifest's folder) as a path that stays inside that folder, even
    through symlinks; an absolute path, ``~``, ``..`` out of it or a link out of it is refused."""
    folder = path.parent
    if value.startswith("~") or Path(value).is_absolute():
        raise UserError(
            f"{path}: {where}: {value!r} is absolute; give a path inside the patch set's folder"
        )
    full = folder / value
    real, root = full.resolve(), folder.resolve()
    if real != root and root not in real.parents:
        raise UserError(
            f"{path}: {where}: {value!r} leads out of the patch set's folder ({root}) to {real}"
        )
    if not full.exists():
        raise UserError(f"{path}: {where}: {kind} not found: {full}")
    return full


def _version(path: Path, i: int, t: VersionTable) -> VersionSpec:
    where = f"versions[{i}]."
    source = _inside(path, t.source, f"{where}source", f"{t.format} source")
    kconfig = _inside(path, t.kconfig, f"{where}kconfig", "Kconfig fragment") if t.kconfig else None
    if kconfig is not None and not kconfig.is_file():
        raise UserError(f"{path}: {where}kconfig: not a file: {kconfig}")
    tests = _inside(path, t.tests, f"{where}tests", "tests folder") if t.tests else None
    if tests is not None and not tests.is_dir():
        raise UserError(f"{path}: {where}tests: not a folder: {tests}")
    if t.range is not None and t.format != "git":
        raise UserError(f"{path}: {where}range: only the git format takes a commit range")
    if t.format == "quilt" and source.is_dir() and not (source / "series").is_file():
        raise UserError(f"{path}: {where}source: quilt folder without a 'series' file: {source}")
    if t.format == "diff" and not source.is_file():
        raise UserError(f"{path}: {where}source: a diff must be a file: {source}")
    return VersionSpec(
        version=t.version,
        base=t.base,
        format=t.format,
        source=source,
        strip=t.strip,
        fuzz=t.fuzz,
        kconfig=kconfig,
        tests=tests,
        range=t.range,
    )


def load_manifest(path: Path) -> Manifest:
    """Read and validate one ``patchset.toml``."""
    path = Path(path)
    doc = validate(ManifestFile, read_toml(path, "manifest"), str(path))
    if not doc.versions:
        raise UserError(f"{path}: versions: at least one [[versions]] table is required")
    versions = tuple(_version(path, i, t) for i, t in enumerate(doc.versions))
    seen: set[str] = set()
    for v in versions:
        if v.version in seen:
            raise UserError(f"{path}: versions: version {v.version!r} appears twice")
        seen.add(v.version)
    oldest = min(v.base_version for v in versions)
    return Manifest(
        name=doc.name,
        summary=doc.summary,
        homepage=doc.homepage,
        path=path,
        versions=versions,
        track=TrackSpec(kernels=doc.track.kernels or f">={oldest}", targets=doc.track.targets),
    )


@dataclass(frozen=True)
class Broken:
    """A ``patchset.toml`` that does not load: where, the name it goes by, and why."""

    path: Path
    name: str  # its ``name`` when that much can be read, else its folder's name
    reason: str


@dataclass(frozen=True)
class Found:
    """Every patch set under the configured paths: those that load and those that do not."""

    manifests: tuple[Manifest, ...]
    broken: tuple[Broken, ...]


def _name_of(path: Path) -> str:
    try:
        name = read_toml(path, "manifest").get("name")
    except UserError:
        name = None
    return name if isinstance(name, str) and name else path.parent.name


def scan(paths: Iterable[Path]) -> Found:
    """Every ``<dir>/<name>/patchset.toml`` (or ``<dir>/patchset.toml``) under ``paths``, by name;
    a manifest that does not load is set aside with its reason and keeps no other set from use."""
    found: dict[str, Manifest] = {}
    broken: list[Broken] = []
    for root in paths:
        root = Path(root)
        candidates = []
        if (root / MANIFEST).is_file():
            candidates.append(root / MANIFEST)
        if root.is_dir():
            candidates += sorted(p / MANIFEST for p in root.iterdir() if (p / MANIFEST).is_file())
        for c in candidates:
            try:
                m = load_manifest(c)
                if m.name in found and found[m.name].path.resolve() != c.resolve():
                    raise UserError(
                        f"{c}: name: patch set {m.name!r} is already defined in "
                        f"{found[m.name].path}"
                    )
            except UserError as exc:
                broken.append(Broken(c, _name_of(c), str(exc)))
                continue
            found[m.name] = m
    return Found(tuple(sorted(found.values(), key=lambda m: m.name)), tuple(broken))


def warn_stderr(line: str) -> None:
    """How a command reports a patch set it leaves out: one escaped line on stderr."""
    from tracker.safetext import printable

    print(f"ktrack: warning: {printable(line)}", file=sys.stderr)


Warn = Callable[[str], None]


def discover(paths: Iterable[Path], warn: Warn | None = warn_stderr) -> list[Manifest]:
    """The patch sets under ``paths`` that load, by name; each broken one is reported through
    ``warn`` (one line naming its file and the problem) and left out."""
    found = scan(paths)
    for b in found.broken:
        if warn is not None:
            warn(f"patch set {b.name!r} left out: {b.reason}")
    return list(found.manifests)


def resolve(paths: Iterable[Path], spec: str) -> tuple[Manifest, VersionSpec]:
    """``name`` (its newest version) or ``name@version``; a UserError lists the known ones."""
    name, _, version = spec.partition("@")
    found = scan(paths)
    for b in found.broken:
        if b.name == name or b.path.parent.name == name:
            raise UserError(b.reason)
    manifests = found.manifests
    for m in manifests:
        if m.name == name:
            return m, (m.version(version) if version else m.newest)
    known = ", ".join(m.name for m in manifests) or "none found"
    raise UserError(
        f"unknown patch set {name!r} (known: {known})",
        hint="patch sets are folders with a patchset.toml under [patchsets] paths",
    )
