"""The static HTML site: a matrix page with filters, a page per cell, a page per patch set.

Self-contained: CSS and JavaScript are inline, there are no external assets, and a
Content-Security-Policy allows only the one inline script (by its hash). Every value from the
database (patch names, summaries, logs, hunks) goes through Jinja's autoescaping, so a patch named
``<script>…</script>.patch`` is shown as text.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from tracker.report.data import ReportData
from tracker.report.matrix import Matrix, Row
from tracker.report.ranges import ALL_TARGETS, Range, compute_ranges, dkms_conf
from tracker.results.queries import JobRow, PatchRow, StageRow, version_key
from tracker.vocab import HunkClass, Stage, Status

TEMPLATES = Path(__file__).resolve().parent / "templates"
CLS = {"pass": "p", "warn": "w", "fail": "f", "error": "e", "skip": "k"}
FILL = {"p": "#2e7d32", "w": "#e0a000", "f": "#c62828", "e": "#7b6f99", "k": "#bdbdbd"}
ABBR = {
    Stage.APPLY: "ap",
    Stage.CONFIGURE: "cf",
    Stage.BUILD: "bd",
    Stage.BOOT: "bt",
    Stage.TEST: "ts",
}
HUNK_CLASSES = {h.value: h for h in HunkClass}
FAILING_CLASSES = {h.value for h in HunkClass if h.is_failure}
HUNK_CLS = {h.value: CLS[h.status().value] for h in HunkClass}
TITLE_WIDTH = 90
DRIFT_COLUMNS = 12
WRITERS = 4  # threads writing pages


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = lambda v: json.dumps(v, indent=1, ensure_ascii=False, default=str)
    return env


def hunk_cls(klass: str | None) -> str:
    """Badge class for a hunk, file or patch class."""
    return HUNK_CLS.get(klass or "", "k")


def _short(text: str, width: int = TITLE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Site:
    """What :func:`write_html` wrote."""

    index: Path
    cell_pages: int
    patchset_pages: int
    files: tuple[Path, ...] = ()  # every file written, the index first


class HtmlWriter:
    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.env = _env()
        self.css = (TEMPLATES / "style.css").read_text()
        self.js = (TEMPLATES / "filter.js").read_text()
        digest = base64.b64encode(hashlib.sha256(self.js.encode()).digest()).decode()
        self.common = {
            "css": self.css,
            "generated_at": data.matrix.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
            "cls": CLS,
            "hcls": hunk_cls,
        }
        self.script_src = f"'sha256-{digest}'"
        self.ranges = compute_ranges(data.matrix)
        self._jobs_by_psv: dict[int, list[JobRow]] = {}
        self._cell_ids: dict[tuple[int, str, str], int] = {}
        for job in data.matrix.jobs.values():
            self._jobs_by_psv.setdefault(job.psv_id, []).append(job)
            self._cell_ids[(job.psv_id, job.release, job.target)] = job.id

    # -- the matrix page --------------------------------------------------------------------
    def _tables(self, m: Matrix) -> list[dict[str, Any]]:
        series_idx = {s: i for i, s in enumerate(m.series)}
        tables = []
        for target in m.targets:
            rels = [
                r
                for r in m.releases
                if any((row.psv_id, r.id, target) in m.cells for row in m.rows)
            ]
            groups: list[dict[str, Any]] = []
            for r in rels:
                if groups and groups[-1]["series"] == r.series:
                    groups[-1]["n"] += 1
                else:
                    groups.append({"series": r.series, "idx": series_idx[r.series], "n": 1})
            rows = []
            for row in m.rows:
                parts: list[str] = []
                seen = False
                for r in rels:
                    s = series_idx[r.series]
                    c = m.cells.get((row.psv_id, r.id, target))
                    if c is None:
                        parts.append(f'<td class="n s{s}"></td>')
                        continue
                    seen = True
                    title = escape(_short(f"{r.version} {c.label}{c.cause_note}: {c.reason}"))
                    abbr = ABBR.get(c.furthest_stage, "--") if c.furthest_stage else "--"
                    parts.append(
                        f'<td class="{CLS[c.status.value]} s{s}" title="{title}">'
                        f'<a href="c/{c.job_id}.html">{abbr}</a></td>'
                    )
                if seen:
                    rows.append(
                        {
                            "patchset": row.patchset,
                            "psv_id": row.psv_id,
                            "name": row.name,
                            "cells": Markup("".join(parts)),  # noqa: S704 - built from escaped parts
                        }
                    )
            tables.append(
                {
                    "target": target,
                    "groups": groups,
                    "releases": [
                        {"version": r.version, "sidx": series_idx[r.series]} for r in rels
                    ],
                    "rows": rows,
                }
            )
        return tables

    def index(self) -> str:
        m = self.data.matrix
        counts = [(k, v) for k, v in m.counts().items() if v]
        combined = {}
        for rg in self.ranges:
            if rg.target == ALL_TARGETS:
                combined[self._psv_of(rg)] = rg
        tpl = self.env.get_template("index.html.j2")
        return tpl.render(
            **self.common,
            script_src=self.script_src,
            js=self.js,
            m=m,
            counts=counts,
            statuses=[{"cls": CLS[s.value], "name": s.value} for s in reversed(Status)],
            patchsets=sorted({r.patchset for r in m.rows}),
            tables=self._tables(m),
            regressions=[
                (r, self._cell_ids.get((r.psv_id, r.first_bad_release, r.target)))
                for r in self.data.regressions
            ],
            ranges=combined,
        )

    def _psv_of(self, rg: Range) -> int:
        for row in self.data.matrix.rows:
            if row.patchset == rg.patchset and row.version == rg.version:
                return row.psv_id
        return -1

    # -- one page per cell ------------------------------------------------------------------
    def cell(self, job: JobRow) -> str:
        stages = self.data.stages.get(job.id, [])
        ran = {s.stage for s in stages}
        wanted = [s.strip() for s in job.stages.split(",") if s.strip()]
        not_run = [n for n in wanted if n not in {s.value for s in ran}]
        patches = self.data.patches.get(job.id, [])
        apply_patches, clean = self._apply_detail(stages, patches)
        tpl = self.env.get_template("cell.html.j2")
        return tpl.render(
            **self.common,
            script_src="'none'",
            job=job,
            stages=stages,
            not_run=not_run,
            patches=patches,
            patch_rows=_patch_rows(patches),
            apply_patches=apply_patches,
            clean_patches=clean,
            culprits=self.data.culprits_for(job),
            attempts=self.data.attempts.get(job.id, []),
        )

    @staticmethod
    def _apply_detail(
        stages: list[StageRow], patches: list[PatchRow]
    ) -> tuple[list[dict[str, Any]], int]:
        """The apply detail's patches worth showing hunk by hunk (not clean), and how many are
        clean. When the patch rows say every patch is clean the detail is not even decoded."""
        apply = next((s for s in stages if s.stage is Stage.APPLY), None)
        if apply is None:
            return [], 0
        if patches and all(p.klass == HunkClass.CLEAN.value for p in patches):
            return [], len(patches)
        entries = apply.detail.get("patches")
        if not isinstance(entries, list):
            return [], 0
        shown = [p for p in entries if isinstance(p, dict) and p.get("class") != "clean"]
        return shown, len(entries) - len(shown)

    # -- one page per patch set version -----------------------------------------------------
    def patchset(self, row: Row) -> str:
        m = self.data.matrix
        jobs = [m.jobs[c.job_id] for (psv, _rel, _t), c in m.cells.items() if psv == row.psv_id]
        releases = sorted({j.release for j in jobs}, key=version_key)
        targets = sorted({j.target for j in jobs})
        ranges = [r for r in self.ranges if r.patchset == row.patchset and r.version == row.version]
        combined = [r for r in ranges if r.target == ALL_TARGETS]
        tpl = self.env.get_template("patchset.html.j2")
        apply_jobs = self._apply_jobs(jobs, targets, self.data.patches)
        return tpl.render(
            **self.common,
            script_src="'none'",
            row=row,
            homepage=self._safe_url(self.data.homepages.get(row.patchset)),
            ranges=ranges,
            dkms=dkms_conf(combined[0]) if combined else "",
            tl=_timeline(jobs, releases, targets),
            drift=_drift(apply_jobs, self.data.patches),
            warnings=drift_warnings(apply_jobs, self.data.patches),
            table=_patch_table(apply_jobs, self.data.patches),
        )

    @staticmethod
    def _safe_url(url: str | None) -> str | None:
        if url and (url.startswith("https://") or url.startswith("http://")):
            return url
        return None

    @staticmethod
    def _apply_jobs(
        jobs: list[JobRow], targets: list[str], patches: dict[int, list[PatchRow]]
    ) -> list[JobRow]:
        """One job per release (ascending) to read apply results from: the first target's that
        has per-patch results."""
        by_rel: dict[str, JobRow] = {}
        for j in sorted(jobs, key=lambda j: (not patches.get(j.id), targets.index(j.target))):
            by_rel.setdefault(j.release, j)
        return [by_rel[v] for v in sorted(by_rel, key=version_key)]


def _patch_rows(patches: list[PatchRow]) -> Markup:
    """The cell page's patch table rows (built here, not in Jinja: 10,000 pages add up).
    Every value from the database goes through ``escape``."""
    out = []
    for p in patches:
        dep = (
            '<span class="muted">may depend on a failed patch</span>' if p.depends_on_failed else ""
        )
        out.append(
            f'<tr><td>{p.position}</td><td class="pname">{escape(p.name)}</td>'
            f'<td><span class="badge {hunk_cls(p.klass)}">{escape(p.klass)}</span></td>'
            f"<td>{p.hunks}</td><td>{p.hunks_failed}</td><td>{p.max_fuzz}</td>"
            f"<td>{p.total_offset}</td><td>{dep}</td></tr>\n"
        )
    return Markup("".join(out))  # noqa: S704 - every database value above is escaped


def _timeline(jobs: list[JobRow], releases: list[str], targets: list[str]) -> dict[str, Any]:
    label_w, step, lane_h, top = 170, 14, 18, 8
    xs = {v: label_w + i * step for i, v in enumerate(releases)}
    ys = {t: top + i * (lane_h + 4) for i, t in enumerate(targets)}
    rects = []
    for j in jobs:
        c = CLS[j.status.value]
        rects.append(
            {
                "x": xs[j.release],
                "y": ys[j.target],
                "w": step - 2,
                "h": lane_h,
                "cls": c,
                "fill": FILL[c],
                "title": f"{j.release} {j.target}: {j.label}: {_short(j.summary)}",
                "href": f"../c/{j.id}.html",
            }
        )
    base = top + len(targets) * (lane_h + 4) + 6
    every = max(1, len(releases) // 60)
    ticks = [
        {"x": xs[v] + 3, "y": base, "text": v} for i, v in enumerate(releases) if i % every == 0
    ]
    return {
        "width": label_w + len(releases) * step + 40,
        "height": base + 70,
        "lanes": [{"label": t, "y": ys[t]} for t in targets],
        "rects": rects,
        "ticks": ticks,
    }


def _drift(apply_jobs: list[JobRow], patches: dict[int, list[PatchRow]]) -> dict[str, Any]:
    x0, step, height, top = 70, 16, 160, 20
    base = top + height
    pts = []
    for i, j in enumerate(apply_jobs):
        rows = patches.get(j.id)
        if not rows:
            continue
        offset = sum(abs(p.total_offset) for p in rows)
        fuzz = max((p.max_fuzz for p in rows), default=0)
        failed = sum(1 for p in rows if p.klass in FAILING_CLASSES)
        pts.append((i, j.release, offset, fuzz, failed))
    if not pts:
        return {"points": []}
    max_off = max(max(p[2] for p in pts), 1)
    points, bars, ticks = [], [], []
    every = max(1, len(apply_jobs) // 60)
    for i, rel, off, fuzz, failed in pts:
        x = x0 + i * step + step // 2
        y = base - round(off / max_off * height)
        fill = "#c62828" if failed else "#1a4f9c"
        title = f"{rel}: total offset {off}, max fuzz {fuzz}, {failed} patch(es) failing"
        points.append({"x": x, "y": y, "fill": fill, "title": title})
        if fuzz:
            h = min(height, fuzz * 30)
            bars.append({"x": x - 4, "y": base - h, "w": 8, "h": h, "title": f"{rel}: fuzz {fuzz}"})
        if i % every == 0:
            ticks.append({"x": x, "y": base + 10, "text": rel})
    return {
        "x0": x0,
        "base": base,
        "width": x0 + len(apply_jobs) * step + 40,
        "height": base + 80,
        "max_offset": max_off,
        "points": points,
        "bars": bars,
        "ticks": ticks,
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
    }


@dataclass(frozen=True)
class DriftWarning:
    patch: str
    text: str


def drift_warnings(
    apply_jobs: list[JobRow], patches: dict[int, list[PatchRow]]
) -> list[DriftWarning]:
    """Patches that still apply on the newest release but need fuzz, or whose offset keeps growing."""
    history: dict[str, list[tuple[str, PatchRow]]] = {}
    for j in apply_jobs:
        for p in patches.get(j.id, []):
            history.setdefault(p.name, []).append((j.release, p))
    out: list[DriftWarning] = []
    for name, hist in history.items():
        rel, last = hist[-1]
        if last.klass not in HUNK_CLASSES or last.klass in FAILING_CLASSES:
            continue
        if last.max_fuzz:
            out.append(DriftWarning(name, f"applies on {rel} only with fuzz {last.max_fuzz}"))
            continue
        offs = [abs(p.total_offset) for _r, p in hist[-3:]]
        if (
            len(offs) >= 2
            and offs[-1] > 0
            and all(a < b for a, b in zip(offs, offs[1:], strict=False))
        ):
            out.append(
                DriftWarning(
                    name,
                    f"offset grew over the last {len(offs)} releases to {offs[-1]} lines on {rel}",
                )
            )
    return out


def _patch_table(apply_jobs: list[JobRow], patches: dict[int, list[PatchRow]]) -> dict[str, Any]:
    recent = [j for j in apply_jobs if patches.get(j.id)][-DRIFT_COLUMNS:]
    names: list[str] = []
    by: dict[tuple[str, str], PatchRow] = {}
    for j in recent:
        for p in patches[j.id]:
            if p.name not in names:
                names.append(p.name)
            by[(p.name, j.release)] = p
    rows = []
    for n in names:
        cells: list[dict[str, str] | None] = []
        for j in recent:
            found = by.get((n, j.release))
            if found is None:
                cells.append(None)
                continue
            p = found
            text = (
                p.klass
                if p.klass in ("conflict", "missing-file", "file-exists")
                else (f"+{p.total_offset}" + (f" F{p.max_fuzz}" if p.max_fuzz else ""))
            )
            cells.append(
                {
                    "cls": hunk_cls(p.klass),
                    "text": text,
                    "title": f"{p.klass}: {p.hunks} hunks, {p.hunks_failed} failed, offset {p.total_offset}, fuzz {p.max_fuzz}",
                }
            )
        rows.append({"name": n, "cells": cells})
    return {"releases": [j.release for j in recent], "patches": rows}


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_html(
    data: ReportData, out: Path, *, progress: Callable[[str], None] | None = None
) -> Site:
    """Write index.html, c/<job>.html and p/<patch set version>.html under ``out``."""
    w = HtmlWriter(data)
    out.mkdir(parents=True, exist_ok=True)
    (out / "c").mkdir(exist_ok=True)
    (out / "p").mkdir(exist_ok=True)
    index = out / "index.html"
    index.write_text(w.index(), encoding="utf-8")
    files = [index]
    # creating 10,000 small files is mostly waiting on the file system: overlap it with rendering
    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        pending = []
        for job in data.matrix.jobs.values():
            files.append(out / "c" / f"{job.id}.html")
            pending.append(pool.submit(_write, files[-1], w.cell(job)))
        for row in data.matrix.rows:
            files.append(out / "p" / f"{row.psv_id}.html")
            pending.append(pool.submit(_write, files[-1], w.patchset(row)))
        for f in pending:
            f.result()  # re-raise the first OSError
    n = len(data.matrix.jobs)
    if progress:
        progress(f"html: {index} ({n} cell pages, {len(data.matrix.rows)} patch set pages)")
    return Site(index=index, cell_pages=n, patchset_pages=len(data.matrix.rows), files=tuple(files))
