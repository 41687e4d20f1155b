"""JUnit XML for CI systems: one test suite per (patch set version, target), one test case per
job stage.

The stage's cause decides: a ``fail`` that is the patch set's (``verdict``) is a ``<failure>``;
anything that judges nothing (``upstream``: the release fails without the patch set too,
``infrastructure``, ``bad-input``) is an ``<error>`` whose ``type`` is the cause; a stage that did
not run a ``<skipped>``; ``warn`` passes with its finding in ``<system-out>``. Written with the
standard library's ElementTree (it escapes text and attributes); characters XML 1.0 cannot hold
(control characters from build logs) are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tracker.report.data import ReportData
from tracker.vocab import Cause, Stage, Status

_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
EXCERPT = 16384


def xml_text(text: str | None, limit: int = EXCERPT) -> str:
    s = _XML_BAD.sub("\ufffd", text or "")
    return s if len(s) <= limit else s[-limit:]


def junit_tree(data: ReportData) -> ET.ElementTree:
    m = data.matrix
    root = ET.Element("testsuites", name="ktrack")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    suites: dict[tuple[int, str], ET.Element] = {}
    counts: dict[tuple[int, str], dict[str, float]] = {}
    for row, rel, target, cell in m.iter_cells():
        key = (row.psv_id, target)
        if key not in suites:
            suites[key] = ET.SubElement(root, "testsuite", name=xml_text(f"{row.name} {target}"))
            counts[key] = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
        suite, c = suites[key], counts[key]
        job = m.jobs[cell.job_id]
        ran = {s.stage: s for s in data.stages.get(cell.job_id, [])}
        wanted = [st for st in Stage if st.value in job.stages.split(",")] or list(ran)
        for st in sorted(set(wanted) | set(ran), key=lambda s: s.index):
            sr = ran.get(st)
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=xml_text(f"{row.name}/{target}/{rel.version}"),
                name=st.value,
                time=f"{(sr.duration or 0.0) if sr else 0.0:.3f}",
            )
            c["tests"] += 1
            c["time"] += (sr.duration or 0.0) if sr else 0.0
            if sr is None or sr.status is Status.SKIP:
                ET.SubElement(
                    tc, "skipped", message=xml_text(sr.summary if sr else "not run", 1024)
                )
                c["skipped"] += 1
            elif sr.status is Status.FAIL and sr.cause in (None, Cause.VERDICT):
                el = ET.SubElement(tc, "failure", message=xml_text(sr.summary, 1024), type=st.value)
                el.text = xml_text(sr.log_excerpt or sr.summary)
                c["failures"] += 1
            elif sr.status in (Status.FAIL, Status.ERROR):
                cause = sr.cause or Cause.INFRASTRUCTURE
                el = ET.SubElement(
                    tc, "error", message=xml_text(sr.summary, 1024), type=cause.value
                )
                el.text = xml_text(sr.log_excerpt or sr.summary)
                c["errors"] += 1
            elif sr.status is Status.WARN:
                ET.SubElement(tc, "system-out").text = xml_text(f"warn: {sr.summary}")
    for key, suite in suites.items():
        c = counts[key]
        for k in ("tests", "failures", "errors", "skipped"):
            suite.set(k, str(int(c[k])))
            totals[k] += int(c[k])
        suite.set("time", f"{c['time']:.3f}")
        total_time += c["time"]
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    return ET.ElementTree(root)


def write_junit(data: ReportData, path: Path) -> Path:
    tree = junit_tree(data)
    ET.indent(tree, space=" ")
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
