"""The release service the commands and the pipeline use: sync the catalog, ensure a release
is in the store (download, verify, import), list what is known."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tracker.config import FeedConfig, Settings
from tracker.errors import InfraError, UserError
from tracker.locks import file_lock
from tracker.releases import git, kernelorg, mirror, pgp, sha256sums
from tracker.releases.release import Release
from tracker.releases.sync import SyncSummary, upsert
from tracker.releases.urls import ForeignURL, confine
from tracker.results.db import Database
from tracker.results.models import KernelRelease
from tracker.sources.download import Downloader, NotFound
from tracker.sources.store import ReleaseStore
from tracker.versions import KernelVersion

Warn = Callable[[str], None]
PhaseProgress = Callable[[str, str, int, int | None], None]
"""``progress(version, phase, done, total)`` with phase ``download`` or ``import`` (bytes)."""


@dataclass(frozen=True)
class CatalogEntry:
    """A catalog row as ``releases list`` shows it."""

    version: str
    series: str
    moniker: str
    released_at: datetime | None
    eol: bool
    feed: str
    source_url: str | None
    signed: bool
    sha256: str | None
    store_ref: str | None
    in_store: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "series": self.series,
            "moniker": self.moniker,
            "released": self.released_at.astimezone(UTC).isoformat() if self.released_at else None,
            "eol": self.eol,
            "feed": self.feed,
            "source": self.source_url,
            "signed": self.signed,
            "sha256": self.sha256,
            "store_ref": self.store_ref,
            "in_store": self.in_store,
        }


def _ignore(_: str) -> None:
    return None


def feeds_to_sync(settings: Settings, name: str | None) -> list[FeedConfig]:
    if name is not None:
        return [settings.feed(name)]
    if not settings.feeds:
        raise UserError(
            "no feeds configured", hint="add a [feeds.NAME] table to ktrack.toml (see DESIGN.md)"
        )
    return list(settings.feeds)


def discover(cfg: FeedConfig, store: ReleaseStore, dl: Downloader, warn: Warn) -> list[Release]:
    """Every release one feed knows (a git feed also fetches its tags into the store)."""
    if cfg.kind == "kernelorg":
        return kernelorg.discover(
            dl, cfg.url, cfg.name, warn, keyring=cfg.keyring, allowed_hosts=cfg.allowed_hosts
        )
    if cfg.kind == "mirror":
        return mirror.discover(dl, cfg.url, cfg.name, warn, keyring=cfg.keyring)
    if cfg.kind == "git":
        return git.discover(store, cfg.url, cfg.tags, cfg.name)
    raise UserError(f"feeds.{cfg.name}.kind: unknown feed kind {cfg.kind!r}")


def sync(
    settings: Settings,
    db: Database,
    feed: str | None = None,
    *,
    warn: Warn | None = None,
    downloader: Downloader | None = None,
) -> SyncSummary:
    """Discover the releases of one feed (or all) and record them in the catalog."""
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        (warn or _ignore)(msg)

    dl = downloader or Downloader()
    store = ReleaseStore.open(settings)
    feeds = feeds_to_sync(settings, feed)
    found: list[Release] = []
    for cfg in feeds:
        with dl.guarded(_guard(cfg, cfg.url)):
            found.extend(discover(cfg, store, dl, note))
    added, updated = _record(db, found)
    return SyncSummary(
        feeds=tuple(f.name for f in feeds),
        found=len(found),
        added=added,
        updated=updated,
        warnings=tuple(warnings),
    )


SYNC_ATTEMPTS = 5


def _record(db: Database, found: list[Release]) -> tuple[int, int]:
    """Upsert into the catalog; a sync running at the same time that inserted a release first
    (a unique-version clash) is merged by trying again over the rows it wrote."""
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            with db.session() as s:
                return upsert(s, found)
        except IntegrityError:
            if attempt == SYNC_ATTEMPTS:
                raise InfraError(
                    f"the catalog kept changing under {SYNC_ATTEMPTS} attempts to record the "
                    "releases (other syncs at once?)",
                    hint="run `ktrack releases sync` again",
                ) from None
    raise AssertionError("unreachable")


def _refuse_conflicting_sums(kv: KernelVersion, source: str, dl: Downloader) -> None:
    sums_url = urljoin(source, sha256sums.SUMS)
    try:
        text = dl.get_bytes(sums_url).decode("utf-8", "replace")
    except (NotFound, InfraError):
        return  # nothing published there
    _, conflicting = sha256sums.parse_checked(text)
    name = tarball_name(source)
    if name in conflicting:
        raise InfraError(
            f"release {kv}: {sums_url} lists {name} twice with different sums; refused",
            hint="the mirror is inconsistent or tampered with: fetch from another one",
        )


def list_releases(settings: Settings, db: Database) -> list[CatalogEntry]:
    """The catalog sorted by version, each with whether the store holds it."""
    store_tags = ReleaseStore.open(settings).tags()
    with db.session() as s:
        rows = list(s.scalars(select(KernelRelease)))
    out = []
    for r in rows:
        kv = KernelVersion.try_parse(r.version)
        ref = r.store_ref or (kv.tag if kv else None)
        out.append(
            CatalogEntry(
                version=r.version,
                series=r.series,
                moniker=r.moniker,
                released_at=r.released_at.replace(tzinfo=UTC)
                if r.released_at and r.released_at.tzinfo is None
                else r.released_at,
                eol=r.eol,
                feed=r.feed,
                source_url=r.source_url,
                signed=r.signed,
                sha256=r.sha256,
                store_ref=r.store_ref,
                in_store=ref in store_tags if ref else False,
            )
        )
    return sorted(out, key=lambda e: KernelVersion.parse(e.version).sort_key())


def _row(db: Database, version: KernelVersion) -> KernelRelease:
    with db.session() as s:
        row = s.scalar(select(KernelRelease).where(KernelRelease.version == str(version)))
    if row is None:
        raise UserError(
            f"release {version} is not in the catalog", hint="run `ktrack releases sync` first"
        )
    return row


def _set_store_ref(db: Database, version: KernelVersion, ref: str) -> None:
    with db.session() as s:
        row = s.scalar(select(KernelRelease).where(KernelRelease.version == str(version)))
        if row is not None and row.store_ref != ref:
            row.store_ref = ref


def _feed_config(settings: Settings, name: str) -> FeedConfig | None:
    return next((f for f in settings.feeds if f.name == name), None)


def tarball_name(url: str) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name in (".", ".."):
        raise UserError(f"not a tarball URL: {url}")
    return name


def ensure_release(
    settings: Settings,
    db: Database,
    version: str,
    *,
    progress: PhaseProgress | None = None,
    warn: Warn | None = None,
    downloader: Downloader | None = None,
    keep_download: bool = False,
    force: bool = False,
) -> str:
    """A store rev (the tag) for ``version``, importing the release first when needed.

    ``force`` downloads and imports it again even when the store has it (a damaged store).

    UserError when the catalog does not know the version or it has no source; InfraError on
    network, disk, checksum or signature trouble.
    """
    warn = warn or _ignore
    kv = KernelVersion.parse(version)
    _row(db, kv)  # UserError before any lock or download when the catalog lacks it
    # one process at a time per release: the second finds it in the store when the first is done
    with file_lock(settings.downloads / f".{kv}.lock"):
        return _ensure(settings, db, kv, progress, warn, downloader, keep_download, force)


def _ensure(
    settings: Settings,
    db: Database,
    kv: KernelVersion,
    progress: PhaseProgress | None,
    warn: Warn,
    downloader: Downloader | None,
    keep_download: bool,
    force: bool = False,
) -> str:
    row = _row(db, kv)
    store = ReleaseStore.open(settings)
    for ref in (row.store_ref, kv.tag):
        if ref and store.has(ref) and not force:
            if row.store_ref != ref:
                _set_store_ref(db, kv, ref)
            return ref
    cfg = _feed_config(settings, row.feed)
    if (cfg is not None and cfg.kind == "git") or (cfg is None and row.store_ref):
        url = cfg.url if cfg is not None else row.source_url
        if not url:
            raise UserError(f"release {kv}: its git feed {row.feed!r} is no longer configured")
        store.fetch_git(url, cfg.tags if cfg is not None else kv.tag, force=force)
        if not store.has(kv.tag):
            raise InfraError(f"release {kv}: tag {kv.tag} is gone from {url}")
        _set_store_ref(db, kv, kv.tag)
        return kv.tag
    if not row.source_url:
        raise UserError(
            f"release {kv} has no source tarball in feed {row.feed!r}",
            hint="linux-next snapshots are only available from a git feed",
        )
    if cfg is None:
        raise ForeignURL(
            f"release {kv}: its feed {row.feed!r} is no longer configured; "
            "its URLs cannot be checked",
            hint=f"configure [feeds.{row.feed}] again, or sync from another feed",
        )
    source, pgp_url = _confined_urls(cfg, row.source_url, row.pgp_url, kv)
    dl = downloader or Downloader()
    with dl.guarded(_guard(cfg, _feed_root(cfg))):  # redirects stay confined too
        _check_verifiable(cfg, kv, source, row.sha256, pgp_url, warn, dl)
        dest = settings.downloads / tarball_name(source)

        def step(phase: str) -> Callable[[int, int | None], None] | None:
            if progress is None:
                return None
            return lambda done, total: progress(str(kv), phase, done, total)

        dl.download(source, dest, sha256=row.sha256, progress=step("download"))
        keyring = cfg.keyring if cfg.verify != "off" else None
        if keyring and pgp_url:
            sig = dest.with_name(tarball_name(pgp_url))
            dl.download(pgp_url, sig)
            try:
                pgp.verify_tarball(dest, sig, keyring)
            except InfraError:
                dest.unlink(missing_ok=True)
                raise
        elif keyring and row.signed:
            dest.unlink(missing_ok=True)
            raise InfraError(f"release {kv}: a keyring is configured but no signature URL is known")
        store.import_tarball(str(kv), dest, progress=step("import"), force=force)
        _set_store_ref(db, kv, kv.tag)
        if not keep_download:  # the store holds every byte of it now
            dest.unlink(missing_ok=True)
            if pgp_url:
                dest.with_name(tarball_name(pgp_url)).unlink(missing_ok=True)
        return kv.tag


def _feed_root(cfg: FeedConfig) -> str:
    """Where a feed's tarballs and signatures may be: its root (``pub/`` of a kernel.org site)."""
    return kernelorg.tarball_root(cfg.url) if cfg.kind == "kernelorg" else cfg.url


def _guard(cfg: FeedConfig, root: str) -> Callable[[str], object]:
    """The check every redirect of a feed's requests passes (ForeignURL when it leaves)."""
    return lambda url: confine(url, root, cfg.allowed_hosts, what=f"feed {cfg.name}: redirect")


def _confined_urls(
    cfg: FeedConfig, source: str, pgp_url: str | None, kv: KernelVersion
) -> tuple[str, str | None]:
    """The catalog's URLs for a release, each confined to its feed's root (issue 15): a row
    written by an older ktrack or another tool is checked again before anything is fetched."""
    root = _feed_root(cfg)
    where = f"release {kv} (feed {cfg.name})"
    source = confine(source, root, cfg.allowed_hosts, what=where)
    if pgp_url is not None:
        pgp_url = confine(pgp_url, root, cfg.allowed_hosts, what=where)
    return source, pgp_url


def _check_verifiable(
    cfg: FeedConfig,
    kv: KernelVersion,
    source: str,
    sha256: str | None,
    pgp_url: str | None,
    warn: Warn,
    dl: Downloader,
) -> None:
    """Refuse (InfraError) a tarball the feed's ``verify`` mode requires and nothing can verify.

    A published sha256 (signed when the feed has a keyring: the sync checked that) verifies it;
    so does a signature when a keyring is set. Conflicting sums publish none: refused in every
    mode but ``off`` (the folder's sums are read again to tell them from no sums at all).
    """
    if cfg.verify == "off":
        return
    if sha256 is not None or (cfg.keyring and pgp_url):
        return
    _refuse_conflicting_sums(kv, source, dl)
    what = "no sha256 in a signed sha256sums.asc" if cfg.keyring else "no published sha256"
    if cfg.keyring:
        what += " and no signature"
    if cfg.verify == "required" or cfg.keyring:
        raise InfraError(
            f"release {kv}: {what} for {source}; refused (feed {cfg.name} verifies tarballs)",
            hint=f"publish sha256sums.asc beside it, or set [feeds.{cfg.name}] "
            'verify = "if-published" to accept unverified tarballs',
        )
    warn(f"{kv}: {what} for {source}; imported unverified (verify = if-published)")
