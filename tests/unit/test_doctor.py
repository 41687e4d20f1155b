"""``ktrack doctor``: tools, disk, database and store integrity, with an exit code CI can use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tracker import config
from tracker.doctor import Health, Tool, check_store, check_tool, failed, run_checks


def test_missing_tool_is_reported_with_fix(tmp_path: Path) -> None:
    c = check_tool(Tool("no-such-compiler-ktrack", "build", True, package="gcc-ktrack"), tmp_path)
    assert c.health is Health.MISSING and c.fix == "apt-get install gcc-ktrack"
    assert failed([c]) == [c]


def test_present_tool_has_version(tmp_path: Path) -> None:
    c = check_tool(Tool("git", "all", True), tmp_path)
    assert c.health is Health.OK and c.detail[0].isdigit()


def test_corrupt_store_fails_fsck_with_repair_hint(tmp_path: Path) -> None:
    settings = config.load(cwd=tmp_path, env={}, home=str(tmp_path / "home"))
    store = settings.store_path
    subprocess.run(["git", "init", "-q", "--bare", str(store)], check=True)
    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "f").write_text("x\n")
    subprocess.run(["git", "-C", str(work), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "c"], check=True)
    subprocess.run(
        ["git", "-C", str(work), "push", "-q", str(store), "HEAD:refs/tags/v6.1"], check=True
    )
    assert check_store(settings, tmp_path).health is Health.OK
    # remove one object: the store is no longer whole
    objects = [p for p in (store / "objects").rglob("*") if p.is_file() and len(p.parent.name) == 2]
    assert objects
    for p in objects[:1]:
        p.chmod(0o644)
        p.unlink()
    bad = check_store(settings, tmp_path)
    assert bad.health is Health.FAIL and "re-import" in bad.fix


def test_doctor_command_json_and_exit_code(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--home", str(tmp_path / "h"), "doctor", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads(r.stdout)
    assert data["schema"] == "ktrack.doctor/1"
    names = {c["name"] for c in data["checks"]}
    assert {
        "git",
        "patch",
        "make",
        "gcc",
        "qemu-system-x86_64",
        "busybox-static",
        "disk",
        "database",
    } <= names
    assert r.returncode == (0 if data["ok"] else 3)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracker.cli",
            "--db",
            "postgresql+psycopg://x@127.0.0.1:9/x",
            "doctor",
            "--json",
            "--no-fsck",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3
    db = [c for c in json.loads(r.stdout)["checks"] if c["name"] == "database"][0]
    assert db["health"] == "fail" and "unreachable" in db["detail"]


def test_run_checks_lists_every_tool(tmp_path: Path) -> None:
    settings = config.load(cwd=tmp_path, env={}, home=str(tmp_path / "home"))
    checks = run_checks(settings, fsck=False)
    assert len({c.name for c in checks}) == len(checks)


def test_arm64_busybox_is_looked_for_in_the_cache(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from functools import partial

    from tracker.arches.loader import get
    from tracker.doctor import check_guest_busybox

    check_busybox_arm64 = partial(check_guest_busybox, get("arm64"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    c = check_busybox_arm64()
    assert c.health is Health.MISSING and not c.required and "scripts/setup" in c.fix
    assert str(tmp_path / "ktrack" / "busybox" / "arm64" / "busybox") in c.detail
    bb = tmp_path / "ktrack" / "busybox" / "arm64" / "busybox"
    bb.parent.mkdir(parents=True)
    bb.write_bytes(b"\x7fELF")
    assert check_busybox_arm64().health is Health.OK
