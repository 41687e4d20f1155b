"""Build: the exact make command line and environment, and verdicts on a fake kernel tree."""

from __future__ import annotations

from pathlib import Path

from conftest_kbuild import fake_kernel

from tracker.arches.target import Target
from tracker.build.kbuild import BUILD_TIMESTAMP, build, build_env, judge, make_argv
from tracker.sandbox import SandboxMode
from tracker.vocab import Status

X86 = Target.parse("x86_64:tinyconfig")
ARM64 = Target.parse("arm64:defconfig")


def test_make_argv_x86_64_exact() -> None:
    assert make_argv(Path("/w/src"), Path("/w/out"), X86, ["bzImage"], jobs=2) == [
        "nice", "-n", "10",
        "make", "-C", "/w/src", "O=/w/out", "ARCH=x86_64",
        "CC=ccache gcc", "HOSTCC=ccache gcc",
        "LOCALVERSION=", "-j2", "bzImage",
    ]  # fmt: skip


def test_make_argv_arm64_cross_without_ccache_or_nice() -> None:
    argv = make_argv(
        Path("/w/src"), Path("/w/out"), ARM64, ["Image"], jobs=4, ccache=False, niceness=None
    )
    assert argv == [
        "make", "-C", "/w/src", "O=/w/out", "ARCH=arm64",
        "CROSS_COMPILE=aarch64-linux-gnu-", "LOCALVERSION=", "-j4", "Image",
    ]  # fmt: skip
    with_cc = make_argv(Path("/s"), Path("/o"), ARM64, ["Image"], niceness=None)
    assert "CC=ccache aarch64-linux-gnu-gcc" in with_cc and "HOSTCC=ccache gcc" in with_cc


def test_build_env_shares_ccache_across_trees_laid_out_alike() -> None:
    env = build_env(Path("/w/job1/src"), Path("/w/job1/out"), Path("/c/ccache"))
    assert env["CCACHE_DIR"] == "/c/ccache"
    assert env["CCACHE_BASEDIR"] == "/w/job1"
    assert env["CCACHE_NOHASHDIR"] == "1"
    assert env["KBUILD_BUILD_TIMESTAMP"] == BUILD_TIMESTAMP
    assert (env["KBUILD_BUILD_USER"], env["KBUILD_BUILD_HOST"]) == ("ktrack", "ktrack")
    other = build_env(Path("/w/job2/src"), Path("/w/job2/out"), Path("/c/ccache"))
    assert {k: v for k, v in other.items() if k != "CCACHE_BASEDIR"} == {
        k: v for k, v in env.items() if k != "CCACHE_BASEDIR"
    }
    assert "CCACHE_DIR" not in build_env(Path("/s"), Path("/o"), None)


def _tree(tmp_path: Path, *, stderr: str = "", rc: int = 0) -> Path:
    src = fake_kernel(tmp_path / "src")
    if stderr:
        (src / "BUILD_STDERR").write_text(stderr)
    (src / "BUILD_RC").write_text(str(rc))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".config").write_text("CONFIG_64BIT=y\n")
    return src


def _build(tmp_path: Path, src: Path, touched: dict[str, str] | None = None):
    return build(
        src,
        tmp_path / "out",
        X86,
        jobs=2,
        log=tmp_path / "build.log",
        touched=touched or {},
        ccache_dir=tmp_path / "ccache",
        timeout=60,
        sandbox_mode=SandboxMode.NONE,
    )


def test_build_pass_keeps_image_config_and_log(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    outcome = _build(tmp_path, src)
    assert outcome.status is Status.PASS
    assert outcome.artifacts["image"] == tmp_path / "out/arch/x86/boot/bzImage"
    assert outcome.artifacts["config"] == tmp_path / "out/.config"
    assert outcome.log == tmp_path / "build.log"
    log = (tmp_path / "build.log").read_text()
    assert log.startswith("$ nice -n 10 make -C ")
    calls = (tmp_path / "out/make-calls").read_text().splitlines()
    assert calls == ["bzImage ARCH=x86_64 CC=ccache gcc LOCALVERSION="]


def test_build_fail_names_first_error_and_the_patch_that_touched_it(tmp_path: Path) -> None:
    stderr = (
        "@SRC@/init/main.c:120:5: warning: unused variable 'x' [-Wunused-variable]\n"
        "@SRC@/init/main.c:123:9: error: expected ';' before 'return'\n"
        "@SRC@/kernel/fork.c:10:1: error: unknown type name 'foo'\n"
        "make[2]: *** [scripts/Makefile.build:250: init/main.o] Error 1\n"
    )
    src = _tree(tmp_path, stderr=stderr, rc=2)
    outcome = _build(tmp_path, src, {"init/main.c": "0003-foo.patch"})
    assert outcome.status is Status.FAIL
    assert outcome.summary == (
        "init/main.c:123: expected ';' before 'return' (touched by 0003-foo.patch)"
    )
    assert "image" not in outcome.artifacts
    assert outcome.detail["errors"][1] == "kernel/fork.c:10: unknown type name 'foo'"


def test_build_warning_in_touched_file_is_warn_elsewhere_pass(tmp_path: Path) -> None:
    stderr = "@SRC@/mm/slab.c:7:3: warning: unused variable 'y' [-Wunused-variable]\n"
    src = _tree(tmp_path, stderr=stderr, rc=0)
    assert _build(tmp_path, src, {"fs/proc/base.c": "0001.patch"}).status is Status.PASS
    (tmp_path / "out/arch/x86/boot/bzImage").unlink()
    outcome = _build(tmp_path, src, {"b/mm/slab.c": "0002-slab.patch"})
    assert outcome.status is Status.WARN
    assert outcome.summary == (
        "1 warning(s) in patched files; first: mm/slab.c:7: unused variable 'y' "
        "[-Wunused-variable] (touched by 0002-slab.patch)"
    )
    assert "image" in outcome.artifacts


def test_build_disk_full_is_error_not_fail(tmp_path: Path) -> None:
    stderr = "init/main.o: No space left on device\nmake: *** [Makefile:1] Error 1\n"
    src = _tree(tmp_path, stderr=stderr, rc=2)
    outcome = _build(tmp_path, src)
    assert outcome.status is Status.ERROR
    assert "No space left on device" in outcome.summary


def test_build_timeout_is_error(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    (src / "fakebuild.py").write_text("import time\ntime.sleep(30)\n")
    outcome = build(
        src, tmp_path / "out", X86, jobs=1, log=tmp_path / "b.log",
        ccache_dir=tmp_path / "c", timeout=1, sandbox_mode=SandboxMode.NONE,
    )  # fmt: skip
    assert outcome.status is Status.ERROR
    assert "timed out" in outcome.summary


def test_build_without_config_is_error(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    (tmp_path / "out/.config").unlink()
    outcome = _build(tmp_path, src)
    assert outcome.status is Status.ERROR and "configure" in outcome.summary


def test_judge_unrecognised_make_failure_is_fail_with_make_line(tmp_path: Path) -> None:
    text = "something odd\nmake[1]: *** [Makefile:1234: vmlinux] Error 1\n"
    o = judge(2, text, src=tmp_path, out=tmp_path / "o", image=tmp_path / "none")
    assert (o.status, o.summary) == (Status.FAIL, "make[1]: *** [Makefile:1234: vmlinux] Error 1")
    o = judge(0, "", src=tmp_path, out=tmp_path / "o", image=tmp_path / "none")
    assert o.status is Status.ERROR


def test_build_runs_inside_the_network_sandbox(tmp_path: Path) -> None:
    """Inside the sandbox the build sees no network interface but loopback."""
    from tracker import sandbox

    mode = sandbox.detect()
    src = _tree(tmp_path)
    (src / "fakebuild.py").write_text(
        "import os, sys\n"
        "names = sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:])\n"
        "print('interfaces', names, file=sys.stderr)\n"
        "os.makedirs(sys.argv[2] + '/arch/x86/boot', exist_ok=True)\n"
        "open(sys.argv[2] + '/arch/x86/boot/bzImage', 'w').write('x')\n"
    )
    outcome = build(
        src, tmp_path / "out", X86, jobs=1, log=tmp_path / "b.log",
        ccache_dir=tmp_path / "c", timeout=60, sandbox_mode=mode,
    )  # fmt: skip
    assert outcome.status is Status.PASS
    assert "interfaces ['lo']" in (tmp_path / "b.log").read_text()
