"""The ``git`` feed: the tags of a local clone or a remote, fetched with history into the store."""

from __future__ import annotations

from datetime import UTC, datetime

from tracker.releases.release import Release
from tracker.sources.store import ReleaseStore
from tracker.versions import KernelVersion


def discover(store: ReleaseStore, url: str, pattern: str, feed: str) -> list[Release]:
    """Fetch the tags matching ``pattern`` (and their history) into ``store``; one Release each.

    The release date is the tag's (the tagger's date, or the commit's for a lightweight tag).
    Tags are not signature-checked, so the releases are marked unsigned.
    """
    versions = store.fetch_git(url, pattern)
    dates = store.tag_dates()
    out = []
    for text in versions:
        kv = KernelVersion.parse(text)
        when = dates.get(kv.tag)
        out.append(
            Release(
                version=kv,
                feed=feed,
                moniker=kv.moniker.value,
                released_at=datetime.fromtimestamp(when, UTC) if when is not None else None,
                source_url=url,
                signed=False,
                store_ref=kv.tag,
            )
        )
    return out
