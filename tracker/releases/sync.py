"""Write what the feeds found into the catalog (``kernel_release`` rows)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.releases.release import Release
from tracker.results.models import KernelRelease


@dataclass(frozen=True)
class SyncSummary:
    """What one ``releases sync`` did."""

    feeds: tuple[str, ...]
    found: int
    added: int
    updated: int
    warnings: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds": list(self.feeds),
            "found": self.found,
            "added": self.added,
            "updated": self.updated,
            "warnings": list(self.warnings),
        }


def row_values(rel: Release) -> dict[str, Any]:
    return {
        "version": str(rel.version),
        "series": rel.version.series,
        "moniker": rel.moniker,
        "released_at": rel.released_at,
        "eol": rel.eol,
        "feed": rel.feed,
        "source_url": rel.source_url,
        "pgp_url": rel.pgp_url,
        "signed": rel.signed,
        "sha256": rel.sha256,
        "store_ref": rel.store_ref,
    }


def upsert(session: Session, releases: Iterable[Release]) -> tuple[int, int]:
    """Insert new releases and refresh known ones; return ``(added, updated)``.

    A release the same feed found before is refreshed (a kept ``store_ref`` is never dropped). A
    release another feed owns only gets its empty fields filled, and the ``store_ref`` when the
    new feed has put it in the store (a git feed: with history).
    """
    added = updated = 0
    now = datetime.now(UTC)
    existing = {r.version: r for r in session.scalars(select(KernelRelease))}
    for rel in releases:
        values = row_values(rel)
        row = existing.get(values["version"])
        if row is None:
            row = KernelRelease(**values, discovered_at=now)
            session.add(row)
            existing[row.version] = row
            added += 1
            continue
        changed = False
        for key, value in values.items():
            current = getattr(row, key)
            if key == "store_ref" and value is None:
                continue
            if row.feed == rel.feed or key == "store_ref":
                new = value
            else:
                new = current if current not in (None, False) else value
            if key == "feed":
                new = current
            if _normal(new) != _normal(current):
                setattr(row, key, new)
                changed = True
        updated += changed
    return added, updated


def _normal(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
