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
import hashlib
import json
import socket
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.errors import InfraError, UserError
from tracker.pipeline import record
from tracker.pipeline.plan import JobSpec
from tracker.pipeline.results_doc import SCHEMA, JobDoc, PatchDoc, ReleaseDoc, ResultsDoc, StageDoc
from tracker.results import artifacts
from tracker.results.models import (
    Job,
    KernelRelease,
    PatchResult,
    RunJob,
    StageResult,
)
from tracker.schema import validate_json
from tracker.versions import KernelVersion
from tracker.vocab import Cause, Status

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
        blob = path.read_bytes()
        if int.from_bytes(blob[-4:], "little") > MAX_IMPORTED_LOG:  # gzip's ISIZE
            return None  # an import would refuse it: travels as hash + excerpt only
        return blob
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


MAX_JSON = 1 << 30  # bytes of one export file
MAX_IMPORTED_LOG = 64 * 1024 * 1024  # inflated bytes of one imported log
_INFLATE_CHUNK = 1 << 20


def read_file(path: Path) -> ResultsDoc:
    """Load and check a whole export file (every field, through ``results_doc``)."""
    try:
        if path.stat().st_size > MAX_JSON:
            raise UserError(f"{path}: larger than {MAX_JSON >> 20} MiB; not a ktrack results file")
        text = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise InfraError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a ktrack results file (not UTF-8: {exc.reason})") from None
    return validate_json(ResultsDoc, text, str(path), what="a ktrack results file")


@dataclass
class ImportReport:
    """What ``import_document`` did, by job key."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a verdict was already in the database
    logs: int = 0


def import_document(
    session: Session,
    data: ResultsDoc,
    *,
    source: str,
    artifacts_root: Path,
    run_id: int | None = None,
    report: ImportReport | None = None,
) -> ImportReport:
    """Merge one checked export document into the database (inside the caller's transaction)."""
    report = report or ImportReport()
    for n, job in enumerate(data.jobs):
        _import_job(session, source, job, f"jobs[{n}]", run_id, report)
    for digest, blob in (data.logs or {}).items():
        if _import_log(source, artifacts_root, digest, blob):
            report.logs += 1
    return report


def _inflate(where: str, blob: str, out: IO[bytes]) -> str:
    """Decode and inflate one embedded log into ``out``, streaming, at most ``MAX_IMPORTED_LOG``
    bytes; return the sha256 of what was inflated."""
    try:
        packed = base64.b64decode(blob, validate=True)
    except binascii.Error as exc:
        raise UserError(f"{where}: not a base64 gzip blob ({exc})") from None
    inflater = zlib.decompressobj(wbits=31)  # gzip only
    h = hashlib.sha256()
    size = 0
    pending = packed
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            if size > MAX_IMPORTED_LOG:
                raise UserError(
                    f"{where}: the log inflates to more than {MAX_IMPORTED_LOG >> 20} MiB "
                    f"({len(packed)} bytes compressed); refused"
                )
            h.update(chunk)
            out.write(chunk)
    except zlib.error as exc:
        raise UserError(f"{where}: not a base64 gzip blob ({exc})") from None
    if not inflater.eof or inflater.unused_data:
        raise UserError(f"{where}: not a base64 gzip blob (truncated, or data after its end)")
    return h.hexdigest()


def _import_log(source: str, root: Path, digest: str, blob: str) -> bool:
    where = f"{source}: logs.{digest[:16]}"
    if (root / digest[:2] / f"{digest}.gz").exists():
        return False
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".import-", suffix=".log") as tmp:
        if _inflate(where, blob, tmp) != digest:
            raise UserError(f"{where}: content does not match its hash")
        tmp.flush()
        artifacts.put_file(root, Path(tmp.name))
    return True


def _import_job(
    session: Session,
    source: str,
    item: JobDoc,
    where: str,
    run_id: int | None,
    report: ImportReport,
) -> None:
    spec = JobSpec(
        patchset=item.patchset,
        version=item.version,
        content_hash=item.content_hash,
        manifest="",
        release=item.release.version,
        target=item.target,
        stages=tuple(item.stages),
    )
    if item.key != spec.key:
        raise UserError(
            f"{source}: {where}.key: {item.key} does not match the job it describes ({spec.key})"
        )
    stage_rows = [_stage_row(sr) for sr in item.stage_results]
    job = session.scalars(select(Job).where(Job.key == item.key)).first()
    if job is not None and _keeps(job, item.finished_at):
        report.kept.append(item.key)
        _link(session, run_id, job.id, reused=True)
        return
    release = _release(session, item.release)
    psv = record.patchset_version(session, spec, base=item.base)
    if job is None:
        job = Job(
            key=item.key,
            patchset_version_id=psv.id,
            release_id=release.id,
            target=spec.target,
            stages=",".join(item.stages),
        )
        session.add(job)
        session.flush()
    else:
        record.archive_attempt(session, job)  # the database's result stays in the history
    _set_verdict(job, item, stage_rows)
    job.run_id = run_id
    job.finished = True
    job.started_at = item.started_at
    job.finished_at = item.finished_at
    job.attempts = item.attempts or 1
    job.toolchain = item.toolchain
    for row in stage_rows:
        session.add(StageResult(job_id=job.id, **row))
    for pr in item.patch_results or ():
        session.add(PatchResult(job_id=job.id, **_patch_row(pr)))
    _link(session, run_id, job.id, reused=False)
    session.flush()
    report.written.append(item.key)


def _set_verdict(job: Job, item: JobDoc, rows: list[dict[str, Any]]) -> None:
    """The job's status is the worst of its stages' (recomputed: an older exporter wrote the
    last stage's); a file without stage rows keeps what it says."""
    verdict = record.job_verdict((x["stage"], x["status"], x["cause"], x["summary"]) for x in rows)
    if verdict.furthest is not None:
        record.set_verdict(job, verdict)
        return
    job.status, job.cause = item.status, _cause(item.cause, item.status)
    job.furthest_stage = item.furthest_stage
    job.summary = item.summary


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


def _cause(given: str | None, status: str) -> str | None:
    """The cause as exported, or the one the status implies (files from before causes); pass
    and skip have none."""
    if Status(status) in (Status.PASS, Status.SKIP):
        return None
    implied = Cause.default_for(Status(status))
    return given or (implied.value if implied is not None else None)


def _stage_row(sr: StageDoc) -> dict[str, Any]:
    return {
        "stage": sr.stage,
        "status": sr.status,
        "cause": _cause(sr.cause, sr.status),
        "summary": sr.summary,
        "detail": sr.detail or {},
        "started_at": sr.started_at,
        "duration": sr.duration,
        "log_hash": sr.log_hash,
        "log_excerpt": sr.log_excerpt,
    }


def _patch_row(pr: PatchDoc) -> dict[str, Any]:
    return {
        "klass": pr.klass,
        "position": pr.position,
        "name": pr.name,
        "hunks": pr.hunks or 0,
        "hunks_failed": pr.hunks_failed or 0,
        "max_fuzz": pr.max_fuzz or 0,
        "total_offset": pr.total_offset or 0,
        "depends_on_failed": bool(pr.depends_on_failed),
    }


def _release(session: Session, doc: ReleaseDoc) -> KernelRelease:
    version = KernelVersion.parse(doc.version)
    row = session.scalars(
        select(KernelRelease).where(KernelRelease.version == str(version))
    ).first()
    if row is not None:
        return row
    row = KernelRelease(
        version=str(version),
        series=doc.series or version.series,
        moniker=doc.moniker or version.moniker.value,
        feed=doc.feed or "import",
        source_url=doc.source_url,
        pgp_url=doc.pgp_url,
        sha256=doc.sha256,
        eol=bool(doc.eol),
        signed=bool(doc.signed),
        released_at=doc.released_at,
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
