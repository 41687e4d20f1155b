"""Benchmark: the full report (every format) for 10,000 jobs; goals < 10 s and a main page < 2 MB.

Builds a synthetic results database (20 patch set versions x 250 releases x 2 targets, three
stages per job, eight patches per job with apply detail) with bulk inserts, then times
``write_report`` per format and prints the figures against the goals.

    .venv/bin/python bench/bench_report.py [--jobs 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from tracker.report.data import load_report_data
from tracker.report.writer import FORMATS, write_formats
from tracker.results.db import Database
from tracker.results.models import (
    Job,
    KernelRelease,
    PatchResult,
    Patchset,
    PatchsetVersion,
    Run,
    RunJob,
    StageResult,
)
from tracker.versions import KernelVersion

GOAL_SECONDS = 10.0
GOAL_INDEX_BYTES = 2 * 1024 * 1024
SERIES = ("5.10", "5.15", "6.1", "6.6", "6.12")
TARGETS = ("x86_64:tinyconfig", "arm64:defconfig")


def populate(db: Database, n_jobs: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    n_psv = 20
    per_target = max(1, n_jobs // (n_psv * len(TARGETS)))
    per_series = max(1, per_target // len(SERIES))
    versions = [f"{s}.{i}" if i else s for s in SERIES for i in range(per_series)]
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as s:
        s.execute(
            insert(KernelRelease),
            [
                {
                    "id": i + 1,
                    "version": v,
                    "series": KernelVersion.parse(v).series,
                    "moniker": KernelVersion.parse(v).moniker.value,
                    "feed": "bench",
                }
                for i, v in enumerate(versions)
            ],
        )
        s.execute(insert(Patchset), [{"id": i + 1, "name": f"set{i:02d}"} for i in range(n_psv)])
        s.execute(
            insert(PatchsetVersion),
            [
                {
                    "id": i + 1,
                    "patchset_id": i + 1,
                    "version": "1.0",
                    "content_hash": hashlib.sha256(str(i).encode()).hexdigest(),
                }
                for i in range(n_psv)
            ],
        )
        s.execute(insert(Run), [{"id": 1, "trigger": "bench", "status": "done", "arguments": {}}])
        jobs, stages, patches, links = [], [], [], []
        jid = 0
        for p in range(n_psv):
            break_at = rng.randrange(len(versions))
            for ri, v in enumerate(versions):
                for target in TARGETS:
                    jid += 1
                    if jid > n_jobs:
                        break
                    r = rng.random()
                    if ri >= break_at and r < 0.5:
                        status, stage = "fail", rng.choice(("apply", "build"))
                    elif r < 0.02:
                        status, stage = "error", "build"
                    elif r < 0.15:
                        status, stage = "warn", "build"
                    else:
                        status, stage = "pass", "build"
                    jobs.append(
                        {
                            "id": jid,
                            "key": hashlib.sha256(f"{p}/{v}/{target}".encode()).hexdigest(),
                            "run_id": 1,
                            "patchset_version_id": p + 1,
                            "release_id": ri + 1,
                            "target": target,
                            "stages": "apply,configure,build",
                            "status": status,
                            "furthest_stage": stage,
                            "summary": f"{stage} {status}: synthetic reason for job {jid}",
                            "finished": True,
                            "started_at": t0 + timedelta(seconds=jid),
                            "finished_at": t0 + timedelta(seconds=jid, milliseconds=500),
                            "attempts": 1,
                        }
                    )
                    links.append({"run_id": 1, "job_id": jid, "reused": False})
                    names = [f"{k:04d}-change-{k}.patch" for k in range(1, 9)]
                    apply_fail = stage == "apply" and status == "fail"
                    detail = {
                        "patches": [
                            {
                                "name": n,
                                "class": "conflict" if apply_fail and k == 3 else "clean",
                                "sha256": hashlib.sha256(n.encode()).hexdigest(),
                                "files": [
                                    {
                                        "path": f"kernel/f{k}.c",
                                        "class": "clean",
                                        "hunks": [
                                            {"index": 1, "class": "clean", "offset": ri, "fuzz": 0}
                                        ],
                                    }
                                ],
                            }
                            for k, n in enumerate(names)
                        ]
                    }
                    for st in ("apply", "configure", "build"):
                        final = st == stage
                        stages.append(
                            {
                                "job_id": jid,
                                "stage": st,
                                "status": status if final else "pass",
                                "summary": f"{st} {status if final else 'pass'}",
                                "detail": detail if st == "apply" else {},
                                "duration": 1.0,
                                "log_excerpt": "make: *** [Makefile:1] Error 2\n" * 20
                                if final and status == "fail"
                                else None,
                            }
                        )
                        if final:
                            break
                    for k, n in enumerate(names):
                        patches.append(
                            {
                                "job_id": jid,
                                "position": k + 1,
                                "name": n,
                                "klass": "conflict" if apply_fail and k == 3 else "clean",
                                "hunks": 1,
                                "hunks_failed": int(apply_fail and k == 3),
                                "max_fuzz": 0,
                                "total_offset": ri,
                                "depends_on_failed": False,
                            }
                        )
        s.execute(insert(Job), jobs)
        s.execute(insert(RunJob), links)
        s.execute(insert(StageResult), stages)
        s.execute(insert(PatchResult), patches)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--keep", metavar="DIR", help="write the DB and report here (kept)")
    args = ap.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ktrack-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "bench.db"
    if db_path.exists():
        db_path.unlink()
    db = Database(f"sqlite:///{db_path}")
    t = time.perf_counter()
    populate(db, args.jobs)
    print(f"populate: {args.jobs} jobs in {time.perf_counter() - t:.1f} s (not timed below)")

    out = work / "site"
    t_all, c_all = time.perf_counter(), time.process_time()
    with db.session() as s:
        t, c = time.perf_counter(), time.process_time()
        data = load_report_data(s)
        t_load, c_load = time.perf_counter() - t, time.process_time() - c
    print(
        f"load: {len(data.matrix.jobs)} jobs, {sum(len(v) for v in data.stages.values())} stages, "
        f"{sum(len(v) for v in data.patches.values())} patch rows in {t_load:.2f} s (cpu {c_load:.2f} s)"
    )
    html_wall, html_cpu = t_load, c_load
    for fmt in FORMATS:
        t, c = time.perf_counter(), time.process_time()
        written = write_formats(data, out, [fmt])
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        if fmt == "html":
            html_wall, html_cpu = html_wall + wall, html_cpu + cpu
        size = sum(w.path.stat().st_size for w in written)
        print(f"{fmt:>9}: {wall:6.2f} s (cpu {cpu:5.2f} s)  {size / 1024:9.0f} KiB")
    total, total_cpu = time.perf_counter() - t_all, time.process_time() - c_all
    index = (out / "index.html").stat().st_size
    load = os.getloadavg()[0]
    print(
        f"machine load average {load:.1f} on {os.cpu_count()} cpus (wall time includes waiting for them)"
    )
    print(
        f"HTML report (read + html): {html_wall:.2f} s wall, {html_cpu:.2f} s cpu; "
        f"goal < {GOAL_SECONDS:.0f} s: wall {'ok' if html_wall < GOAL_SECONDS else 'MISSED'}, "
        f"cpu {'ok' if html_cpu < GOAL_SECONDS else 'MISSED'} (cpu/goal {html_cpu / GOAL_SECONDS:.2f})"
    )
    print(f"every format (read once): {total:.2f} s wall, {total_cpu:.2f} s cpu")
    ok_s = index < GOAL_INDEX_BYTES
    print(
        f"index.html: {index / 1024 / 1024:.2f} MiB (goal < 2 MiB: {'ok' if ok_s else 'MISSED'}); "
        f"cell pages: {len(list((out / 'c').iterdir()))}"
    )
    ok_t = html_cpu < GOAL_SECONDS
    db.dispose()
    return 0 if ok_t and ok_s else 1


if __name__ == "__main__":
    sys.exit(main())
