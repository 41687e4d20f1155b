"""Downloads against a loopback server: resume after a cut, retries, 404, truncation, checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest_releases import Faults, serve

from tracker.errors import InfraError, UserError
from tracker.sources.download import (
    ChecksumMismatch,
    Downloader,
    NotFound,
    RetryPolicy,
    range_headers,
)

BODY = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "linux.tar.xz").write_bytes(BODY)
    return root


def _dl(sleeps: list[float] | None = None) -> Downloader:
    return Downloader(
        RetryPolicy(attempts=4, base_delay=0.5, timeout=10),
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_policy_and_headers() -> None:
    assert RetryPolicy(attempts=5, base_delay=0.5, max_delay=3).delays() == [0.5, 1.0, 2.0, 3.0]
    assert range_headers(0).get("Range") is None
    assert range_headers(100)["Range"] == "bytes=100-"


def test_plain_download_with_checksum_and_progress(site: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with serve(site) as (url, faults):
        out = _dl().download(
            url + "linux.tar.xz", tmp_path / "d/linux.tar.xz",
            sha256=hashlib.sha256(BODY).hexdigest(), progress=lambda d, t: seen.append((d, t)),
        )  # fmt: skip
    assert out.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert not (tmp_path / "d/linux.tar.xz.part").exists()


def test_resume_after_a_cut_connection(site: Path, tmp_path: Path) -> None:
    sleeps: list[float] = []
    faults = Faults(cut_after={"/linux.tar.xz": [300_000, 100_000]})
    with serve(site, faults) as (url, faults):
        out = _dl(sleeps).download(
            url + "linux.tar.xz", tmp_path / "linux.tar.xz", sha256=hashlib.sha256(BODY).hexdigest()
        )
    assert out.read_bytes() == BODY
    ranges = [r for p, r in faults.requests if p == "/linux.tar.xz"]
    assert ranges[0] is None and len(ranges) == 3
    first, second = (int(r.split("=")[1].rstrip("-")) for r in ranges[1:])  # type: ignore[union-attr]
    assert 0 < first <= 300_000 and first < second <= first + 100_000
    assert sleeps == [0.5, 1.0]


def test_server_ignoring_range_restarts_cleanly(site: Path, tmp_path: Path) -> None:
    faults = Faults(cut_after={"/linux.tar.xz": [5000]}, no_range={"/linux.tar.xz"})
    with serve(site, faults) as (url, _):
        out = _dl().download(
            url + "linux.tar.xz", tmp_path / "x", sha256=hashlib.sha256(BODY).hexdigest()
        )
    assert out.read_bytes() == BODY


def test_transient_errors_are_retried_then_given_up(site: Path, tmp_path: Path) -> None:
    sleeps: list[float] = []
    with serve(site, Faults(status={"/linux.tar.xz": [503, 502]})) as (url, _):
        assert _dl(sleeps).download(url + "linux.tar.xz", tmp_path / "a").read_bytes() == BODY
    assert sleeps == [0.5, 1.0]
    with (
        serve(site, Faults(status={"/linux.tar.xz": [503] * 10})) as (url, _),
        pytest.raises(InfraError, match="after 4 attempts"),
    ):
        _dl().download(url + "linux.tar.xz", tmp_path / "b")


def test_404_is_not_retried(site: Path, tmp_path: Path) -> None:
    sleeps: list[float] = []
    with serve(site) as (url, faults), pytest.raises(NotFound, match="404"):
        _dl(sleeps).download(url + "missing.tar.xz", tmp_path / "m")
    assert sleeps == [] and len(faults.requests) == 1


def test_truncated_every_time_keeps_the_part_for_later(site: Path, tmp_path: Path) -> None:
    faults = Faults(cut_after={"/linux.tar.xz": [200_000, 0, 0, 0]})
    with serve(site, faults) as (url, _):
        with pytest.raises(InfraError, match="rerun to resume"):
            _dl().download(url + "linux.tar.xz", tmp_path / "t")
        kept = (tmp_path / "t.part").stat().st_size
        assert 0 < kept <= 200_000
        out = _dl().download(url + "linux.tar.xz", tmp_path / "t")  # the next run resumes
    assert out.read_bytes() == BODY
    assert faults.requests[-1][1] == f"bytes={kept}-"


def test_wrong_checksum_deletes_the_file(site: Path, tmp_path: Path) -> None:
    with serve(site) as (url, _), pytest.raises(ChecksumMismatch, match="deleted") as info:
        _dl().download(url + "linux.tar.xz", tmp_path / "w", sha256="0" * 64)
    assert info.value.exit_code == 3
    assert not (tmp_path / "w").exists() and not (tmp_path / "w.part").exists()


def test_file_urls_and_small_gets(site: Path, tmp_path: Path) -> None:
    dl = _dl()
    out = dl.download(
        (site / "linux.tar.xz").as_uri(), tmp_path / "f", sha256=hashlib.sha256(BODY).hexdigest()
    )
    assert out.read_bytes() == BODY
    with pytest.raises(NotFound):
        dl.download((site / "nope").as_uri(), tmp_path / "g")
    assert dl.get_bytes(site.as_uri()) == b"linux.tar.xz\n"
    with pytest.raises(UserError):
        dl.get_bytes("ftp://example.org/x")
    with serve(site) as (url, _):
        assert dl.get_bytes(url + "linux.tar.xz") == BODY
        with pytest.raises(NotFound):
            dl.get_bytes(url + "nope")


def test_unreachable_server_is_an_infra_error(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(InfraError, match="after 4 attempts"):
        _dl().download(f"http://127.0.0.1:{port}/x.tar.xz", tmp_path / "u")
