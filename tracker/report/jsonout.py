"""The JSON report: one document with a versioned schema (``ktrack.report/1``).

It holds the matrix (``ktrack.matrix/1``), the regressions and the compatibility ranges, plus for
every cell its stages with their status, cause, summary and duration.
"""

from __future__ import annotations

from typing import Any

from tracker.report.data import ReportData
from tracker.report.ranges import compute_ranges

SCHEMA = "ktrack.report/1"


def report_json(data: ReportData) -> dict[str, Any]:
    m = data.matrix
    jobs = []
    for row, rel, target, cell in m.iter_cells():
        stages = data.stages.get(cell.job_id, [])
        jobs.append(
            {
                "key": cell.job_key,
                "patchset": row.patchset,
                "patchset_version": row.version,
                "release": rel.version,
                "target": target,
                "status": cell.status.value,
                "stage": cell.furthest_stage.value if cell.furthest_stage else None,
                "cause": cell.cause.value if cell.cause else None,
                "reason": cell.reason,
                "stages": [
                    {
                        "stage": s.stage.value,
                        "status": s.status.value,
                        "cause": s.cause.value if s.cause else None,
                        "summary": s.summary,
                        "duration": s.duration,
                    }
                    for s in stages
                ],
            }
        )
    return {
        "schema": SCHEMA,
        "generated_at": m.generated_at.isoformat(),
        "matrix": m.to_json(),
        "jobs": jobs,
        "regressions": [r.to_json() for r in data.regressions],
        "ranges": [r.to_json() for r in compute_ranges(m)],
    }
