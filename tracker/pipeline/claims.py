"""Database-level claims on jobs, so workers on many hosts never compute or write a job twice.

The per-key file lock of ``executors.execute_job`` only guards one host. A claim is one row of
``job_claim`` per job key, taken with an atomic upsert: it succeeds when nobody holds the job, when
the holder's lease ran out (its worker died), when the holder ended, or when the holder is the
named ``previous`` attempt (a task that retried itself after an infrastructure error). The holder
pushes its lease forward while it works (``heartbeat``) and ``fence`` re-checks ownership inside
every transaction that writes the job's results: once another attempt took over, the old one can
no longer write anything.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from tracker.pipeline.record import now
from tracker.results.db import Database
from tracker.results.models import JobClaim

RUNNING, RELEASED, FAILED = "running", "released", "failed"


class ClaimLost(Exception):
    """Another attempt took over the job: this one must not write."""


class Acquired(Enum):
    """What ``acquire`` found."""

    ACQUIRED = "acquired"
    BUSY = "busy"  # a live attempt holds the job


@dataclass(frozen=True)
class ClaimView:
    """A claim row as the coordinator sees it."""

    key: str
    run_id: int | None
    owner: str
    state: str
    lease_until: datetime
    attempts: int
    note: str | None
    cause: str | None = None  # vocab.Cause of a failed claim

    def live(self, at: datetime) -> bool:
        return self.state == RUNNING and _aware(self.lease_until) > at


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time we write is UTC
    from datetime import UTC

    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_token() -> str:
    """A name for one attempt at one job (unique across hosts and retries)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _insert(session: Session) -> Any:
    """An INSERT that knows ON CONFLICT, for the session's database (PostgreSQL or SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(JobClaim)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(JobClaim)


def acquire(
    session: Session,
    key: str,
    token: str,
    *,
    run_id: int | None,
    lease: float,
    previous: str | None = None,
) -> Acquired:
    """Take the claim on ``key`` for ``token`` in one statement (safe under concurrency)."""
    at = now()
    until = at + timedelta(seconds=lease)
    stmt = _insert(session).values(
        key=key,
        run_id=run_id,
        owner=token,
        state=RUNNING,
        claimed_at=at,
        lease_until=until,
        attempts=1,
        note=None,
    )
    takeover = or_(
        JobClaim.state != RUNNING,
        JobClaim.lease_until < at,
        JobClaim.owner == (previous or token),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[JobClaim.key],
        set_={
            "run_id": run_id,
            "owner": token,
            "state": RUNNING,
            "claimed_at": at,
            "lease_until": until,
            "attempts": JobClaim.attempts + 1,
            "note": None,
        },
        where=takeover,
    ).returning(JobClaim.owner)
    owner = session.execute(stmt).scalar()
    return Acquired.ACQUIRED if owner == token else Acquired.BUSY


def renew(session: Session, key: str, token: str, lease: float) -> bool:
    """Push the lease forward; False when the claim is no longer ours."""
    result = session.execute(
        update(JobClaim)
        .where(JobClaim.key == key, JobClaim.owner == token, JobClaim.state == RUNNING)
        .values(lease_until=now() + timedelta(seconds=lease))
    )
    return bool(getattr(result, "rowcount", 0))


def release(
    session: Session,
    key: str,
    token: str,
    *,
    state: str = RELEASED,
    note: str = "",
    cause: str | None = None,
) -> None:
    """End our claim: ``released`` (done, or give it back) or ``failed`` (gave up for good; then
    ``cause`` says whose fault: ``bad-input`` or ``infrastructure``)."""
    session.execute(
        update(JobClaim)
        .where(JobClaim.key == key, JobClaim.owner == token)
        .values(state=state, note=note[:4000] or None, lease_until=now(), cause=cause)
    )


def claims(session: Session, keys: Iterable[str]) -> dict[str, ClaimView]:
    """The claim rows of ``keys`` (those that have one)."""
    out: dict[str, ClaimView] = {}
    wanted = list(keys)
    for i in range(0, len(wanted), 500):
        for row in session.scalars(select(JobClaim).where(JobClaim.key.in_(wanted[i : i + 500]))):
            out[row.key] = ClaimView(
                row.key,
                row.run_id,
                row.owner,
                row.state,
                _aware(row.lease_until),
                row.attempts,
                row.note,
                row.cause,
            )
    return out


class Holder:
    """One attempt's hold on a job: a heartbeat thread and the write fence."""

    def __init__(self, db: Database, key: str, token: str, lease: float) -> None:
        self.db, self.key, self.token, self.lease = db, key, token, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"claim-{key[:8]}", daemon=True)

    def __enter__(self) -> Holder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        interval = max(self.lease / 3, 0.2)
        while not self._stop.wait(interval):
            try:
                with self.db.session() as s:
                    if not renew(s, self.key, self.token, self.lease):
                        self.lost = True
                        return
            except Exception:  # database briefly away: the fence decides at the next write
                pass

    def fence(self, session: Session) -> None:
        """Inside a writing transaction: renew the claim or raise ClaimLost (the row lock taken by
        the UPDATE keeps a stealer out until this transaction commits)."""
        if self.lost or not renew(session, self.key, self.token, self.lease):
            self.lost = True
            raise ClaimLost(f"job {self.key} was taken over by another attempt")
