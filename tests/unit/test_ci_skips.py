"""The CI guard in tests/conftest.py: with ``CI=true`` a skipped ``slow`` test fails the run (a
skipif, a skip inside the test, a skip in a fixture); other skips, xfails and passes are left as
they are; without CI the same tests skip. Run on a tiny suite in a pytest subprocess that uses
this very conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

SUITE = """
import pytest

@pytest.fixture
def tool():
    pytest.skip("qemu-system-x86_64 missing")

@pytest.mark.slow
def test_skips_inside():
    pytest.skip("no linux-source-6.1")

@pytest.mark.slow
@pytest.mark.skipif(True, reason="GNU patch missing")
def test_skipif():
    pass

@pytest.mark.slow
def test_skips_in_fixture(tool):
    pass

def test_fast_skip():
    pytest.skip("not a real-kernel test")

@pytest.mark.slow
@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False

@pytest.mark.slow
def test_passes():
    pass
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_tiny.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: real kernels\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _outcomes(out: str) -> dict[str, str]:
    got: dict[str, str] = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL") and "::" in rest:
            got[rest.split("::", 1)[1].split(" ", 1)[0]] = word
        elif word == "SKIPPED" and "test_tiny.py" in rest:
            got[f"skip:{rest.split(': ', 1)[1]}"] = word  # -rA lists skips by location
    return got


def test_ci_turns_skipped_slow_tests_into_failures(tmp_path: Path) -> None:
    r = _run(tmp_path, "true")
    assert r.returncode == 1, r.stdout + r.stderr
    got = _outcomes(r.stdout)
    assert got["test_skips_inside"] == "FAILED"
    assert got["test_skipif"] in ("FAILED", "ERROR")  # skipif is judged at setup
    assert got["test_skips_in_fixture"] in ("FAILED", "ERROR")
    assert got["test_passes"] == "PASSED" and got["test_xfail"] == "XFAIL"
    assert got["skip:not a real-kernel test"] == "SKIPPED"  # not slow: a skip stays a skip
    assert "slow test skipped with CI=true (Skipped: no linux-source-6.1)" in r.stdout
    assert "GNU patch missing" in r.stdout and "qemu-system-x86_64 missing" in r.stdout
    assert "3 skipped" not in r.stdout and "1 skipped" in r.stdout


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_without_ci_slow_tests_skip(tmp_path: Path, ci: str | None) -> None:
    r = _run(tmp_path, ci)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 skipped" in r.stdout and "1 passed" in r.stdout and "1 xfailed" in r.stdout
