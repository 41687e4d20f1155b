"""The initramfs: a newc cpio that real cpio reads, with init, busybox, console and tests."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tracker.arches.target import Target
from tracker.boot.initramfs import (
    RUNNER,
    Entry,
    build_initramfs,
    compile_argv,
    cpio_newc,
    init_script,
    initramfs_entries,
    new_token,
)
from tracker.errors import InfraError, UserError

X86 = Target.parse("x86_64:tinyconfig")
TOKEN = "5f0c2a7e9b1d4c3e8a6f2b0d9c7e1a43"
INIT = init_script(TOKEN)


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
    entries = initramfs_entries(b"\x7fELF fake busybox", None, init=INIT)
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
    entries = {e.name: e for e in initramfs_entries(b"BB", tests, {"hello": binary}, init=INIT)}
    assert entries["init"].data == INIT.encode()
    assert entries["bin/ktrack-run-tests"].data == RUNNER.encode()
    assert entries["bin/ktrack-run-tests"].mode == stat.S_IFREG | 0o755
    assert TOKEN.encode() not in RUNNER.encode()  # the secret is in /init only
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
    lines = init_script(TOKEN, 7.5).splitlines()
    assert lines[0] == "#!/bin/busybox sh"
    assert "export PATH=/bin:/sbin:/usr/bin:/usr/sbin" in lines
    assert lines.index(f"M='KTRACK:{TOKEN}'") < lines.index('echo "$M BOOT-OK"')
    assert lines.index('echo "$M BOOT-OK"') < lines.index(
        '    /bin/ktrack-run-tests "$M" 8 /tests /tmp'
    )
    assert 'echo "$M TESTS-DONE rc=$rc"' in lines
    assert lines[-1] == "poweroff -f"


def test_tokens_are_fresh_and_checked() -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) == 32 and int(a, 16) >= 0
    for bad in ("", "KTRACK", TOKEN.upper(), TOKEN + "0", "x'; reboot -f; '" + TOKEN[:18]):
        with pytest.raises(ValueError):
            init_script(bad)
    for seconds in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            init_script(TOKEN, seconds)


@pytest.fixture
def runner(tmp_path: Path):
    """Run RUNNER with the host's busybox sh, as the guest's init does."""
    script = tmp_path / "ktrack-run-tests"
    script.write_text(RUNNER)
    tests = tmp_path / "tests"
    tests.mkdir()
    work = tmp_path / "work"
    work.mkdir()

    def run(run_script: str, timeout: int) -> tuple[list[str], int, float]:
        (tests / "run").write_text(run_script)
        (tests / "run").chmod(0o755)
        start = time.monotonic()
        done = subprocess.run(
            ["/bin/busybox", "sh", str(script), "KTRACK:tok", str(timeout), str(tests), str(work)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.stdout.splitlines(), done.returncode, time.monotonic() - start

    return run


def test_runner_stamps_test_lines_and_passes_the_rest(runner) -> None:
    lines, rc, _ = runner(
        "#!/bin/sh\necho 'KTRACK-TEST a pass'\necho noise\necho 'KTRACK-TESTS-DONE rc=0'\n"
        "printf 'KTRACK-TEST b skip no newline'\nexit 4\n",
        5,
    )
    assert lines == [
        "KTRACK:tok TEST a pass",
        "noise",
        "KTRACK-TESTS-DONE rc=0",  # only test lines are stamped: run cannot end the run
        "KTRACK:tok TEST b skip no newline",
    ]
    assert rc == 4


def test_runner_kills_a_hung_test_and_goes_on(runner) -> None:
    lines, rc, seconds = runner(
        "#!/bin/sh\necho 'KTRACK-TEST a pass'\n"
        "sleep 300 || echo 'KTRACK-TEST after-kill pass'\n"
        "sh -c 'sleep 301' & sleep 302\n"
        "echo 'KTRACK-TEST last pass'\n",
        2,
    )
    stamped = [ln for ln in lines if ln.startswith("KTRACK:tok ")]
    assert stamped == [
        "KTRACK:tok TEST a pass",
        "KTRACK:tok TEST sleep fail timed out after 2s (killed: sleep 300)",
        "KTRACK:tok TEST after-kill pass",
        "KTRACK:tok TEST sleep-2 fail timed out after 2s (killed: sleep 302)",
        "KTRACK:tok TEST last pass",
    ]
    assert rc == 0 and 4 <= seconds < 20
    # the straggler run left behind is gone too
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 301" not in ps


def test_runner_kills_a_run_script_that_hangs_itself(runner) -> None:
    lines, rc, seconds = runner("#!/bin/sh\nwhile :; do :; done\n", 1)
    assert lines == ["KTRACK:tok TEST sh fail timed out after 1s (killed: /bin/sh ./run)"]
    assert rc == 137 and 1 <= seconds < 15


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
    image, failures = build_initramfs(
        X86, tests, work=tmp_path / "w", log=tmp_path / "log", token=TOKEN
    )
    members = read_newc(gzip.decompress(image.read_bytes()))
    hello = members["tests/hello"]
    assert hello[0] == stat.S_IFREG | 0o755 and hello[1][:4] == b"\x7fELF"
    assert subprocess.run([tmp_path / "w/tests-bin/hello"], capture_output=True).stdout == b"hi\n"
    assert "tests/hello.c" in members  # the source goes along
    assert [f.source for f in failures] == ["broken.c"]
    assert "error" in failures[0].message
    assert members["bin/busybox"][1] == Path("/bin/busybox").read_bytes()


def test_build_initramfs_without_tests(tmp_path: Path) -> None:
    image, failures = build_initramfs(X86, None, work=tmp_path, log=tmp_path / "log", token=TOKEN)
    members = read_newc(gzip.decompress(image.read_bytes()))
    assert failures == [] and not any(n.startswith("tests") for n in members)


def test_build_initramfs_input_errors(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    with pytest.raises(UserError, match="no `run` script"):
        build_initramfs(
            X86, tmp_path / "tests", work=tmp_path / "w", log=tmp_path / "log", token=TOKEN
        )
    with pytest.raises(InfraError, match="no static busybox"):
        build_initramfs(
            X86, None, work=tmp_path / "w", log=tmp_path / "log", busybox=tmp_path / "nope",
            token=TOKEN,
        )  # fmt: skip


def _fake_gcc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails_on: str) -> None:
    """A gcc on PATH that fails (as a linker without libc.a does) on sources matching
    ``fails_on`` (a shell pattern), and otherwise calls the real one."""
    bindir = tmp_path / "fakegcc"
    bindir.mkdir()
    gcc = bindir / "gcc"
    gcc.write_text(
        "#!/bin/sh\n"
        "for a; do src=$a; done\n"
        f'case "$src" in {fails_on}) echo "/usr/bin/ld: cannot find -lc: No such file or '
        'directory" >&2; echo "collect2: error: ld returned 1 exit status" >&2; exit 1;; esac\n'
        'exec /usr/bin/gcc "$@"\n'
    )
    gcc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def _one_c_test(tmp_path: Path, name: str) -> Path:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "run").write_text("#!/bin/sh\n")
    (tests / name).write_text("int main(void) { return 0; }\n")
    return tests


def test_missing_static_libc_is_infrastructure_not_a_test_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = _one_c_test(tmp_path, "hello.c")
    _fake_gcc(tmp_path, monkeypatch, "*")
    with pytest.raises(InfraError, match="cannot build static programs for x86_64") as info:
        build_initramfs(X86, tests, work=tmp_path / "w", log=tmp_path / "log", token=TOKEN)
    assert "cannot find -lc" in str(info.value) or "ld returned 1" in str(info.value)
    assert "libc6-dev" in (info.value.hint or "")


def test_a_test_that_does_not_compile_with_a_working_toolchain_is_the_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = _one_c_test(tmp_path, "needs-lib.c")
    _fake_gcc(tmp_path, monkeypatch, "*needs-lib.c")
    _, failures = build_initramfs(
        X86, tests, work=tmp_path / "w", log=tmp_path / "log", token=TOKEN
    )
    assert [(f.source, f.message) for f in failures] == [
        ("needs-lib.c", "collect2: error: ld returned 1 exit status")
    ]
