"""The ``mirror`` feed: a kernel.org-shaped tree of ``vN.x/`` folders on ``file://`` or ``http://``."""

from __future__ import annotations

from tracker.releases import cdn
from tracker.releases.release import Release
from tracker.sources.download import Downloader


def discover(
    dl: Downloader, root: str, feed: str, warn: cdn.Warn, *, keyring: str | None = None
) -> list[Release]:
    return cdn.crawl(dl, root, feed, warn, keyring=keyring)
