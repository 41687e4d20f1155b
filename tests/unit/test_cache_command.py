"""``ktrack cache list|clear``: what each cache holds; clearing one kind, or all, safely."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tracker.cli import main


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache dir with a few entries of each kind, a data dir with a store beside it."""
    root = tmp_path / "cache"
    monkeypatch.setenv("KTRACK_CACHE", str(root))
    monkeypatch.setenv("KTRACK_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    (root / "baseline").mkdir(parents=True)
    (root / "baseline" / "k1.json").write_text('{"stage": "build"}')  # 18 bytes
    (root / "baseline" / "k2.json").write_text("{}")
    (root / "downloads").mkdir()
    (root / "downloads" / ".6.1.lock").write_text("")
    (root / "downloads" / "linux-6.1.tar.xz").write_bytes(b"x" * 1000)
    (root / "patchsets" / "ab" / "cd").mkdir(parents=True)
    (root / "patchsets" / "ab" / "cd" / "series").write_text("0001.patch\n")
    (root / "stores").mkdir()  # not a ktrack cache kind: listed, never cleared
    (root / "stores" / "x").write_text("keep")
    store = tmp_path / "data" / "store.git"
    store.mkdir(parents=True)
    (store / "HEAD").write_text("ref: refs/heads/master\n")
    return root


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_list_json_shows_every_kind_with_size_and_files(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json(capsys, "cache", "list", "--json")
    assert doc["schema"] == "ktrack.cache/1" and doc["root"] == str(cache)
    rows = {(c["kind"], c["path"]): c for c in doc["caches"]}  # type: ignore[attr-defined]
    got = {k: (r["exists"], r["bytes"], r["entries"]) for (k, _), r in rows.items()}
    assert got == {
        "baseline": (True, 20, 2),
        "ccache": (False, 0, 0),
        "downloads": (True, 1000, 1),  # the lock file is not an entry
        "patchsets": (True, 11, 1),
        "bisect": (False, 0, 0),
        None: (True, 4, 1),
    }
    assert rows[(None, str(cache / "stores"))]["what"] == "not a ktrack cache kind (never cleared)"


def test_list_for_people_names_each_cache(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    for word in ("baseline", "control-run results", "ccache", "downloads", "(absent)", "(other)"):
        assert word in out


def test_clear_one_kind_leaves_the_others(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _json(capsys, "cache", "clear", "baseline", "--json")
    assert doc["cleared"] == [{
        "kind": "baseline", "what": "control-run results of unpatched releases",
        "path": str(cache / "baseline"), "exists": True, "bytes": 20, "entries": 2,
        "symlink": None,
    }]  # fmt: skip
    assert list((cache / "baseline").iterdir()) == []
    assert (cache / "downloads" / "linux-6.1.tar.xz").exists()
    assert (cache / "patchsets" / "ab" / "cd" / "series").exists()


def test_clear_without_a_kind_clears_every_cache_but_not_data(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert "downloads: cleared 1 file(s), 1000 B" in out
    assert "ccache: nothing to clear" in out
    for kind in ("baseline", "patchsets"):
        assert list((cache / kind).iterdir()) == []
    # the download lock stays (another run may be about to take it); the tarball is gone
    assert [p.name for p in (cache / "downloads").iterdir()] == [".6.1.lock"]
    assert (cache / "stores" / "x").read_text() == "keep"
    assert (tmp_path / "data" / "store.git" / "HEAD").exists()


def test_clear_never_follows_links_out(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "precious").write_text("mine")
    (cache / "baseline" / "link").symlink_to(outside)
    (cache / "patchsets" / "ab" / "to-outside").symlink_to(outside / "deep")
    shutil.rmtree(cache / "downloads")
    (cache / "downloads").symlink_to(outside)  # a kind folder that is itself a link
    assert main(["cache", "clear"]) == 0
    out = capsys.readouterr().out
    assert f"downloads: {cache / 'downloads'} is a link to {outside}: not followed" in out
    assert (outside / "deep" / "precious").read_text() == "mine"
    assert not (cache / "baseline" / "link").exists() and not (cache / "patchsets" / "ab").exists()
    assert (cache / "downloads").is_symlink()


def test_clear_refuses_a_cache_that_holds_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "cache"
    home = root / "downloads" / "data"  # the data dir (and its store) inside a cache kind
    (home / "store.git").mkdir(parents=True)
    monkeypatch.setenv("KTRACK_CACHE", str(root))
    monkeypatch.setenv("KTRACK_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["cache", "clear", "downloads"]) == 2
    err = capsys.readouterr().err
    assert f"refusing to clear {root / 'downloads'}: it holds ktrack's data" in err
    assert (home / "store.git").is_dir()


def test_clear_waits_for_no_one_a_held_lock_is_an_infrastructure_error(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fd = os.open(cache / "downloads" / ".6.1.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a download of 6.1 in progress
        assert main(["cache", "clear", "downloads"]) == 3
    finally:
        os.close(fd)
    assert "is in use by another ktrack (.6.1.lock is locked)" in capsys.readouterr().err
    assert (cache / "downloads" / "linux-6.1.tar.xz").exists()


@pytest.mark.skipif(shutil.which("ccache") is None, reason="needs ccache")
def test_clear_ccache_uses_ccache_itself(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cdir = cache / "ccache"
    cdir.mkdir()
    (cdir / "ccache.conf").write_text("max_size = 1G\n")
    (tmp_path / "a.c").write_text("int f(void) { return 1; }\n")
    env = {**os.environ, "CCACHE_DIR": str(cdir)}
    subprocess.run(["ccache", "gcc", "-c", "a.c", "-o", "a.o"], cwd=tmp_path, env=env, check=True)
    before = _json(capsys, "cache", "list", "--json")
    (row,) = [c for c in before["caches"] if c["kind"] == "ccache"]  # type: ignore[attr-defined]
    assert row["entries"] >= 2  # a result and a manifest, plus stats and the configuration
    assert main(["cache", "clear", "ccache"]) == 0
    stats = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True)
    files = dict(line.split("\t", 1) for line in stats.stdout.splitlines() if "\t" in line)
    assert files["files_in_cache"] == "0"
    assert (cdir / "ccache.conf").read_text() == "max_size = 1G\n"  # its settings stay
