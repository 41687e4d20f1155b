"""The apply engine on Debian's real quilt series, against GNU patch, verdict for verdict.

* Debian's 6.1 series (165 patches for 6.1.176-1) against the pristine 6.12 tree (6.12.38): every
  patch, file and hunk verdict equals GNU ``patch --dry-run -N -F0`` applied in series order on a
  sparse copy of the same files, and the resulting files are byte for byte GNU patch's.
* The same series against its own base (6.1.176): every patch applies (that is what Debian ships).
* The same series against Debian's own patched 6.1 tree (``linux-source-6.1``): most patches are
  already there, and GNU patch's "Reversed (or previously applied)" verdicts are ours.

Both trees are read from the release store (``$XDG_CACHE_HOME/ktrack/stores/apply-real.git``),
imported from ``apt-get source`` tarballs on first use (see ``conftest_apply.py``).
"""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_apply import (  # noqa: E402
    DebianSource,
    NoDebSrc,
    Unreachable,
    check,
    debian_source,
    distro_tree,
    gnu_oracle,
    load,
    stored_tree,
)

from tracker.patchsets.formats import parse_series_file  # noqa: E402
from tracker.vocab import HunkClass, Status  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch missing"),
]


def _source(series: str) -> DebianSource:
    try:
        return debian_source(series)
    except Unreachable as exc:
        pytest.skip(f"apt cannot reach the Debian archive: {exc}")
    except NoDebSrc as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def debian61() -> DebianSource:
    return _source("6.1")


@pytest.fixture(scope="module")
def debian612() -> DebianSource:
    return _source("6.12")


def _series_entries(src: DebianSource) -> int:
    with tarfile.open(src.debian_tarball) as tar:
        member = tar.extractfile("debian/patches/series")
        assert member is not None
        return len(parse_series_file(member.read(), "series", 1))


def test_debian_61_series_on_612_agrees_with_gnu_patch(
    debian61: DebianSource, debian612: DebianSource, tmp_path: Path
) -> None:
    series, raws = load(debian61)
    assert len(series.patches) == _series_entries(debian61)
    tree = stored_tree(debian612)
    report = check(series, tree)
    problems = gnu_oracle(series, raws, report, tree, tmp_path, fuzz=0)
    assert not problems, "\n".join(problems[:40])
    # a 6.1 series does not apply to 6.12 as it is; it says where and why
    assert report.status is Status.FAIL
    assert report.summary.split(":")[0] in {p.name for p in series.patches}
    failed = [p for p in report.patches if p.klass.is_failure]
    assert all(p.first_failure() is not None for p in failed)
    # later patches touching a failed patch's files are marked
    failed_paths = set()
    for patch, rep in zip(series.patches, report.patches, strict=True):
        touches_failed = bool(failed_paths & set(patch.paths))
        assert rep.depends_on_failed == touches_failed, rep.name
        if rep.klass.is_failure:
            failed_paths |= set(patch.paths)


def test_debian_61_series_applies_to_its_own_base(debian61: DebianSource, tmp_path: Path) -> None:
    series, raws = load(debian61)
    tree = stored_tree(debian61)
    report = check(series, tree)
    bad = [(p.name, p.klass.value) for p in report.patches if p.klass.is_failure]
    assert not bad, bad
    assert report.status in (Status.PASS, Status.WARN)
    assert all(p.klass is not HunkClass.ALREADY_APPLIED for p in report.patches)
    problems = gnu_oracle(series, raws, report, tree, tmp_path, fuzz=0)
    assert not problems, "\n".join(problems[:40])


def test_debian_61_series_on_the_debian_patched_tree(
    debian61: DebianSource, tmp_path: Path
) -> None:
    series, raws = load(debian61)
    _, tree = distro_tree("6.1")
    report = check(series, tree)
    problems = gnu_oracle(series, raws, report, tree, tmp_path, fuzz=0)
    assert not problems, "\n".join(problems[:40])
    already = [p for p in report.patches if p.klass is HunkClass.ALREADY_APPLIED]
    assert already and all("drop it" in p.note for p in already)
