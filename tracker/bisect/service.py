"""Bisect a patch set between two releases of the store, record what it found, and bisect the
pairs a run newly broke (``ktrack run`` calls ``bisect_new_regressions``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tracker.bisect import describe, record
from tracker.bisect.history import history_available
from tracker.bisect.model import BisectResult, Scope
from tracker.bisect.probe import make_probe
from tracker.bisect.search import find_breaks
from tracker.config import Settings
from tracker.errors import InfraError, UserError
from tracker.results.db import Database
from tracker.results.queries import RegressionRow
from tracker.sources.store import ReleaseStore


def bisect_patchset(
    settings: Settings,
    db: Database | None,
    patchset_spec: str,
    good_version: str,
    bad_version: str,
    stage: str = "apply",
    *,
    target: str | None = None,
    store: bool = True,
) -> BisectResult:
    """Bisect ``patchset_spec`` (``name[@ver]``) between two releases of the store and record it.

    Each culprit found is stored as a ``Culprit`` row (when ``db`` is given and ``store``), with
    the hunks it broke, a diff excerpt and later commits in ``detail``. ``stage`` is ``apply``,
    or ``build``/``boot`` (results cached by tree hash under the cache dir).
    """
    rs = ReleaseStore.open(settings)
    if not rs.exists():
        raise UserError(
            f"the release store {rs.git_dir()} is empty", hint="run `ktrack fetch` first"
        )
    git_dir = rs.git_dir()
    good_rev = _store_rev(rs, good_version)
    bad_rev = _store_rev(rs, bad_version)
    job = make_probe(settings, patchset_spec, stage=stage, target=target, db=db)
    result = find_breaks(
        git_dir, good_rev, bad_rev, job.cache, stage=stage, names=(good_version, bad_version)
    )
    result = describe.describe(git_dir, result)
    scope = Scope(job.name, job.version, good_version, bad_version, job.target)
    result = dataclasses.replace(result, scope=scope)
    if db is not None and store:
        try:
            stored = record.store(db, result, job, good_version, bad_version)
            result = dataclasses.replace(result, stored=stored)
        except UserError as exc:  # the answer stands; say why it was not recorded
            result = dataclasses.replace(result, not_stored=str(exc))
    return result


def _store_rev(store: ReleaseStore, version: str) -> str:
    commit = store.resolve(version)
    if commit is None:
        raise UserError(
            f"release {version} is not in the store {store.git_dir()}",
            hint=f"run `ktrack fetch {version}` (a git feed brings the history bisect needs)",
        )
    return str(commit)


@dataclass(frozen=True)
class AutoBisect:
    """What ``ktrack run`` did about one newly broken pair: a result, or why it did not bisect."""

    regression: RegressionRow
    result: BisectResult | None
    reason: str = ""

    def line(self) -> str:
        r = self.regression
        pair = f"{r.patchset}@{r.psv_version} {r.last_good_release}..{r.first_bad_release}"
        if self.result is None:
            return f"bisect {pair}: not run ({self.reason})"
        b = self.result.breaks[0] if self.result.breaks else None
        if b is None or b.commit is None:
            return f"bisect {pair}: {len(self.result.suspects)} suspects, no exact culprit"
        more = f" (+{len(self.result.breaks) - 1} more)" if len(self.result.breaks) > 1 else ""
        return f"bisect {pair}: culprit {b.commit.hash[:12]} {b.commit.subject!r}{more}"


def bisect_new_regressions(
    settings: Settings,
    db: Database,
    regressions: Iterable[RegressionRow],
    *,
    stages: Sequence[str] = ("apply",),
) -> list[AutoBisect]:
    """Bisect every newly opened release regression whose history the store holds.

    ``regressions`` are the ``RegressionDelta.new`` rows of a run (``patchset``, ``psv_version``,
    ``target``, ``kind``, ``stage``, ``last_good_release``, ``first_bad_release``). Only stages in
    ``stages`` are bisected (apply by default: a build bisect builds log2(n) kernels). Errors are
    reported per pair and never fail the run.
    """
    rs = ReleaseStore.open(settings)
    out: list[AutoBisect] = []
    for reg in regressions:
        stage = reg.stage or "apply"
        if reg.kind != "release" or not reg.last_good_release:
            out.append(AutoBisect(reg, None, "no last good release"))
            continue
        if stage not in stages:
            out.append(AutoBisect(reg, None, f"{stage} bisects are not automatic"))
            continue
        good, bad = rs.resolve(reg.last_good_release), rs.resolve(reg.first_bad_release)
        if not rs.exists() or good is None or bad is None:
            out.append(AutoBisect(reg, None, "a release is not in the store"))
            continue
        if not history_available(rs.git_dir(), good, bad):
            out.append(AutoBisect(reg, None, "no history between them in the store"))
            continue
        try:
            result = bisect_patchset(
                settings,
                db,
                f"{reg.patchset}@{reg.psv_version}",
                reg.last_good_release,
                reg.first_bad_release,
                stage,
                target=None if stage == "apply" else reg.target,
            )
        except (UserError, InfraError) as exc:
            out.append(AutoBisect(reg, None, str(exc)))
            continue
        out.append(AutoBisect(reg, result))
    return out
