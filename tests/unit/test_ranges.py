"""Compatibility ranges say how far each release was verified, and DKMS lines come only from
releases verified through build (a release that was only apply-checked is not known to build)."""

from __future__ import annotations

import json

from conftest_report import World, make_db

from tracker.cli import main as cli_main
from tracker.report.data import load_report_data
from tracker.report.markdown import summary_markdown
from tracker.report.matrix import build_matrix
from tracker.report.ranges import ALL_TARGETS, compute_ranges, dkms_conf
from tracker.vocab import Stage

X86 = "x86_64:tinyconfig"
ARM = "arm64:defconfig"
FULL = "apply,configure,build,boot,test"


def _world(tmp_path):
    """alpha: 6.1 tested, 6.2 apply-checked only, 6.3 fails at apply, 6.4 built, 6.5 (newest)
    apply-checked only on x86_64 but built on arm64, 6.6 apply-checked only (its build: an
    infrastructure error, no verdict)."""
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        a = w.psv("alpha")
        r = w.run()
        w.job(r, a, "6.1", stage="test", stages=FULL)
        w.job(r, a, "6.2", stage="apply", stages="apply")
        w.job(r, a, "6.3", status="fail", stage="apply", stages="apply")
        w.job(r, a, "6.4", status="warn", stage="build")
        w.job(r, a, "6.5", stage="apply", stages="apply")
        w.job(r, a, "6.5", target=ARM, stage="build")
        w.job(r, a, "6.6", stage="apply", stages="apply")
        w.job(r, a, "6.6", target=ARM, status="error", stage="build", summary="disk full")
        b = w.psv("beta")  # never got past apply anywhere
        for v in ("6.1", "6.2"):
            w.job(r, b, v, stage="apply", stages="apply")
    return db


def test_each_release_says_how_far_it_was_verified(tmp_path):
    db = _world(tmp_path)
    with db.session() as s:
        ranges = {(r.patchset, r.target): r for r in compute_ranges(build_matrix(s))}
    x86 = ranges[("alpha", X86)]
    assert x86.levels() == {
        "6.1": Stage.TEST,
        "6.2": Stage.APPLY,
        "6.4": Stage.BUILD,
        "6.5": Stage.APPLY,
        "6.6": Stage.APPLY,
    }
    assert x86.failing == ("6.3",) and x86.verified_through is Stage.APPLY
    combined = ranges[("alpha", ALL_TARGETS)]
    # over all targets: the furthest a passing target got (arm64 built 6.5)
    assert combined.levels()["6.5"] is Stage.BUILD and combined.levels()["6.6"] is Stage.APPLY
    assert combined.verification == (
        "through test on 6.1; through build on 6.4, 6.5; through apply only on 6.2, 6.6"
    )
    doc = combined.to_json()
    assert doc["verified"] == {
        "6.1": "test",
        "6.2": "apply",
        "6.4": "build",
        "6.5": "build",
        "6.6": "apply",
    }
    assert doc["verified_through"] == "apply" and doc["failing"] == ["6.3"]
    assert (doc["oldest"], doc["newest"]) == ("6.1", "6.6")  # the range itself: every verdict


def test_dkms_lines_only_from_releases_verified_through_build(tmp_path):
    db = _world(tmp_path)
    with db.session() as s:
        ranges = {(r.patchset, r.target): r for r in compute_ranges(build_matrix(s))}
    combined = ranges[("alpha", ALL_TARGETS)]
    built = combined.through(Stage.BUILD)
    assert built.passing == ("6.1", "6.4", "6.5") and built.failing_inside == ("6.3",)
    conf = dkms_conf(combined)
    assert conf.splitlines() == [
        "# ktrack: alpha@1.0, targets *",
        "# left out, not verified through build: 6.2(apply) 6.6(apply)",
        "# passes through build on 3 of 4 releases with such a verdict; bounds are inclusive",
        "# fails inside the range on: 6.3",
        'BUILD_EXCLUSIVE_KERNEL_MIN="6.1"',
        'BUILD_EXCLUSIVE_KERNEL_MAX="6.5"',
    ]
    # x86_64 alone built nothing after 6.4
    assert 'BUILD_EXCLUSIVE_KERNEL_MAX="6.4"' in dkms_conf(ranges[("alpha", X86)])
    beta = dkms_conf(ranges[("beta", ALL_TARGETS)])
    assert "BUILD_EXCLUSIVE" not in beta
    assert "# no release verified through build among 2 tested" in beta


def test_report_files_carry_the_verification(tmp_path):
    db = _world(tmp_path)
    out = tmp_path / "site"
    assert cli_main(["--db", db.url, "-q", "report", "--out", str(out)]) == 0
    conf = (out / "dkms-ranges.conf").read_text()
    assert conf.count("BUILD_EXCLUSIVE_KERNEL_MIN") == 1  # alpha only: beta was never built
    assert 'BUILD_EXCLUSIVE_KERNEL_MAX="6.5"' in conf and "6.6" not in conf.split("MAX")[-1]
    doc = json.loads((out / "ranges.json").read_text())
    (combined,) = [r for r in doc["ranges"] if r["patchset"] == "alpha" and r["target"] == "*"]
    assert combined["verified"]["6.2"] == "apply" and combined["verified"]["6.1"] == "test"
    with db.session() as s:
        md = summary_markdown(load_report_data(s))
    assert "| verified |" in md
    assert "through apply only on 6.2, 6.6 |" in md
    html = next(p.read_text() for p in (out / "p").glob("*.html") if "alpha@1.0" in p.read_text())
    assert "verified through test on 6.1; through build on 6.4, 6.5" in html
