"""The control run on a real kernel (slow; runs in CI): Debian's 6.1 from the cached release store.

A patch with a C syntax error fails the build, and the unpatched release builds: a verdict. A
configuration that cannot boot (init= names a program that is not there) panics with or without the
patch set: no verdict, naming the release's own panic.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_build import ccache_dir  # noqa: E402
from conftest_store import real_store  # noqa: E402

from tracker.arches.target import Target  # noqa: E402
from tracker.config import Settings  # noqa: E402
from tracker.pipeline import baseline  # noqa: E402
from tracker.sources.store import tag_for  # noqa: E402
from tracker.vocab import Outcome, Stage, Status  # noqa: E402

pytestmark = pytest.mark.slow


def job_state(tmp_path: Path, fragment: str | None) -> SimpleNamespace:
    store, version = real_store("6.1")
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.git").symlink_to(store.path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ccache").symlink_to(ccache_dir())  # the shared ccache of the real-kernel tests
    kconfig = None
    if fragment is not None:
        kconfig = tmp_path / "kconfig"
        kconfig.write_text(fragment)
    return SimpleNamespace(
        settings=Settings(home=home, cache=cache, jobs=2),
        target=Target.parse("x86_64:tinyconfig"),
        version=SimpleNamespace(kconfig=kconfig),
        rev=tag_for(version),
        work=tmp_path / "work",
        release=version,
    )


def test_build_failure_confirmed_by_a_release_that_builds(tmp_path: Path) -> None:
    state = job_state(tmp_path, "CONFIG_KTRACK_VSERVER=y\nCONFIG_PROC_SYSCTL=y\n")
    failed = Outcome(Status.FAIL, "init/main.c:1500: expected expression before ';' token")
    control = baseline.run_control(state, Stage.BUILD)
    assert control == baseline.Control(Stage.BUILD, Status.PASS, "built")
    judged = baseline.judge(Stage.BUILD, failed, control, state.release)
    assert (judged.status, judged.summary) == (Status.FAIL, failed.summary)
    assert not (state.work / "baseline").exists()  # the control tree is removed
    log = (state.work / "logs" / "baseline-configure.log").read_text()
    assert "KTRACK_VSERVER" not in log  # a symbol only the patch set defines is left out


def test_a_config_that_cannot_boot_is_no_verdict(tmp_path: Path) -> None:
    # built into the command line before QEMU's: the initramfs's /init is skipped, then the
    # init= program is not there, and the kernel panics
    fragment = 'CONFIG_CMDLINE_BOOL=y\nCONFIG_CMDLINE="rdinit=/ktrack-none init=/ktrack-none"\n'
    state = job_state(tmp_path, fragment)
    failed = Outcome(Status.FAIL, "Kernel panic - not syncing: from the patched kernel")
    control = baseline.run_control(state, Stage.BOOT)
    assert control.stage is Stage.BOOT and control.status is Status.FAIL, control
    assert "Requested init /ktrack-none failed" in control.summary, control.summary
    judged = baseline.judge(Stage.BOOT, failed, control, state.release)
    assert judged.status is Status.ERROR
    assert judged.summary.startswith(
        f"no verdict: {state.release} fails boot without the patch set too: Kernel panic"
    )
    # asked again (another patch set on this release), the cache answers without a build
    (state.work / "logs" / "baseline-build.log").unlink()
    again = baseline.run_control(state, Stage.BOOT)
    assert again == control
    assert not (state.work / "logs" / "baseline-build.log").exists()
