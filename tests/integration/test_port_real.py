"""``ktrack port`` on the real patch sets: vcontext and beancounters 0.1 (written for 6.1) ported
to Debian's 6.12 and compared with the maintainer's own 0.2 in patches/. Apply level only: no
kernel is built; the releases come from the cached store of Debian's kernel sources."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tracker.apply.check import check_series
from tracker.cli import main
from tracker.patchsets.formats import load_series
from tracker.patchsets.manifest import load_manifest
from tracker.port.compare import compare
from tracker.sources.store import ReleaseStore

sys.path.insert(0, str(Path(__file__).resolve().parent))  # with or without tests/**/__init__.py

from conftest_store import SOURCES, real_store  # noqa: E402

pytestmark = pytest.mark.slow

PATCHES = Path(__file__).resolve().parents[2] / "patches"


@pytest.fixture(scope="module")
def releases() -> tuple[ReleaseStore, str, str]:
    for series, path in SOURCES.items():
        if not path.is_file():
            pytest.fail(f"{path} is missing: install the Debian package linux-source-{series}")
    store, old = real_store("6.1")
    _, new = real_store("6.12")
    return store, old, new


def _port(
    tmp_path: Path,
    releases: tuple[ReleaseStore, str, str],
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, dict[str, Any], Path]:
    store, old, new = releases
    home = tmp_path / "home"
    home.mkdir()
    (home / "store.git").symlink_to(store.path)  # read only: port never writes the store
    cfg = tmp_path / "ktrack.toml"
    cfg.write_text(f'[patchsets]\npaths = ["{PATCHES}"]\n')
    out = tmp_path / "out"
    argv = ["--config", str(cfg), "--home", str(home), "port", f"{name}@0.1"]
    rc = main([*argv, "--from", old, "--to", new, "--out", str(out), "--json"])
    return rc, json.loads(capsys.readouterr().out), out


def _refused(doc: dict[str, Any]) -> tuple[int, int]:
    actions = [h["action"] for p in doc["patches"] for f in p["files"] for h in f["hunks"]]
    refused = [a for a in actions if a in ("merged", "needs-human")]
    return len(refused), refused.count("merged")


def _applies(out: Path, store: ReleaseStore, version: str) -> list[str]:
    spec = load_manifest(out / "patchset.toml").version("0.1+port1")
    with store.tree(version) as tree:
        return [p.klass.value for p in check_series(load_series(spec), tree).patches]


def test_vcontext(
    tmp_path: Path, releases: tuple[ReleaseStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc, out = _port(tmp_path, releases, "vcontext", capsys)
    assert rc == 1 and doc["base_release"] == releases[1]
    status = {p["name"][:4]: p["status"] for p in doc["patches"]}
    assert status == {
        "0001": "ported",
        "0002": "merged",
        "0003": "needs-human",
        "0004": "merged",
        "0005": "merged",
    }
    (prctl,) = [f for f in doc["patches"][2]["files"] if f["path"] == "include/uapi/linux/prctl.h"]
    assert "is taken by PR_SET_MDWE in the target" in prctl["hunks"][0]["conflict"]["note"]
    refused, merged = _refused(doc)
    assert merged / refused >= 0.7
    verdict = compare(out, PATCHES / "vcontext" / "6.12")
    assert [verdict[n] for n in sorted(verdict)][:2] == ["equal", "equal"]
    assert all(
        v in ("equal", "same-change") for n, v in verdict.items() if not n.startswith("0003")
    )
    assert set(_applies(out, releases[0], releases[2])) == {"clean"}


def test_beancounters(
    tmp_path: Path, releases: tuple[ReleaseStore, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc, doc, out = _port(tmp_path, releases, "beancounters", capsys)
    assert rc == 1
    (human,) = [p for p in doc["patches"] if p["status"] == "needs-human"]
    assert human["name"].startswith("0003") and [
        f["path"] for f in human["files"] if any(h["action"] == "needs-human" for h in f["hunks"])
    ] == ["include/linux/fs.h"]
    refused, merged = _refused(doc)
    assert merged / refused >= 0.7
    verdict = compare(out, PATCHES / "beancounters" / "6.12")
    assert {n[:4]: v for n, v in verdict.items() if v == "equal"}.keys() == {
        "0001",
        "0002",
        "0004",
        "0005",
    }
    assert set(_applies(out, releases[0], releases[2])) == {"clean"}
