"""The one file-lock helper (``tracker/locks.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import InfraError
from tracker.locks import file_lock, is_locked


def test_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.lock"
    assert not is_locked(path)  # no file: not locked
    with file_lock(path) as got:
        assert got is True
        assert path.is_file()  # created with its folder
        assert is_locked(path)
        with file_lock(path, blocking=False) as second:
            assert second is False  # busy: yields without the lock
    assert not is_locked(path)
    with file_lock(path, blocking=False) as again:
        assert again is True


def test_lock_that_cannot_be_created_is_infrastructure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(InfraError, match="cannot create the lock file"):  # noqa: SIM117
        with file_lock(blocker / "x.lock"):
            pass
