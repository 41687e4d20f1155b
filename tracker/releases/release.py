"""What a feed knows about one kernel release (before it becomes a catalog row)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.versions import KernelVersion


@dataclass(frozen=True)
class Release:
    """One release as a feed describes it."""

    version: KernelVersion
    feed: str
    moniker: str  # kernel.org's word when the feed gives one (mainline, stable, longterm, ...)
    released_at: datetime | None = None
    eol: bool = False
    source_url: str | None = None  # the tarball, or the repository for a git feed
    pgp_url: str | None = None  # kernel.org's .sign (covers the uncompressed tar)
    signed: bool = False
    sha256: str | None = None  # from the folder's sha256sums.asc
    store_ref: str | None = None  # set when the release is already in the store (git feeds)

    def merged(self, other: Release) -> Release:
        """This release with the gaps filled from ``other`` (same version, another source)."""
        return Release(
            version=self.version,
            feed=self.feed,
            moniker=self.moniker,
            released_at=self.released_at or other.released_at,
            eol=self.eol or other.eol,
            source_url=self.source_url or other.source_url,
            pgp_url=self.pgp_url or other.pgp_url,
            signed=self.signed or other.signed,
            sha256=self.sha256 or other.sha256,
            store_ref=self.store_ref or other.store_ref,
        )
