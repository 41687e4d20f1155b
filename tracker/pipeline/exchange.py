"""Job results as a portable JSON file (schema ``ktrack.results/1``), for fan-out over machines
that share no database: each GitHub Actions job runs ``ktrack run --job KEY --export FILE`` against
its own database, and a last job merges every file with ``ktrack import``.

A file holds finished jobs with everything the database knows of them (patch set version, the
release's catalog row, stage and patch results) and, unless told otherwise, the logs they point to
(gzip, base64). Each job and stage carries its ``cause`` (``vocab.Cause``; an older file without
it gets the cause its status implies) and the job its toolchain fingerprint. Import writes each
result once: a job already finished with a verdict in the target database is kept as it is,
unless the file's result was finished later (judged again); one that is missing, unfinished or
ended in ``error`` (no verdict) is written from the file, and the database's earlier result goes
to the job's history (``job_attempt``). The job's status is recomputed from its stages (the
worst). A job's key is recomputed on import and must match.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.errors import InfraError, UserError
from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.results import artifacts
from tracker.results.models import (
    Job,
    KernelRelease,
    PatchResult,
    RunJob,
    StageResult,
)
from tracker.versions import KernelVersion
from tracker.vocab import Cause, Stage, Status

SCHEMA = "ktrack.results/1"
MAX_EMBEDDED_LOG = 32 * 1024 * 1024  # compressed bytes; bigger logs travel as hash + excerpt only

_RELEASE_FIELDS = ("series", "moniker", "feed", "source_url", "pgp_url", "sha256", "eol", "signed")
_PATCH_FIELDS = (
    "position",
    "name",
    "hunks",
    "hunks_failed",
    "max_fuzz",
    "total_offset",
    "depends_on_failed",
)


def pick_jobs(jobs: Sequence[JobSpec], wanted: Iterable[str]) -> list[JobSpec]:
    """The planned jobs named by ``wanted`` (full keys or unique prefixes of at least 8 characters),
    in plan order. UserError for a key that matches no planned job, or more than one."""
    chosen: dict[str, JobSpec] = {}
    for want in wanted:
        want = want.strip()
        if len(want) < 8:
            raise UserError(f"--job {want!r}: give at least 8 characters of the job key")
        hits = [j for j in jobs if j.key.startswith(want)]
        if not hits:
            raise UserError(
                f"--job {want}: no planned job has this key",
                hint="plan with the same --patchset/--kernels/--stages/--target as `ktrack plan`",
            )
        if len(hits) > 1:
            raise UserError(f"--job {want}: the prefix matches {len(hits)} jobs; give more of it")
        chosen[hits[0].key] = hits[0]
    return [j for j in jobs if j.key in chosen]


# --- export -----------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_jobs(
    session: Session,
    keys: Iterable[str],
    *,
    artifacts_root: Path | None = None,
) -> dict[str, Any]:
    """The ``ktrack.results/1`` document for the finished jobs among ``keys``; logs are embedded
    when ``artifacts_root`` is given."""
    wanted = list(dict.fromkeys(keys))
    out_jobs: list[dict[str, Any]] = []
    logs: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        rows = session.scalars(select(Job).where(Job.key.in_(wanted[i : i + 500]), Job.finished))
        for job in rows:
            out_jobs.append(_job_json(job))
            if artifacts_root is not None:
                for sr in job.stage_results:
                    if sr.log_hash and sr.log_hash not in logs:
                        blob = _read_blob(artifacts_root, sr.log_hash)
                        if blob is not None:
                            logs[sr.log_hash] = base64.b64encode(blob).decode("ascii")
    order = {k: n for n, k in enumerate(wanted)}
    out_jobs.sort(key=lambda j: order[j["key"]])
    return {
        "schema": SCHEMA,
        "exported_at": record.now().isoformat(),
        "host": socket.gethostname(),
        "jobs": out_jobs,
        "logs": logs,
    }


def _read_blob(root: Path, digest: str) -> bytes | None:
    path = root / digest[:2] / f"{digest}.gz"
    try:
        if path.stat().st_size > MAX_EMBEDDED_LOG:
            return None
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _job_json(job: Job) -> dict[str, Any]:
    psv = job.patchset_version
    rel = job.release
    return {
        "key": job.key,
        "patchset": psv.patchset.name,
        "version": psv.version,
        "content_hash": psv.content_hash,
        "base": psv.base,
        "release": {
            "version": rel.version,
            "released_at": _iso(rel.released_at),
            **{f: getattr(rel, f) for f in _RELEASE_FIELDS},
        },
        "target": job.target,
        "stages": job.stages.split(",") if job.stages else [],
        "status": job.status,
        "cause": job.cause,
        "furthest_stage": job.furthest_stage,
        "summary": job.summary,
        "toolchain": job.toolchain,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "attempts": job.attempts,
        "stage_results": [
            {
                "stage": sr.stage,
                "status": sr.status,
                "cause": sr.cause,
                "summary": sr.summary,
                "detail": sr.detail,
                "started_at": _iso(sr.started_at),
                "duration": sr.duration,
                "log_hash": sr.log_hash,
                "log_excerpt": sr.log_excerpt,
            }
            for sr in job.stage_results
        ],
        "patch_results": [
            {"class": pr.klass, **{f: getattr(pr, f) for f in _PATCH_FIELDS}}
            for pr in job.patch_results
        ],
    }


def write_file(path: Path, document: dict[str, Any]) -> None:
    """Write atomically (a half-written file never reaches ``ktrack import``)."""
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InfraError(f"cannot write {path}: {exc.strerror}") from exc


# --- import -----------------------------------------------------------------------------------


class _Reader:
    """Field access on untrusted JSON that fails with the file and the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> UserError:
        return UserError(f"{self.source}: {where}: {message}")

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(where, f"missing field {key!r}")
        return self.check(obj[key], kind, f"{where}.{key}")

    def opt(self, obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
        value = obj.get(key)
        return None if value is None else self.check(value, kind, f"{where}.{key}")

    def check(self, value: Any, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(where, f"expected {names}, got {type(value).__name__}")
        return value

    def when(self, obj: dict[str, Any], key: str, where: str) -> datetime | None:
        text = self.opt(obj, key, str, where)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"{where}.{key}", f"not an ISO date: {text!r}") from None


def read_file(path: Path) -> dict[str, Any]:
    """Load and check the envelope of an export file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a ktrack results file (bad JSON: {exc})") from exc
    except OSError as exc:
        raise InfraError(f"cannot read {path}: {exc.strerror}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{path}: schema is {got!r}, expected {SCHEMA!r}")
    r = _Reader(str(path))
    r.get(data, "jobs", list, "$")
    if data.get("logs") is not None:
        r.get(data, "logs", dict, "$")
    return data


@dataclass
class ImportReport:
    """What ``import_document`` did, by job key."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a verdict was already in the database
    logs: int = 0


def import_document(
    session: Session,
    data: dict[str, Any],
    *,
    source: str,
    artifacts_root: Path,
    run_id: int | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Merge one export document into the database (inside the caller's transaction)."""
    report = report or ImportReport()
    r = _Reader(source)
    for n, item in enumerate(data["jobs"]):
        where = f"jobs[{n}]"
        r.check(item, dict, where)
        _import_job(session, r, item, where, run_id, report)
    for digest, blob in (data.get("logs") or {}).items():
        if _import_log(r, artifacts_root, digest, blob):
            report.logs += 1
    return report


def _import_log(r: _Reader, root: Path, digest: str, blob: Any) -> bool:
    where = f"logs.{digest[:16]}"
    r.check(blob, str, where)
    try:
        raw = gzip.decompress(base64.b64decode(blob, validate=True))
    except (binascii.Error, OSError, EOFError) as exc:
        raise r.fail(where, f"not a base64 gzip blob ({exc})") from exc
    if hashlib.sha256(raw).hexdigest() != digest:
        raise r.fail(where, "content does not match its hash")
    if (root / digest[:2] / f"{digest}.gz").exists():
        return False
    root.mkdir(parents=True, exist_ok=True)
    artifacts.put_bytes(root, raw)
    return True


def _import_job(
    session: Session,
    r: _Reader,
    item: dict[str, Any],
    where: str,
    run_id: int | None,
    report: ImportReport,
) -> None:
    stages = [r.check(s, str, f"{where}.stages[]") for s in r.get(item, "stages", list, where)]
    for s in stages:
        if s not in {st.value for st in Stage}:
            raise r.fail(f"{where}.stages", f"unknown stage {s!r}")
    rel_obj = r.get(item, "release", dict, where)
    spec = JobSpec(
        patchset=r.get(item, "patchset", str, where),
        version=r.get(item, "version", str, where),
        content_hash=r.get(item, "content_hash", str, where),
        manifest="",
        release=r.get(rel_obj, "version", str, f"{where}.release"),
        target=r.get(item, "target", str, where),
        stages=tuple(stages),
    )
    key = r.get(item, "key", str, where)
    if key != spec.key:
        raise r.fail(f"{where}.key", f"{key} does not match the job it describes ({spec.key})")
    _status(r, r.get(item, "status", str, where), f"{where}.status")
    furthest = r.opt(item, "furthest_stage", str, where)
    if furthest is not None and furthest not in stages and furthest not in {s.value for s in Stage}:
        raise r.fail(f"{where}.furthest_stage", f"unknown stage {furthest!r}")
    stage_rows = [
        _stage_row(r, sr, f"{where}.stage_results[{i}]")
        for i, sr in enumerate(r.get(item, "stage_results", list, where))
    ]
    patch_rows = [
        _patch_row(r, pr, f"{where}.patch_results[{i}]")
        for i, pr in enumerate(item.get("patch_results") or [])
    ]
    job = session.scalars(select(Job).where(Job.key == key)).first()
    finished_at = r.when(item, "finished_at", where)
    if job is not None and _keeps(job, finished_at):
        report.kept.append(key)
        _link(session, run_id, job.id, reused=True)
        return
    release = _release(session, r, rel_obj, f"{where}.release")
    psv = record.patchset_version(session, spec, base=r.opt(item, "base", str, where))
    if job is None:
        job = Job(
            key=key,
            patchset_version_id=psv.id,
            release_id=release.id,
            target=spec.target,
            stages=",".join(stages),
        )
        session.add(job)
        session.flush()
    else:
        record.archive_attempt(session, job)  # the database's result stays in the history
    _set_verdict(job, r, item, where, stage_rows)
    job.run_id = run_id
    job.finished = True
    job.started_at = r.when(item, "started_at", where)
    job.finished_at = finished_at
    job.attempts = int(r.opt(item, "attempts", int, where) or 1)
    job.toolchain = _toolchain(r, item, where)
    for row in stage_rows:
        session.add(StageResult(job_id=job.id, **row))
    for row in patch_rows:
        session.add(PatchResult(job_id=job.id, **row))
    _link(session, run_id, job.id, reused=False)
    session.flush()
    report.written.append(key)


def _set_verdict(
    job: Job, r: _Reader, item: dict[str, Any], where: str, rows: list[dict[str, Any]]
) -> None:
    """The job's status is the worst of its stages' (recomputed: an older exporter wrote the
    last stage's); a file without stage rows keeps what it says."""
    verdict = record.job_verdict((x["stage"], x["status"], x["cause"], x["summary"]) for x in rows)
    if verdict.furthest is not None:
        record.set_verdict(job, verdict)
        return
    status = Status(r.get(item, "status", str, where))  # checked by _import_job
    job.status, job.cause = status.value, _cause(r, item, status, where)
    job.furthest_stage = r.opt(item, "furthest_stage", str, where)
    job.summary = r.opt(item, "summary", str, where)


def _keeps(job: Job, finished_at: datetime | None) -> bool:
    """Whether the database's result for a key stands against the file's: a finished verdict
    does, unless the file's result was finished later (a job judged again, ``run --rerun``)."""
    if not job.finished or job.status == Status.ERROR.value:
        return False
    if finished_at is None or job.finished_at is None:
        return True
    stored, given = (
        t if t.tzinfo else t.replace(tzinfo=UTC) for t in (job.finished_at, finished_at)
    )
    return stored >= given


def _cause(r: _Reader, obj: dict[str, Any], status: Status, where: str) -> str | None:
    """A ``cause`` field (a ``vocab.Cause``); absent (an older file): the one the status
    implies. Pass and skip have none."""
    value = r.opt(obj, "cause", str, where)
    if status in (Status.PASS, Status.SKIP):
        return None
    if value is None:
        implied = Cause.default_for(status)
        return implied.value if implied is not None else None
    try:
        return Cause(value).value
    except ValueError:
        raise r.fail(f"{where}.cause", f"unknown cause {value!r}") from None


def _toolchain(r: _Reader, obj: dict[str, Any], where: str) -> str | None:
    value = r.opt(obj, "toolchain", str, where)  # executors.job_toolchain
    if value is not None and (len(value) > 32 or not value.isalnum()):
        raise r.fail(f"{where}.toolchain", "not a toolchain fingerprint")
    return value


def _status(r: _Reader, value: str, where: str) -> str:
    try:
        return Status(value).value
    except ValueError:
        raise r.fail(where, f"unknown status {value!r}") from None


def _stage_row(r: _Reader, sr: Any, where: str) -> dict[str, Any]:
    r.check(sr, dict, where)
    stage = r.get(sr, "stage", str, where)
    if stage not in {s.value for s in Stage}:
        raise r.fail(f"{where}.stage", f"unknown stage {stage!r}")
    log_hash = r.opt(sr, "log_hash", str, where)
    if log_hash is not None and (
        len(log_hash) != 64 or any(c not in "0123456789abcdef" for c in log_hash)
    ):
        raise r.fail(f"{where}.log_hash", "not a sha256 hex digest")
    duration = r.opt(sr, "duration", (int, float), where)
    status = _status(r, r.get(sr, "status", str, where), f"{where}.status")
    return {
        "stage": stage,
        "status": status,
        "cause": _cause(r, sr, Status(status), where),
        "summary": r.opt(sr, "summary", str, where),
        "detail": r.opt(sr, "detail", dict, where) or {},
        "started_at": r.when(sr, "started_at", where),
        "duration": float(duration) if duration is not None else None,
        "log_hash": log_hash,
        "log_excerpt": r.opt(sr, "log_excerpt", str, where),
    }


def _patch_row(r: _Reader, pr: Any, where: str) -> dict[str, Any]:
    r.check(pr, dict, where)
    row: dict[str, Any] = {"klass": r.get(pr, "class", str, where)}
    row["position"] = r.get(pr, "position", int, where)
    row["name"] = r.get(pr, "name", str, where)
    for f in ("hunks", "hunks_failed", "max_fuzz", "total_offset"):
        row[f] = int(r.opt(pr, f, int, where) or 0)
    row["depends_on_failed"] = bool(r.opt(pr, "depends_on_failed", bool, where) or False)
    return row


def _release(session: Session, r: _Reader, obj: dict[str, Any], where: str) -> KernelRelease:
    text = r.get(obj, "version", str, where)
    try:
        version = KernelVersion.parse(text)
    except UserError as exc:
        raise r.fail(f"{where}.version", str(exc)) from None
    row = session.scalars(
        select(KernelRelease).where(KernelRelease.version == str(version))
    ).first()
    if row is not None:
        return row
    row = KernelRelease(
        version=str(version),
        series=r.opt(obj, "series", str, where) or version.series,
        moniker=r.opt(obj, "moniker", str, where) or version.moniker.value,
        feed=r.opt(obj, "feed", str, where) or "import",
        source_url=r.opt(obj, "source_url", str, where),
        pgp_url=r.opt(obj, "pgp_url", str, where),
        sha256=r.opt(obj, "sha256", str, where),
        eol=bool(r.opt(obj, "eol", bool, where) or False),
        signed=bool(r.opt(obj, "signed", bool, where) or False),
        released_at=r.when(obj, "released_at", where),
        discovered_at=record.now(),
    )
    session.add(row)
    session.flush()
    return row


def _link(session: Session, run_id: int | None, job_id: int, *, reused: bool) -> None:
    if run_id is None:
        return
    link = session.get(RunJob, (run_id, job_id))
    if link is None:
        session.add(RunJob(run_id=run_id, job_id=job_id, reused=reused))
    else:
        link.reused = reused
