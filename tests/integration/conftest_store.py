"""The real Debian kernel tarballs imported into a release store cached under
``$XDG_CACHE_HOME/ktrack/stores/debian.git`` (imported once, shared by slow tests and bench).

Imported explicitly by ``test_store_real*.py`` and ``bench/bench_store.py``. Works with an empty
cache (the first use imports, ~30 s a tarball); the import is locked and idempotent, so parallel
test processes share one store safely.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tracker.config import default_cache
from tracker.sources.store import ReleaseStore

SOURCES = {
    "6.1": Path("/usr/src/linux-source-6.1.tar.xz"),
    "6.12": Path("/usr/src/linux-source-6.12.tar.xz"),
}
REAL_CACHE = Path(os.environ.get("KTRACK_TEST_CACHE") or default_cache())


def debian_version(series: str) -> str:
    """The upstream version inside Debian's ``linux-source-SERIES`` (``6.1.192`` for 6.1.192-2)."""
    res = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", f"linux-source-{series}"],
        capture_output=True,
        text=True,
        check=True,
    )
    m = re.match(r"^(\d+\.\d+(?:\.\d+)?)", res.stdout.strip())
    assert m, res.stdout
    return m.group(1)


def real_store(series: str, cache: Path = REAL_CACHE) -> tuple[ReleaseStore, str]:
    """The cached store holding Debian's ``linux-source-SERIES`` and the version it is tagged as."""
    store = ReleaseStore(cache / "stores" / "debian.git")
    version = debian_version(series)
    store.import_tarball(version, SOURCES[series])  # a no-op once cached
    return store, version
