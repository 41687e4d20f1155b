"""Read a guest's serial console: kernel crashes, warnings, and the smoke-test markers.

``parse`` is pure: console text in, ``ConsoleReport`` out. ``judge`` turns a report and how
QEMU ended into the boot and test outcomes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tracker.boot.initramfs import BOOT_MARKER, DONE_PREFIX, TEST_PREFIX
from tracker.vocab import Outcome, Status


class EventKind(Enum):
    """Kernel events on the console, by severity (worst last)."""

    WARNING = "warning"
    BUG = "bug"
    OOPS = "oops"
    PANIC = "panic"

    @property
    def severity(self) -> int:
        return list(EventKind).index(self)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    line: str  # the console line, without timestamp
    number: int  # 1-based line number in the console text


@dataclass(frozen=True)
class TestResult:
    name: str
    status: Status
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "message": self.message}


@dataclass(frozen=True)
class ConsoleReport:
    lines: int
    booted: bool  # KTRACK-BOOT-OK seen
    done_rc: int | None  # from KTRACK-TESTS-DONE rc=N, None when missing
    tests: tuple[TestResult, ...]
    events: tuple[Event, ...] = field(default=())
    last_line: str = ""

    rip: str = ""  # the function of the first crash ("RIP: 0010:kernel_init+0x2a/0x120")

    def worst(self) -> Event | None:
        """The first event of the worst kind."""
        if not self.events:
            return None
        top = max(e.kind.severity for e in self.events)
        return next(e for e in self.events if e.kind.severity == top)

    def crash_summary(self) -> str | None:
        """The first crash line (BUG, oops or panic), where it happened, and the panic it led to."""
        crashes = [e for e in self.events if e.kind is not EventKind.WARNING]
        if not crashes:
            return None
        first = crashes[0]
        text = first.line
        if self.rip and first.kind is not EventKind.PANIC:
            text += f" at {self.rip}"
        panic = next((e for e in crashes if e.kind is EventKind.PANIC), None)
        if panic is not None and panic is not first:
            text += f" (then: {panic.line})"
        return text


_TIMESTAMP = re.compile(r"^\s*\[\s*\d+\.\d+\]\s?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PATTERNS: tuple[tuple[EventKind, re.Pattern[str]], ...] = (
    (EventKind.PANIC, re.compile(r"Kernel panic - not syncing")),
    (EventKind.OOPS, re.compile(r"\bOops(?: -)?: |Internal error: Oops|general protection fault")),
    (
        EventKind.BUG,
        re.compile(
            r"\bkernel BUG at |^BUG: |Unable to handle kernel |"
            r"\bBUG: (?:kernel NULL pointer|unable to handle|scheduling while atomic|KASAN|"
            r"sleeping function|spinlock|soft lockup|workqueue lockup)"
        ),
    ),
    (EventKind.WARNING, re.compile(r"^WARNING: (?:CPU: \d+ PID: \d+ at |.*\bat\b)")),
)
_TEST = re.compile(rf"{TEST_PREFIX} (?P<name>\S+) (?P<status>pass|fail|skip)\b ?(?P<msg>.*)$")
_RIP = re.compile(r"(?:\bRIP: [0-9a-f]{4}:|\bpc : )(?P<fn>\S+)")
_DONE = re.compile(rf"{DONE_PREFIX} rc=(?P<rc>-?\d+)")


def clean(line: str) -> str:
    return _TIMESTAMP.sub("", _ANSI.sub("", line.replace("\r", ""))).rstrip()


def parse(text: str) -> ConsoleReport:
    """Everything the console tells, in order."""
    booted = False
    done_rc: int | None = None
    tests: list[TestResult] = []
    events: list[Event] = []
    last = ""
    rip = ""
    lines = text.splitlines()
    for number, raw in enumerate(lines, 1):
        line = clean(raw)
        if not line.strip():
            continue
        last = line
        if BOOT_MARKER in line:
            booted = True
        if m := _TEST.search(line):
            tests.append(TestResult(m["name"], Status(m["status"]), m["msg"].strip()))
            continue
        if m := _DONE.search(line):
            done_rc = int(m["rc"])
            continue
        if events and not rip and (m := _RIP.search(line)):
            rip = m["fn"]
        for kind, pattern in _PATTERNS:
            if pattern.search(line):
                events.append(Event(kind, line.strip(), number))
                break
    return ConsoleReport(len(lines), booted, done_rc, tuple(tests), tuple(events), last, rip)


def judge(
    report: ConsoleReport,
    *,
    timed_out: bool,
    timeout: float,
    tests_requested: bool,
    qemu_cmdline: str,
    qemu_rc: int | None,
    qemu_messages: str = "",
) -> tuple[Outcome, Outcome]:
    """(boot, test) outcomes from a console report and how QEMU ended."""
    detail: dict[str, Any] = {
        "events": [
            {"kind": e.kind.value, "line": e.line, "console_line": e.number}
            for e in report.events[:20]
        ],
        "qemu": qemu_cmdline,
        "console_lines": report.lines,
    }
    skip = Outcome(Status.SKIP, "boot failed")
    if report.lines == 0 or not report.last_line:
        why = f"timed out after {timeout:.0f}s" if timed_out else f"QEMU exited {qemu_rc}"
        said = qemu_messages.strip().splitlines()
        if said:
            why += f": {said[0][:200]}"
        return Outcome(
            Status.ERROR, f"no console output ({why}); QEMU: {qemu_cmdline}", detail
        ), skip
    worst = report.worst()
    crash = report.crash_summary()
    tests_detail = [t.as_dict() for t in report.tests]
    if crash is not None:
        boot = Outcome(Status.FAIL, crash, detail)
        if not report.booted:
            return boot, skip
        if report.done_rc is None:
            test = Outcome(
                Status.FAIL, f"kernel died during the tests: {crash}", {"tests": tests_detail}
            )
            return boot, test
        return boot, _test_outcome(report, tests_requested)
    if not report.booted:
        if timed_out:
            summary = f"hung: no {BOOT_MARKER} within {timeout:.0f}s; last console line: {report.last_line}"
        else:
            summary = f"kernel stopped before init ran; last console line: {report.last_line}"
        return Outcome(Status.FAIL, summary, detail), skip
    if worst is not None:
        boot = Outcome(Status.WARN, worst.line, detail)
    else:
        boot = Outcome(Status.PASS, "booted", detail)
    if report.done_rc is None:
        why = f"timed out after {timeout:.0f}s" if timed_out else "the guest stopped"
        return boot, Outcome(
            Status.FAIL,
            f"tests did not finish ({why}); last console line: {report.last_line}",
            {"tests": tests_detail},
        )
    return boot, _test_outcome(report, tests_requested)


def _test_outcome(report: ConsoleReport, tests_requested: bool) -> Outcome:
    detail: dict[str, Any] = {"tests": [t.as_dict() for t in report.tests], "rc": report.done_rc}
    if not tests_requested:
        return Outcome(Status.SKIP, "no smoke tests", detail)
    failed = [t for t in report.tests if t.status is Status.FAIL]
    counts = {
        s: sum(1 for t in report.tests if t.status is s)
        for s in (Status.PASS, Status.FAIL, Status.SKIP)
    }
    tally = (
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
    )
    if failed:
        first = failed[0]
        msg = f": {first.message}" if first.message else ""
        return Outcome(Status.FAIL, f"{first.name} failed{msg} ({tally})", detail)
    if report.done_rc != 0:
        return Outcome(Status.FAIL, f"tests/run exited {report.done_rc} ({tally})", detail)
    if not report.tests:
        return Outcome(Status.FAIL, "tests/run reported no KTRACK-TEST line", detail)
    return Outcome(Status.PASS, tally, detail)
