"""Hostile sources (issue 15): tarballs with links that escape, broken tarballs, feeds whose
documents point elsewhere, verification that must fail closed.

One test per case; docs/SECURITY.md's table names them. Each failed before its fix.
"""

from __future__ import annotations

import json
import sqlite3
import tarfile
from pathlib import Path

import pytest
from conftest_hostile import Kt, member, store, tarball_with
from conftest_releases import build_site, git, make_tarball, serve, sha256, sums_asc, tree_files

from tracker.errors import InfraError
from tracker.sources.fastimport import HostileTarball
from tracker.sources.store import ReleaseStore

__all__ = ["store"]  # the fixture, imported for pytest

DEEP = "a/b/c/d/e/f/g/h/i/j"
UP10 = "/".join([".."] * 10)


# -- 1. links judged where they end up ------------------------------------------------------
def test_hard_link_to_an_in_tree_symlink_is_judged_where_it_lands(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = tarball_with(
        tmp_path,
        [
            member(f"linux-6.1/{DEEP}/lnk", tarfile.SYMTYPE, f"{UP10}/etc"),
            member("linux-6.1/etc_host", tarfile.LNKTYPE, f"linux-6.1/{DEEP}/lnk"),
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
    tb = tarball_with(
        tmp_path,
        [
            member("linux-6.1/a/b/up", tarfile.SYMTYPE, "../.."),
            member("linux-6.1/top_up", tarfile.LNKTYPE, "linux-6.1/a/b/up"),
            member("linux-6.1/x", tarfile.SYMTYPE, "top_up/etc"),
        ],
    )
    with pytest.raises(HostileTarball, match="outside the tree"):
        store.import_tarball("6.1", tb)
    assert not store.has("6.1")


def test_hard_link_to_an_in_tree_symlink_that_stays_inside_is_kept(
    store: ReleaseStore, tmp_path: Path
) -> None:
    tb = tarball_with(
        tmp_path,
        [
            member("linux-6.1/kernel/sched/lnk", tarfile.SYMTYPE, "core.c"),
            member("linux-6.1/kernel/sched/lnk2", tarfile.LNKTYPE, "linux-6.1/kernel/sched/lnk"),
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
    tb = tarball_with(tmp_path, [])
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
        ('kind = "mirror"\nurl = "/srv"\nallowed_hosts = "x"\n', "allowed_hosts: expected a list"),
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
