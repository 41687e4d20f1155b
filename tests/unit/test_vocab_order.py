"""The ordered-enum base: Status, HunkClass and EventKind order by declaration, worst last."""

from __future__ import annotations

import pytest

from tracker.boot.signatures import EventKind
from tracker.vocab import HunkClass, OrderedEnum, Status


class _Level(OrderedEnum):
    LOW = "z"  # values deliberately out of alphabetical order: order is declaration order
    MID = "a"
    HIGH = "m"


def test_total_order_by_declaration() -> None:
    assert _Level.LOW < _Level.MID < _Level.HIGH
    assert _Level.HIGH > _Level.MID >= _Level.MID >= _Level.LOW
    assert _Level.LOW <= _Level.LOW and not (_Level.MID < _Level.LOW)
    assert sorted([_Level.HIGH, _Level.LOW, _Level.MID]) == [_Level.LOW, _Level.MID, _Level.HIGH]
    assert [m.severity for m in _Level] == [0, 1, 2]


def test_worst_is_max() -> None:
    assert max([Status.PASS, Status.FAIL, Status.ERROR]) is Status.FAIL
    assert max([Status.SKIP, Status.WARN, Status.PASS]) is Status.WARN
    assert max([HunkClass.FUZZ, HunkClass.CONFLICT, HunkClass.OFFSET]) is HunkClass.CONFLICT
    assert max([EventKind.WARNING, EventKind.PANIC, EventKind.OOPS]) is EventKind.PANIC
    assert list(Status) == sorted(Status) and list(HunkClass) == sorted(HunkClass)


def test_different_enums_do_not_compare() -> None:
    with pytest.raises(TypeError):
        assert Status.FAIL < HunkClass.CLEAN
    with pytest.raises(TypeError):
        assert _Level.LOW >= Status.SKIP
