"""KCIDB v5 JSON, so results can be submitted to KernelCI.

Mapping: a checkout is a (patch set version, release): the release's tree with the patch set
applied (``valid`` is the apply verdict, ``patchset_files`` the patches in series order,
``patchset_hash`` as KCIDB specifies). A build is a job that configured or built (its architecture
and base config from the target). Tests are the job's boot (``boot``) and its smoke tests
(``ktrack.<name>``). ``error`` maps to KCIDB ``ERROR`` (the harness failed, no verdict), and so
does any status whose cause is not the patch set's (``upstream``, ``infrastructure``,
``bad-input``): only a verdict is ever ``FAIL``. The cause is in each object's ``misc``.

``patchset_hash`` is the sha256 of the concatenated, newline-terminated sha256 hex digests of
each patch file in order (``sha256sum *.patch | cut -c-64 | sha256sum``). The digests come from
the apply stage's detail (``patches[i].sha256``); when any is unknown the hash is left out rather
than guessed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracker.report.data import ReportData
from tracker.results.queries import JobRow, StageRow
from tracker.vocab import Cause, Stage, Status

ORIGIN = "ktrack"
VERSION = {"major": 5, "minor": 3}
EXCERPT = 16384
KCIDB_STATUS = {
    Status.PASS: "PASS",
    Status.WARN: "PASS",
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.SKIP: "SKIP",
}


def kcidb_status(status: Status, cause: Cause | None) -> str:
    """The KCIDB status of a stage: a ``fail`` only when the patch set is judged."""
    if status is Status.FAIL and cause not in (None, Cause.VERDICT):
        return "ERROR"
    return KCIDB_STATUS[status]


def _judged(sr: StageRow) -> bool:
    """Whether the stage's status judges the patch set (its cause is a verdict)."""
    return sr.cause in (None, Cause.VERDICT)


def _cause_misc(sr: StageRow) -> dict[str, str]:
    return {"cause": sr.cause.value} if sr.cause is not None else {}


def patchset_hash(digests: Sequence[str]) -> str:
    """KCIDB's patchset hash of per-patch sha256 hex digests; "" for no patches."""
    if not digests:
        return ""
    return hashlib.sha256("".join(f"{d}\n" for d in digests).encode("ascii")).hexdigest()


def file_digests(paths: Iterable[Path]) -> list[str]:
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def digests_from_manifests(
    paths: Iterable[Path], wanted: Mapping[tuple[str, str], str]
) -> dict[tuple[str, str], list[str]]:
    """Per-patch sha256 digests for the patch set versions in ``wanted`` ((name, version) ->
    recorded content hash), read from the patch sets on disk. A version whose files no longer
    hash to what was recorded is left out: its digests would not describe what ran."""
    from tracker.errors import UserError
    from tracker.patchsets.formats import content_hash, raw_patches
    from tracker.patchsets.manifest import discover

    out: dict[tuple[str, str], list[str]] = {}
    try:
        manifests = discover(paths)
    except (UserError, OSError):
        return out
    for m in manifests:
        for v in m.versions:
            key = (m.name, v.version)
            if key not in wanted:
                continue
            try:
                if content_hash(v) != wanted[key]:
                    continue
                digests = []
                for raw in raw_patches(v):
                    fh = raw.open()
                    try:
                        digests.append(hashlib.sha256(fh.read()).hexdigest())
                    finally:
                        fh.close()
                out[key] = digests
            except (UserError, OSError):
                continue
    return out


def _path_part(text: str) -> str:
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "_" for ch in text)
    return out.strip("_") or "test"


def _excerpt(text: str | None) -> str | None:
    if not text:
        return None
    s = text.replace("\x00", "")
    return s if len(s) <= EXCERPT else s[-EXCERPT:]


def _time(job: JobRow, sr: StageRow | None = None) -> str | None:
    ts = (sr.started_at if sr else None) or job.started_at
    return ts.isoformat() if ts else None


def _put(d: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        d[key] = value


def _patch_entries(stage: StageRow | None) -> list[dict[str, Any]]:
    if stage is None:
        return []
    patches = stage.detail.get("patches")
    return [p for p in patches if isinstance(p, dict)] if isinstance(patches, list) else []


def _resource_name(name: str) -> str:
    """A KCIDB resource name must be usable as a local file name: no ``/``, no NUL."""
    return name.replace("/", "_").replace("\x00", "") or "patch"


def _patch_url(base: str | None, row_name: str, patch: str) -> str:
    if base:
        return f"{base.rstrip('/')}/{quote(patch, safe='')}"
    return f"urn:ktrack:patch:{quote(row_name, safe='')}:{quote(patch, safe='')}"


def kcidb_report(
    data: ReportData,
    *,
    patch_url_base: Mapping[str, str] | None = None,
    digests: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The report as one KCIDB v5 document. ``patch_url_base`` maps a patch set name to the URL
    its patch files are published under (default: the patch set's homepage, else a ``urn:``).
    ``digests`` gives per-patch sha256 digests by (patch set, version) for when the apply detail
    does not carry them (see :func:`digests_from_manifests`)."""
    m = data.matrix
    bases = {**data.homepages, **(patch_url_base or {})}
    checkouts: dict[str, dict[str, Any]] = {}
    urls: dict[tuple[str, str], str] = {}
    digests_of = dict(digests or {})

    def url_of(patchset: str, row_name: str, patch: str) -> str:
        key = (row_name, patch)
        if key not in urls:
            urls[key] = _patch_url(bases.get(patchset), row_name, patch)
        return urls[key]

    builds: list[dict[str, Any]] = []
    tests: list[dict[str, Any]] = []
    for row, rel, target, cell in m.iter_cells():
        job = m.jobs[cell.job_id]
        stages = {s.stage: s for s in data.stages.get(cell.job_id, [])}
        apply = stages.get(Stage.APPLY)
        checkout_id = f"{ORIGIN}:{row.name}:{rel.version}"
        co = checkouts.get(checkout_id)
        if co is None:
            co = {
                "id": checkout_id,
                "origin": ORIGIN,
                "tree_name": "mainline" if rel.moniker in ("mainline", "rc") else rel.moniker,
                "git_commit_name": f"v{rel.version}"
                if rel.moniker != "linux-next"
                else rel.version,
                "comment": f"{row.name} on {rel.version}",
                "misc": {
                    "patchset": row.patchset,
                    "patchset_version": row.version,
                    "release": rel.version,
                },
            }
            _put(co, "start_time", _time(job, apply))
            checkouts[checkout_id] = co
        need_files, need_hash = "patchset_files" not in co, "patchset_hash" not in co
        entries = _patch_entries(apply) if (need_files or need_hash) else []
        if need_files:
            names = [str(p.get("name", "")) for p in entries] or [
                p.name for p in data.patches.get(cell.job_id, [])
            ]
            if names:
                co["patchset_files"] = [
                    {
                        "name": _resource_name(n),
                        "url": url_of(row.patchset, row.name, n),
                    }
                    for n in names
                ]
        found = [p.get("sha256") for p in entries]
        known = digests_of.get((row.patchset, row.version))
        if need_hash and entries and all(isinstance(d, str) and len(d) == 64 for d in found):
            co["patchset_hash"] = patchset_hash([str(d) for d in found])
        elif need_hash and known:
            co["patchset_hash"] = patchset_hash(list(known))
        if apply is not None and apply.status is not Status.ERROR and _judged(apply):
            valid = apply.status in (Status.PASS, Status.WARN)
            co["valid"] = bool(co.get("valid", True)) and valid
            if not valid:
                _put(co, "log_excerpt", _excerpt(apply.log_excerpt or apply.summary))
        configure, build = stages.get(Stage.CONFIGURE), stages.get(Stage.BUILD)
        if configure is None and build is None:
            continue
        if configure is not None and configure.status not in (Status.PASS, Status.WARN):
            decisive: StageRow = configure
        else:
            decisive = build if build is not None else configure  # type: ignore[assignment]
        build_id = f"{ORIGIN}:{job.key}"
        b: dict[str, Any] = {
            "id": build_id,
            "origin": ORIGIN,
            "checkout_id": checkout_id,
            "architecture": _path_part(job.arch).lower(),
            "config_name": job.config or "default",
            "status": kcidb_status(decisive.status, decisive.cause),
            "comment": decisive.summary or None,
            "misc": {
                "job": job.key,
                "target": target,
                "stage": decisive.stage.value,
                **_cause_misc(decisive),
            },
        }
        _put(b, "start_time", _time(job, configure or build))
        durations = [s.duration for s in (configure, build) if s is not None and s.duration]
        if durations:
            b["duration"] = float(sum(durations))
        _put(b, "log_excerpt", _excerpt(decisive.log_excerpt))
        b = {k: v for k, v in b.items() if v is not None}
        builds.append(b)
        boot = stages.get(Stage.BOOT)
        if boot is not None:
            t = {
                "id": f"{build_id}:boot",
                "origin": ORIGIN,
                "build_id": build_id,
                "path": "boot",
                "status": kcidb_status(boot.status, boot.cause),
                "comment": boot.summary or None,
                "misc": _cause_misc(boot) or None,
            }
            _put(t, "start_time", _time(job, boot))
            _put(t, "duration", boot.duration)
            _put(t, "log_excerpt", _excerpt(boot.log_excerpt))
            tests.append({k: v for k, v in t.items() if v is not None})
        smoke = stages.get(Stage.TEST)
        if smoke is not None:
            listed = smoke.detail.get("tests")
            items = [x for x in listed if isinstance(x, dict)] if isinstance(listed, list) else []
            if not items:
                items = [{"name": "smoke", "status": smoke.status.value, "message": smoke.summary}]
            for i, item in enumerate(items):
                try:
                    st = Status(str(item.get("status", "")))
                except ValueError:
                    st = smoke.status
                if not _judged(smoke) and st is Status.FAIL:
                    st = Status.ERROR  # the stage judges nothing: neither do its tests
                path = f"ktrack.{_path_part(str(item.get('name', i)))}"
                t = {
                    "id": f"{build_id}:{path}:{i}",
                    "origin": ORIGIN,
                    "build_id": build_id,
                    "path": path,
                    "status": KCIDB_STATUS[st],
                    "comment": str(item.get("message") or "") or None,
                    "misc": _cause_misc(smoke) or None,
                }
                _put(t, "start_time", _time(job, smoke))
                tests.append({k: v for k, v in t.items() if v is not None})
    return {
        "version": dict(VERSION),
        "checkouts": list(checkouts.values()),
        "builds": builds,
        "tests": tests,
    }
