"""Export and import of job results (ktrack.results/1): round trip, written once, strict checks."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tracker import cli
from tracker.errors import UserError
from tracker.pipeline import exchange, record
from tracker.pipeline.plan import JobSpec
from tracker.results import artifacts
from tracker.results.db import Database
from tracker.results.models import (
    Job,
    JobAttempt,
    KernelRelease,
    PatchResult,
    Run,
    RunJob,
    StageResult,
)
from tracker.vocab import Outcome, Stage, Status

APPLY_DETAIL = {
    "patches": [
        {
            "name": "0001-a.patch",
            "class": "offset",
            "files": [{"path": "a.c", "hunks": [{"class": "offset", "offset": 3, "fuzz": 0}]}],
        },
        {
            "name": "0002-b.patch",
            "class": "conflict",
            "files": [{"path": "b.c", "hunks": [{"class": "conflict", "expected_line": 9}]}],
        },
    ]
}


def _spec(release: str = "6.1.12", stages: tuple[str, ...] = ("apply",)) -> JobSpec:
    return JobSpec(
        "vcontext", "0.3", "ab" * 32, "/x/patchset.toml", release, "x86_64:tinyconfig", stages
    )


def _db(tmp_path: Path, name: str, releases: tuple[str, ...] = ("6.1.12",)) -> Database:
    db = Database(f"sqlite:///{tmp_path / name}")
    with db.session() as s:
        for v in releases:
            s.add(KernelRelease(version=v, series=v.rsplit(".", 1)[0], moniker="stable", feed="t"))
    return db


def _record(
    db: Database, spec: JobSpec, log: Path, root: Path, status: Status = Status.FAIL
) -> int:
    with db.session() as s:
        run = record.start_run(s, {"argv": ["t"]})
        job, reused = record.claim_job(s, spec, run.id)
        assert not reused
        outcome = Outcome(status, "0002-b.patch: conflict", detail=APPLY_DETAIL)
        record.record_stage(
            s,
            job,
            Stage.APPLY,
            outcome,
            started_at=record.now(),
            duration=0.25,
            log_hash=artifacts.put_file(root, log),
            log_excerpt=log.read_text(),
        )
        record.finish_job(s, job)
        return run.id


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, JobSpec, Path]:
    root_a = tmp_path / "artifacts-a"
    log = tmp_path / "apply.log"
    log.write_text("offset 0001-a.patch\nconflict 0002-b.patch\n")
    db = _db(tmp_path, "a.db")
    spec = _spec()
    _record(db, spec, log, root_a)
    with db.session() as s:
        doc = exchange.export_jobs(s, [spec.key, "0" * 32], artifacts_root=root_a)
    path = tmp_path / "out" / "results.json"
    exchange.write_file(path, doc)
    db.dispose()
    return path, spec, log


def test_export_document_shape(exported: tuple[Path, JobSpec, Path]) -> None:
    path, spec, log = exported
    doc = json.loads(path.read_text())
    assert doc["schema"] == "ktrack.results/1"
    (job,) = doc["jobs"]  # the unknown key is simply absent
    assert job["key"] == spec.key and job["status"] == "fail" and job["furthest_stage"] == "apply"
    assert job["release"]["version"] == "6.1.12"
    assert [p["class"] for p in job["patch_results"]] == ["offset", "conflict"]
    digest = job["stage_results"][0]["log_hash"]
    assert gzip.decompress(base64.b64decode(doc["logs"][digest])) == log.read_bytes()
    assert not path.with_name("results.json.part").exists()


def test_import_round_trip_into_an_empty_database(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, spec, log = exported
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")  # no catalog: the release comes from the file
    root_b = tmp_path / "artifacts-b"
    with db.session() as s:
        run = record.start_run(s, {"argv": ["import"]}, trigger="import")
        rep = exchange.import_document(
            s, exchange.read_file(path), source=str(path), artifacts_root=root_b, run_id=run.id
        )
        run_id = run.id
    assert rep.written == [spec.key] and rep.kept == [] and rep.logs == 1
    with db.session() as s:
        job = s.scalars(select(Job).where(Job.key == spec.key)).one()
        assert (job.status, job.furthest_stage, job.finished, job.run_id) == (
            "fail",
            "apply",
            True,
            run_id,
        )
        assert job.release.version == "6.1.12"
        assert job.patchset_version.patchset.name == "vcontext"
        (sr,) = job.stage_results
        assert (sr.stage, sr.status, sr.duration) == ("apply", "fail", 0.25)
        assert sr.detail == APPLY_DETAIL
        assert artifacts.read(root_b, sr.log_hash or "") == log.read_bytes()
        pr = [
            (p.position, p.name, p.klass, p.hunks_failed, p.total_offset) for p in job.patch_results
        ]
        assert pr == [(1, "0001-a.patch", "offset", 0, 3), (2, "0002-b.patch", "conflict", 1, 0)]
        assert s.get(RunJob, (run_id, job.id)) is not None
    # the imported job is what a run on this database would reuse
    with db.session() as s:
        _, reused = record.claim_job(s, spec, None)
        assert reused


def test_import_writes_each_result_once(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, spec, _ = exported
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    for _ in range(3):
        with db.session() as s:
            exchange.import_document(
                s, exchange.read_file(path), source=str(path), artifacts_root=tmp_path / "r"
            )
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1
        assert s.scalar(select(func.count()).select_from(StageResult)) == 1
        assert s.scalar(select(func.count()).select_from(PatchResult)) == 2


def test_import_keeps_a_verdict_and_replaces_an_error(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, spec, log = exported
    # the target database already has a verdict for the key: it is kept
    db = _db(tmp_path, "c.db")
    _record(db, spec, log, tmp_path / "rc", status=Status.WARN)
    with db.session() as s:
        rep = exchange.import_document(
            s, exchange.read_file(path), source="f", artifacts_root=tmp_path / "rc"
        )
    assert rep.kept == [spec.key] and rep.written == []
    with db.session() as s:
        assert s.scalars(select(Job)).one().status == "warn"
    # an infrastructure error is no verdict: the file's result replaces it
    db2 = _db(tmp_path, "d.db")
    _record(db2, spec, log, tmp_path / "rd", status=Status.ERROR)
    with db2.session() as s:
        rep = exchange.import_document(
            s, exchange.read_file(path), source="f", artifacts_root=tmp_path / "rd"
        )
    assert rep.written == [spec.key]
    with db2.session() as s:
        assert s.scalars(select(Job)).one().status == "fail"
        assert s.scalar(select(func.count()).select_from(StageResult)) == 1


def _mutate(path: Path, change: Any) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    out = path.with_name("bad.json")
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(schema="ktrack.results/9"),
            "schema: 'ktrack.results/9' is not one of 'ktrack.results/1'",
        ),
        (lambda d: d["jobs"][0].update(key="f" * 32), r"jobs\[0\]\.key: f+ does not match"),
        (lambda d: d["jobs"][0].update(target="arm64:defconfig"), r"jobs\[0\]\.key"),
        (lambda d: d["jobs"][0].update(status="great"), r"jobs\[0\]\.status: unknown status"),
        (
            lambda d: d["jobs"][0]["stage_results"][0].update(stage="deploy"),
            r"jobs\[0\]\.stage_results\[0\]\.stage: unknown stage",
        ),
        (lambda d: d["jobs"][0].pop("release"), r"jobs\[0\]\.release: missing \(required\)"),
        (
            lambda d: d["jobs"][0].update(attempts="2"),
            r"jobs\[0\]\.attempts: expected an int, got str '2'",
        ),
        (
            lambda d: d["logs"].update(
                {k: base64.b64encode(gzip.compress(b"x")).decode() for k in d["logs"]}
            ),
            "content does not match its hash",
        ),
    ],
)
def test_import_rejects_malformed_files_naming_the_field(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path], change: Any, message: str
) -> None:
    bad = _mutate(exported[0], change)
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    with pytest.raises(UserError, match=message), db.session() as s:
        exchange.import_document(
            s, exchange.read_file(bad), source=str(bad), artifacts_root=tmp_path / "re"
        )
    with db.session() as s:  # nothing half-written
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_read_file_rejects_non_json(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="x.json: not a ktrack results file"):
        exchange.read_file(bad)
    with pytest.raises(UserError, match="no such file"):
        exchange.read_file(tmp_path / "missing.json")


def test_pick_jobs_by_key_or_prefix() -> None:
    jobs = [_spec(f"6.1.{i}") for i in range(5)]
    assert exchange.pick_jobs(jobs, [jobs[3].key]) == [jobs[3]]
    assert exchange.pick_jobs(jobs, [jobs[4].key[:10], jobs[1].key]) == [jobs[1], jobs[4]]
    with pytest.raises(UserError, match="no planned job"):
        exchange.pick_jobs(jobs, ["0123456789abcdef"])
    with pytest.raises(UserError, match="at least 8"):
        exchange.pick_jobs(jobs, ["abc"])


def test_import_command_merges_files_into_one_run(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, spec, _ = exported
    other = tmp_path / "a2.db"
    db = _db(tmp_path, "a2.db", releases=("6.12.5",))
    spec2 = _spec("6.12.5")
    log = tmp_path / "l2.log"
    log.write_text("clean\n")
    _record(db, spec2, log, tmp_path / "r2", status=Status.PASS)
    with db.session() as s:
        exchange.write_file(
            tmp_path / "out" / "results-2.json",
            exchange.export_jobs(s, [spec2.key], artifacts_root=tmp_path / "r2"),
        )
    assert other.exists()
    target = f"sqlite:///{tmp_path / 'merged.db'}"
    pattern = str(tmp_path / "out" / "results*.json")
    rc = cli.main(["--db", target, "--home", str(tmp_path / "home"), "import", pattern, "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == "ktrack.import/1"
    assert sorted(out["written"]) == sorted([spec.key, spec2.key]) and out["logs"] == 2
    merged = Database(target)
    with merged.session() as s:
        run = s.get_one(Run, out["run"])
        assert (run.trigger, run.status) == ("import", "done")
        assert s.scalar(select(func.count()).select_from(RunJob)) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    assert cli.main(["--db", target, "import", str(bad)]) == 2


def test_causes_and_toolchain_travel_with_the_results(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, spec, _ = exported
    doc = json.loads(path.read_text())
    (job,) = doc["jobs"]
    assert job["cause"] == "verdict" and job["stage_results"][0]["cause"] == "verdict"
    # a build stage whose failure the release has too, written by another machine
    job["stages"] = ["apply", "configure", "build"]
    job["key"] = _spec(stages=("apply", "configure", "build")).key
    job["toolchain"] = "0123456789abcdef"
    job["stage_results"] = [
        {"stage": "apply", "status": "warn", "summary": "offset"},  # an older file: no cause
        {"stage": "configure", "status": "pass", "cause": None, "summary": "configured"},
        {"stage": "build", "status": "error", "cause": "upstream", "summary": "no verdict: x"},
    ]
    job["status"], job["furthest_stage"] = "fail", "apply"  # what an older exporter wrote
    other = path.with_name("other.json")
    other.write_text(json.dumps(doc))
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    with db.session() as s:
        exchange.import_document(
            s, exchange.read_file(other), source="f", artifacts_root=tmp_path / "r"
        )
    with db.session() as s:
        row = s.scalars(select(Job)).one()
        # the job's status is recomputed: the worst stage, its cause, the furthest stage
        assert (row.status, row.cause, row.furthest_stage, row.toolchain) == (
            "error",
            "upstream",
            "build",
            "0123456789abcdef",
        )
        assert [(r.stage, r.cause) for r in row.stage_results] == [
            ("apply", "verdict"),
            ("configure", None),
            ("build", "upstream"),
        ]
    bad = _mutate(other, lambda d: d["jobs"][0]["stage_results"][2].update(cause="gremlins"))
    with db.session() as s, pytest.raises(UserError, match=r"stage_results\[2\]\.cause"):
        exchange.import_document(s, exchange.read_file(bad), source="f", artifacts_root=tmp_path)


def test_import_of_a_later_attempt_replaces_the_verdict_and_keeps_it_in_history(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, spec, log = exported
    db = _db(tmp_path, "c.db")
    _record(db, spec, log, tmp_path / "rc", status=Status.WARN)
    doc = json.loads(path.read_text())
    doc["jobs"][0]["finished_at"] = "2099-01-01T00:00:00+00:00"  # judged again, later
    later = path.with_name("later.json")
    later.write_text(json.dumps(doc))
    with db.session() as s:
        rep = exchange.import_document(
            s, exchange.read_file(later), source="f", artifacts_root=tmp_path / "rc"
        )
    assert rep.written == [spec.key]
    with db.session() as s:
        assert s.scalars(select(Job)).one().status == "fail"
        (old,) = s.scalars(select(JobAttempt)).all()
        assert (old.attempt, old.status, [st["stage"] for st in old.stages]) == (
            1,
            "warn",
            ["apply"],
        )


def test_a_job_without_stage_rows_keeps_the_status_and_cause_of_the_file(
    tmp_path: Path, exported: tuple[Path, JobSpec, Path]
) -> None:
    path, _, _ = exported
    doc = json.loads(path.read_text())
    doc["jobs"][0].update(status="error", cause="upstream", stage_results=[], patch_results=[])
    bare = path.with_name("bare.json")
    bare.write_text(json.dumps(doc))
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    with db.session() as s:
        exchange.import_document(s, exchange.read_file(bare), source="f", artifacts_root=tmp_path)
    with db.session() as s:
        job = s.scalars(select(Job)).one()
        assert (job.status, job.cause, job.furthest_stage) == ("error", "upstream", "apply")
