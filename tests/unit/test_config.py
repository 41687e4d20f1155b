"""Layered settings: files, environment, flags, and clear errors naming the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker import config
from tracker.errors import UserError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    s = config.load(cwd=tmp_path, env={})
    assert s.db_url.endswith("/ktrack/tracker.db") and s.db_url.startswith("sqlite:///")
    assert s.patchset_paths == (tmp_path / "patches",)
    assert s.feeds == ()
    assert s.boot_accel == "tcg" and s.baseline  # KVM only when asked; failures confirmed


def test_layers_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = write(
        Path.home() / ".config/ktrack/config.toml",
        '[database]\nurl = "sqlite:////u.db"\n[run]\njobs = 3\n',
    )
    assert user.exists()
    write(
        tmp_path / "ktrack.toml",
        '[run]\njobs = 5\n[feeds.local]\nkind = "git"\nurl = "repo"\ntags = "v6.*"\n',
    )
    s = config.load(cwd=tmp_path, env={})
    assert s.database_url == "sqlite:////u.db"  # from the user layer
    assert s.jobs == 5  # ./ktrack.toml wins over the user layer
    assert s.feeds[0].kind == "git" and s.feeds[0].url == str(
        tmp_path / "repo"
    )  # relative to the file
    s = config.load(cwd=tmp_path, env={"KTRACK_JOBS": "7", "KTRACK_DB": "sqlite:////env.db"})
    assert s.jobs == 7 and s.database_url == "sqlite:////env.db"
    s = config.load(
        cwd=tmp_path,
        env={"KTRACK_DB": "sqlite:////env.db"},
        db="sqlite:////flag.db",
        home=str(tmp_path / "h"),
    )
    assert s.database_url == "sqlite:////flag.db" and s.home == tmp_path / "h"


def test_explicit_config_file_replaces_cwd_file(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", "[run]\njobs = 5\n")
    other = write(tmp_path / "other.toml", "[run]\njobs = 2\n[patchsets]\npaths = ['ps']\n")
    s = config.load(other, cwd=tmp_path, env={})
    assert s.jobs == 2 and s.patchset_paths == (tmp_path / "ps",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[database\nurl=1", "malformed TOML"),
        ("[bogus]\nx = 1\n", "unknown table [bogus]"),
        ("[run]\njobs = 'many'\n", "run.jobs: expected an int"),
        ('[feeds.x]\nkind = "ftp"\nurl = "a"\n', "feeds.x.kind: 'ftp' is not one of"),
        ('[feeds.x]\nkind = "git"\n', "feeds.x.url: missing (required)"),
        (
            '[feeds.x]\nkind = "git"\nurl = "a"\ncolour = 1\n',
            "feeds.x.colour: unknown key 'colour'",
        ),
        ("[database]\nurl = 5\n", "database.url: expected a string"),
        ('[boot]\naccel = "hvf"\n', "boot.accel: 'hvf' is not one of 'tcg', 'kvm' or 'auto'"),
        ("[run]\nbaseline = 1\n", "run.baseline: expected a bool, got int"),
    ],
)
def test_malformed_settings_name_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "ktrack.toml", text)
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(path) in str(info.value) and message in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="settings file not found"):
        config.load(tmp_path / "nope.toml", cwd=tmp_path, env={})


def test_unknown_feed_name(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", '[feeds.a]\nkind = "mirror"\nurl = "/srv/k"\n')
    s = config.load(cwd=tmp_path, env={})
    assert s.feed("a").url == "file:///srv/k"
    with pytest.raises(UserError, match="unknown feed 'b'"):
        s.feed("b")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "boot.test_timeout: must be greater than 0"),
        ("-5", "boot.test_timeout: must be greater than 0"),
        ("inf", "boot.test_timeout: inf is not a finite number"),
        ("nan", "boot.test_timeout: nan is not a finite number"),
        ("true", "boot.test_timeout: expected a float, got bool"),
        ('"60"', "boot.test_timeout: expected a float, got str"),
    ],
)
def test_boot_test_timeout_is_positive_and_finite(tmp_path: Path, value: str, message: str) -> None:
    assert config.load(cwd=tmp_path, env={}).test_timeout == 60.0  # the default
    write(tmp_path / "ktrack.toml", "[boot]\ntest_timeout = 12.5\n")
    assert config.load(cwd=tmp_path, env={}).test_timeout == 12.5
    path = write(tmp_path / "ktrack.toml", f"[boot]\ntest_timeout = {value}\n")
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(path) in str(info.value) and message in str(info.value)
