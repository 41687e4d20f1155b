"""Patch set formats: diff (plain, gz, xz, bz2), quilt folder and tarball, mbox, git range; hashes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from tracker.errors import UserError
from tracker.patchsets.formats import content_hash, format_patch_argv, load_series
from tracker.patchsets.manifest import VersionSpec
from tracker.proc import run

P1 = b"--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-a\n+b\n"
P2 = b"--- a/g.c\n+++ b/g.c\n@@ -1 +1 @@\n-c\n+d\n"
P0 = b"--- h.c\n+++ h.c\n@@ -1 +1 @@\n-e\n+f\n"


def spec(source: Path, fmt: str, **kw: object) -> VersionSpec:
    base = VersionSpec(
        version="1",
        base="6.1",
        format=fmt,
        source=source,
        strip=1,
        fuzz=0,
        kconfig=None,
        tests=None,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [
        ("", lambda b: b),
        (".gz", gzip.compress),
        (".xz", lzma.compress),
        (".bz2", bz2.compress),
    ],
)
def test_single_diff_plain_and_compressed(tmp_path: Path, suffix: str, compress) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / f"combined.diff{suffix}"
    f.write_bytes(compress(P1 + P2))
    series = load_series(spec(f, "diff"))
    (patch,) = series.patches
    assert patch.name == f.name
    assert patch.paths == ("f.c", "g.c")


def test_quilt_folder_with_comments_blank_lines_and_per_patch_strip(tmp_path: Path) -> None:
    q = tmp_path / "q"
    (q / "sub").mkdir(parents=True)
    (q / "series").write_text(
        "# Debian-style header\n\nfirst.patch\n  sub/second.patch   # why\nthird.patch -p0\n"
    )
    (q / "first.patch").write_bytes(P1)
    (q / "sub" / "second.patch").write_bytes(P2)
    (q / "third.patch").write_bytes(P0)
    series = load_series(spec(q, "quilt"))
    assert [(p.name, p.strip, p.paths) for p in series.patches] == [
        ("first.patch", 1, ("f.c",)),
        ("sub/second.patch", 1, ("g.c",)),
        ("third.patch", 0, ("h.c",)),
    ]


def test_quilt_series_rejects_unknown_options(tmp_path: Path) -> None:
    q = tmp_path / "q"
    q.mkdir()
    (q / "series").write_text("a.patch -R\n")
    (q / "a.patch").write_bytes(P1)
    with pytest.raises(UserError, match=r"series: line 1: unsupported option '-R'"):
        load_series(spec(q, "quilt"))


def _tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w:xz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)


def test_quilt_tarball_preempt_rt_shape(tmp_path: Path) -> None:
    t = tmp_path / "patches-6.1.46-rt13.tar.xz"
    _tar(
        t,
        {
            "patches/series": b"# rt\n0001-a.patch\n0002-b.patch\n",
            "patches/0001-a.patch": b"Subject: a\n\n" + P1,
            "patches/0002-b.patch": P2,
        },
        links={"patches/evil": "/etc/passwd"},
    )
    series = load_series(spec(t, "quilt"))
    assert [p.name for p in series.patches] == ["0001-a.patch", "0002-b.patch"]


def test_quilt_tarball_debian_shape_prefers_the_patches_folder(tmp_path: Path) -> None:
    t = tmp_path / "linux_6.1.176-1.debian.tar.xz"
    _tar(
        t,
        {
            "debian/patches-rt/series": b"rt.patch\n",
            "debian/patches-rt/rt.patch": P2,
            "debian/patches/series": b"bugfix/x.patch\n",
            "debian/patches/bugfix/x.patch": P1,
        },
    )
    series = load_series(spec(t, "quilt"))
    assert [p.name for p in series.patches] == ["bugfix/x.patch"]


def test_quilt_tarball_missing_member_and_garbage(tmp_path: Path) -> None:
    t = tmp_path / "p.tar.xz"
    _tar(t, {"patches/series": b"nope.patch\n"})
    with pytest.raises(UserError, match="patch file not in the tarball: nope.patch"):
        load_series(spec(t, "quilt"))
    bad = tmp_path / "bad.tar.xz"
    bad.write_bytes(b"not a tarball at all")
    with pytest.raises(UserError, match="not a readable tarball"):
        load_series(spec(bad, "quilt"))


MBOX = (
    b"From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
    b"From: Dev One <one@example.org>\n"
    b"Subject: [PATCH 1/2] fs: first change\n\n"
    b"Body.\n---\n" + P1 + b"-- \n2.39.2\n\n"
    b"From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\n"
    b"From: Dev Two <two@example.org>\n"
    b"Subject: [PATCH 2/2] mm: second\n change\n"
    b"Content-Type: text/plain; charset=UTF-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n\n"
    b"Body =C3=A9.\n---\n--- a/g.c\n+++ b/g.c\n@@ -1 +1 @@\n-c\n+d=3D1\n"
    b"\nbase-commit: 0123456789abcdef0123456789abcdef01234567\n-- \n2.39.2\n"
)


def test_mbox_messages_subjects_encodings_and_base_commit(tmp_path: Path) -> None:
    f = tmp_path / "series.mbox"
    f.write_bytes(MBOX)
    series = load_series(spec(f, "mbox"))
    a, b = series.patches
    assert (a.name, a.subject, a.author) == (
        "0001-fs-first-change.patch",
        "fs: first change",
        "Dev One <one@example.org>",
    )
    assert b.name == "0002-mm-second-change.patch"
    assert b.files[0].hunks[0].new_lines() == [b"d=1\n"]  # quoted-printable decoded
    assert series.base_commit == "0123456789abcdef0123456789abcdef01234567"


def test_mbox_folder_of_format_patch_files(tmp_path: Path) -> None:
    d = tmp_path / "fp"
    d.mkdir()
    first, second = MBOX.split(b"\nFrom 2222")
    (d / "0001-a.patch").write_bytes(first)
    (d / "0002-b.patch").write_bytes(b"From 2222" + second)
    (d / "README").write_text("ignored")
    series = load_series(spec(d, "mbox"))
    assert [p.paths for p in series.patches] == [("f.c",), ("g.c",)]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is required (apt-get install git)")
def test_git_range(tmp_path: Path) -> None:
    repo = tmp_path / "linux"
    repo.mkdir()

    def git(*args: str) -> None:
        run(["git", "-C", str(repo), *args], cwd=repo, check=True)

    git("init", "-q")
    (repo / "f.c").write_text("a\n")
    (repo / "g.c").write_text("".join(f"line {i}\n" for i in range(20)))
    git("add", "-A")
    git("commit", "-qm", "base")
    git("tag", "v6.1")
    (repo / "f.c").write_text("b\n")
    git("commit", "-qam", "fs: change f")
    (repo / "g.c").write_text("".join(f"line {i}\n" for i in range(21)))
    git("mv", "g.c", "h.c")
    git("commit", "-qam", "mm: move g")
    series = load_series(spec(repo, "git"))
    assert [p.name for p in series.patches] == [
        "0001-fs-change-f.patch",
        "0002-mm-move-g.patch",
    ]
    assert series.patches[1].files[0].op.value == "rename"
    one = load_series(spec(repo, "git", range="v6.1..HEAD~1"))
    assert len(one.patches) == 1
    with pytest.raises(UserError, match="git range"):
        load_series(spec(repo, "git", range="v9.9..HEAD"))


def test_format_patch_argv() -> None:
    assert format_patch_argv(Path("/r"), "v6.1..topic", Path("/o")) == [
        "git",
        "-C",
        "/r",
        "-c",
        "core.quotePath=false",
        "format-patch",
        "--no-signature",
        "--no-stat",
        "--full-index",
        "--no-color",
        "-o",
        "/o",
        "v6.1..topic",
    ]


def test_content_hash_tracks_what_matters(tmp_path: Path) -> None:
    q = tmp_path / "q"
    q.mkdir()
    (q / "series").write_text("a.patch\n")
    (q / "a.patch").write_bytes(P1)
    kconfig = tmp_path / "kconfig"
    kconfig.write_text("CONFIG_X=y\n")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "run").write_text("#!/bin/sh\n")
    s = spec(q, "quilt", kconfig=kconfig, tests=tests)
    h = content_hash(s)
    assert h == content_hash(s) and len(h) == 64
    assert content_hash(replace(s, fuzz=1)) != h
    assert content_hash(replace(s, strip=0)) != h
    assert content_hash(replace(s, version="2")) == h  # the label is not content
    kconfig.write_text("CONFIG_X=n\n")
    h2 = content_hash(s)
    assert h2 != h
    (tests / "run").write_text("#!/bin/sh\necho\n")
    h3 = content_hash(s)
    assert h3 != h2
    (q / "a.patch").write_bytes(P2)
    assert content_hash(s) != h3


def test_each_patch_carries_the_sha256_of_its_bytes_into_the_apply_report(tmp_path: Path) -> None:
    """KCIDB's patchset_hash is built from these (sha256sum *.patch | cut -c-64 | sha256sum)."""
    import hashlib

    from tracker.apply.check import check_series
    from tracker.sources.tree import DirTree

    q = tmp_path / "q"
    q.mkdir()
    (q / "a.patch").write_bytes(P1)
    (q / "b.patch").write_bytes(P2)
    (q / "series").write_text("a.patch\nb.patch\n")
    series = load_series(spec(q, "quilt"))
    assert [p.sha256 for p in series.patches] == [
        hashlib.sha256(P1).hexdigest(),
        hashlib.sha256(P2).hexdigest(),
    ]
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_text("a\n")
    (tree / "g.c").write_text("c\n")
    report = check_series(series, DirTree(tree))
    assert [p["sha256"] for p in report.to_json()["patches"]] == [
        hashlib.sha256(P1).hexdigest(),
        hashlib.sha256(P2).hexdigest(),
    ]
