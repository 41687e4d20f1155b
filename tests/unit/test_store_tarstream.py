"""The streaming tar reader against Python's tarfile on every format kernel tarballs use."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from tracker.sources.tarstream import TarFormatError, TarStream


def _archive(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:

        def add(name: str, data: bytes | None = None, **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1_700_000_123, 0o644
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("linux/", type=tarfile.DIRTYPE, mode=0o755)
        add("linux/empty", b"")
        add("linux/block", b"b" * 512)
        add("linux/block1", b"c" * 513)
        add("linux/random.bin", os.urandom(300_000))
        add("linux/" + "d" * 90 + "/" + "e" * 60 + ".c", b"prefix field\n")  # > 100: ustar prefix
        add("linux/tools/script.sh", b"#!/bin/sh\n", mode=0o755)
        add("linux/link", type=tarfile.SYMTYPE, linkname="tools/script.sh")
        add("linux/hard", type=tarfile.LNKTYPE, linkname="linux/empty")
        add("linux/fifo", type=tarfile.FIFOTYPE)
        add("linux/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        if fmt != tarfile.USTAR_FORMAT:
            add("linux/" + "x" * 200 + "/" + "y" * 120, b"long name\n")  # GNU L / pax path
            add("linux/longlink", type=tarfile.SYMTYPE, linkname="z" * 180)
            add("linux/ünïcødé.txt", "ü\n".encode())
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_same_members_and_data_as_tarfile(fmt: int) -> None:
    data = _archive(fmt)
    want = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar:
            body = tar.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            want.append(
                (m.name, m.type, m.size if m.isreg() else 0, m.mode, m.mtime, m.linkname, body)
            )
    got = []
    stream = TarStream(io.BytesIO(data))
    for m in stream:
        body = stream.read_all(m) if m.isreg() else b""
        got.append((m.name, m.type, m.size, m.mode, m.mtime, m.linkname, body))
    assert [g[:6] for g in got] == [w[:6] for w in want]
    assert got == want


def test_unread_data_is_skipped() -> None:
    names = [m.name for m in TarStream(io.BytesIO(_archive(tarfile.PAX_FORMAT)))]
    assert "linux/random.bin" in names and "linux/tools/script.sh" in names


def test_broken_streams() -> None:
    data = _archive(tarfile.GNU_FORMAT)
    bad = bytearray(data)
    bad[600] ^= 0xFF  # inside the second header
    with pytest.raises(TarFormatError, match="checksum"):
        list(TarStream(io.BytesIO(bytes(bad))))
    with pytest.raises(TarFormatError, match="unexpected end"):
        s = TarStream(io.BytesIO(data[:5000]))
        for m in s:
            if m.isreg():
                s.read_all(m)
    with pytest.raises(TarFormatError):
        list(TarStream(io.BytesIO(b"not a tar" * 100)))
    assert list(TarStream(io.BytesIO(b""))) == []
