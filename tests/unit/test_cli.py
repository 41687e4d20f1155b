"""The command line: help with examples, and one clear line with the right exit code on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker.cli import COMMANDS, main


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_every_subcommand_help_has_an_example(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and f"ktrack {name}" in out


def test_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "exit codes" in out
    for cmd in COMMANDS:
        assert cmd.name in out


def _ktrack(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_command_exits_2(tmp_path: Path) -> None:
    r = _ktrack("frobnicate", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'frobnicate'" in _one_line(r)


def test_malformed_settings_exit_2(tmp_path: Path) -> None:
    (tmp_path / "ktrack.toml").write_text("[database\n")
    r = _ktrack("--home", str(tmp_path / "h"), "db", "upgrade", cwd=tmp_path)
    assert r.returncode == 2
    line = _one_line(r)
    assert "ktrack.toml" in line and "malformed TOML" in line


def test_unreachable_database_exits_3(tmp_path: Path) -> None:
    r = _ktrack("--db", "postgresql+psycopg://nobody@127.0.0.1:9/x", "db", "upgrade", cwd=tmp_path)
    assert r.returncode == 3
    assert "database unreachable" in _one_line(r)


def test_unparsable_version_exits_2(tmp_path: Path) -> None:
    r = _ktrack("--home", str(tmp_path / "h"), "run", "--kernels", ">=six.one", cwd=tmp_path)
    assert r.returncode == 2
    assert "not a kernel version: 'six.one'" in _one_line(r)


def test_unknown_stage_exits_2(tmp_path: Path) -> None:
    r = _ktrack("--home", str(tmp_path / "h"), "run", "--stages", "apply,fly", cwd=tmp_path)
    assert r.returncode == 2 and "unknown stage 'fly'" in _one_line(r)


def test_db_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    first = _ktrack("--home", str(tmp_path / "h"), "db", "upgrade", cwd=tmp_path)
    second = _ktrack("--home", str(tmp_path / "h"), "db", "upgrade", cwd=tmp_path)
    assert first.returncode == second.returncode == 0
    from alembic.script import ScriptDirectory

    from tracker.results.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert first.stdout == second.stdout and f"revision {head}" in second.stdout
