"""Real Debian kernel sources for the apply engine's slow tests and ``bench/bench_apply.py``.

Debian's quilt series (``debian/patches/series`` in ``linux_<ver>.debian.tar.xz``) and pristine
trees (``linux_<ver>.orig.tar.xz``) come from ``apt-get source --download-only`` (a ``Types:
deb-src`` entry for bookworm and trixie must exist) and are cached in
``$XDG_CACHE_HOME/ktrack/debian-src``; the trees are imported once into the release store
``$XDG_CACHE_HOME/ktrack/stores/apply-real.git``. Works with an empty cache.

Imported explicitly by ``test_apply_real*.py`` and the bench. The GNU patch oracle is here too:
GNU patch in series order on a sparse copy of the files the series names.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tracker.apply.check import check_series
from tracker.apply.gnu import disagreements, parse_output, patch_argv
from tracker.apply.report import ApplyReport
from tracker.config import default_cache
from tracker.patchsets.diff import Series
from tracker.patchsets.formats import RawPatch, raw_patches
from tracker.sources.store import ReleaseStore
from tracker.sources.tree import Tree

REAL_CACHE = Path(os.environ.get("KTRACK_TEST_CACHE") or default_cache())
DEBIAN_SRC = REAL_CACHE / "debian-src"
STORE = REAL_CACHE / "stores" / "apply-real.git"
# the pair the issue names; when Debian's archive has moved on, the newest that downloads
PREFERRED = {"6.1": "6.1.176-1", "6.12": "6.12.38-1"}
_NETWORK = re.compile(
    r"Temporary failure resolving|Could not resolve|Could not connect|Connection failed|"
    r"Network is unreachable|Connection timed out|No route to host",
)


class Unreachable(Exception):
    """apt could not reach the package registry."""


class NoDebSrc(Exception):
    """apt knows no source package: the deb-src entries are missing."""


def showsrc_argv() -> list[str]:
    return ["apt-cache", "showsrc", "linux"]


def source_argv(version: str) -> list[str]:
    return [
        "apt-get",
        "source",
        "--download-only",
        "-o",
        "APT::Sandbox::User=root",
        f"linux={version}",
    ]


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def apt_versions(series: str) -> list[str]:
    """The versions of source package ``linux`` in ``series`` that apt lists, newest first."""
    res = subprocess.run(showsrc_argv(), capture_output=True, text=True, timeout=120)
    versions = set(re.findall(r"^Version: (\S+)$", res.stdout, re.M))
    mine = [v for v in versions if re.match(rf"^{re.escape(series)}\.\d+-", v)]
    if not mine:
        raise NoDebSrc(
            f"apt lists no source of linux {series}: add a 'Types: deb-src' entry for "
            "bookworm and trixie (see the report of issue 4 / REFERENCE.md) and run apt-get update"
        )
    return sorted(mine, key=_key, reverse=True)


@dataclass(frozen=True)
class DebianSource:
    version: str  # Debian version, 6.1.176-1
    upstream: str  # 6.1.176
    debian_tarball: Path
    orig_tarball: Path


def _files(version: str) -> DebianSource:
    upstream = version.rsplit("-", 1)[0]
    return DebianSource(
        version,
        upstream,
        DEBIAN_SRC / f"linux_{version}.debian.tar.xz",
        DEBIAN_SRC / f"linux_{upstream}.orig.tar.xz",
    )


def debian_source(series: str) -> DebianSource:
    """Fetch (or find cached) the preferred Debian source of ``series``, else the newest that
    downloads. Raises Unreachable when apt cannot reach the registry."""
    preferred = _files(PREFERRED[series])
    if preferred.debian_tarball.is_file() and preferred.orig_tarball.is_file():
        return preferred
    DEBIAN_SRC.mkdir(parents=True, exist_ok=True)
    versions = apt_versions(series)
    order = [PREFERRED[series]] if PREFERRED[series] in versions else []
    order += [v for v in versions if v not in order]
    errors = []
    for v in order:
        src = _files(v)
        if src.debian_tarball.is_file() and src.orig_tarball.is_file():
            return src
        res = subprocess.run(
            source_argv(v), cwd=DEBIAN_SRC, capture_output=True, text=True, timeout=1800
        )
        if res.returncode == 0 and src.debian_tarball.is_file() and src.orig_tarball.is_file():
            return src
        out = res.stdout + res.stderr
        if _NETWORK.search(out):
            raise Unreachable(out.strip().splitlines()[-1])
        errors.append(f"{v}: {out.strip().splitlines()[-1] if out.strip() else res.returncode}")
    joined = "; ".join(errors)
    raise NoDebSrc(f"apt reached the archive but no version of linux {series} downloads: {joined}")


def stored_tree(src: DebianSource) -> Tree:
    """The pristine tree of ``src`` from the cached store (imported on first use)."""
    store = ReleaseStore(STORE)
    commit = store.import_tarball(src.upstream, src.orig_tarball)
    return store.tree(commit)


DISTRO_STORE = REAL_CACHE / "stores" / "apply-distro.git"


def distro_tree(series: str) -> tuple[str, Tree]:
    """Debian's patched ``linux-source-SERIES`` tree (``/usr/src``), from its own cached store."""
    tarball = Path(f"/usr/src/linux-source-{series}.tar.xz")
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", f"linux-source-{series}"],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.match(r"^(\d+\.\d+(?:\.\d+)?)", res.stdout.strip())
    assert m and tarball.is_file(), f"install linux-source-{series} (apt-get install)"
    store = ReleaseStore(DISTRO_STORE)
    commit = store.import_tarball(m.group(1), tarball)
    return m.group(1), store.tree(commit)


def quilt_spec(src: DebianSource):  # type: ignore[no-untyped-def]
    from tracker.patchsets.manifest import VersionSpec

    return VersionSpec(
        version=src.version,
        base=".".join(src.upstream.split(".")[:2]),
        format="quilt",
        source=src.debian_tarball,
        strip=1,
        fuzz=0,
        kconfig=None,
        tests=None,
    )


def sparse_copy(series: Series, tree: Tree, dest: Path) -> None:
    """Write the files the series names (and their folders) from ``tree`` into ``dest``."""
    paths = sorted({p for patch in series.patches for p in patch.paths})
    data = tree.read_many(paths)
    for p in paths:
        target = dest / p
        target.parent.mkdir(parents=True, exist_ok=True)
        content = data[p]
        if content is not None and tree.mode(p) != 0o120000:
            target.write_bytes(content)
            if (tree.mode(p) or 0) & 0o111:
                target.chmod(0o755)


def gnu_oracle(
    series: Series, raws: list[RawPatch], report: ApplyReport, tree: Tree, work: Path, fuzz: int
) -> list[str]:
    """GNU patch in series order on a sparse copy; the disagreements with ``report`` (if any),
    and a check that the engine's resulting files equal GNU patch's."""
    gnu = work / "gnu"
    shutil.rmtree(gnu, ignore_errors=True)
    gnu.mkdir(parents=True)
    sparse_copy(series, tree, gnu)
    problems: list[str] = []
    by_name = {r.name: r for r in raws}
    pf = work / "current.patch"
    for patch, ours in zip(series.patches, report.patches, strict=True):
        with by_name[patch.name].open() as fh:
            pf.write_bytes(fh.read())
        dry = subprocess.run(
            patch_argv(pf, strip=patch.strip, fuzz=fuzz), cwd=gnu, capture_output=True, text=True
        )
        problems += disagreements(patch, ours, parse_output(dry.stdout))
        if not ours.klass.is_failure:
            subprocess.run(
                patch_argv(pf, strip=patch.strip, fuzz=fuzz, dry_run=False),
                cwd=gnu,
                capture_output=True,
                text=True,
            )
    for path, content in report.changes.items():
        f = gnu / path
        if content is None:
            if f.exists():
                problems.append(f"{path}: deleted by the engine, present after GNU patch")
        elif not f.is_file() or f.read_bytes() != content:
            problems.append(f"{path}: content differs from GNU patch's result")
    return problems


def check(series: Series, tree: Tree, fuzz: int = 0) -> ApplyReport:
    return check_series(series, tree, fuzz=fuzz)


def load(src: DebianSource) -> tuple[Series, list[RawPatch]]:
    from tracker.patchsets.formats import load_series

    spec = quilt_spec(src)
    return load_series(spec), raw_patches(spec)
