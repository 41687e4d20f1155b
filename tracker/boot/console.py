"""Read a guest's serial console: kernel reports, and the smoke-test markers of this boot.

``parse`` is pure: console text and this boot's token in, ``ConsoleReport`` out. Marker lines
(``KTRACK:<token> BOOT-OK``, ``... TEST <name> pass|fail|skip [message]``, ``... TESTS-DONE
rc=N``) count only with the token; anything else that looks like a marker is kept aside as
untrusted (a kernel ``printk`` cannot know the token). Kernel reports are recognised by
``tracker.boot.signatures``. ``judge`` turns a report and how QEMU ended into the boot and test
outcomes; our own timeout is never a verdict there (see ``judge``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tracker.boot import signatures
from tracker.boot.initramfs import BOOT_OK, DONE, MARKER, TEST
from tracker.boot.signatures import EventKind
from tracker.vocab import Cause, Outcome, Status

__all__ = ["ConsoleReport", "Event", "EventKind", "TestResult", "clean", "judge", "parse"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    line: str  # the console line, without timestamp
    number: int  # 1-based line number in the console text
    signature: str = ""  # the name of the signature that matched (signatures.SIGNATURES)


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
    booted: bool  # this boot's BOOT-OK marker seen
    done_rc: int | None  # from its TESTS-DONE rc=N, None when missing
    tests: tuple[TestResult, ...]
    events: tuple[Event, ...] = field(default=())
    last_line: str = ""
    rip: str = ""  # the function of the first crash ("RIP: 0010:kernel_init+0x2a/0x120")
    errors: tuple[str, ...] = field(default=())  # marker lines that do not parse, duplicate names
    untrusted: tuple[str, ...] = field(default=())  # the first marker-like lines without the token
    untrusted_count: int = 0

    def crashes(self) -> list[Event]:
        return [e for e in self.events if e.kind.status is Status.FAIL]

    def first_warning(self) -> Event | None:
        """The first report of a ``warn`` kind (WARNING, RCU stall, lockdep, ...)."""
        return next((e for e in self.events if e.kind.status is Status.WARN), None)

    def crash_summary(self) -> str | None:
        """The first crash line (BUG, KASAN, oops or panic), where it happened, and the panic
        it led to."""
        crashes = self.crashes()
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
_MARKER = re.compile(rf"{re.escape(MARKER)}(?P<token>[0-9a-f]*) ?(?P<rest>.*)$")
_LOOKS_LIKE_MARKER = re.compile(r"KTRACK[-:]")
_TEST = re.compile(rf"^{TEST} (?P<name>\S+) (?P<status>pass|fail|skip)\b ?(?P<msg>.*)$")
_DONE = re.compile(rf"^{DONE} rc=(?P<rc>-?\d+)\s*$")
_RIP = re.compile(r"(?:\bRIP: [0-9a-f]{4}:|\bpc : )(?P<fn>\S+)")
_KEEP_UNTRUSTED = 5


def clean(line: str) -> str:
    return _TIMESTAMP.sub("", _ANSI.sub("", line.replace("\r", ""))).rstrip()


@dataclass
class _Reader:
    """The state of one pass over the console."""

    token: str
    booted: bool = False
    done_rc: int | None = None
    tests: list[TestResult] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    untrusted: list[str] = field(default_factory=list)
    untrusted_count: int = 0
    rip: str = ""

    def marker(self, line: str) -> bool:
        """Handle ``line`` if it is a marker of this boot; False for any other line."""
        m = _MARKER.search(line)
        if m is None or m["token"] != self.token:
            if _LOOKS_LIKE_MARKER.search(line):
                self.untrusted_count += 1
                if len(self.untrusted) < _KEEP_UNTRUSTED:
                    self.untrusted.append(line.strip()[:200])
            return False
        rest = m["rest"].strip()
        if rest == BOOT_OK:
            self.booted = True
        elif t := _TEST.match(rest):
            name = t["name"]
            if any(x.name == name for x in self.tests):
                self.errors.append(f"duplicate test name {name!r}")
            self.tests.append(TestResult(name, Status(t["status"]), t["msg"].strip()))
        elif d := _DONE.match(rest):
            self.done_rc = int(d["rc"])
        else:
            self.errors.append(f"malformed marker line {rest[:120]!r}")
        return True

    def kernel(self, line: str, number: int) -> None:
        if self.events and not self.rip and (m := _RIP.search(line)):
            self.rip = m["fn"]
        if (sig := signatures.match(line)) is not None:
            self.events.append(Event(sig.kind, line.strip(), number, sig.name))


def parse(text: str, *, token: str) -> ConsoleReport:
    """Everything the console tells, in order. Marker lines count only when they carry
    ``token`` (this boot's secret, known to the host and the initramfs alone)."""
    reader = _Reader(token)
    last = ""
    lines = text.splitlines()
    for number, raw in enumerate(lines, 1):
        line = clean(raw)
        if not line.strip():
            continue
        last = line
        if not reader.marker(line):
            reader.kernel(line, number)
    return ConsoleReport(
        len(lines), reader.booted, reader.done_rc, tuple(reader.tests), tuple(reader.events),
        last, reader.rip, tuple(reader.errors), tuple(reader.untrusted), reader.untrusted_count,
    )  # fmt: skip


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
    """(boot, test) outcomes from a console report and how QEMU ended.

    A printed crash is a ``fail`` however QEMU ended. Running into our own ``timeout`` is
    ``error`` (cause infrastructure) with ``detail["timeout"]`` naming the point not reached
    (``boot`` or ``tests``): only a control boot can turn a boot hang into a verdict
    (``tracker.pipeline.baseline.judge_timeout``). So is QEMU ending by itself with a non-zero
    status: the guest ends it with 0 (``-no-reboot``: poweroff, reboot, ``panic=-1``).
    """
    detail: dict[str, Any] = {
        "events": [
            {
                "kind": e.kind.value,
                "signature": e.signature,
                "line": e.line,
                "console_line": e.number,
            }
            for e in report.events[:20]
        ],
        "qemu": qemu_cmdline,
        "console_lines": report.lines,
    }
    if report.untrusted_count:
        detail["untrusted_markers"] = {
            "count": report.untrusted_count,
            "first": list(report.untrusted),
        }
    skip = Outcome(Status.SKIP, "boot failed")
    crash = report.crash_summary()
    if crash is not None:
        return _crashed(report, crash, detail, tests_requested)
    if report.lines == 0 or not report.last_line:
        return _no_output(detail, timed_out, timeout, qemu_rc, qemu_messages, qemu_cmdline), skip
    ended = report.done_rc is not None
    if qemu_rc not in (0, None) and not ended:
        said = qemu_messages.strip().splitlines()
        why = f": {said[0][:200]}" if said else ""
        summary = f"QEMU exited {qemu_rc}{why}; last console line: {report.last_line}"
        if not report.booted:
            return Outcome(Status.ERROR, summary, detail, cause=Cause.INFRASTRUCTURE), skip
        tests = {"tests": [t.as_dict() for t in report.tests]}
        died = Outcome(Status.ERROR, summary, tests, cause=Cause.INFRASTRUCTURE)
        return _boot_outcome(report, detail), died
    if not report.booted:
        return _not_booted(report, detail, timed_out, timeout), skip
    boot = _boot_outcome(report, detail)
    if not ended:
        return boot, _unfinished(report, timed_out, timeout)
    return boot, _test_outcome(report, tests_requested)


def _crashed(
    report: ConsoleReport, crash: str, detail: dict[str, Any], tests_requested: bool
) -> tuple[Outcome, Outcome]:
    boot = Outcome(Status.FAIL, crash, detail)
    if not report.booted:
        return boot, Outcome(Status.SKIP, "boot failed")
    if report.done_rc is None:
        tests = {"tests": [t.as_dict() for t in report.tests]}
        return boot, Outcome(Status.FAIL, f"kernel died during the tests: {crash}", tests)
    return boot, _test_outcome(report, tests_requested)


def _not_booted(
    report: ConsoleReport, detail: dict[str, Any], timed_out: bool, timeout: float
) -> Outcome:
    if timed_out:
        detail["timeout"] = {"point": "boot", "limit": timeout}
        summary = (
            f"no {BOOT_OK} marker within {timeout:g}s (our timeout); "
            f"last console line: {report.last_line}"
        )
        return Outcome(Status.ERROR, summary, detail, cause=Cause.INFRASTRUCTURE)
    summary = f"kernel stopped before init ran; last console line: {report.last_line}"
    return Outcome(Status.FAIL, summary, detail)


def _unfinished(report: ConsoleReport, timed_out: bool, timeout: float) -> Outcome:
    tests: dict[str, Any] = {"tests": [t.as_dict() for t in report.tests]}
    if timed_out:
        tests["timeout"] = {"point": "tests", "limit": timeout}
        summary = (
            f"tests did not finish within {timeout:g}s (our timeout, no verdict); "
            f"last console line: {report.last_line}"
        )
        return Outcome(Status.ERROR, summary, tests, cause=Cause.INFRASTRUCTURE)
    summary = f"tests did not finish (the guest stopped); last console line: {report.last_line}"
    return Outcome(Status.FAIL, summary, tests)


def _boot_outcome(report: ConsoleReport, detail: dict[str, Any]) -> Outcome:
    """A boot that reached its marker without a crash: ``warn`` with the first report, or pass."""
    warning = report.first_warning()
    if warning is not None:
        return Outcome(Status.WARN, warning.line, detail)
    return Outcome(Status.PASS, "booted", detail)


def _no_output(
    detail: dict[str, Any],
    timed_out: bool,
    timeout: float,
    qemu_rc: int | None,
    qemu_messages: str,
    qemu_cmdline: str,
) -> Outcome:
    why = f"timed out after {timeout:g}s" if timed_out else f"QEMU exited {qemu_rc}"
    said = qemu_messages.strip().splitlines()
    if said:
        why += f": {said[0][:200]}"
    if timed_out:
        detail["timeout"] = {"point": "boot", "limit": timeout}
    summary = f"no console output ({why}); QEMU: {qemu_cmdline}"
    return Outcome(Status.ERROR, summary, detail, cause=Cause.INFRASTRUCTURE)


def _test_outcome(report: ConsoleReport, tests_requested: bool) -> Outcome:
    detail: dict[str, Any] = {"tests": [t.as_dict() for t in report.tests], "rc": report.done_rc}
    if not tests_requested:
        return Outcome(Status.SKIP, "no smoke tests", detail)
    if report.errors:
        detail["errors"] = list(report.errors)
        return Outcome(Status.FAIL, f"test output does not parse: {report.errors[0]}", detail)
    counts = {
        s: sum(1 for t in report.tests if t.status is s)
        for s in (Status.PASS, Status.FAIL, Status.SKIP)
    }
    tally = (
        f"{counts[Status.PASS]} passed, {counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
    )
    failed = [t for t in report.tests if t.status is Status.FAIL]
    if failed:
        first = failed[0]
        msg = f": {first.message}" if first.message else ""
        return Outcome(Status.FAIL, f"{first.name} failed{msg} ({tally})", detail)
    if report.done_rc != 0:
        return Outcome(Status.FAIL, f"tests/run exited {report.done_rc} ({tally})", detail)
    if not report.tests:
        return Outcome(Status.FAIL, "tests/run reported no KTRACK-TEST line", detail)
    if counts[Status.PASS] == 0:
        return Outcome(Status.SKIP, f"every test skipped ({tally})", detail)
    return Outcome(Status.PASS, tally, detail)
