"""What a kernel says on its console when something went wrong: one table, in one place.

Each ``Signature`` names a kernel report by the first line the kernel prints for it (formats
taken from the 6.1 sources: ``kernel/panic.c``, ``lib/bug.c``, ``arch/x86/mm/fault.c``,
``mm/kasan/report.c``, ``kernel/rcu/tree_stall.h``, ``kernel/hung_task.c``, ``lib/ubsan.c``,
``lib/list_debug.c``, ``kernel/locking/lockdep.c``). Its ``kind`` decides the boot verdict:
panic, oops, BUG and KASAN are ``fail``; WARNING, RCU stall, hung task, UBSAN, list corruption
and lockdep reports are ``warn``. The first signature that matches a line wins, so the specific
ones (lockdep's ``BUG: MAX_LOCKDEP_ENTRIES too low!``, ``BUG: KASAN: ...``) come before the
general ``BUG:``. ``tests/fixtures/logs/signature-<name>.log`` holds a console log for each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracker.vocab import OrderedEnum, Status


class EventKind(OrderedEnum):
    """Kernel reports on the console, by severity (worst last): the ``warn`` kinds, then the
    ``fail`` kinds."""

    WARNING = "warning"
    LOCKDEP = "lockdep"
    LIST_CORRUPTION = "list-corruption"
    UBSAN = "ubsan"
    HUNG_TASK = "hung-task"
    RCU_STALL = "rcu-stall"
    BUG = "bug"
    KASAN = "kasan"
    OOPS = "oops"
    PANIC = "panic"

    @property
    def status(self) -> Status:
        """The boot status this report leads to."""
        return Status.FAIL if self in _CRASHES else Status.WARN


_CRASHES = frozenset({EventKind.BUG, EventKind.KASAN, EventKind.OOPS, EventKind.PANIC})


@dataclass(frozen=True)
class Signature:
    """One kernel report: a unique name, its kind, and the pattern of its first line (matched
    against a console line without its timestamp)."""

    name: str
    kind: EventKind
    pattern: re.Pattern[str]


def _sig(name: str, kind: EventKind, regex: str) -> Signature:
    return Signature(name, kind, re.compile(regex))


SIGNATURES: tuple[Signature, ...] = (
    _sig("panic", EventKind.PANIC, r"Kernel panic - not syncing"),
    _sig("oops", EventKind.OOPS, r"\bOops(?: -)?: |Internal error: Oops"),
    _sig("general-protection", EventKind.OOPS, r"general protection fault"),
    _sig("kasan", EventKind.KASAN, r"\bBUG: KASAN: |^KASAN: \S+ in range "),
    # lockdep says "BUG:" where it turns itself off, or for an unregistered key: a report, not
    # a crash
    _sig(
        "lockdep-limit",
        EventKind.LOCKDEP,
        r"^BUG: (?:MAX_\w+ too low!|key \S+ has not been registered!|looking up invalid subclass)"
        r"|^\[ BUG: Invalid wait context \]",
    ),
    _sig("kernel-bug", EventKind.BUG, r"\bkernel BUG at "),
    _sig("bug", EventKind.BUG, r"^BUG: |\bBUG: (?:kernel NULL pointer|unable to handle)"),
    _sig("unable-to-handle", EventKind.BUG, r"^Unable to handle kernel "),
    _sig("rcu-stall", EventKind.RCU_STALL, r"^(?:rcu: )?INFO: \S+ (?:self-)?detected stalls?\b"),
    _sig("hung-task", EventKind.HUNG_TASK, r"^INFO: task \S+ blocked for more than \d+ seconds"),
    _sig("ubsan", EventKind.UBSAN, r"^UBSAN: \S+ in "),
    _sig("list-add-corruption", EventKind.LIST_CORRUPTION, r"\blist_add corruption[.,] "),
    _sig("list-del-corruption", EventKind.LIST_CORRUPTION, r"\blist_del corruption[.,] "),
    _sig(
        "lockdep",
        EventKind.LOCKDEP,
        r"^WARNING: (?:possible circular locking dependency detected|inconsistent lock state"
        r"|possible recursive locking detected|suspicious RCU usage"
        r"|possible irq lock inversion dependency detected|\S+-safe -> \S+-unsafe lock order"
        r"|bad unlock balance detected!|held lock freed!|lock held when returning to user space!"
        r"|Nested lock was not taken|\S+/\d+ still has locks held!|chain_key collision"
        r"|bad contention detected!)",
    ),
    _sig("warning", EventKind.WARNING, r"^WARNING: (?:CPU: \d+ PID: \d+ at |.*\bat\b)"),
)


def match(line: str) -> Signature | None:
    """The first signature whose pattern matches ``line`` (no timestamp), or None."""
    for signature in SIGNATURES:
        if signature.pattern.search(line):
            return signature
    return None
