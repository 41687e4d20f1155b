"""Boot verdicts on a real kernel (slow; runs in CI): Debian's 6.1, x86_64 tinyconfig.

One patched kernel serves every test: the patch adds a ``ktrack_fault=`` boot option
(``__setup``) whose value picks a fault (panic at init, panic while the option is parsed, which
is before the console driver registers, a WARN, printk of the old marker strings); the tests
pick it with ``boot_and_test(append=...)``. It is built once per module, with the shared
ccache (only init/main.c differs from the other real-kernel builds).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_build import ccache_dir, kernel_source, linked_tree, replace_file  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.boot.qemu import boot_and_test  # noqa: E402
from tracker.build.kbuild import build  # noqa: E402
from tracker.build.kconfig import configure  # noqa: E402
from tracker.vocab import Cause, Outcome, Stage, Status  # noqa: E402

pytestmark = pytest.mark.slow

TARGET = Target.parse("x86_64:tinyconfig")
HOOKS = r"""
/* ktrack's boot-verdict tests: ktrack_fault=panic|early|warn|markers */
static char ktrack_fault[16];

static int __init ktrack_fault_setup(char *s)
{
	strscpy(ktrack_fault, s, sizeof(ktrack_fault));
	if (!strcmp(ktrack_fault, "early"))
		panic("ktrack: early panic before the console");
	return 1;
}
__setup("ktrack_fault=", ktrack_fault_setup);

static noinline void ktrack_fault_at_init(void)
{
	if (!strcmp(ktrack_fault, "panic"))
		panic("ktrack: deliberate panic at boot");
	if (!strcmp(ktrack_fault, "warn"))
		WARN(1, "ktrack: deliberate warning at boot\n");
	if (!strcmp(ktrack_fault, "markers")) {
		pr_info("KTRACK-BOOT-OK\n");
		pr_info("KTRACK-TEST vinfo pass\n");
		pr_info("KTRACK-TESTS-DONE rc=0\n");
		pr_info("KTRACK:00000000000000000000000000000000 TESTS-DONE rc=0\n");
	}
}

"""
KERNEL_INIT = "static int __ref kernel_init(void *unused)\n"
MARK = "\tkernel_init_freeable();\n"


@pytest.fixture(scope="module")
def fault_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bzImage of Debian's 6.1 with the ``ktrack_fault=`` hooks."""
    if not Path("/usr/src/linux-source-6.1.tar.xz").is_file():
        pytest.fail("linux-source-6.1 is not installed (apt-get install linux-source-6.1)")
    job = tmp_path_factory.mktemp("fault-kernel")
    src = linked_tree(kernel_source(), job / "src")
    text = (src / "init/main.c").read_text()
    assert text.count(KERNEL_INIT) == 1 and text.count(MARK) == 1
    text = text.replace(KERNEL_INIT, HOOKS + KERNEL_INIT)
    text = text.replace(MARK, MARK + "\tktrack_fault_at_init();\n")
    replace_file(src, "init/main.c", text)
    out = job / "out"
    conf = configure(src, out, TARGET, None, log=job / "configure.log", ccache_dir=ccache_dir())
    assert conf.status is Status.PASS, conf.summary
    built = build(
        src, out, TARGET, jobs=2, log=job / "build.log", ccache_dir=ccache_dir(), timeout=2400
    )
    assert built.status is Status.PASS, built.summary
    return built.artifacts["image"]


def _tests(tmp_path: Path, run: str) -> Path:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "run").write_text("#!/bin/sh\n" + run)
    return tests


def _boot(
    image: Path, tmp_path: Path, fault: str, tests: Path | None = None, *, timeout: float = 120
) -> tuple[Outcome, Outcome]:
    return boot_and_test(
        image, TARGET, tests, work=tmp_path / "boot", log=tmp_path / "boot.log",
        timeout=timeout, append=f"ktrack_fault={fault}",
    )  # fmt: skip


def test_injected_panic_fails_the_boot_with_the_panic_line(
    fault_kernel: Path, tmp_path: Path
) -> None:
    boot, test = _boot(fault_kernel, tmp_path, "panic", _tests(tmp_path, ""))
    assert (boot.status, boot.cause) == (Status.FAIL, Cause.VERDICT), boot.summary
    assert boot.summary == "Kernel panic - not syncing: ktrack: deliberate panic at boot"
    assert test.status is Status.SKIP


def test_early_panic_before_the_console_driver_is_a_fail_not_no_output(
    fault_kernel: Path, tmp_path: Path
) -> None:
    boot, test = _boot(fault_kernel, tmp_path, "early")
    log = (tmp_path / "boot.log").read_text()
    assert (boot.status, boot.summary) == (
        Status.FAIL,
        "Kernel panic - not syncing: ktrack: early panic before the console",
    ), log[-3000:]
    # heard through the early console: the serial console driver never registered
    assert "bootconsole [earlyser0] enabled" in log
    assert "console [ttyS0] enabled" not in log
    assert test.status is Status.SKIP


def test_a_kernel_printing_the_old_markers_gets_no_pass(fault_kernel: Path, tmp_path: Path) -> None:
    tests = _tests(tmp_path, 'echo "KTRACK-TEST vinfo fail /proc/vinfo missing"\nexit 1\n')
    boot, test = _boot(fault_kernel, tmp_path, "markers", tests)
    log = (tmp_path / "boot.log").read_text()
    assert "KTRACK-BOOT-OK" in log and "KTRACK-TEST vinfo pass" in log  # the kernel said so
    assert boot.status is Status.PASS, boot.summary
    assert boot.detail["untrusted_markers"]["count"] == 4
    assert (test.status, test.summary) == (
        Status.FAIL,
        "vinfo failed: /proc/vinfo missing (0 passed, 1 failed, 0 skipped)",
    )
    assert test.detail["tests"] == [
        {"name": "vinfo", "status": "fail", "message": "/proc/vinfo missing"}
    ]


def test_a_warn_at_boot_with_passing_tests_is_a_warn_cell(
    fault_kernel: Path, tmp_path: Path
) -> None:
    tests = _tests(tmp_path, 'echo "KTRACK-TEST uname pass $(uname -r)"\n')
    boot, test = _boot(fault_kernel, tmp_path, "warn", tests)
    assert boot.status is Status.WARN and boot.cause is Cause.VERDICT, boot.summary
    assert boot.summary.startswith("WARNING: CPU: 0 PID: 1 at ")
    assert "init/main.c:" in boot.summary and "ktrack_fault_at_init+" in boot.summary
    assert (test.status, test.summary) == (Status.PASS, "1 passed, 0 failed, 0 skipped")
    assert max(boot.status, test.status) is Status.WARN  # the job's worst stage


def test_all_tests_skipped_is_a_skipped_test_stage(fault_kernel: Path, tmp_path: Path) -> None:
    tests = _tests(
        tmp_path, 'echo "KTRACK-TEST vinfo skip no /proc/vinfo"\necho "KTRACK-TEST net skip"\n'
    )
    boot, test = _boot(fault_kernel, tmp_path, "none", tests)
    assert boot.status is Status.PASS, boot.summary
    assert (test.status, test.summary) == (
        Status.SKIP,
        "every test skipped (0 passed, 0 failed, 2 skipped)",
    )


def test_a_hung_test_fails_that_test_inside_the_guest(fault_kernel: Path, tmp_path: Path) -> None:
    tests = _tests(
        tmp_path,
        'echo "KTRACK-TEST first pass"\nsleep 600\necho "KTRACK-TEST last pass"\n',
    )
    boot, test = boot_and_test(
        fault_kernel, TARGET, tests, work=tmp_path / "boot", log=tmp_path / "boot.log",
        timeout=120, test_timeout=3,
    )  # fmt: skip
    assert boot.status is Status.PASS, boot.summary
    assert [(t["name"], t["status"], t["message"]) for t in test.detail["tests"]] == [
        ("first", "pass", ""),
        ("sleep", "fail", "timed out after 3s (killed: sleep 600)"),
        ("last", "pass", ""),
    ]
    assert test.status is Status.FAIL
    assert boot.detail["timing"]["seconds"] < 60


def test_our_timeout_with_a_control_that_cannot_finish_is_error_never_fail(
    fault_kernel: Path, tmp_path: Path
) -> None:
    """The real boot stage and the real control run (the unpatched release from the store,
    configured, built and booted): QEMU is given less time than any boot takes, the patched
    boot runs into our timeout, and so does the control: no verdict."""
    from test_baseline_real import job_state

    from tracker.pipeline import stages

    state = job_state(tmp_path, None)
    state.settings = replace(state.settings, boot_timeout=0.5)
    state.image = fault_kernel
    state.version.tests = None
    state.spec = SimpleNamespace(release=state.release)
    state.log = lambda stage: state.work / "logs" / f"{stage.value}.log"
    boot = stages.stage_boot(state)
    assert (boot.status, boot.cause) == (Status.ERROR, Cause.INFRASTRUCTURE), boot.summary
    assert boot.detail["timeout"] == {"point": "boot", "limit": 0.5}
    assert f"no verdict: the unpatched {state.release} could not be booted either" in boot.summary
    assert boot.detail["baseline"]["stage"] == Stage.BOOT.value
    assert boot.detail["baseline"]["status"] == "error"
    assert "qemu-system-x86_64" in (state.work / "logs" / "baseline-boot.log").read_text()
    assert (state.work / "logs" / "baseline-build.log").is_file()  # the control was built
