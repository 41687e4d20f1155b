"""Shared test setup: every test runs with its own HOME, data dir, config dir and git identity.

The real-kernel cache ($XDG_CACHE_HOME/ktrack: extracted trees, stores, ccache) is the exception:
slow tests share it on purpose so CI does not extract or import the same tarball twice. ktrack's
own cache setting (KTRACK_CACHE: downloads) is private to each test.

With ``CI=true`` a skipped ``slow`` test is a failure (``pytest_runtest_makereport`` below): a
missing tool, package or source must never turn the real-kernel tests into silent skips.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

REAL_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ktrack"
PG_URL = os.environ.get("KTRACK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """In CI, a ``slow`` test that skips (a skipif, or ``pytest.skip`` in it or a fixture) fails,
    with the skip's reason; an expected failure (xfail) stays what it is."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("slow") is not None
        and _in_ci()
    ):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"slow test skipped with CI=true ({reason}): CI must run every real-kernel test; "
            "install what it needs (scripts/setup)"
        )


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # the shared cache of real kernels stays where it is (tests that need it use it on purpose);
    # ktrack's own cache (downloads) is private to each test
    monkeypatch.setenv("XDG_CACHE_HOME", str(REAL_CACHE.parent))
    for var in ("KTRACK_HOME", "KTRACK_DB", "KTRACK_JOBS", "KTRACK_BROKER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KTRACK_CACHE", str(home / "ktrack-cache"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "ktrack test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@ktrack.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "ktrack test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@ktrack.invalid")
    # no proxies: tests talk only to loopback
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def kernel_cache() -> Path:
    """The shared cache of extracted kernels, stores and ccache ($XDG_CACHE_HOME/ktrack)."""
    REAL_CACHE.mkdir(parents=True, exist_ok=True)
    return REAL_CACHE


def _pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url() -> str:
    """A PostgreSQL URL with a fresh schema-less database state (every table dropped)."""
    if not _pg_up():
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432 (.ci/run starts it)")
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return PG_URL
