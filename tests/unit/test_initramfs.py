"""The initramfs: a newc cpio that real cpio reads, with init, busybox, console and tests."""

from __future__ import annotations

import gzip
import stat
import subprocess
from pathlib import Path

import pytest

from tracker.boot.initramfs import (
    INIT_SCRIPT,
    Entry,
    build_initramfs,
    compile_argv,
    cpio_newc,
    initramfs_entries,
)
from tracker.build.target import Target
from tracker.errors import InfraError, UserError

X86 = Target.parse("x86_64:tinyconfig")


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev): an independent reader of the newc format."""
    out = {}
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701", pos
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, (rmaj, rmin))


def test_cpio_newc_layout_and_alignment() -> None:
    data = cpio_newc([Entry("a", stat.S_IFREG | 0o644, b"xyz")])
    assert len(data) % 512 == 0
    assert data.startswith(b"070701" + b"%08X" % 1 + b"%08X" % (stat.S_IFREG | 0o644))
    assert read_newc(data) == {"a": (stat.S_IFREG | 0o644, b"xyz", (0, 0))}


def test_real_cpio_lists_our_archive(tmp_path: Path) -> None:
    entries = initramfs_entries(b"\x7fELF fake busybox", None)
    archive = tmp_path / "a.cpio"
    archive.write_bytes(cpio_newc(entries))
    listing = subprocess.run(
        ["cpio", "-itv", "--quiet"],
        stdin=archive.open("rb"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in listing]
    assert names == [e.name for e in entries]
    console = next(line for line in listing if line.endswith("dev/console"))
    assert console.startswith("crw-------") and "5," in console


def test_entries_contain_init_busybox_console_and_tests(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "sub").mkdir(parents=True)
    (tests / "run").write_text("#!/bin/sh\necho hi\n")
    (tests / "sub" / "data.txt").write_text("data")
    (tests / "link").symlink_to("/etc/passwd")
    binary = tmp_path / "hello"
    binary.write_bytes(b"ELF")
    entries = {e.name: e for e in initramfs_entries(b"BB", tests, {"hello": binary})}
    assert entries["init"].data == INIT_SCRIPT.encode()
    assert entries["init"].mode == stat.S_IFREG | 0o755
    assert entries["bin/busybox"].data == b"BB"
    assert entries["dev/console"].rdev == (5, 1)
    assert entries["tests/run"].mode == stat.S_IFREG | 0o755  # made executable
    assert entries["tests/sub/data.txt"].mode == stat.S_IFREG | 0o644
    # a symlink stays a symlink: nothing outside the folder is read
    assert entries["tests/link"].mode == stat.S_IFLNK | 0o777
    assert entries["tests/link"].data == b"/etc/passwd"
    assert entries["tests/hello"].data == b"ELF"


def test_init_script_follows_the_smoke_test_contract() -> None:
    lines = INIT_SCRIPT.splitlines()
    assert lines[0] == "#!/bin/busybox sh"
    assert "export PATH=/bin:/sbin:/usr/bin:/usr/sbin" in lines
    assert lines.index("echo KTRACK-BOOT-OK") < lines.index("    cd /tests && ./run")
    assert 'echo "KTRACK-TESTS-DONE rc=$rc"' in lines
    assert lines[-1] == "poweroff -f"


def test_compile_argv_host_and_cross() -> None:
    assert compile_argv(X86, Path("/t/a.c"), Path("/b/a")) == [
        "gcc", "-static", "-O2", "-o", "/b/a", "/t/a.c",
    ]  # fmt: skip
    arm = Target.parse("arm64:tinyconfig")
    assert compile_argv(arm, Path("/t/a.c"), Path("/b/a"))[0] == "aarch64-linux-gnu-gcc"


def test_build_initramfs_compiles_c_tests_statically(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "run").write_text("#!/bin/sh\n./hello\n")
    (tests / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("hi");return 0;}\n')
    (tests / "broken.c").write_text("int main(void) { return }\n")
    image, failures = build_initramfs(X86, tests, work=tmp_path / "w", log=tmp_path / "log")
    members = read_newc(gzip.decompress(image.read_bytes()))
    hello = members["tests/hello"]
    assert hello[0] == stat.S_IFREG | 0o755 and hello[1][:4] == b"\x7fELF"
    assert subprocess.run([tmp_path / "w/tests-bin/hello"], capture_output=True).stdout == b"hi\n"
    assert "tests/hello.c" in members  # the source goes along
    assert [f.source for f in failures] == ["broken.c"]
    assert "error" in failures[0].message
    assert members["bin/busybox"][1] == Path("/bin/busybox").read_bytes()


def test_build_initramfs_without_tests(tmp_path: Path) -> None:
    image, failures = build_initramfs(X86, None, work=tmp_path, log=tmp_path / "log")
    members = read_newc(gzip.decompress(image.read_bytes()))
    assert failures == [] and not any(n.startswith("tests") for n in members)


def test_build_initramfs_input_errors(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    with pytest.raises(UserError, match="no `run` script"):
        build_initramfs(X86, tmp_path / "tests", work=tmp_path / "w", log=tmp_path / "log")
    with pytest.raises(InfraError, match="no static busybox"):
        build_initramfs(
            X86, None, work=tmp_path / "w", log=tmp_path / "log", busybox=tmp_path / "nope"
        )
