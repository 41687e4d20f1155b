"""JUnit XML is accepted by junitparser: one test case per job stage, statuses mapped."""

from __future__ import annotations

from conftest_report import XSS_PATCH, make_db, populate_sample
from junitparser import Error, Failure, JUnitXml, Skipped

from tracker.report.data import load_report_data
from tracker.report.junit import write_junit


def test_junit_parses_and_maps_statuses(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        populate_sample(s)
        data = load_report_data(s)
    path = write_junit(data, tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(path))
    cases = {}
    for suite in xml:
        for case in suite:
            cases[(suite.name, case.classname, case.name)] = case
    expected = sum(len(j.stages.split(",")) for j in data.matrix.jobs.values())
    assert len(cases) == expected
    assert xml.tests == expected

    def results(suite, cls, name):
        return [type(r) for r in cases[(suite, cls, name)].result]

    x86 = "alpha@1.0 x86_64:tinyconfig"
    assert results(x86, "alpha@1.0/x86_64:tinyconfig/6.12", "apply") == [Failure]
    assert results("alpha@1.0 arm64:defconfig", "alpha@1.0/arm64:defconfig/6.12", "build") == [
        Error
    ]
    assert results(x86, "alpha@1.0/x86_64:tinyconfig/6.1", "test") == []  # passed
    beta = "beta@0.3 x86_64:tinyconfig"
    assert (beta, "beta@0.3/x86_64:tinyconfig/6.6", "boot") not in cases  # not in its stages
    failure = cases[(x86, "alpha@1.0/x86_64:tinyconfig/6.12", "apply")].result[0]
    assert XSS_PATCH in failure.message  # escaped in XML, read back as text
    assert "<img src=x" in failure.text
    # the build log's control characters (ESC, BEL) cannot be in XML: replaced, file still parses
    bfail = cases[(beta, "beta@0.3/x86_64:tinyconfig/6.6", "build")].result[0]
    assert "\x1b" not in bfail.text and "\ufffd" in bfail.text
    assert xml.failures >= 3 and xml.errors == 1 and xml.skipped == 0


def test_stages_that_did_not_run_are_skipped(tmp_path):
    from conftest_report import World

    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("a")
        w.job(w.run(), a, "6.1", status="fail", stage="apply", stages="apply,configure,build,boot")
        data = load_report_data(s)
    xml = JUnitXml.fromfile(str(write_junit(data, tmp_path / "j.xml")))
    (suite,) = list(xml)
    kinds = {case.name: [type(r) for r in case.result] for case in suite}
    assert kinds == {
        "apply": [Failure],
        "configure": [Skipped],
        "build": [Skipped],
        "boot": [Skipped],
    }
