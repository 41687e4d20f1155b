"""The ``kernelorg`` feed: ``releases.json`` for the current releases plus the cdn index.

``<root>/releases.json`` names the current releases with their moniker, date and EOL flag;
``<root>/pub/linux/kernel/vN.x/`` holds every historical tarball with its ``sha256sums.asc``.
URLs in releases.json that point into ``/pub/`` are rebased onto the configured root, so an
internal mirror (or a test's loopback server) holding a copy of the site serves everything; any
other URL (another folder, scheme or host not in ``allowed_hosts``) is refused (``urls.py``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from tracker.errors import InfraError
from tracker.releases import cdn
from tracker.releases.release import Release
from tracker.releases.urls import ForeignURL, confine
from tracker.sources.download import Downloader
from tracker.versions import KernelVersion

KNOWN_MONIKERS = ("mainline", "stable", "longterm", "linux-next", "rc")


def rebase(url: str | None, root: str) -> str | None:
    """``https://cdn.kernel.org/pub/x`` -> ``<root>/pub/x``; other URLs unchanged."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.path.startswith("/pub/"):
        return urljoin(root if root.endswith("/") else root + "/", parts.path.lstrip("/"))
    return url


def _released(entry: dict[str, Any]) -> datetime | None:
    rel = entry.get("released")
    if not isinstance(rel, dict):
        return None
    ts = rel.get("timestamp")
    if isinstance(ts, int | float) and not isinstance(ts, bool) and ts > 0:
        try:
            return datetime.fromtimestamp(ts, UTC)
        except (ValueError, OverflowError, OSError):  # past year 9999: no date
            return None
    iso = rel.get("isodate")
    if isinstance(iso, str):
        try:
            return datetime.fromisoformat(iso).replace(tzinfo=UTC)
        except ValueError:
            return None
    return None


def tarball_root(root: str) -> str:
    """Where a kernel.org-shaped site keeps its tarballs: the only place its URLs may point."""
    return urljoin(root if root.endswith("/") else root + "/", "pub/")


def _confined(
    url: str | None, root: str, hosts: tuple[str, ...], where: str, warn: cdn.Warn
) -> str | None:
    if url is None:
        return None
    try:
        return confine(url, tarball_root(root), hosts)
    except ForeignURL as exc:
        warn(f"{where}: {exc}; ignored")
        return None


def parse_releases_json(
    data: bytes,
    *,
    url: str,
    root: str,
    feed: str,
    warn: cdn.Warn,
    allowed_hosts: tuple[str, ...] = (),
) -> list[Release]:
    """The releases of a ``releases.json``; unknown fields are ignored, bad entries skipped.

    A ``source`` or ``pgp`` URL outside the site's ``pub/`` (after rebasing) and the allowed
    hosts is dropped with a warning: the release is then fetched from the index's URL, if any.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InfraError(f"{url}: not JSON: {exc}") from exc
    entries = doc.get("releases") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise InfraError(f'{url}: no "releases" list; is this kernel.org\'s releases.json?')
    out: list[Release] = []
    for i, entry in enumerate(entries):
        where = f"{url}: releases[{i}]"
        if not isinstance(entry, dict):
            warn(f"{where}: not an object; skipped")
            continue
        text = entry.get("version")
        kv = KernelVersion.try_parse(text) if isinstance(text, str) else None
        if kv is None:
            warn(f"{where}: missing or unknown version {text!r}; skipped")
            continue
        moniker = entry.get("moniker")
        if not isinstance(moniker, str) or moniker not in KNOWN_MONIKERS:
            if moniker is not None:
                warn(f"{where}: unknown moniker {moniker!r}; using {kv.moniker.value!r}")
            moniker = kv.moniker.value
        source = entry.get("source") if isinstance(entry.get("source"), str) else None
        pgp = entry.get("pgp") if isinstance(entry.get("pgp"), str) else None
        source_url = _confined(rebase(source, root), root, allowed_hosts, where, warn)
        pgp_url = _confined(rebase(pgp, root), root, allowed_hosts, where, warn)
        eol = entry.get("iseol")
        out.append(
            Release(
                version=kv,
                feed=feed,
                moniker=moniker,
                released_at=_released(entry),
                eol=eol is True,
                source_url=source_url,
                pgp_url=pgp_url,
                signed=pgp_url is not None and kv.is_signed_release,
            )
        )
    return out


def discover(
    dl: Downloader,
    root: str,
    feed: str,
    warn: cdn.Warn,
    *,
    keyring: str | None = None,
    allowed_hosts: tuple[str, ...] = (),
) -> list[Release]:
    """releases.json merged with the cdn index (which supplies the sha256 of every tarball)."""
    root = root if root.endswith("/") else root + "/"
    json_url = urljoin(root, "releases.json")
    current = parse_releases_json(
        dl.get_bytes(json_url),
        url=json_url,
        root=root,
        feed=feed,
        warn=warn,
        allowed_hosts=allowed_hosts,
    )
    index = {
        str(r.version): r
        for r in cdn.crawl(dl, urljoin(root, "pub/linux/kernel/"), feed, warn, keyring=keyring)
    }
    merged: dict[str, Release] = dict(index)
    for rel in current:
        key = str(rel.version)
        old = index.get(key)
        if old is not None and rel.source_url == old.source_url:
            merged[key] = rel.merged(old)
        elif old is not None:
            merged[key] = rel.merged(old) if rel.source_url else old.merged(rel)
        else:
            merged[key] = rel
    return list(merged.values())
