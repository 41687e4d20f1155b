"""Configure, build, boot and test Debian's 6.1 kernel for real (slow; runs in CI).

The extracted tree and ccache live in $XDG_CACHE_HOME/ktrack (see conftest_build.py): the first
run extracts and builds cold (several minutes on 2 cores); later builds hit ccache. Each test
uses its own hard-linked copy of the tree (``job/src``) and its own ``job/out``, laid out alike so
that ccache entries are shared between them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_build import ccache_dir, kernel_source, linked_tree, machine_smoke_test, replace_file  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.boot.qemu import boot_and_test  # noqa: E402
from tracker.build.kbuild import build  # noqa: E402
from tracker.build.kconfig import configure, parse_config  # noqa: E402
from tracker.vocab import Outcome, Status  # noqa: E402

pytestmark = pytest.mark.slow

TARGET = Target.parse("x86_64:tinyconfig")
BUILD_TIMEOUT = 2400.0
MARK = "\tkernel_init_freeable();\n"


@pytest.fixture(scope="module")
def base_tree() -> Path:
    if not Path("/usr/src/linux-source-6.1.tar.xz").is_file():
        pytest.fail("linux-source-6.1 is not installed (apt-get install linux-source-6.1)")
    return kernel_source()


def _job(tmp_path: Path, base: Path, edits: dict[str, str] | None = None) -> tuple[Path, Path]:
    src = linked_tree(base, tmp_path / "src")
    for rel, text in (edits or {}).items():
        replace_file(src, rel, text)
    return src, tmp_path / "out"


def _configure_and_build(tmp_path: Path, src: Path, out: Path, touched: dict[str, str]) -> Outcome:
    conf = configure(
        src, out, TARGET, None, log=tmp_path / "configure.log", ccache_dir=ccache_dir()
    )
    assert conf.status is Status.PASS, conf.summary
    return build(
        src, out, TARGET, jobs=2, log=tmp_path / "build.log", touched=touched,
        ccache_dir=ccache_dir(), timeout=BUILD_TIMEOUT,
    )  # fmt: skip


def _kconfig_line(src: Path, symbol: str) -> int:
    lines = (src / "drivers/tty/serial/8250/Kconfig").read_text().splitlines()
    return lines.index(f"config {symbol}") + 1


def _insert_after(text: str, anchor: str, line: str) -> tuple[str, int]:
    """``text`` with ``line`` inserted after ``anchor``; and the 1-based number of that line."""
    at = text.index(anchor) + len(anchor)
    return text[:at] + line + text[at:], text[:at].count("\n") + 1


def test_tinyconfig_builds_boots_and_passes_smoke_tests(tmp_path: Path, base_tree: Path) -> None:
    src, out = _job(tmp_path, base_tree)
    built = _configure_and_build(tmp_path, src, out, {})
    assert built.status is Status.PASS, built.summary
    image = built.artifacts["image"]
    assert image == out / "arch/x86/boot/bzImage" and image.stat().st_size > 100_000
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "uname.c").write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <sys/utsname.h>\n"
        "int main(void) { struct utsname u; uname(&u);\n"
        '  printf("KTRACK-TEST uname %s %s\\n", strncmp(u.release, "6.1.", 4) ? "fail" : "pass",'
        " u.release); return 0; }\n"
    )
    (tests / "run").write_text(
        "#!/bin/sh\n./uname\n"
        'grep -q "^Linux version 6.1" /proc/version && echo "KTRACK-TEST procfs pass" '
        '|| echo "KTRACK-TEST procfs fail no /proc/version"\n'
    )
    boot, test = boot_and_test(
        image, TARGET, tests, work=tmp_path / "boot", log=tmp_path / "boot.log", timeout=120
    )
    assert (boot.status, boot.summary) == (Status.PASS, "booted"), boot.log.read_text()[-2000:]
    assert test.status is Status.PASS, test.summary
    assert [(t["name"], t["status"]) for t in test.detail["tests"]] == [
        ("uname", "pass"),
        ("procfs", "pass"),
    ]
    release = test.detail["tests"][0]["message"]
    assert release.startswith("6.1.") and not release.endswith("+")  # LOCALVERSION= honoured


def test_c_syntax_error_fails_the_build_at_its_file_and_line(
    tmp_path: Path, base_tree: Path
) -> None:
    text = (base_tree / "init/main.c").read_text()
    broken, line = _insert_after(text, MARK, "\tint ktrack_broken = ;\n")
    src, out = _job(tmp_path, base_tree, {"init/main.c": broken})
    built = _configure_and_build(tmp_path, src, out, {"init/main.c": "0001-break-the-build.patch"})
    assert built.status is Status.FAIL
    assert built.summary == (
        f"init/main.c:{line}: expected expression before ';' token "
        "(touched by 0001-break-the-build.patch)"
    )
    assert "image" not in built.artifacts


def test_panic_at_boot_fails_the_boot_with_the_panic_line(tmp_path: Path, base_tree: Path) -> None:
    text = (base_tree / "init/main.c").read_text()
    patched, _ = _insert_after(text, MARK, '\tpanic("ktrack: deliberate panic at boot");\n')
    src, out = _job(tmp_path, base_tree, {"init/main.c": patched})
    built = _configure_and_build(tmp_path, src, out, {"init/main.c": "0001-panic.patch"})
    assert built.status is Status.PASS, built.summary
    boot, test = boot_and_test(
        built.artifacts["image"], TARGET, None, work=tmp_path / "boot",
        log=tmp_path / "boot.log", timeout=120,
    )  # fmt: skip
    assert boot.status is Status.FAIL
    assert boot.summary == "Kernel panic - not syncing: ktrack: deliberate panic at boot"
    assert test.status is Status.SKIP


def test_fragment_with_nonexistent_symbol_fails_configure(tmp_path: Path, base_tree: Path) -> None:
    src, out = _job(tmp_path, base_tree)
    fragment = tmp_path / "kconfig"
    fragment.write_text("CONFIG_KTRACK_DOES_NOT_EXIST=y\nCONFIG_PROC_SYSCTL=y\nCONFIG_DRM_I915=y\n")
    conf = configure(
        src, out, TARGET, fragment, log=tmp_path / "configure.log", ccache_dir=ccache_dir()
    )
    assert conf.status is Status.FAIL
    assert conf.summary.startswith(
        "CONFIG_KTRACK_DOES_NOT_EXIST=y did not survive: no such symbol in this tree's Kconfig files"
    )
    missing = {m["symbol"]: m["reason"] for m in conf.detail["missing"]}
    assert "CONFIG_PROC_SYSCTL" not in missing  # it survived
    # i915 needs PCI (on) and DRM (off in tinyconfig): the reason names the real dependency
    assert missing["CONFIG_DRM_I915"].startswith("drivers/gpu/drm/i915/Kconfig:")
    assert "depends on DRM" in missing["CONFIG_DRM_I915"] and "DRM=n" in missing["CONFIG_DRM_I915"]


def test_merge_agrees_with_merge_config_sh(tmp_path: Path, base_tree: Path) -> None:
    """Differential: our merge + olddefconfig == scripts/kconfig/merge_config.sh -m + olddefconfig."""
    src, out = _job(tmp_path, base_tree)
    fragment = tmp_path / "kconfig"
    fragment.write_text(
        "CONFIG_PROC_SYSCTL=y\n# CONFIG_ACPI is not set\nCONFIG_MULTIUSER=y\nCONFIG_FUTEX=y\n"
        'CONFIG_DEFAULT_HOSTNAME="ktrack"\nCONFIG_LOG_BUF_SHIFT=15\n'
    )
    ours = configure(
        src, out, TARGET, fragment, log=tmp_path / "configure.log", ccache_dir=ccache_dir()
    )
    assert ours.status is Status.PASS, ours.summary
    ref = tmp_path / "ref"
    ref.mkdir()
    make = ["make", "-C", str(src), f"O={ref}", "ARCH=x86_64"]
    subprocess.run([*make, "tinyconfig"], check=True, capture_output=True)
    boot_opts = tmp_path / "boot.config"
    from tracker.build.kconfig import BOOT_OPTIONS

    boot_opts.write_text("".join(f"CONFIG_{s}=y\n" for s in BOOT_OPTIONS["x86_64"]))
    subprocess.run(
        ["sh", str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(ref),
         str(ref / ".config"), str(boot_opts), str(fragment)],
        check=True, capture_output=True, cwd=src,
    )  # fmt: skip
    subprocess.run([*make, "olddefconfig"], check=True, capture_output=True)
    theirs = parse_config((ref / ".config").read_text())
    mine = parse_config((out / ".config").read_text())
    assert mine == theirs
    assert mine["ACPI"] == "n" and mine["DEFAULT_HOSTNAME"] == '"ktrack"'
    shutil.rmtree(ref)


ARM64 = Target.parse("arm64:tinyconfig")


def test_arm64_cross_builds_and_boots_on_qemu_virt(tmp_path: Path, base_tree: Path) -> None:
    """The second target: the cross gcc builds an arm64 Image, which boots on `virt` and runs a
    smoke test compiled for arm64 (a test built for the host could not run there)."""
    src, out = _job(tmp_path, base_tree)
    conf = configure(src, out, ARM64, None, log=tmp_path / "configure.log", ccache_dir=ccache_dir())
    assert conf.status is Status.PASS, conf.summary
    values = parse_config((out / ".config").read_text())
    assert values["ARM64"] == "y" and values["SERIAL_AMBA_PL011_CONSOLE"] == "y"
    built = build(
        src, out, ARM64, jobs=2, log=tmp_path / "build.log", ccache_dir=ccache_dir(),
        timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    assert built.status is Status.PASS, built.summary
    image = built.artifacts["image"]
    assert image == out / "arch/arm64/boot/Image"
    assert image.read_bytes()[56:60] == b"ARM\x64"  # the arm64 Image header's magic
    tests = machine_smoke_test(tmp_path / "tests", "aarch64")
    boot, test = boot_and_test(
        image, ARM64, tests, work=tmp_path / "boot", log=tmp_path / "boot.log", timeout=180
    )
    assert (boot.status, boot.summary) == (Status.PASS, "booted"), boot.log.read_text()[-2000:]
    assert [(t["name"], t["status"], t["message"]) for t in test.detail["tests"]] == [
        ("machine", "pass", "aarch64")
    ]
    assert "qemu-system-aarch64 -machine virt" in boot.log.read_text()


@pytest.mark.parametrize("target", ["x86_64:defconfig", "arm64:defconfig"])
def test_defconfig_base_configures_with_boot_options_and_fragment(
    tmp_path: Path, base_tree: Path, target: str
) -> None:
    src, out = _job(tmp_path, base_tree)
    fragment = tmp_path / "kconfig"
    fragment.write_text('CONFIG_DEFAULT_HOSTNAME="ktrack"\n# CONFIG_SWAP is not set\n')
    parsed = Target.parse(target)
    conf = configure(src, out, parsed, fragment, log=tmp_path / "c.log", ccache_dir=ccache_dir())
    assert conf.status is Status.PASS, conf.summary
    values = parse_config((out / ".config").read_text())
    assert values["DEFAULT_HOSTNAME"] == '"ktrack"' and values["SWAP"] == "n"
    assert values["MODULES"] == "y"  # a defconfig, not tinyconfig
    assert values["64BIT" if parsed.arch == "x86_64" else "ARM64"] == "y"


def test_config_file_base_keeps_its_values_under_the_fragment(
    tmp_path: Path, base_tree: Path
) -> None:
    """A target naming a file: the file is the base, the fragment overrides it, olddefconfig
    fills in the rest; a symbol the fragment turns off that a boot option needs is reported."""
    src, out = _job(tmp_path, base_tree)
    first = configure(src, out, TARGET, None, log=tmp_path / "c1.log", ccache_dir=ccache_dir())
    assert first.status is Status.PASS, first.summary
    base = tmp_path / "base.config"
    base.write_text((out / ".config").read_text() + "CONFIG_LOG_BUF_SHIFT=16\n")
    target = Target.parse(f"x86_64:{base}")
    fragment = tmp_path / "kconfig"
    fragment.write_text("CONFIG_PROC_SYSCTL=y\n")
    out2 = tmp_path / "out2"
    conf = configure(src, out2, target, fragment, log=tmp_path / "c2.log", ccache_dir=ccache_dir())
    assert conf.status is Status.PASS, conf.summary
    values = parse_config((out2 / ".config").read_text())
    assert values["LOG_BUF_SHIFT"] == "16" and values["PROC_SYSCTL"] == "y"
    fragment.write_text("# CONFIG_SERIAL_8250 is not set\n")  # the console boot option needs it
    out3 = tmp_path / "out3"
    conf = configure(src, out3, target, fragment, log=tmp_path / "c3.log", ccache_dir=ccache_dir())
    assert conf.status is Status.FAIL
    assert conf.summary == (
        "CONFIG_SERIAL_8250_CONSOLE=y did not survive: drivers/tty/serial/8250/Kconfig:"
        f"{_kconfig_line(src, 'SERIAL_8250_CONSOLE')}: depends on SERIAL_8250=y [SERIAL_8250=n]"
    )
