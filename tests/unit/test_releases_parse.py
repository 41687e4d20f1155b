"""Parsers of the kernel.org formats: releases.json (the real sample), sha256sums.asc, folder
indexes; the catalog merge rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tracker.errors import InfraError
from tracker.releases import cdn, kernelorg, sha256sums
from tracker.releases.release import Release
from tracker.versions import KernelVersion

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures/kernelorg/releases.json"
ROOT = "http://mirror.test/"


def _parse(data: bytes, warnings: list[str] | None = None) -> list[Release]:
    return kernelorg.parse_releases_json(
        data,
        url=ROOT + "releases.json",
        root=ROOT,
        feed="k",
        warn=(warnings if warnings is not None else []).append,
    )


def test_real_releases_json_sample() -> None:
    rels = {str(r.version): r for r in _parse(FIXTURE.read_bytes())}
    assert set(rels) == {"5.10", "5.10.1"}
    r = rels["5.10.1"]
    assert r.moniker == "stable" and rels["5.10"].moniker == "mainline"
    assert r.released_at == datetime(2020, 12, 14, 18, 33, 14, tzinfo=UTC)
    assert r.eol is False and r.signed is True
    assert r.source_url == ROOT + "pub/linux/kernel/v5.x/linux-5.10.1.tar.xz"  # rebased
    assert r.pgp_url == ROOT + "pub/linux/kernel/v5.x/linux-5.10.1.tar.sign"


def test_releases_json_unknown_and_missing_fields() -> None:
    doc = {
        "latest_stable": {"version": "6.12.1"},
        "new_top_level_field": [1, 2],
        "releases": [
            {"version": "6.13-rc3", "moniker": "mainline", "iseol": False, "shiny": True,
             "source": "https://git.kernel.org/torvalds/t/linux-6.13-rc3.tar.gz", "pgp": None,
             "released": {"timestamp": 1734300000}},
            {"version": "next-20241220", "moniker": "linux-next", "source": None, "pgp": None},
            {"version": "6.6.66", "moniker": "longterm", "iseol": "yes?"},
            {"moniker": "stable"},
            {"version": "not-a-version"},
            {"version": "6.1.120", "moniker": "brand-new-moniker", "released": "soon"},
            "junk",
        ],
    }  # fmt: skip
    warnings: list[str] = []
    rels = {str(r.version): r for r in _parse(json.dumps(doc).encode(), warnings)}
    assert set(rels) == {"6.13-rc3", "next-20241220", "6.6.66", "6.1.120"}
    rc = rels["6.13-rc3"]
    # another host: refused unless the feed lists it in allowed_hosts (issue 15)
    assert rc.signed is False and rc.source_url is None
    assert rc.released_at == datetime.fromtimestamp(1734300000, UTC)
    nxt = rels["next-20241220"]
    assert nxt.source_url is None and nxt.signed is False and nxt.moniker == "linux-next"
    assert rels["6.6.66"].moniker == "longterm" and rels["6.6.66"].eol is False
    assert rels["6.1.120"].moniker == "stable" and rels["6.1.120"].released_at is None
    # missing version, bad version, unknown moniker, not an object, the foreign source
    assert len(warnings) == 5 and "git.kernel.org" in warnings[0]
    allowed = kernelorg.parse_releases_json(
        json.dumps(doc).encode(),
        url=ROOT + "releases.json",
        root=ROOT,
        feed="k",
        warn=[].append,
        allowed_hosts=("git.kernel.org",),
    )
    assert {str(r.version): r.source_url for r in allowed}["6.13-rc3"] == (
        "https://git.kernel.org/torvalds/t/linux-6.13-rc3.tar.gz"
    )


@pytest.mark.parametrize("data", [b"{", b"[]", b'{"releases": 3}', b"\xff\xfe"])
def test_broken_releases_json_is_an_infra_error(data: bytes) -> None:
    with pytest.raises(InfraError, match="releases.json"):
        _parse(data)


def test_sha256sums_clearsigned() -> None:
    a, b = "a" * 64, "B" * 64
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
        f"{a}  linux-6.1.tar.xz\n{b}  linux-6.1.tar.gz\n- {'c' * 64}  dash-escaped.tar.xz\n"
        f"{'d' * 64}  ../evil.tar.xz\nnot a line\n{'e' * 64}  twice\n{'f' * 64}  twice\n"
        "-----BEGIN PGP SIGNATURE-----\n\n"
        + "1" * 64
        + "  after-signature\n-----END PGP SIGNATURE-----\n"
    )
    assert sha256sums.parse(text) == {
        "linux-6.1.tar.xz": a, "linux-6.1.tar.gz": "b" * 64, "dash-escaped.tar.xz": "c" * 64,
    }  # fmt: skip
    assert sha256sums.parse(f"{a}  plain.tar.xz\n") == {"plain.tar.xz": a}


NGINX = """<html><head><title>Index of /pub/linux/kernel/v6.x/</title></head><body><pre>
<a href="../">../</a>
<a href="incr/">incr/</a>                                              19-Nov-2024 15:02       -
<a href="linux-6.1.tar.xz">linux-6.1.tar.xz</a>                                   12-Dec-2022 01:25    128M
<a href="linux-6.1.tar.sign">linux-6.1.tar.sign</a>                                 12-Dec-2022 01:25     991
<a href="linux-6.1.tar.gz">linux-6.1.tar.gz</a>                                   12-Dec-2022 01:25    205M
<a href="linux-6.1.1.tar.gz">linux-6.1.1.tar.gz</a>                                 21-Dec-2022 15:18    205M
<a href="http://evil.test/x">x</a>
<a href="patch-6.1.xz">patch-6.1.xz</a>                                       12-Dec-2022 01:25     20M
<a href="sha256sums.asc">sha256sums.asc</a>                                     27-Nov-2024 10:01    180K
</pre><hr></body></html>"""


def test_index_page_to_releases() -> None:
    entries = cdn.parse_index(NGINX)
    names = {e.name for e in entries}
    assert names == {"incr/", "linux-6.1.tar.xz", "linux-6.1.tar.sign", "linux-6.1.tar.gz",
                     "linux-6.1.1.tar.gz", "patch-6.1.xz", "sha256sums.asc"}  # fmt: skip
    url = ROOT + "pub/linux/kernel/v6.x/"
    rels = {
        str(r.version): r
        for r in cdn.releases_in_folder(url, entries, {"linux-6.1.tar.xz": "a" * 64}, "m")
    }
    assert set(rels) == {"6.1", "6.1.1"}
    assert rels["6.1"].source_url == url + "linux-6.1.tar.xz"  # xz preferred over gz
    assert rels["6.1"].sha256 == "a" * 64 and rels["6.1"].signed
    assert rels["6.1"].released_at == datetime(2022, 12, 12, 1, 25, tzinfo=UTC)
    assert (
        rels["6.1.1"].sha256 is None and not rels["6.1.1"].signed and rels["6.1.1"].pgp_url is None
    )


def test_rebase_only_pub_paths() -> None:
    assert kernelorg.rebase(
        "https://cdn.kernel.org/pub/linux/kernel/v6.x/a.tar.xz", "file:///srv/k"
    ) == ("file:///srv/k/pub/linux/kernel/v6.x/a.tar.xz")
    assert kernelorg.rebase("https://git.kernel.org/torvalds/t/linux-6.13-rc3.tar.gz", ROOT) == (
        "https://git.kernel.org/torvalds/t/linux-6.13-rc3.tar.gz"
    )
    assert kernelorg.rebase(None, ROOT) is None


def test_release_merge_fills_gaps() -> None:
    kv = KernelVersion.parse("6.1")
    a = Release(kv, "k", "mainline", eol=True, source_url="u")
    b = Release(
        kv,
        "k",
        "stable",
        sha256="s",
        source_url="other",
        released_at=datetime(2022, 1, 1, tzinfo=UTC),
    )
    m = a.merged(b)
    assert (m.moniker, m.eol, m.source_url, m.sha256, m.released_at) == (
        "mainline",
        True,
        "u",
        "s",
        b.released_at,
    )
