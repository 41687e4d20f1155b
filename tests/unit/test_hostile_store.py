"""A damaged release store (issue 15, case 5): infrastructure, never a verdict; `doctor --full`
names the damaged release and `fetch --force` repairs it. Each test failed before its fix.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest_hostile import Kt, store, tarball_with
from conftest_releases import git, make_tarball, sha256, sums_asc, tree_files

from tracker.errors import InfraError
from tracker.sources.store import ReleaseStore

__all__ = ["store"]  # the fixture, imported for pytest


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
    store.import_tarball("6.1", tarball_with(tmp_path, []))
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

    tb61 = tarball_with(tmp_path, [])
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


def test_fetch_force_repairs_a_release_of_a_git_feed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    for name, data in tree_files("6.1").items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(data)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Linux 6.1")
    git(repo, "tag", "v6.1")
    kt = Kt(tmp_path, f'[feeds.stable]\nkind = "git"\nurl = "{repo}"\ntags = "v6.*"\n', capsys)
    assert kt("releases", "sync")[0] == 0
    _loosen_and_corrupt(kt.store, "fs/proc/base.c", header=True)
    with pytest.raises(InfraError), kt.store.tree("6.1") as t:
        t.read("fs/proc/base.c")
    rc, _, err = kt("fetch", "--force", "6.1")
    assert rc == 0, err
    rc, out, _ = kt("doctor", "--full", "--json")
    check = {c["name"]: c for c in json.loads(out)["checks"]}["release store"]
    assert check["health"] == "ok", check
    with kt.store.tree("6.1") as t:
        assert t.read("fs/proc/base.c") == tree_files("6.1")["fs/proc/base.c"]
