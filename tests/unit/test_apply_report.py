"""The apply report renders itself: summary, stage log, table detail and terminal view."""

from __future__ import annotations

from rich.console import Console

from tracker.apply.report import ApplyReport, FileReport, HunkReport, PatchReport
from tracker.vocab import HunkClass, Status


def _report() -> ApplyReport:
    fuzzed = PatchReport(
        "0001-fuzz.patch",
        HunkClass.FUZZ,
        (FileReport("a.c", HunkClass.FUZZ, (HunkReport(1, HunkClass.FUZZ, 3, 1, 12, 9),)),),
    )
    conflict = PatchReport(
        "0002-\x1b[31mevil.patch",
        HunkClass.CONFLICT,
        (
            FileReport(
                "b.c",
                HunkClass.CONFLICT,
                (HunkReport(2, HunkClass.CONFLICT, expected_line=40, want=("x",), have=("y",)),),
            ),
        ),
    )
    return ApplyReport.of([fuzzed, conflict])


def test_summary_and_status_are_derived() -> None:
    report = _report()
    assert report.status is Status.FAIL
    assert report.summary == "0002-\x1b[31mevil.patch: conflict in b.c hunk 2 at line 40"
    clean = ApplyReport.of([PatchReport("p", HunkClass.CLEAN)])
    assert (clean.status, clean.summary) == (Status.PASS, "1 patch apply cleanly")
    empty = ApplyReport.of([PatchReport("p", HunkClass.CLEAN, empty=True)])
    assert empty.status is Status.WARN  # never a silent pass


def test_log_text() -> None:
    assert _report().log_text() == (
        "fuzz             0001-fuzz.patch\n"
        "  fuzz           a.c\n"
        "    hunk 1: fuzz at line 12\n"
        "conflict         0002-\x1b[31mevil.patch\n"
        "  conflict       b.c\n"
        "    hunk 2: conflict\n"
        "verdict: fail: 0002-\x1b[31mevil.patch: conflict in b.c hunk 2 at line 40\n"
    )


def test_detail_and_order() -> None:
    report = _report()
    assert [n for n, _ in report.worst_first()] == [2, 1]
    assert report.patches[0].detail() == "fuzz 1; offset 3 lines"
    assert report.patches[1].detail() == "b.c hunk 2 near line 40"


def test_terminal_view_escapes_names() -> None:
    console = Console(record=True, width=120, color_system=None)
    console.print(_report().rich(heading="set 1.0 on 6.1"))
    text = console.export_text()
    assert "FAIL" in text and "set 1.0 on 6.1" in text
    assert "\x1b" not in text and "\\x1b[31mevil.patch" in text
    assert "the release has (from line 40)" in text
