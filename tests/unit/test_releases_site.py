"""End to end through the command line against a kernel.org-shaped site on a loopback server:
sync, list, fetch, resume, wrong checksum, 404, truncated file, bad releases.json, hostile
tarball; the mirror feed on file://; the git feed; exit codes for bad input and dead servers."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from conftest_releases import (
    Faults,
    Kt,
    build_site,
    git,
    make_tarball,
    serve,
    sha256,
    sums_asc,
    tree_files,
)

VERSIONS = ["5.10", "5.10.1", "6.1", "6.1.12"]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return build_site(tmp_path / "site", VERSIONS, current=["6.1", "6.1.12"])


def _kernelorg(url: str) -> str:
    return f'[feeds.kernelorg]\nkind = "kernelorg"\nurl = "{url}"\n'


def test_sync_list_fetch(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve(site) as (url, faults):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        rc, out, _ = kt("releases", "sync")
        assert rc == 0 and "4 releases" in out and "4 new" in out
        rows = kt.listing()
        assert list(rows) == VERSIONS  # sorted by version
        r = rows["6.1.12"]
        assert r["series"] == "6.1" and r["moniker"] == "stable" and r["signed"] is True
        assert r["released"] == "2020-12-13T22:41:30+00:00"  # from releases.json
        assert r["sha256"] == sha256(site / "pub/linux/kernel/v6.x/linux-6.1.12.tar.xz")
        assert r["source"] == url + "pub/linux/kernel/v6.x/linux-6.1.12.tar.xz"
        assert r["in_store"] is False
        rc, out, _ = kt("releases", "sync")
        assert rc == 0 and "0 new, 0 updated" in out  # idempotent

        rc, out, _ = kt("fetch", "6.1.12", "5.10")
        assert rc == 0, out
        assert "6.1.12: in the store as v6.1.12" in out
        rows = kt.listing()
        assert rows["6.1.12"]["in_store"] and rows["5.10"]["in_store"]
        assert not rows["6.1"]["in_store"]
        with kt.store.tree("6.1.12") as t:
            assert t.read("Makefile") == b"VERSION = 6.1.12\n"
        assert not list((tmp_path / "home").rglob("*.part"))
        n = len(faults.requests)
        assert kt("fetch", "6.1.12")[0] == 0
        assert len(faults.requests) == n  # already in the store: no download
        rc, out, _ = kt("releases", "list")
        line = next(x for x in out.splitlines() if x.startswith("6.1.12 "))
        assert rc == 0 and "linux-6.1.12.tar.xz" in line and line.rstrip().endswith("yes")


def test_fetch_resumes_after_a_cut(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    path = "/pub/linux/kernel/v6.x/linux-6.1.tar.xz"
    folder = site / "pub/linux/kernel/v6.x"
    files = {**tree_files("6.1"), "firmware.bin": os.urandom(400_000)}  # incompressible
    make_tarball(folder / "linux-6.1.tar.xz", files, top="linux-6.1")
    (folder / "sha256sums.asc").write_text(
        sums_asc({p.name: sha256(p) for p in folder.glob("*.tar.xz")})
    )
    with serve(site, Faults(cut_after={path: [250_000]})) as (url, faults):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        assert kt("releases", "sync")[0] == 0
        rc, out, err = kt("fetch", "6.1")
        assert rc == 0, err
        ranges = [r for p, r in faults.requests if p == path]
        assert len(ranges) == 2 and ranges[0] is None
        assert ranges[1] is not None and 0 < int(ranges[1][6:-1]) <= 250_000
    assert kt.store.tree("6.1").read("fs/proc/base.c") == tree_files("6.1")["fs/proc/base.c"]


@pytest.mark.parametrize("damage", ["wrong-checksum", "404", "truncated"])
def test_fetch_failures_are_infra_errors(
    damage: str, site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tb = site / "pub/linux/kernel/v6.x/linux-6.1.tar.xz"
    with serve(site) as (url, _):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        assert kt("releases", "sync")[0] == 0
        if damage == "wrong-checksum":
            make_tarball(tb, {**tree_files("6.1"), "backdoor.c": b"evil\n"}, top="linux-6.1")
        elif damage == "404":
            tb.unlink()
        else:
            tb.write_bytes(tb.read_bytes()[:-100])
        rc, _, err = kt("fetch", "6.1")
    assert rc == 3, err
    assert {"wrong-checksum": "checksum mismatch", "404": "404", "truncated": "checksum mismatch"}[
        damage
    ] in err
    assert not kt.store.has("6.1")
    downloads = tmp_path / "home"
    assert not [p for p in downloads.rglob("linux-6.1.tar.xz*") if p.is_file()]
    assert kt.listing()["6.1"]["in_store"] is False


def test_hostile_tarball_on_the_site(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = site / "pub/linux/kernel/v6.x"
    evil = tarfile.TarInfo("linux-6.1.12/../../../../tmp/evil")
    evil.size = 0
    tb = make_tarball(
        folder / "linux-6.1.12.tar.xz", tree_files("6.1.12"), top="linux-6.1.12", extra=[evil]
    )
    sums = {p.name: sha256(p) for p in folder.glob("*.tar.xz")}
    (folder / "sha256sums.asc").write_text(sums_asc(sums))
    with serve(site) as (url, _):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        assert kt("releases", "sync")[0] == 0
        rc, _, err = kt("fetch", "6.1.12")
    assert rc == 2 and "'..'" in err and "linux-6.1.12/../../../../tmp/evil" in err
    assert not kt.store.has("6.1.12") and tb.exists()


def test_releases_json_with_odd_fields(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads((site / "releases.json").read_text())
    doc["releases"].append(
        {"version": "next-20241220", "moniker": "linux-next", "source": None, "extra": 1}
    )
    doc["releases"].append({"moniker": "stable"})
    doc["releases"][0]["unknown_field"] = {"a": 1}
    del doc["releases"][1]["released"]
    (site / "releases.json").write_text(json.dumps(doc))
    with serve(site) as (url, _):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        rc, out, _ = kt("releases", "sync")
        assert rc == 0 and "5 releases" in out and "warnings" in out
        rows = kt.listing()
        assert rows["next-20241220"]["signed"] is False and rows["next-20241220"]["source"] is None
        rc, _, err = kt("fetch", "next-20241220")
        assert rc == 2 and "git feed" in err
        (site / "releases.json").write_text('{"latest": {}}')
        rc, _, err = kt("releases", "sync")
        assert rc == 3 and 'no "releases" list' in err


def test_bad_input_and_dead_servers(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    s.close()
    kt = Kt(tmp_path, _kernelorg(dead), capsys)
    rc, _, err = kt("releases", "sync", "--feed", "nope")
    assert rc == 2 and "unknown feed 'nope'" in err
    rc, _, err = kt("releases", "sync")
    assert rc == 3 and "cannot download" in err
    rc, _, err = kt("fetch", "6.1")
    assert rc == 2 and "not in the catalog" in err
    rc, _, err = kt("fetch", "banana")
    assert rc == 2 and "not a kernel version" in err
    empty = Kt(tmp_path / "e", "", capsys)
    rc, _, err = empty("releases", "sync")
    assert rc == 2 and "no feeds configured" in err
    rc, out, _ = empty("releases", "list", "--json")
    assert rc == 0 and json.loads(out) == {"schema": "ktrack.releases/1", "releases": []}


def test_mirror_feed_on_file_url_with_old_layouts(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = site / "pub/linux/kernel"
    old = pub / "v2.6/longterm/v2.6.32"
    old.mkdir(parents=True)
    tb = make_tarball(
        old / "linux-2.6.32.71.tar.xz", tree_files("2.6.32.71"), top="linux-2.6.32.71"
    )
    (old / "sha256sums.asc").write_text(sums_asc({tb.name: sha256(tb)}))
    kt = Kt(tmp_path, f'[feeds.mirror]\nkind = "mirror"\nurl = "{pub.as_uri()}"\n', capsys)
    rc, out, err = kt("releases", "sync")
    assert rc == 0, err
    rows = kt.listing()
    assert list(rows) == ["2.6.32.71", *VERSIONS]
    assert rows["2.6.32.71"]["series"] == "2.6.32" and rows["2.6.32.71"]["eol"] is False
    assert rows["2.6.32.71"]["released"] is not None  # the file's date on a file:// mirror
    assert kt("fetch", "2.6.32.71")[0] == 0
    assert kt.store.tree("2.6.32.71").read("Makefile") == b"VERSION = 2.6.32.71\n"


def test_git_feed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    for v in ("6.1", "6.1.1", "6.2-rc1", "6.2"):
        (repo / "Makefile").write_text(f"VERSION = {v}\n")
        git(repo, "add", "Makefile")
        git(repo, "commit", "-q", "-m", f"Linux {v}")
        git(repo, "tag", f"v{v}")
    kt = Kt(tmp_path, f'[feeds.stable]\nkind = "git"\nurl = "{repo}"\ntags = "v6.*"\n', capsys)
    rc, out, err = kt("releases", "sync")
    assert rc == 0, err
    rows = kt.listing()
    assert list(rows) == ["6.1", "6.1.1", "6.2-rc1", "6.2"]
    assert all(r["in_store"] and r["store_ref"] == "v" + v for v, r in rows.items())
    assert rows["6.2-rc1"]["moniker"] == "rc" and rows["6.2-rc1"]["signed"] is False
    assert kt("fetch", "6.2")[0] == 0
    from tracker import config
    from tracker.releases.service import ensure_release
    from tracker.results.db import Database

    settings = config.load(kt.config, home=str(kt.home))
    assert ensure_release(settings, Database(settings.db_url), "6.1.1") == "v6.1.1"
    assert git(kt.store.git_dir(), "rev-list", "--count", "v6.2").strip() == "4"


def test_two_fetches_of_one_release_download_once(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tracker import config
    from tracker.releases.service import ensure_release
    from tracker.results.db import Database

    with serve(site) as (url, faults):
        kt = Kt(tmp_path, _kernelorg(url), capsys)
        assert kt("releases", "sync")[0] == 0
        settings = config.load(kt.config, home=str(kt.home))
        db = Database(settings.db_url)
        with ThreadPoolExecutor(3) as pool:
            refs = list(pool.map(lambda _: ensure_release(settings, db, "6.1"), range(3)))
        assert refs == ["v6.1"] * 3
        gets = [p for p, _ in faults.requests if p.endswith("linux-6.1.tar.xz")]
        assert len(gets) == 1


@pytest.mark.parametrize(
    ("kind", "where"),
    [("git", "no-such-repo"), ("mirror", "no-such-dir"), ("kernelorg", "file-root")],
)
def test_unreachable_feeds_exit_3(
    kind: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = (tmp_path / where).as_uri() if kind != "git" else str(tmp_path / where)
    kt = Kt(tmp_path, f'[feeds.f]\nkind = "{kind}"\nurl = "{url}"\n', capsys)
    rc, _, err = kt("releases", "sync")
    assert rc == 3, err
    assert "infrastructure error" in err


def test_rc_tarballs_in_testing_are_unsigned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "pub"
    testing = pub / "v6.x/testing"
    testing.mkdir(parents=True)
    tb = make_tarball(
        testing / "linux-6.13-rc3.tar.xz", tree_files("6.13-rc3"), top="linux-6.13-rc3"
    )
    (testing / "linux-6.13-rc3.tar.sign").write_text("sig\n")
    (testing / "sha256sums.asc").write_text(sums_asc({tb.name: sha256(tb)}))
    kt = Kt(tmp_path, f'[feeds.m]\nkind = "mirror"\nurl = "{pub.as_uri()}"\n', capsys)
    assert kt("releases", "sync")[0] == 0
    row = kt.listing()["6.13-rc3"]
    assert row["moniker"] == "rc" and row["signed"] is False and row["series"] == "6.13"
    assert kt("fetch", "6.13-rc3")[0] == 0
    assert kt.store.tree("v6.13-rc3").read("Makefile") == b"VERSION = 6.13-rc3\n"
