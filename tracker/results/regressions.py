"""Regressions with a lifecycle: opened by a run, kept while broken, closed when it passes again.

Two kinds, both holding the target fixed:

``release``
    A (patch set version, target) whose newest results on a release line fail after a release
    that passed. Lines: mainline releases and release candidates form one; each stable series
    (6.1.x, 6.6.x) is its own, since stable branches move in parallel. ``first_bad_release`` is
    the first of the failing streak at the line's head, ``last_good_release`` the passing release
    before it (on the line, or just below the line when the whole line fails). A line that fails
    from its start after an older line already failed continues that break (no second
    regression); a pair that never passed has no regression (incompatible, not regressed). It
    closes when the line's newest result passes again.
``run``
    A (patch set version, release, target) that passed in the previous run covering it and fails
    in this one at a stage that run got past (same code, same release: the toolchain or a flaky
    boot changed; a deeper stage list that finds a first failure is not a regression between
    runs). It closes when a later run sees it pass.

Only verdicts count: ``error`` (our infrastructure failed) and ``skip`` never open or close
anything. A ``boot`` or ``test`` failure counts only once it has been retried: the boot stage
retries in place and records ``detail["attempts"]`` (two entries), or the job ran twice
(``Job.attempts >= 2``); a single failed boot alone is unconfirmed.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.results import queries
from tracker.results.models import Job, KernelRelease, Regression, Run, RunJob
from tracker.results.queries import JobRow, RegressionRow, one_line, version_key
from tracker.versions import KernelVersion, Moniker
from tracker.vocab import Stage, Status

RETRIED_STAGES = (Stage.BOOT, Stage.TEST)
CONFIRMING_ATTEMPTS = 2  # a boot or test failure is retried once before it counts


def verdict(job: JobRow, retried: Container[int] = ()) -> bool | None:
    """True when the job passes, False when it is broken, None when it gives no verdict.

    A boot or test failure counts once retried: the job ran twice, or its stage says it booted
    twice (``retried`` holds those job ids, see :func:`retried_jobs`). A status whose cause is
    not a verdict (upstream, infrastructure, bad input) judges nothing.
    """
    if not job.gives_verdict:
        return None
    if job.status in (Status.PASS, Status.WARN):
        return True
    if job.status is Status.FAIL:
        if (
            job.furthest_stage in RETRIED_STAGES
            and job.attempts < CONFIRMING_ATTEMPTS
            and job.id not in retried
        ):
            return None
        return False
    return None  # error: our infrastructure, skip: nothing ran


def retried_jobs(session: Session, jobs: Iterable[JobRow]) -> set[int]:
    """Jobs whose boot or test failure was retried inside the stage (``detail.attempts``)."""
    ids = [j.id for j in jobs if j.status is Status.FAIL and j.furthest_stage in RETRIED_STAGES]
    out: set[int] = set()
    for job_id, rows in queries.stage_results(session, ids).items():
        for sr in rows:
            if sr.stage in RETRIED_STAGES and sr.status is Status.FAIL:
                attempts = sr.detail.get("attempts")
                if isinstance(attempts, list) and len(attempts) >= CONFIRMING_ATTEMPTS:
                    out.add(job_id)
    return out


@dataclass(frozen=True)
class Break:
    """A regression as computed from the results (before it is matched with stored ones)."""

    psv_id: int
    target: str
    kind: str
    series: str  # the release line (see line_of)
    stage: str | None
    last_good: JobRow | None
    first_bad: JobRow

    def summary(self) -> str:
        stage = self.stage or "job"
        if self.kind == "run":
            text = f"{stage} fails on {self.first_bad.release} since the previous run passed"
        else:
            good = self.last_good.release if self.last_good else "?"
            text = f"{stage} fails since {self.first_bad.release} (last good {good})"
        reason = one_line(self.first_bad.summary)
        return f"{text}: {reason}" if reason else text


@dataclass(frozen=True)
class RegressionDelta:
    """What one run changed: regressions it opened, kept open and closed."""

    run_id: int
    new: tuple[RegressionRow, ...]
    kept: tuple[RegressionRow, ...]
    closed: tuple[RegressionRow, ...]


def line_of(version: str) -> str:
    """The line a release belongs to: its series for stable point releases, else ``mainline``.

    Stable branches (6.1.x, 6.6.x) move in parallel, so each is compared with itself; mainline
    releases and release candidates form one line; linux-next is its own.
    """
    v = KernelVersion.try_parse(version)
    if v is None:
        return version
    if v.moniker is Moniker.STABLE:
        return v.series
    return "next" if v.is_next else "mainline"


def release_breaks(jobs: Iterable[JobRow], retried: Container[int] = ()) -> list[Break]:
    """The current release regressions among the latest job per (psv, release, target)."""
    pairs: dict[tuple[int, str], list[JobRow]] = {}
    for j in queries.latest_per_cell(jobs).values():
        if verdict(j, retried) is not None:
            pairs.setdefault((j.psv_id, j.target), []).append(j)
    out: list[Break] = []
    for (psv_id, target), rows in pairs.items():
        rows.sort(key=lambda j: version_key(j.release))
        lines: dict[str, list[int]] = {}
        for i, j in enumerate(rows):
            lines.setdefault(line_of(j.release), []).append(i)
        for line, idx in lines.items():
            if verdict(rows[idx[-1]], retried) is not False:
                continue
            k = len(idx) - 1
            while k > 0 and verdict(rows[idx[k - 1]], retried) is False:
                k -= 1
            first_bad_i = idx[k]
            if k > 0:
                before: JobRow | None = rows[idx[k - 1]]  # the line passed before its streak
            else:  # the whole line fails: compare with the release just below it
                before = rows[first_bad_i - 1] if first_bad_i > 0 else None
            if before is None or verdict(before, retried) is not True:
                continue  # never passed, or the break continues from an older line
            first_bad = rows[first_bad_i]
            out.append(
                Break(
                    psv_id=psv_id,
                    target=target,
                    kind="release",
                    series=line,
                    stage=first_bad.furthest_stage.value if first_bad.furthest_stage else None,
                    last_good=before,
                    first_bad=first_bad,
                )
            )
    return out


def _stage_index(job: JobRow) -> int:
    return job.furthest_stage.index if job.furthest_stage else -1


def _run_coverage(session: Session, run_ids: Sequence[int]) -> dict[int, list[JobRow]]:
    """The finished jobs each run covered (RunJob rows, plus jobs created by the run)."""
    out: dict[int, dict[int, JobRow]] = {r: {} for r in run_ids}
    if not run_ids:
        return {}
    base = queries.job_select().where(Job.finished.is_(True))
    stmt = base.add_columns(RunJob.run_id).join(RunJob, RunJob.job_id == Job.id)
    stmt = stmt.where(RunJob.run_id.in_(list(run_ids)))
    for r in session.execute(stmt):
        row = queries.job_row(r)
        out[r[-1]][row.id] = row
    for r in session.execute(base.where(Job.run_id.in_(list(run_ids)))):
        row = queries.job_row(r)
        if row.run_id is not None:
            out[row.run_id].setdefault(row.id, row)
    return {k: list(v.values()) for k, v in out.items()}


def _runs_before(session: Session, run_id: int) -> list[int]:
    ids = {
        r
        for (r,) in session.execute(select(RunJob.run_id).where(RunJob.run_id <= run_id).distinct())
    }
    ids |= {
        r
        for (r,) in session.execute(select(Job.run_id).where(Job.run_id <= run_id).distinct())
        if r is not None
    }
    ids.add(run_id)
    return sorted(ids)


def run_breaks(
    session: Session, run_id: int, retried: Container[int] | None = None
) -> tuple[list[Break], set[tuple[int, int, str]]]:
    """Run regressions opened by ``run_id``, and the (psv, release, target) it saw passing."""
    runs = _runs_before(session, run_id)
    coverage = _run_coverage(session, runs)
    if retried is None:
        retried = retried_jobs(session, [j for rows in coverage.values() for j in rows])
    now = queries.latest_per_cell(coverage.get(run_id, []))
    previous: dict[tuple[int, int, str], JobRow] = {}
    for r in runs:
        if r == run_id:
            continue
        for k, j in queries.latest_per_cell(coverage.get(r, [])).items():
            previous[k] = j  # later runs overwrite earlier ones
    breaks: list[Break] = []
    passing: set[tuple[int, int, str]] = set()
    for k, j in now.items():
        v = verdict(j, retried)
        if v is True:
            passing.add(k)
            continue
        prev = previous.get(k)
        if (
            v is False
            and prev is not None
            and prev.id != j.id
            and verdict(prev, retried) is True
            and _stage_index(j) <= _stage_index(prev)  # that run got past this stage
        ):
            breaks.append(
                Break(
                    psv_id=j.psv_id,
                    target=j.target,
                    kind="run",
                    series=j.series,
                    stage=j.furthest_stage.value if j.furthest_stage else None,
                    last_good=prev,
                    first_bad=j,
                )
            )
    return breaks, passing


def update_regressions(session: Session, run_id: int) -> RegressionDelta:
    """Open, keep and close regressions after run ``run_id``; call it at the end of every run."""
    now = datetime.now(UTC)
    jobs = queries.finished_jobs(session)
    retried = retried_jobs(session, jobs)
    rel_breaks = {(b.psv_id, b.target, b.series): b for b in release_breaks(jobs, retried)}
    r_breaks, run_passing = run_breaks(session, run_id, retried)
    run_break_map = {(b.psv_id, b.first_bad.release_id, b.target): b for b in r_breaks}

    line_of_release: dict[int, str] = {
        rid: line_of(version)
        for rid, version in session.execute(select(KernelRelease.id, KernelRelease.version))
    }
    open_rows = session.scalars(
        select(Regression).where(Regression.closed_run_id.is_(None), Regression.closed_at.is_(None))
    ).all()
    new_ids: list[int] = []
    kept_ids: list[int] = []
    closed_ids: list[int] = []
    new_objs: list[Regression] = []
    for reg in open_rows:
        if reg.kind == "release":
            key = (
                reg.patchset_version_id,
                reg.target,
                line_of_release.get(reg.first_bad_release_id, ""),
            )
            b = rel_breaks.get(key)
            if b is not None and b.first_bad.release_id == reg.first_bad_release_id:
                del rel_breaks[key]
                reg.summary = b.summary()
                kept_ids.append(reg.id)
            else:
                reg.closed_run_id, reg.closed_at = run_id, now
                closed_ids.append(reg.id)
        else:
            tkey = (reg.patchset_version_id, reg.first_bad_release_id, reg.target)
            if tkey in run_passing:
                reg.closed_run_id, reg.closed_at = run_id, now
                closed_ids.append(reg.id)
            else:
                run_break_map.pop(tkey, None)
                kept_ids.append(reg.id)
    for b in [*rel_breaks.values(), *run_break_map.values()]:
        obj = Regression(
            patchset_version_id=b.psv_id,
            target=b.target,
            kind=b.kind,
            stage=b.stage,
            last_good_release_id=b.last_good.release_id if b.last_good else None,
            first_bad_release_id=b.first_bad.release_id,
            opened_run_id=run_id,
            summary=b.summary(),
            opened_at=now,
        )
        session.add(obj)
        new_objs.append(obj)
    session.flush()
    new_ids = [o.id for o in new_objs]
    rows = {r.id: r for r in queries.regressions(session)}
    return RegressionDelta(
        run_id=run_id,
        new=tuple(rows[i] for i in sorted(new_ids)),
        kept=tuple(rows[i] for i in sorted(kept_ids)),
        closed=tuple(rows[i] for i in sorted(closed_ids)),
    )


def new_regressions(session: Session, *, since_run: int | None = None) -> list[RegressionRow]:
    """Open regressions opened after run ``since_run``; by default, those the latest run opened.

    With ``since_run`` every run after it is judged: a regression that the first of those runs
    opened and a later one kept is still new (a daily apply run opens it, the build run keeps it).
    """
    if since_run is None:
        latest = queries.latest_run_id(session)
        if latest is None:
            return []
        return [
            r for r in queries.regressions(session, open_only=True) if r.opened_run_id == latest
        ]
    return [
        r
        for r in queries.regressions(session, open_only=True)
        if (r.opened_run_id or 0) > since_run
    ]


def run_before(session: Session, cutoff: datetime) -> int:
    """The newest run that started before ``cutoff`` (0 when none): the runs after it are the
    runs since ``cutoff`` (a run with no start time counts as before)."""
    before: list[int] = []
    after: list[int] = []
    for run_id, started in session.execute(select(Run.id, Run.started_at)):
        old = started is None or _aware(started) < _aware(cutoff)
        (before if old else after).append(run_id)
    first_after = min(after, default=None)
    if first_after is not None:  # ids grow with time: a clock stepped back cannot reorder runs
        before = [i for i in before if i < first_after]
    return max(before, default=0)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
