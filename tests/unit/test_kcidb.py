"""KCIDB v5 output validates against kcidb-io's schema; patchset_hash as KCIDB specifies."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import kcidb_io
import pytest
from conftest_report import PATCH_SHA, World, make_db, populate_sample

from tracker.report.data import load_report_data
from tracker.report.kcidb import file_digests, kcidb_report, patchset_hash


def test_patchset_hash_matches_the_kcidb_shell_recipe(tmp_path):
    files = []
    for i, body in enumerate((b"first\n", b"second patch\n", b"\x00binary-ish")):
        p = tmp_path / f"{i:04d}.patch"
        p.write_bytes(body)
        files.append(p)
    ours = patchset_hash(file_digests(files))
    # "sha256sum *.patch | cut -c-64 | sha256sum | cut -c-64", done by hand
    manual = hashlib.sha256(
        b"".join(hashlib.sha256(f.read_bytes()).hexdigest().encode() + b"\n" for f in files)
    ).hexdigest()
    assert ours == manual
    if shutil.which("sha256sum"):
        out = subprocess.run(  # the documented recipe, run for real (no shell)
            ["sha256sum", *[str(f) for f in files]], capture_output=True, text=True, check=True
        ).stdout
        digests = "".join(line[:64] + "\n" for line in out.splitlines())
        assert ours == hashlib.sha256(digests.encode()).hexdigest()
    assert patchset_hash([]) == ""


def test_kcidb_document_validates(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        populate_sample(s)
        data = load_report_data(s)
    doc = kcidb_report(data)
    kcidb_io.schema.V5_3.validate(doc)
    assert kcidb_io.schema.V5_3.is_valid_exactly(doc)
    assert doc["version"]["major"] == 5
    checkouts = {c["id"]: c for c in doc["checkouts"]}
    bad = checkouts["ktrack:alpha@1.0:6.12"]
    assert bad["valid"] is False
    assert bad["patchset_hash"] == patchset_hash(PATCH_SHA)
    assert [f["name"] for f in bad["patchset_files"]][
        1
    ] == "<script>alert(1)<_script>.patch"  # no "/" in a KCIDB resource name
    assert checkouts["ktrack:alpha@1.0:6.1"]["valid"] is True
    builds = {b["id"]: b for b in doc["builds"]}
    statuses = sorted(b["status"] for b in builds.values())
    assert "ERROR" in statuses and "FAIL" in statuses and "PASS" in statuses
    arches = {b["architecture"] for b in builds.values()}
    assert arches == {"x86_64", "arm64"}
    paths = {t["path"] for t in doc["tests"]}
    assert {"boot", "ktrack.smoke_proc"} <= paths
    boot_fail = [t for t in doc["tests"] if t["path"] == "boot" and t["status"] == "FAIL"]
    assert boot_fail and "Kernel panic" in boot_fail[0]["log_excerpt"]


def test_invalid_document_is_rejected_by_the_schema(tmp_path):
    """The validator is real: a bad status or a missing origin fails."""
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        w.job(w.run(), w.psv("a"), "6.1", status="pass", stage="build")
        data = load_report_data(s)
    doc = kcidb_report(data)
    kcidb_io.schema.V5_3.validate(doc)
    doc["builds"][0]["status"] = "BROKEN"
    with pytest.raises(Exception, match="BROKEN"):
        kcidb_io.schema.V5_3.validate(doc)


def test_hash_left_out_when_digests_unknown(tmp_path):
    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        w.job(
            w.run(),
            w.psv("a"),
            "6.1",
            status="pass",
            stage="apply",
            stages="apply",
            detail={"patches": [{"name": "x.patch", "class": "clean", "files": []}]},
        )
        data = load_report_data(s)
    doc = kcidb_report(data)
    kcidb_io.schema.V5_3.validate(doc)
    (co,) = doc["checkouts"]
    assert "patchset_hash" not in co and co["patchset_files"][0]["name"] == "x.patch"


def _demo_patchset(root):
    d = root / "demo"
    (d / "1.0").mkdir(parents=True)
    bodies = {
        "0001-a.patch": b"--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
        "0002-b.patch": b"--- a/g\n+++ b/g\n@@ -1 +1 @@\n-c\n+d\n",
    }
    for name, body in bodies.items():
        (d / "1.0" / name).write_bytes(body)
    (d / "1.0" / "series").write_text("# comment\n0001-a.patch\n\n0002-b.patch\n")
    (d / "patchset.toml").write_text(
        'name = "demo"\nsummary = "demo"\n\n[[versions]]\nversion = "1.0"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "1.0"\n\n[track]\nkernels = ">=6.1"\n'
        'targets = ["x86_64:tinyconfig"]\n'
    )
    return [hashlib.sha256(b).hexdigest() for b in bodies.values()]


def test_patchset_hash_from_the_patch_files_on_disk(tmp_path):
    from tracker.patchsets.formats import content_hash
    from tracker.patchsets.manifest import discover
    from tracker.report.kcidb import digests_from_manifests

    root = tmp_path / "patches"
    expected = _demo_patchset(root)
    (m,) = discover([root])
    recorded = content_hash(m.versions[0])
    got = digests_from_manifests([root], {("demo", "1.0"): recorded})
    assert got == {("demo", "1.0"): expected}
    # files changed since the run: their digests would not describe what ran
    assert digests_from_manifests([root], {("demo", "1.0"): "0" * 64}) == {}

    db = make_db(tmp_path)
    with db.session() as s:
        w = World(s)
        psv = w.psv("demo", "1.0")
        psv.content_hash = recorded
        w.job(w.run(), psv, "6.1", status="pass", stage="apply", stages="apply")
        data = load_report_data(s)
    doc = kcidb_report(data, digests=got)
    kcidb_io.schema.V5_3.validate(doc)
    (co,) = doc["checkouts"]
    assert co["patchset_hash"] == patchset_hash(expected)
