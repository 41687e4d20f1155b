"""The release store on generated tarballs: import, TreeView, materialize, hostile members,
git tag fetch, concurrent writers, and the exact git command lines."""

from __future__ import annotations

import multiprocessing
import os
import tarfile
from pathlib import Path

import pytest
from conftest_releases import git, make_tarball, tree_files

from tracker.errors import InfraError, UserError
from tracker.sources.fastimport import HostileTarball, ImportLimits, fast_import_argv
from tracker.sources.git import cat_file_argv, fetch_argv, materialize_argvs
from tracker.sources.store import ReleaseStore, tag_for


@pytest.fixture
def store(tmp_path: Path) -> ReleaseStore:
    return ReleaseStore(tmp_path / "store.git")


def _tar(tmp_path: Path, version: str = "6.1", **kw: object) -> Path:
    files = kw.pop("files", None) or tree_files(version)
    return make_tarball(tmp_path / f"linux-{version}.tar.xz", files, top=f"linux-{version}", **kw)  # type: ignore[arg-type]


def test_command_lines_are_exact(tmp_path: Path) -> None:
    g = tmp_path / "s.git"
    assert fast_import_argv() == [
        "git", "-c", "core.compression=1", "-c", "pack.compression=1",
        "-c", "fastimport.unpackLimit=0", "fast-import", "--quiet", "--done", "--depth=0",
    ]  # fmt: skip
    assert cat_file_argv(g) == ["git", f"--git-dir={g}", "cat-file", "--batch"]
    assert fetch_argv(g, "/srv/linux") == [
        "git", f"--git-dir={g}", "fetch", "--quiet", "--no-tags", "--stdin", "--", "/srv/linux",
    ]  # fmt: skip
    assert fetch_argv(g, "/srv/linux", refetch=True) == [
        "git", f"--git-dir={g}", "-c", "fetch.unpackLimit=1",
        "fetch", "--quiet", "--no-tags", "--refetch", "--stdin", "--", "/srv/linux",
    ]  # fmt: skip
    assert materialize_argvs(g, tmp_path / "w", "abc") == [
        ["git", f"--git-dir={g}", f"--work-tree={tmp_path / 'w'}", "-c", "core.autocrlf=false", "read-tree", "abc"],
        ["git", f"--git-dir={g}", f"--work-tree={tmp_path / 'w'}", "-c", "core.autocrlf=false", "checkout-index", "--all"],
    ]  # fmt: skip
    assert tag_for("6.1.12") == "v6.1.12" and tag_for("v6.12-rc3") == "v6.12-rc3"
    assert tag_for("next-20240521") == "next-20240521"
    with pytest.raises(UserError):
        tag_for("--upload-pack=evil")


def test_store_is_created_on_first_write_not_on_read(store: ReleaseStore, tmp_path: Path) -> None:
    assert not store.has("6.1")
    assert store.tags() == {}
    assert not store.path.exists()
    store.import_tarball("6.1", _tar(tmp_path))
    assert store.path.is_dir() and store.has("6.1") and store.has("v6.1")


def test_import_reads_back_every_file_with_modes(store: ReleaseStore, tmp_path: Path) -> None:
    tb = _tar(tmp_path, symlinks={"include/asm": "../arch/x86/include"}, files={
        **tree_files("6.1"), "arch/x86/include/a.h": b"#define A 1\n",
    })  # fmt: skip
    commit = store.import_tarball("6.1", tb)
    assert store.ref("6.1") == "v6.1"
    with store.tree("6.1") as t:
        assert t.read("Makefile") == b"VERSION = 6.1\n"
        assert t.read("kernel/sched/core.c") == tree_files("6.1")["kernel/sched/core.c"]
        assert t.read("./fs//proc/base.c") == tree_files("6.1")["fs/proc/base.c"]
        assert t.read("no/such/file") is None
        assert t.read("kernel") is None  # a directory is not a file
        assert t.read("include/asm") == b"../arch/x86/include"  # a link reads as its target
        assert t.mode("scripts/checkpatch.pl") == 0o100755
        assert t.mode("README") == 0o100644
        assert t.mode("include/asm") == 0o120000
        assert t.mode("kernel") is None and t.mode("nope") is None
        many = t.read_many(["README", "missing.c", "README", "arch/x86/include/a.h"])
        assert many == {
            "README": b"Linux kernel\n",
            "missing.c": None,
            "arch/x86/include/a.h": b"#define A 1\n",
        }
        with pytest.raises(UserError):
            t.read("../etc/passwd")
        with pytest.raises(UserError):
            t.read("/etc/passwd")
    assert store.tree(commit).read("README") == b"Linux kernel\n"


def test_read_many_of_thousands_of_paths(store: ReleaseStore, tmp_path: Path) -> None:
    files = {f"drivers/d{i:04}.c": f"int d{i};\n".encode() * (i % 7 + 1) for i in range(3000)}
    store.import_tarball("6.2", _tar(tmp_path, "6.2", files=files))
    with store.tree("6.2") as t:
        got = t.read_many([*files, "drivers/none.c"])
    assert got.pop("drivers/none.c") is None
    assert got == files


def test_import_is_idempotent_and_deterministic(tmp_path: Path) -> None:
    tb = _tar(tmp_path)
    a, b = ReleaseStore(tmp_path / "a.git"), ReleaseStore(tmp_path / "b.git")
    first = a.import_tarball("6.1", tb)
    assert a.import_tarball("6.1", tb) == first
    assert b.import_tarball("6.1", tb) == first  # same content, same commit, any store
    assert git(a.path, "rev-list", "--count", "v6.1").strip() == "1"  # parentless


def test_second_release_stores_only_changed_blobs(store: ReleaseStore, tmp_path: Path) -> None:
    big = {f"lib/f{i}.c": os.urandom(4096).hex().encode() for i in range(50)}
    store.import_tarball("6.1", _tar(tmp_path, "6.1", files={**big, "Makefile": b"6.1\n"}))
    size1 = _pack_bytes(store.path)
    store.import_tarball("6.2", _tar(tmp_path, "6.2", files={**big, "Makefile": b"6.2\n"}))
    grown = _pack_bytes(store.path) - size1
    assert grown < size1 / 10, (size1, grown)
    assert not list((store.path / "tmp").iterdir())  # the quarantine is gone


def _pack_bytes(git_dir: Path) -> int:
    return sum(p.stat().st_size for p in (git_dir / "objects/pack").glob("*.pack"))


def test_materialize_writes_the_tree_and_refuses_a_full_dir(
    store: ReleaseStore, tmp_path: Path
) -> None:
    store.import_tarball("6.1", _tar(tmp_path, symlinks={"link": "README"}))
    dest = tmp_path / "w"
    store.materialize("6.1", dest)
    assert (dest / "Makefile").read_bytes() == b"VERSION = 6.1\n"
    assert os.access(dest / "scripts/checkpatch.pl", os.X_OK)
    assert (dest / "link").is_symlink() and os.readlink(dest / "link") == "README"
    assert not (dest / ".git").exists()
    with pytest.raises(UserError):
        store.materialize("6.1", dest)
    with pytest.raises(UserError):
        store.materialize("9.9", tmp_path / "other")


def _info(
    name: str, type_: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""
) -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.size, i.linkname, i.mode = type_, size, link, 0o644
    return i


HOSTILE = {
    "absolute": ([_info("/etc/passwd", size=3)], "absolute path"),
    "dotdot": ([_info("linux-6.1/../../evil", size=3)], "'..'"),
    "abs-symlink": (
        [_info("linux-6.1/l", tarfile.SYMTYPE, link="/etc/passwd")],
        "outside the tree",
    ),
    "rel-symlink": (
        [_info("linux-6.1/a/l", tarfile.SYMTYPE, link="../../../etc")],
        "outside the tree",
    ),
    "chained-symlink": (
        [
            _info("linux-6.1/d/x/up", tarfile.SYMTYPE, link="../.."),
            _info("linux-6.1/d/x/z", tarfile.SYMTYPE, link="up/.."),
        ],
        "outside the tree",
    ),
    "hardlink-out": ([_info("linux-6.1/h", tarfile.LNKTYPE, link="/etc/shadow")], "absolute path"),
    "hardlink-unknown": (
        [_info("linux-6.1/h", tarfile.LNKTYPE, link="linux-6.1/nope")],
        "hard link",
    ),
    "chardev": ([_info("linux-6.1/dev/null", tarfile.CHRTYPE)], "character device"),
    "blockdev": ([_info("linux-6.1/dev/sda", tarfile.BLKTYPE)], "block device"),
    "fifo": ([_info("linux-6.1/fifo", tarfile.FIFOTYPE)], "FIFO"),
    "duplicate": ([_info("linux-6.1/README", size=4)], "duplicate"),
    "under-symlink": (
        [_info("linux-6.1/l", tarfile.SYMTYPE, link="kernel"), _info("linux-6.1/l/x.c", size=1)],
        "under a file or symlink",
    ),
    "dot-git": ([_info("linux-6.1/.git/config", size=1)], ".git"),
    "other-top": ([_info("linux-6.2/README", size=1)], "outside the top directory"),
    "newline": ([_info("linux-6.1/a\nb", size=1)], "control character"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tarballs_are_refused_naming_the_member(
    case: str, store: ReleaseStore, tmp_path: Path
) -> None:
    extra, words = HOSTILE[case]
    tb = _tar(tmp_path, extra=extra, fmt=tarfile.GNU_FORMAT)
    with pytest.raises(HostileTarball) as info:
        store.import_tarball("6.1", tb)
    assert words in str(info.value)
    assert extra[-1].name[:12].split("\n")[0] in str(info.value)  # names the member
    assert not store.has("6.1")
    assert not list((store.path / "tmp").iterdir())
    assert not any(p.name.startswith("evil") for p in tmp_path.rglob("*"))


def test_member_count_limit(store: ReleaseStore, tmp_path: Path) -> None:
    files = {f"f{i}": b"" for i in range(50)}
    with pytest.raises(HostileTarball, match="more than 20 members"):
        store.import_tarball(
            "6.1", _tar(tmp_path, files=files), limits=ImportLimits(max_members=20)
        )


def test_hard_link_to_an_earlier_member_is_the_same_blob(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = _tar(tmp_path, extra=[_info("linux-6.1/COPY", tarfile.LNKTYPE, link="linux-6.1/README")])
    store.import_tarball("6.1", tb)
    with store.tree("6.1") as t:
        assert t.read("COPY") == t.read("README") == b"Linux kernel\n"


def test_corrupt_and_truncated_tarballs(store: ReleaseStore, tmp_path: Path) -> None:
    tb = _tar(tmp_path)
    cut = tmp_path / "linux-cut.tar.xz"
    cut.write_bytes(tb.read_bytes()[: tb.stat().st_size // 2])
    with pytest.raises(InfraError):  # a damaged source, not bad input (SECURITY.md)
        store.import_tarball("6.1", cut)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(InfraError):
        store.import_tarball("6.1", junk)
    (tmp_path / "linux-6.1.zip").write_bytes(b"PK")
    with pytest.raises(UserError, match="unknown tarball type"):
        store.import_tarball("6.1", tmp_path / "linux-6.1.zip")
    with pytest.raises(UserError, match="not found"):
        store.import_tarball("6.1", tmp_path / "missing.tar.xz")
    assert not store.has("6.1")


def test_plain_tar_and_gzip_and_progress(store: ReleaseStore, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    plain = make_tarball(tmp_path / "linux-6.3.tar", tree_files("6.3"), top="linux-6.3")
    store.import_tarball("6.3", plain, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == plain.stat().st_size
    gz = make_tarball(tmp_path / "linux-6.4.tar.gz", tree_files("6.4"), top="linux-6.4")
    seen.clear()
    store.import_tarball("6.4", gz, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (gz.stat().st_size, gz.stat().st_size)
    assert store.tree("6.4").read("Makefile") == b"VERSION = 6.4\n"


def _upstream(tmp_path: Path) -> Path:
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "master")
    for v in ("6.1", "6.1.1", "6.2-rc1", "6.2"):
        (repo / "Makefile").write_text(f"VERSION = {v}\n")
        git(repo, "add", "Makefile")
        git(repo, "commit", "-q", "-m", f"Linux {v}")
        git(repo, "tag", "-a", "-m", f"Linux {v}", f"v{v}")
    git(repo, "tag", "not-a-version")
    return repo


def test_fetch_git_brings_tags_and_history(store: ReleaseStore, tmp_path: Path) -> None:
    repo = _upstream(tmp_path)
    assert store.fetch_git(str(repo), "v6.1*") == ["6.1", "6.1.1"]
    assert store.has("6.1.1") and not store.has("6.2")
    assert store.fetch_git(str(repo), "v*") == ["6.1", "6.1.1", "6.2-rc1", "6.2"]
    assert "not-a-version" not in store.tags()
    log = git(store.git_dir(), "log", "--format=%s", "v6.1..v6.2")
    assert log.split("\n")[:3] == ["Linux 6.2", "Linux 6.2-rc1", "Linux 6.1.1"]
    with store.tree("6.2-rc1") as t:
        assert t.read("Makefile") == b"VERSION = 6.2-rc1\n"
    assert store.tag_dates()["v6.2"] > 0


def test_fetch_git_from_a_missing_repo_is_an_infra_error(
    store: ReleaseStore, tmp_path: Path
) -> None:
    from tracker.errors import InfraError

    with pytest.raises(InfraError):
        store.fetch_git(str(tmp_path / "nope"), "v*")
    with pytest.raises(UserError):
        store.fetch_git("--upload-pack=touch /tmp/x", "v*")


def test_two_processes_write_at_once(store: ReleaseStore, tmp_path: Path) -> None:
    tars = {v: str(_tar(tmp_path, v)) for v in ("6.1", "6.2")}
    jobs = [(v, Path(tars[v])) for v in ("6.1", "6.1", "6.2", "6.2", "6.1", "6.2")]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:  # a bound method pickles as (store, name): no test module import
        commits = pool.starmap(ReleaseStore(store.path).import_tarball, jobs)
    assert len({c for c, (v, _) in zip(commits, jobs, strict=True) if v == "6.1"}) == 1
    assert len(set(commits)) == 2
    assert set(store.tags()) == {"v6.1", "v6.2"}
    git(store.path, "fsck", "--no-progress")


def test_small_packs_are_merged(store: ReleaseStore, tmp_path: Path) -> None:
    from tracker.sources.git import repack_argv

    assert repack_argv(store.path) == [
        "git", f"--git-dir={store.path}", "-c", "pack.window=0", "-c", "pack.compression=1",
        "repack", "-d", "-q", "--geometric=2", "--no-write-bitmap-index",
    ]  # fmt: skip
    store.max_packs = 3
    versions = [f"6.{i}" for i in range(1, 8)]
    for v in versions:
        store.import_tarball(v, _tar(tmp_path, v))
        assert store.pack_count() <= 4
    for v in versions:
        assert store.tree(v).read("Makefile") == f"VERSION = {v}\n".encode()
    git(store.path, "fsck", "--no-progress")
