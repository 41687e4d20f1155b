"""Hostile input to what users and other machines hand ktrack: settings, manifests, imported
results, and Ctrl-C (issue 15, items 2, 14, 15, 17, 18, 19). One test per case; docs/SECURITY.md
names each in its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker import config
from tracker.errors import UserError


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def ktrack(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", "--home", str(home), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return lines[0]


# --- 14: settings -----------------------------------------------------------------------------


def test_settings_typo_in_known_table_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path / "ktrack.toml", '[database]\nulr = "postgresql+psycopg://db/x"\n')
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value) == (
        f"{path}: database.ulr: unknown key 'ulr' (did you mean 'url'? known: url)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\njbos = 2\n", "run.jbos: unknown key 'jbos' (did you mean 'jobs'?"),
        ("[build]\ntimout = 9\n", "build.timout: unknown key 'timout' (did you mean 'timeout'?"),
        (
            '[feeds.k]\nkind = "git"\nurl = "r"\nverfy = "off"\n',
            "feeds.k.verfy: unknown key 'verfy' (did you mean 'verify'?",
        ),
        ("[store]\nzzz = 1\n", "store.zzz: unknown key 'zzz' (known: artifacts)"),
        ("[report]\ntheme = 'dark'\n", "report.theme: unknown key 'theme'"),
        ("[patchset]\npaths = []\n", "unknown table [patchset] (did you mean 'patchsets'?"),
    ],
)
def test_settings_unknown_keys_are_refused_everywhere(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "ktrack.toml", text)
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\njobs = 0\n", "run.jobs: must be greater than or equal to 1, got 0"),
        ("[run]\njobs = -3\n", "run.jobs: must be greater than or equal to 1, got -3"),
        ("[run]\njobs = 1.5\n", "run.jobs: expected an int, got float 1.5"),
        ("[run]\njobs = 100000000000000000000\n", "run.jobs: must be less than or equal to"),
        ("[build]\ntimeout = inf\n", "build.timeout: inf is not a finite number"),
        ("[build]\ntimeout = nan\n", "build.timeout: nan is not a finite number"),
        ("[boot]\ntimeout = 0\n", "boot.timeout: must be greater than 0, got 0"),
        ("[boot]\ntimeout = -1.5\n", "boot.timeout: must be greater than 0, got -1.5"),
        ("[boot]\ntest_timeout = '10'\n", "boot.test_timeout: expected a float, got str '10'"),
        ("[run]\napply_timeout = -inf\n", "run.apply_timeout: -inf is not a finite number"),
        ("[run]\ncontrol_max_age = 0\n", "run.control_max_age: must be greater than 0"),
        ('[feeds.k]\nkind = "git"\nurl = "r"\nverify = "maybe"\n', "feeds.k.verify: 'maybe'"),
        ('[feeds.k]\nkind = "git"\nurl = ""\n', "feeds.k.url: must not be empty"),
        ("[patchsets]\npaths = 'patches'\n", "patchsets.paths: expected a list, got str"),
    ],
)
def test_settings_numbers_and_values_are_validated(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "ktrack.toml", text)
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


def test_settings_environment_jobs_is_validated_too(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="KTRACK_JOBS: jobs: must be greater than or equal"):
        config.load(cwd=tmp_path, env={"KTRACK_JOBS": "0"})


def test_settings_new_keys_load_and_layer(tmp_path: Path) -> None:
    """The keys other parts of ktrack read (timeouts, feed verification, allowed hosts) load,
    and a later layer wins key by key."""
    write(
        Path.home() / ".config/ktrack/config.toml", "[boot]\ntest_timeout = 30\n[run]\njobs = 3\n"
    )
    write(
        tmp_path / "ktrack.toml",
        "[run]\napply_timeout = 12.5\ncontrol_max_age = 86400\n"
        '[feeds.m]\nkind = "mirror"\nurl = "https://m.example"\nverify = "if-published"\n'
        'hosts = ["cdn.example"]\n',
    )
    s = config.load(cwd=tmp_path, env={})
    assert (s.test_timeout, s.jobs, s.apply_timeout, s.control_max_age) == (30.0, 3, 12.5, 86400)
    assert (s.feeds[0].verify, s.feeds[0].hosts) == ("if-published", ("cdn.example",))
    assert s.boot_timeout == 120.0 and s.baseline  # untouched keys keep their defaults


def test_settings_typo_exits_2_from_the_command_line(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", '[database]\nulr = "sqlite:////nowhere/x.db"\n')
    r = ktrack("db", "upgrade", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert "ktrack.toml: database.ulr: unknown key 'ulr' (did you mean 'url'?" in line
    assert not (tmp_path / "h" / "tracker.db").exists()  # no fallback to the default database


# --- 15: non-UTF-8 TOML -------------------------------------------------------------------------


def test_non_utf8_settings_file_is_one_line_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", b"[run]\n# caf\xe9\njobs = 2\n")
    r = ktrack("db", "upgrade", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert str(tmp_path / "ktrack.toml") in line and "not UTF-8" in line


def test_non_utf8_manifest_is_one_line_naming_it(tmp_path: Path) -> None:
    manifest = write(tmp_path / "patches" / "bad" / "patchset.toml", b'name = "b\xff"\n')
    r = ktrack("check", "bad", "6.1", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert str(manifest) in line and "not UTF-8" in line
