"""``write_report``: every requested output format into one folder, from one read of the DB."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from tracker.errors import InfraError, UserError
from tracker.report.data import ReportData, load_report_data
from tracker.report.outdir import ReportFolder

FORMATS = ("html", "json", "junit", "markdown", "kcidb", "ranges")
DEFAULT_FORMATS = ("html", "json", "junit", "markdown", "kcidb", "ranges")


def parse_formats(text: str) -> tuple[str, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError("--format: empty list", hint=f"choose from {', '.join(FORMATS)}")
    for n in names:
        if n not in FORMATS:
            raise UserError(
                f"--format: unknown format {n!r}", hint=f"choose from {', '.join(FORMATS)}"
            )
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Written:
    format: str
    path: Path


def _dump(path: Path, doc: object, *, compact: bool = False) -> Path:
    """JSON to ``path``; ``compact`` for the big documents (read them with ``jq``)."""
    if compact:
        text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(doc, indent=1, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def write_formats(
    data: ReportData,
    out: Path,
    formats: Sequence[str],
    *,
    progress: Callable[[str], None] | None = None,
    patchset_paths: Sequence[Path] = (),
) -> list[Written]:
    """Write ``formats`` under ``out``. ``patchset_paths`` (the folders of patch sets) lets the
    KCIDB output hash the patch files when the apply results do not carry their digests.

    The folder's list of written files (``.ktrack-report.json``) is kept up to date: an earlier
    report's files that this one did not write again are removed, nothing else ever is."""
    folder = ReportFolder.open(out)
    written: list[Written] = []
    pages: list[tuple[str, Path]] = []  # HTML pages besides the index
    complete = False
    try:
        for fmt in formats:
            if fmt == "html":
                from tracker.report.html import write_html

                site = write_html(data, out, progress=progress)
                written.append(Written(fmt, site.index))
                pages += [(fmt, f) for f in site.files[1:]]
            elif fmt == "json":
                from tracker.report.jsonout import report_json

                written.append(
                    Written(fmt, _dump(out / "report.json", report_json(data), compact=True))
                )
                written.append(Written(fmt, _dump(out / "matrix.json", data.matrix.to_json())))
            elif fmt == "junit":
                from tracker.report.junit import write_junit

                written.append(Written(fmt, write_junit(data, out / "junit.xml")))
            elif fmt == "markdown":
                from tracker.report.markdown import summary_markdown

                p = out / "summary.md"
                p.write_text(summary_markdown(data), encoding="utf-8")
                written.append(Written(fmt, p))
            elif fmt == "kcidb":
                from tracker.report.kcidb import digests_from_manifests, kcidb_report

                digests = digests_from_manifests(patchset_paths, data.content_hashes)
                doc = kcidb_report(data, digests=digests)
                written.append(Written(fmt, _dump(out / "kcidb.json", doc, compact=True)))
            elif fmt == "ranges":
                from tracker.report.ranges import (
                    ALL_TARGETS,
                    compute_ranges,
                    dkms_conf,
                    ranges_json,
                )

                ranges = compute_ranges(data.matrix)
                written.append(Written(fmt, _dump(out / "ranges.json", ranges_json(ranges))))
                p = out / "dkms-ranges.conf"
                p.write_text(
                    "\n".join(dkms_conf(r) for r in ranges if r.target == ALL_TARGETS),
                    encoding="utf-8",
                )
                written.append(Written(fmt, p))
        complete = True
    except OSError as exc:
        raise InfraError(f"cannot write the report under {out}: {exc}") from exc
    finally:
        try:
            folder.close([(w.format, w.path) for w in written] + pages, complete=complete)
        except OSError as exc:
            raise InfraError(f"cannot write the report under {out}: {exc}") from exc
    return written


def write_report(
    session: Session,
    out_dir: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    *,
    patchsets: Sequence[str] | None = None,
    run_id: int | None = None,
    progress: Callable[[str], None] | None = None,
    patchset_paths: Sequence[Path] = (),
) -> list[Written]:
    """Read the results once and write each format under ``out_dir``."""
    data = load_report_data(session, patchsets=patchsets, run_id=run_id)
    return write_formats(
        data, Path(out_dir), formats, progress=progress, patchset_paths=patchset_paths
    )
