"""Hostile sources (issue 15): tarballs, feeds, a damaged release store, a damaged database.

One test per case; docs/SECURITY.md's table names them. Each failed before its fix.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest_releases import build_site, git, make_tarball, serve, sha256, sums_asc, tree_files

from tracker.cli import main
from tracker.errors import InfraError
from tracker.sources.fastimport import HostileTarball
from tracker.sources.store import ReleaseStore

DEEP = "a/b/c/d/e/f/g/h/i/j"
UP10 = "/".join([".."] * 10)


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "store.git")


def _member(name: str, type_: bytes, link: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = type_, link, 0o644
    return info


def _tar(tmp_path: Path, extra: list[tarfile.TarInfo], name: str = "linux-6.1.tar.xz") -> Path:
    return make_tarball(tmp_path / name, tree_files("6.1"), top="linux-6.1", extra=extra)


# -- 1. links judged where they end up ------------------------------------------------------
def test_hard_link_to_an_in_tree_symlink_is_judged_where_it_lands(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = _tar(
        tmp_path,
        [
            _member(f"linux-6.1/{DEEP}/lnk", tarfile.SYMTYPE, f"{UP10}/etc"),
            _member("linux-6.1/etc_host", tarfile.LNKTYPE, f"linux-6.1/{DEEP}/lnk"),
        ],
    )
    with pytest.raises(HostileTarball, match="etc_host") as info:
        store.import_tarball("6.1", tb)
    assert "outside the tree" in str(info.value)
    assert not store.has("6.1")


def test_symlink_chain_through_a_hard_linked_symlink_is_refused(
    store: ReleaseStore, tmp_path: Path
) -> None:
    # `up` is harmless where it is (a/b/up -> ../..: the root); its hard link at the top is not,
    # and `x` only escapes by passing through that copy
    tb = _tar(
        tmp_path,
        [
            _member("linux-6.1/a/b/up", tarfile.SYMTYPE, "../.."),
            _member("linux-6.1/top_up", tarfile.LNKTYPE, "linux-6.1/a/b/up"),
            _member("linux-6.1/x", tarfile.SYMTYPE, "top_up/etc"),
        ],
    )
    with pytest.raises(HostileTarball, match="outside the tree"):
        store.import_tarball("6.1", tb)
    assert not store.has("6.1")


def test_hard_link_to_an_in_tree_symlink_that_stays_inside_is_kept(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = _tar(
        tmp_path,
        [
            _member("linux-6.1/kernel/sched/lnk", tarfile.SYMTYPE, "core.c"),
            _member("linux-6.1/kernel/sched/lnk2", tarfile.LNKTYPE, "linux-6.1/kernel/sched/lnk"),
        ],
    )
    store.import_tarball("6.1", tb)
    with store.tree("6.1") as t:
        assert t.read("kernel/sched/lnk2") == b"core.c"
        assert t.mode("kernel/sched/lnk2") == 0o120000


def _store_with_escaping_link(tmp_path: Path, store: ReleaseStore) -> None:
    """A git feed whose tag holds a symlink out of the tree (git itself accepts it)."""
    repo = tmp_path / "upstream"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    (repo / "Makefile").write_text("VERSION = 6.1\n")
    (repo / "d").mkdir()
    (repo / "d" / "ok").symlink_to("../Makefile")
    (repo / "etc_host").symlink_to(f"{UP10}/etc")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Linux 6.1")
    git(repo, "tag", "v6.1")
    assert store.fetch_git(str(repo), "v6.*") == ["6.1"]


def test_materialize_never_writes_a_link_that_escapes(store: ReleaseStore, tmp_path: Path) -> None:
    _store_with_escaping_link(tmp_path, store)
    dest = tmp_path / "work"
    with pytest.raises(InfraError, match="etc_host") as info:
        store.materialize("6.1", dest)
    assert "v6.1" in str(info.value) or "6.1" in str(info.value)
    assert not (dest / "etc_host").is_symlink()
    assert not any(p.is_symlink() for p in dest.rglob("*")) if dest.exists() else True


# -- 13. a broken tarball is the source's fault: exit 3 ----------------------------------------
def test_truncated_tar_xz_is_an_infra_error(store: ReleaseStore, tmp_path: Path) -> None:
    tb = _tar(tmp_path, [])
    cut = tmp_path / "linux-cut.tar.xz"
    cut.write_bytes(tb.read_bytes()[: tb.stat().st_size // 2])
    with pytest.raises(InfraError, match="linux-cut.tar.xz"):
        store.import_tarball("6.1", cut)
    assert not store.has("6.1")


def test_corrupt_tar_header_is_an_infra_error(store: ReleaseStore, tmp_path: Path) -> None:
    plain = make_tarball(tmp_path / "linux-6.1.tar", tree_files("6.1"), top="linux-6.1")
    data = bytearray(plain.read_bytes())
    data[512 + 10] ^= 0x55  # the second header's name: its checksum no longer matches
    plain.write_bytes(bytes(data))
    with pytest.raises(InfraError, match="linux-6.1.tar") as info:
        store.import_tarball("6.1", plain)
    assert "checksum" in str(info.value)
    assert not store.has("6.1")


# -- 5. a damaged release store is infrastructure, never a verdict --------------------------
class Kt:
    """``ktrack`` in-process with a private home and config; returns (rc, stdout, stderr)."""

    def __init__(self, tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = tmp_path / "home"
        self.config = tmp_path / "ktrack.toml"
        self.config.write_text(config)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = main(["--config", str(self.config), "--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    @property
    def store(self) -> ReleaseStore:
        return ReleaseStore(self.home / "store.git")


def _blob_offsets(store: ReleaseStore, path: str, rev: str = "v6.1") -> tuple[Path, int, int]:
    """The pack holding ``rev:path`` and the byte range of that object in it."""
    oid = git(store.path, "rev-parse", f"{rev}:{path}").strip()
    for idx in (store.path / "objects" / "pack").glob("*.idx"):
        rows = subprocess.run(
            ["git", "show-index"], stdin=idx.open("rb"), capture_output=True, text=True, check=True
        ).stdout.split("\n")
        offsets = {r.split()[1]: int(r.split()[0]) for r in rows if r.strip()}
        if oid in offsets:
            pack = idx.with_suffix(".pack")
            end = min(
                [o for o in offsets.values() if o > offsets[oid]] + [pack.stat().st_size - 20]
            )
            return pack, offsets[oid], end
    raise AssertionError(f"{oid} not packed")


def _corrupt_packed(store: ReleaseStore, path: str) -> None:
    pack, start, end = _blob_offsets(store, path)
    data = bytearray(pack.read_bytes())
    data[(start + end) // 2] ^= 0xFF
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))


def _loosen_and_corrupt(store: ReleaseStore, path: str, *, header: bool = False) -> None:
    """Every object made loose (as an old store or a fetch leaves them), then one damaged: in
    its middle (git dies reading it), or at its start (git answers "missing", as for a path
    the release does not have: the case that became `missing-file`)."""
    oid = git(store.path, "rev-parse", f"v6.1:{path}").strip()
    packs = store.path / "objects" / "pack"
    for pack in packs.glob("*.pack"):
        moved = pack.rename(store.path / pack.name)
        for other in packs.glob(f"{pack.stem}.*"):
            other.unlink()
        subprocess.run(
            ["git", f"--git-dir={store.path}", "unpack-objects", "-q"],
            stdin=moved.open("rb"),
            check=True,
        )
        moved.unlink()
    loose = store.path / "objects" / oid[:2] / oid[2:]
    data = bytearray(loose.read_bytes())
    if header:
        data[2:8] = b"\xff" * 6
    else:
        data[len(data) // 2] ^= 0xFF
    loose.chmod(0o644)
    loose.write_bytes(bytes(data))


DAMAGE = {
    "packed": _corrupt_packed,
    "loose": _loosen_and_corrupt,
    "loose-header": lambda store, path: _loosen_and_corrupt(store, path, header=True),
}


@pytest.mark.parametrize("where", sorted(DAMAGE))
def test_corrupt_store_object_is_an_infra_error_not_missing_file(
    where: str, store: ReleaseStore, tmp_path: Path
) -> None:
    store.import_tarball("6.1", _tar(tmp_path, []))
    DAMAGE[where](store, "fs/proc/base.c")
    with store.tree("6.1") as t:
        with pytest.raises(InfraError, match=r"fs/proc/base\.c|cat-file") as info:
            t.read("fs/proc/base.c")
        assert "\n" not in str(info.value)
        assert t.read("no/such/file.c") is None  # an absent path is still a fact
        assert t.read("README") == b"Linux kernel\n"
        assert t.mode("fs/proc/nope.c") is None


def _site(tmp_path: Path) -> str:
    pub = tmp_path / "site" / "pub" / "linux" / "kernel" / "v6.x"
    pub.mkdir(parents=True)
    tb = make_tarball(pub / "linux-6.1.tar.xz", tree_files("6.1"), top="linux-6.1")
    (pub / "sha256sums.asc").write_text(sums_asc({tb.name: sha256(tb)}))
    return (tmp_path / "site" / "pub" / "linux" / "kernel").as_uri()


def _patchset(tmp_path: Path) -> Path:
    ps = tmp_path / "patches" / "demo"
    (ps / "q").mkdir(parents=True)
    (ps / "q" / "series").write_text("a.patch\n")
    (ps / "q" / "a.patch").write_text(
        "--- a/fs/proc/base.c\n+++ b/fs/proc/base.c\n@@ -1,2 +1,2 @@\n"
        " /* proc 6.1 */\n-int proc(void);\n+int proc(int);\n"
    )
    (ps / "patchset.toml").write_text(
        'name = "demo"\nsummary = "a demo"\n\n[[versions]]\nversion = "1"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "q"\n\n[track]\nkernels = ">=6.1"\n'
        'targets = ["x86_64:tinyconfig"]\n'
    )
    return tmp_path / "patches"


def _damaged_kt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str = "loose-header"
) -> Kt:
    kt = Kt(
        tmp_path,
        f'[feeds.mirror]\nkind = "mirror"\nurl = "{_site(tmp_path)}"\n\n'
        f'[patchsets]\npaths = ["{_patchset(tmp_path)}"]\n',
        capsys,
    )
    assert kt("releases", "sync")[0] == 0
    assert kt("fetch", "6.1")[0] == 0
    assert kt("check", "demo", "6.1")[0] == 0
    DAMAGE[where](kt.store, "fs/proc/base.c")
    return kt


@pytest.mark.parametrize("where", sorted(DAMAGE))
def test_check_on_a_damaged_store_exits_3_with_no_verdict(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = _damaged_kt(tmp_path, capsys, where)
    rc, out, err = kt("check", "demo", "6.1", "--json")
    assert rc == 3, (out, err)
    assert out == "" and "missing-file" not in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("where", sorted(DAMAGE))
def test_doctor_full_names_the_damaged_release_and_fetch_force_repairs_it(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = _damaged_kt(tmp_path, capsys, where)
    rc, out, _ = kt("doctor", "--json")
    doc = {c["name"]: c for c in json.loads(out)["checks"]}
    assert "objects not read" in doc["release store"]["detail"]  # the fast default says so
    rc, out, _ = kt("doctor", "--full", "--json")
    assert rc == 3
    store = {c["name"]: c for c in json.loads(out)["checks"]}["release store"]
    assert store["health"] == "fail" and "damaged release(s): 6.1" in store["detail"]
    assert store["fix"] == "ktrack fetch --force 6.1"
    rc, _, err = kt("fetch", "--force", "6.1")
    assert rc == 0, err
    rc, out, _ = kt("doctor", "--full", "--json")
    store = {c["name"]: c for c in json.loads(out)["checks"]}["release store"]
    assert store["health"] == "ok", store
    rc, out, err = kt("check", "demo", "6.1", "--json")
    assert rc == 0 and json.loads(out)["status"] == "pass", err


def test_fetch_force_salvages_a_damaged_pack_shared_by_two_releases(
    store: ReleaseStore, tmp_path: Path
) -> None:
    from tracker.sources.integrity import damaged_releases

    tb61 = _tar(tmp_path, [])
    store.import_tarball("6.1", tb61)
    tb62 = make_tarball(tmp_path / "linux-6.2.tar.xz", tree_files("6.2"), top="linux-6.2")
    store.import_tarball("6.2", tb62)
    # one pack holding both, as ktrack's own repack leaves it (no deltas: pack.window=0)
    git(store.path, "-c", "pack.window=0", "repack", "-a", "-d", "-q")
    assert store.pack_count() == 1
    _corrupt_packed(store, "fs/proc/base.c")  # 6.1's own version of it
    damage = damaged_releases(store.path, store.tags())
    assert damage.releases == ("v6.1",) and damage.problems
    store.import_tarball("6.1", tb61, force=True)
    assert damaged_releases(store.path, store.tags()).clean
    with store.tree("6.1") as t61, store.tree("6.2") as t62:
        assert t61.read("fs/proc/base.c") == tree_files("6.1")["fs/proc/base.c"]
        assert t62.read("fs/proc/base.c") == tree_files("6.2")["fs/proc/base.c"]
        assert t62.read("Makefile") == b"VERSION = 6.2\n"


def test_run_on_a_damaged_store_records_error_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = _damaged_kt(tmp_path, capsys)
    rc, out, err = kt(
        "run", "--patchset", "demo", "--kernels", "6.1", "--stages", "apply", "--executor", "inline"
    )
    assert "Traceback" not in err
    rc, out, _ = kt("matrix", "--json")
    doc = json.loads(out)
    (cell,) = doc["cells"]
    assert (cell["status"], cell["stage"]) == ("error", "apply"), cell
    assert cell["reason"].startswith("infrastructure:") and doc["counts"]["fail"] == 0
    assert kt("fetch", "--force", "6.1")[0] == 0
    rc, out, err = kt(
        "run", "--patchset", "demo", "--kernels", "6.1", "--stages", "apply", "--executor", "inline"
    )
    (cell,) = json.loads(kt("matrix", "--json")[1])["cells"]
    assert cell["status"] == "pass", (cell, err)  # the error was not reused as a result


# -- 6 and 15. a damaged or wrong database, a wrong home: one line, exit 2 or 3 ---------------
def _rows_then_damage(db_path: Path) -> None:
    """A database with a real schema and rows, whose kernel_release table is then damaged
    (its root page's header overwritten); other tables, alembic's among them, still read."""
    from tracker.results.db import Database

    Database(f"sqlite:///{db_path}").dispose()
    con = sqlite3.connect(db_path)
    con.executemany(
        "INSERT INTO kernel_release (version, series, moniker, eol, feed, signed) "
        "VALUES (?, '6.1', 'stable', 0, 'f', 0)",
        [(f"6.1.{i}",) for i in range(3000)],
    )
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = con.execute(
        "SELECT rootpage FROM sqlite_master WHERE name='kernel_release'"
    ).fetchone()
    (size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    data = bytearray(db_path.read_bytes())
    data[(root - 1) * size : (root - 1) * size + 12] = b"\xff" * 12
    db_path.write_bytes(bytes(data))


def test_corrupt_sqlite_database_is_one_line_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    kt.home.mkdir()
    _rows_then_damage(kt.home / "tracker.db")
    rc, out, err = kt("releases", "list")
    assert rc == 3, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert "tracker.db" in err and "malformed" in err


def test_doctor_runs_the_sqlite_integrity_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    kt.home.mkdir()
    _rows_then_damage(kt.home / "tracker.db")
    for extra in ((), ("--full",)):
        rc, out, _ = kt("doctor", "--no-fsck", "--json", *extra)
        db = {c["name"]: c for c in json.loads(out)["checks"]}["database"]
        assert rc == 3 and db["health"] == "fail", db
        assert "tracker.db: damaged" in db["detail"] and "(kernel_release)" in db["detail"], db


def test_sqlite_path_that_is_not_a_database_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notdb = tmp_path / "notes.txt"
    notdb.write_text("these are my notes, not a database\n" * 200)
    kt = Kt(tmp_path, "", capsys)
    rc, out, err = kt("--db", f"sqlite:///{notdb}", "releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert "notes.txt" in err and "not a database" in err
    assert notdb.read_text() == "these are my notes, not a database\n" * 200


@pytest.mark.parametrize("url", ["mysql://u@localhost/x", "oracle://u@h/x", "nosuch://x"])
def test_unsupported_database_scheme_is_one_line_exit_2(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    rc, out, err = kt("--db", url, "releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert url.split(":")[0] in err and "sqlite" in err and "postgresql" in err


def test_home_naming_a_regular_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, "", capsys)
    kt.home.write_text("a file\n")
    rc, out, err = kt("releases", "list")
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "internal error" not in err
    assert str(kt.home) in err and "not a directory" in err
    assert kt.home.read_text() == "a file\n"


# -- 16. concurrent syncs of a fresh catalog merge ---------------------------------------------
def _big_mirror(tmp_path: Path, count: int = 300) -> str:
    pub = tmp_path / "mirror"
    folder = pub / "v6.x"
    folder.mkdir(parents=True)
    sums = {}
    for i in range(count):
        tb = folder / f"linux-6.1.{i}.tar.xz"
        tb.write_bytes(f"{i}".encode())
        sums[tb.name] = sha256(tb)
    (folder / "sha256sums.asc").write_text(sums_asc(sums))
    return pub.as_uri()


def _sync_at_once(config: Path, home: Path, db: str, barrier: object, out: object) -> None:
    import contextlib
    import io

    barrier.wait()  # type: ignore[attr-defined]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["--config", str(config), "--home", str(home), "--db", db, "releases", "sync"])
    out.put((rc, err.getvalue()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_syncs_of_a_fresh_catalog_merge(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import multiprocessing

    from sqlalchemy import create_engine, text

    db = request.getfixturevalue("pg_url") if backend == "postgresql" else ""
    db = db or f"sqlite:///{tmp_path / 'tracker.db'}"
    config = tmp_path / "ktrack.toml"
    config.write_text(f'[feeds.mirror]\nkind = "mirror"\nurl = "{_big_mirror(tmp_path)}"\n')
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(3), ctx.Queue()
    procs = [
        ctx.Process(target=_sync_at_once, args=(config, tmp_path / "home", db, barrier, out))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [rc for rc, _ in results] == [0, 0, 0], results
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version, COUNT(*) FROM kernel_release GROUP BY version"))
        counts: dict[str, int] = {str(v): int(n) for v, n in rows.all()}
    engine.dispose()
    assert len(counts) == 300 and set(counts.values()) == {1}


# -- 3. a feed's documents may only send ktrack under its own root ----------------------------
FOREIGN = {
    "file-url": "file:///etc/hostname",
    "other-folder": "{url}elsewhere/linux-6.1.99.tar.xz",
    "dotdot": "https://cdn.kernel.org/pub/../../elsewhere/linux-6.1.99.tar.xz",
    "encoded-dotdot": "https://cdn.kernel.org/pub/%2e%2e/%2E%2E/elsewhere/linux-6.1.99.tar.xz",
    "double-slash-dotdot": "https://cdn.kernel.org/pub//..//../elsewhere/linux-6.1.99.tar.xz",
    "other-host": "http://127.0.0.2:9/pub2/linux-6.1.99.tar.xz",
}


def _site_with_source(tmp_path: Path, source: str) -> Path:
    site = build_site(tmp_path / "site", ["6.1"], current=["6.1"])
    other = site / "elsewhere"
    other.mkdir()
    make_tarball(other / "linux-6.1.99.tar.xz", {"EVIL": b"not linux\n"}, top="linux-6.1.99")
    doc = json.loads((site / "releases.json").read_text())
    doc["releases"].append(
        {"version": "6.1.99", "moniker": "stable", "source": source, "pgp": None}
    )
    (site / "releases.json").write_text(json.dumps(doc))
    return site


@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_foreign_url_in_releases_json_is_refused(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve(tmp_path / "site") as (url, faults):
        _site_with_source(tmp_path, FOREIGN[case].format(url=url))
        kt = Kt(tmp_path, f'[feeds.k]\nkind = "kernelorg"\nurl = "{url}"\nverify = "off"\n', capsys)
        rc, out, err = kt("-v", "releases", "sync")
        assert rc == 0 and "refused URL" in err and "warnings" in out
        rows = {
            r["version"]: r for r in json.loads(kt("releases", "list", "--json")[1])["releases"]
        }
        assert rows["6.1.99"]["source"] is None
        rc, _, err = kt("fetch", "6.1.99")
        assert rc == 2 and "no source tarball" in err
        assert not kt.store.has("6.1.99")
        assert not [p for p, _ in faults.requests if "elsewhere" in p or "6.1.99" in p]
    cache = tmp_path / "home"
    assert not [p for p in cache.rglob("*") if p.name in ("hostname", "linux-6.1.99.tar.xz")]


def test_foreign_url_already_in_the_catalog_is_refused_before_any_fetch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row an older ktrack wrote (or another tool) is confined again at fetch time."""
    with serve(tmp_path / "site") as (url, faults):
        _site_with_source(tmp_path, "https://cdn.kernel.org/pub/linux/kernel/v6.x/x.tar.xz")
        kt = Kt(tmp_path, f'[feeds.k]\nkind = "kernelorg"\nurl = "{url}"\nverify = "off"\n', capsys)
        assert kt("releases", "sync")[0] == 0
        con = sqlite3.connect(kt.home / "tracker.db")
        con.execute(
            "UPDATE kernel_release SET source_url = ? WHERE version = '6.1.99'",
            (f"{url}elsewhere/linux-6.1.99.tar.xz",),
        )
        con.commit()
        con.close()
        rc, _, err = kt("fetch", "6.1.99")
        assert rc == 3 and "refused URL outside the feed's root" in err
        assert len(err.strip().splitlines()) == 1
        assert not [p for p, _ in faults.requests if "elsewhere" in p]


def test_allowed_hosts_lets_a_feed_name_another_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "other"
    (mirror / "pub2").mkdir(parents=True)
    tb = make_tarball(mirror / "pub2/linux-6.1.99.tar.xz", tree_files("6.1.99"), top="linux-6.1.99")
    with serve(tmp_path / "site") as (url, _), serve(mirror) as (other, _):
        _site_with_source(tmp_path, f"{other}pub2/linux-6.1.99.tar.xz")
        host = other.split("/")[2]
        kt = Kt(
            tmp_path,
            f'[feeds.k]\nkind = "kernelorg"\nurl = "{url}"\nverify = "off"\n'
            f'allowed_hosts = ["{host}"]\n',
            capsys,
        )
        rc, out, err = kt("-v", "releases", "sync")
        assert rc == 0 and "refused" not in err
        assert kt("fetch", "6.1.99")[0] == 0
        assert kt.store.tree("6.1.99").read("Makefile") == b"VERSION = 6.1.99\n"
    assert tb.exists()


def test_url_confinement_normalises_before_checking() -> None:
    from tracker.releases.urls import ForeignURL, confine

    root = "http://mirror.test/pub/"
    assert confine("http://MIRROR.test/pub//v6.x/./a.tar.xz", root) == (
        "http://mirror.test/pub/v6.x/a.tar.xz"
    )
    assert confine("http://mirror.test/pub/v6.x/a%20b.tar.xz", root).endswith("a%20b.tar.xz")
    for bad in (
        "http://mirror.test/pub/../etc/passwd",
        "http://mirror.test/pub/%2e%2e/etc/passwd",
        "http://mirror.test/pub/v6.x/%2E%2E%2F%2E%2E%2Fetc",
        "http://mirror.test/public/a.tar.xz",
        "http://mirror.test/pubx/a.tar.xz",
        "https://mirror.test/pub/a.tar.xz",
        "http://evil@other.test/pub/a.tar.xz",
        "http://mirror.test:8080/pub/a.tar.xz",
        "file:///pub/a.tar.xz",
        "http://mirror.test/pub/a\\..\\..\\x",
    ):
        with pytest.raises(ForeignURL):
            confine(bad, root)
    assert confine("https://cdn.test/x/a.tar.xz", root, ("cdn.test",))
    with pytest.raises(ForeignURL):
        confine("file:///x/a.tar.xz", root, ("cdn.test",))


# -- 4. verification fails closed ---------------------------------------------------------------
def _mirror(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str = "") -> tuple[Kt, Path]:
    """A file:// mirror holding linux-6.1.tar.xz and no sha256sums.asc (tests add what they need)."""
    pub = tmp_path / "pub"
    folder = pub / "v6.x"
    folder.mkdir(parents=True)
    make_tarball(folder / "linux-6.1.tar.xz", tree_files("6.1"), top="linux-6.1")
    config = f'[feeds.m]\nkind = "mirror"\nurl = "{pub.as_uri()}"\n{extra}'
    return Kt(tmp_path, config, capsys), folder


def test_conflicting_sums_for_one_tarball_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt, folder = _mirror(tmp_path, capsys)
    tb = folder / "linux-6.1.tar.xz"
    body = f"{sha256(tb)}  {tb.name}\n{'0' * 64}  {tb.name}\n"
    (folder / "sha256sums.asc").write_text(sums_asc({}).replace("\n\n", "\n\n" + body, 1))
    for mode in ("", 'verify = "if-published"\n'):
        kt.config.write_text(kt.config.read_text().split("verify")[0] + mode)
        rc, _, err = kt("releases", "sync")
        assert rc == 0
        rc, _, err = kt("fetch", "6.1")
        assert rc == 3, (mode, err)
        assert "linux-6.1.tar.xz" in err and len(err.strip().splitlines()) == 1
        assert not kt.store.has("6.1")


def test_keyring_without_sums_or_signature_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keyring.gpg").write_bytes(b"")
    kt, folder = _mirror(tmp_path, capsys, 'keyring = "keyring.gpg"\n')
    assert kt("releases", "sync")[0] == 0
    rc, _, err = kt("fetch", "6.1")
    assert rc == 3 and "no signature" in err, err
    assert not kt.store.has("6.1")
    assert not list((tmp_path / "home").rglob("linux-6.1.tar.xz"))


@pytest.mark.parametrize(
    ("mode", "rc"), [("", 3), ("required", 3), ("if-published", 0), ("off", 0)]
)
def test_verify_modes_for_a_tarball_without_published_sums(
    mode: str, rc: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt, _ = _mirror(tmp_path, capsys, f'verify = "{mode}"\n' if mode else "")
    assert kt("releases", "sync")[0] == 0
    got, _, err = kt("fetch", "6.1")
    assert got == rc, err
    assert kt.store.has("6.1") is (rc == 0)
    if mode == "if-published":
        assert "imported unverified" in err
    if rc == 3:
        assert "no published sha256" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("feed", "words"),
    [
        ('kind = "mirror"\nurl = "/srv"\nverify = "maybe"\n', "verify: 'maybe' is not one of"),
        ('kind = "git"\nurl = "/srv"\nverify = "required"\n', "git feed cannot verify"),
        ('kind = "mirror"\nurl = "/srv"\nallowed_hosts = "x"\n', "allowed_hosts: expected list"),
        ('kind = "mirror"\nurl = "/srv"\nallowed_hosts = ["a/b"]\n', "not a host name"),
    ],
)
def test_verify_and_allowed_hosts_settings_are_validated(
    feed: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kt = Kt(tmp_path, f"[feeds.f]\n{feed}", capsys)
    rc, _, err = kt("releases", "list")
    assert rc == 2 and words in err and "feeds.f" in err, err


def test_redirect_out_of_the_feed_root_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The site answers the tarball's in-root URL with a redirect to another host."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    other_hits: list[str] = []
    site = build_site(tmp_path / "site", ["6.1"], current=["6.1"])
    with serve(tmp_path / "elsewhere") as (other, other_faults):

        class Redirect(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(302)
                self.send_header("Location", f"{other}linux-6.1.tar.xz")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        with serve(site) as (url, _):
            kt = Kt(tmp_path, f'[feeds.k]\nkind = "kernelorg"\nurl = "{url}"\n', capsys)
            assert kt("releases", "sync")[0] == 0
        # the same site, now redirecting every request elsewhere
        host, port = url.split("/")[2].split(":")
        server = ThreadingHTTPServer((host, int(port)), Redirect)
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            rc, _, err = kt("fetch", "6.1")
        finally:
            server.shutdown()
            server.server_close()
        other_hits = [p for p, _ in other_faults.requests]
    assert rc == 3 and "redirect" in err and "refused URL outside the feed's root" in err, err
    assert other_hits == []
    assert not kt.store.has("6.1")
