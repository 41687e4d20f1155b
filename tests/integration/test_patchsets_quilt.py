"""The patch sets ktrack ships (patches/*) apply to the Debian kernels they were written for.

Each version's quilt series is applied in series order with GNU patch at fuzz 0 to a copy of the
files it touches, taken from the cached extraction of /usr/src/linux-source-<base>.tar.xz: every
hunk must land exactly where the patch says (no fuzz, no offset). The cross cells are checked
too: a version must not apply to the other kernel at fuzz 0 (that is why a port exists).
"""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_build import REAL_CACHE, kernel_source  # noqa: E402

from tracker.proc import run  # noqa: E402

PATCHES = Path(__file__).resolve().parents[2] / "patches"
BASES = ("6.1", "6.12")
TARGET_RE = re.compile(r"^\+\+\+ (?:b/)?(\S+)", re.M)
SOURCE_RE = re.compile(r"^--- (?:a/)?(\S+)", re.M)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Version:
    patchset: str
    version: str
    base: str
    folder: Path
    kconfig: Path
    tests: Path

    @property
    def series(self) -> list[Path]:
        lines = (self.folder / "series").read_text().splitlines()
        names = [ln.split("#", 1)[0].strip() for ln in lines]
        return [self.folder / n.split()[0] for n in names if n]


def _versions() -> list[Version]:
    found = []
    for toml in sorted(PATCHES.glob("*/patchset.toml")):
        data = tomllib.loads(toml.read_text())
        for v in data["versions"]:
            found.append(
                Version(
                    patchset=data["name"],
                    version=v["version"],
                    base=v["base"],
                    folder=toml.parent / v["source"],
                    kconfig=toml.parent / v["kconfig"],
                    tests=toml.parent / v["tests"],
                )
            )
    return found


VERSIONS = _versions()


def _tree(base: str) -> Path:
    tarball = Path(f"/usr/src/linux-source-{base}.tar.xz")
    if not tarball.is_file():
        pytest.fail(f"{tarball} is missing (apt-get install linux-source-{base})")
    return kernel_source(tarball, REAL_CACHE)


def _touched(series: list[Path]) -> set[str]:
    files: set[str] = set()
    for patch in series:
        text = patch.read_text()
        files.update(
            p for p in TARGET_RE.findall(text) + SOURCE_RE.findall(text) if p != "/dev/null"
        )
    return files


@dataclass(frozen=True)
class Applied:
    clean: bool  # every hunk applied exactly: no failure, no fuzz, no offset
    first_failure: str | None  # the patch that did not apply at fuzz 0, if any
    log: str


def _apply(version: Version, base: str, work: Path) -> Applied:
    """Apply the series in order to a copy of the files it touches in the ``base`` tree."""
    tree = _tree(base)
    for rel in _touched(version.series):
        src = tree / rel
        if src.is_file():
            dest = work / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    log = []
    moved = False
    for patch in version.series:
        res = run(
            ["patch", "-p1", "-F0", "-N", "--no-backup-if-mismatch", "-r", "-", "-i", patch],
            cwd=work,
            timeout=120,
        )
        out = res.stdout + res.stderr
        log.append(f"== {patch.name}\n{out}")
        if res.returncode != 0:
            return Applied(False, patch.name, "\n".join(log))
        moved = moved or bool(re.search(r"offset|fuzz", out, re.I))
    return Applied(not moved, None, "\n".join(log))


def test_both_patch_sets_have_a_version_per_base() -> None:
    got = {(v.patchset, v.base) for v in VERSIONS}
    want = {(name, base) for name in ("vcontext", "beancounters") for base in BASES}
    assert want <= got


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v.patchset}-{v.version}-on-{v.base}")
def test_version_applies_exactly_to_its_own_kernel(version: Version, tmp_path: Path) -> None:
    assert len(version.series) >= 4
    assert (version.tests / "run").is_file()
    assert any(version.tests.glob("*.c"))
    assert re.search(r"^CONFIG_\w+=y$", version.kconfig.read_text(), re.M)
    applied = _apply(version, version.base, tmp_path)
    assert applied.clean, applied.log


def _other(base: str) -> str:
    return BASES[1 - BASES.index(base)]


@pytest.mark.parametrize(
    "version", VERSIONS, ids=lambda v: f"{v.patchset}-{v.version}-on-{_other(v.base)}"
)
def test_version_does_not_apply_to_the_other_kernel(version: Version, tmp_path: Path) -> None:
    """The cross cells: each version needs its own port (6.1 and 6.12 differ in the touched code)."""
    applied = _apply(version, _other(version.base), tmp_path)
    assert applied.first_failure is not None, applied.log
