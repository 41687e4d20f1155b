"""``port``: pick the two releases, port the series between them, write the output folder.

The release a version was written for: ``--from`` when given; else the version's ``base`` when it
names a release (``6.1.12``); else, for a series (``6.1``), the newest release of that series the
store holds, or, when it holds none, the newest the catalog knows (fetched first). The newest is
the better guess: a set maintained on a stable line follows it, and patches written for an older
point release apply to a newer one of the same series far more often than the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.errors import UserError
from tracker.patchsets.formats import load_series, raw_patches
from tracker.patchsets.manifest import Manifest, VersionSpec
from tracker.port import output
from tracker.port.fileport import Releases
from tracker.port.model import PortReport
from tracker.port.series import PortedPatch, port_series
from tracker.port.upstream import has_history
from tracker.sources.store import ReleaseStore
from tracker.versions import KernelVersion, Moniker

if TYPE_CHECKING:
    from collections.abc import Callable

    from tracker.config import Settings
    from tracker.results.db import Database


@dataclass(frozen=True)
class PortResult:
    report: PortReport
    ported: list[PortedPatch]


def _newest_in_store(store: ReleaseStore, series: str) -> KernelVersion | None:
    found = [
        kv
        for kv in (KernelVersion.try_parse(t) for t in store.tags())
        if kv is not None
        and kv.series == series
        and kv.moniker in (Moniker.STABLE, Moniker.MAINLINE)
    ]
    return max(found, default=None)


def _newest_in_catalog(settings: Settings, db: Database, series: str) -> KernelVersion | None:
    from tracker.releases.service import list_releases

    found = [
        kv
        for kv in (KernelVersion.try_parse(e.version) for e in list_releases(settings, db))
        if kv is not None
        and kv.series == series
        and kv.moniker in (Moniker.STABLE, Moniker.MAINLINE)
    ]
    return max(found, default=None)


def base_release(
    settings: Settings, db: Callable[[], Database], spec: VersionSpec, explicit: str | None
) -> KernelVersion:
    """The release the version was written for (see the module's docstring)."""
    if explicit:
        return KernelVersion.parse(explicit)
    kv = spec.base_version
    if kv.sublevel or kv.rc is not None or spec.base.count(".") >= 2:
        return kv
    store = ReleaseStore.open(settings)
    found = _newest_in_store(store, kv.series) or _newest_in_catalog(settings, db(), kv.series)
    if found is None:
        raise UserError(
            f"no release of the {kv.series} series (the base of {spec.version}) in the store or catalog",
            hint=f"fetch one (`ktrack fetch {kv.series}`) or name it with --from",
        )
    return found


def ensure(settings: Settings, db: Callable[[], Database], version: KernelVersion) -> str:
    """The store commit of ``version``; imported through the catalog when the store lacks it."""
    store = ReleaseStore.open(settings)
    commit = store.resolve(version.tag)
    if commit is None:
        from tracker.releases.service import ensure_release

        commit = store.resolve(ensure_release(settings, db(), str(version)))
    if commit is None:
        raise UserError(f"release {version} is not in the store", hint=f"ktrack fetch {version}")
    return commit


def headers(spec: VersionSpec) -> dict[str, bytes]:
    out = {}
    for raw in raw_patches(spec):
        with raw.open() as fh:
            out[raw.name] = output.split_header(fh.read())
    return out


def port(
    settings: Settings,
    db: Callable[[], Database],
    manifest: Manifest,
    spec: VersionSpec,
    target: KernelVersion,
    *,
    out: Path | None,
    from_: str | None = None,
) -> PortResult:
    """Port ``spec`` to ``target``; write ``out`` when given (a rerun keeps the maintainer's edits)."""
    if out is not None:
        output.check_folder(out)
    series = load_series(spec)
    base = base_release(settings, db, spec, from_)
    if base == target:
        raise UserError(
            f"{manifest.name}@{spec.version}: the base release and the target are both {base}"
        )
    base_commit = ensure(settings, db, base)
    target_commit = ensure(settings, db, target)
    store = ReleaseStore.open(settings)
    git_dir = store.git_dir()
    paths = sorted({p for patch in series.patches for p in patch.paths})
    rel = Releases(
        git_dir,
        str(base),
        str(target),
        base_commit,
        target_commit,
        history=has_history(git_dir, base_commit, target_commit),
        fuzz=spec.fuzz,
        paths=paths,
    )
    mine = output.previous(out, [p.name for p in series.patches]) if out is not None else {}
    with store.tree(base_commit) as base_tree, store.tree(target_commit) as target_tree:
        ported = port_series(series, base_tree, target_tree, rel, mine)
    report = PortReport(
        patchset=manifest.name,
        from_version=spec.version,
        candidate=f"{spec.version}+port1",
        base_release=str(base),
        target=str(target),
        fuzz=spec.fuzz,
        history=rel.history,
        patches=tuple(p.report for p in ported),
    )
    if out is not None:
        output.write(out, report, ported, headers(spec), manifest, spec, target.series)
    return PortResult(report, ported)
