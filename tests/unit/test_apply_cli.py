"""``ktrack patchsets list`` and ``ktrack check``: output, JSON schema, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracker.cli import main

NUMBERS = "".join(f"{i}\n" for i in range(1, 31))


def _setup(tmp_path: Path, patches: dict[str, str]) -> tuple[Path, Path]:
    ps = tmp_path / "patches" / "demo"
    (ps / "q").mkdir(parents=True)
    (ps / "q" / "series").write_text("".join(f"{n}\n" for n in patches))
    for name, text in patches.items():
        (ps / "q" / name).write_text(text)
    (ps / "patchset.toml").write_text(
        'name = "demo"\nsummary = "a demo"\n\n[[versions]]\nversion = "1"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "q"\n'
    )
    cfg = tmp_path / "ktrack.toml"
    cfg.write_text(f'[patchsets]\npaths = ["{tmp_path / "patches"}"]\n')
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f.c").write_text(NUMBERS)
    return cfg, tree


def _mod(old: str, new: str) -> str:
    return f"--- a/f.c\n+++ b/f.c\n@@ -7,7 +7,7 @@\n 7\n 8\n 9\n-{old}\n+{new}\n 11\n 12\n 13\n"


def test_patchsets_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, _ = _setup(tmp_path, {"a.patch": _mod("10", "ten")})
    assert main(["--config", str(cfg), "patchsets", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "ktrack.patchsets/1"
    (ps,) = doc["patchsets"]
    assert ps["name"] == "demo" and ps["versions"][0]["format"] == "quilt"
    assert len(ps["versions"][0]["content_hash"]) == 64
    assert main(["--config", str(cfg), "patchsets", "list"]) == 0
    assert "demo" in capsys.readouterr().out


def test_check_pass_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, tree = _setup(tmp_path, {"a.patch": _mod("10", "ten")})
    rc = main(["--config", str(cfg), "check", "demo@1", "6.12.5", "--tree", str(tree), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert doc["schema"] == "ktrack.check/1"
    assert (doc["patchset"], doc["patchset_version"], doc["kernel"]) == ("demo", "1", "6.12.5")
    assert (doc["status"], doc["cause"]) == ("pass", None)
    assert doc["patches"][0]["files"][0]["hunks"][0]["class"] == "clean"


def test_check_json_survives_long_texts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON is plain json.dumps: no terminal wrapping inside long strings."""
    long = "x" * 300
    cfg, tree = _setup(tmp_path, {f"{long[:150]}.patch": _mod("99", long)})
    rc = main(["--config", str(cfg), "check", "demo", "6.12.5", "--tree", str(tree), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1 and doc["patches"][0]["name"] == f"{long[:150]}.patch"
    assert (doc["status"], doc["cause"]) == ("fail", "verdict")  # the apply verdict is the set's


def test_check_fail_exits_1_and_shows_the_conflict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, tree = _setup(tmp_path, {"a.patch": _mod("10", "ten"), "b.patch": _mod("99", "x")})
    rc = main(["--config", str(cfg), "check", "demo", "6.12.5", "--tree", str(tree)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in out and "b.patch: conflict in f.c hunk 1 at line 7" in out.replace("\n", " ")
    assert "the patch expects" in out and "the release has" in out
    # worst first: b.patch is listed before a.patch
    assert out.index("b.patch") < out.index("a.patch")


def test_check_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg, tree = _setup(tmp_path, {"a.patch": "--- a/f.c\n+++ b/f.c\n@@ -x +1 @@\n-a\n+b\n"})
    assert main(["--config", str(cfg), "check", "demo", "6.12.5", "--tree", str(tree)]) == 2
    err = capsys.readouterr().err
    assert "a.patch: line 3: malformed hunk header" in err
    assert main(["--config", str(cfg), "check", "nope", "6.12.5", "--tree", str(tree)]) == 2
    assert "unknown patch set 'nope' (known: demo)" in capsys.readouterr().err


def test_check_reads_the_release_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --tree: ensure_release gives a rev, the store a view of it (closed afterwards)."""
    from tracker.releases import service
    from tracker.sources import store
    from tracker.sources.tree import DirTree

    cfg, tree = _setup(tmp_path, {"a.patch": _mod("10", "ten")})
    asked: list[str] = []
    closed: list[bool] = []

    class View(DirTree):
        def close(self) -> None:
            closed.append(True)

    class Store:
        def tree(self, rev: str) -> View:
            asked.append(rev)
            return View(tree)

    def ensure(settings: object, db: object, version: str, **kw: object) -> str:
        asked.append(version)
        return f"v{version}"

    monkeypatch.setattr(service, "ensure_release", ensure)
    monkeypatch.setattr(store.ReleaseStore, "open", classmethod(lambda cls, settings: Store()))
    rc = main(["--config", str(cfg), "check", "demo", "v6.12.5", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["kernel"] == "6.12.5" and doc["status"] == "pass"
    assert asked == ["6.12.5", "v6.12.5"] and closed == [True]
