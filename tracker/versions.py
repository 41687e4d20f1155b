"""Kernel version numbers: parse every form kernel.org uses, order them, name their series.

Forms: ``6.1`` (mainline, same as ``6.1.0``), ``6.1.12`` (stable), ``6.12-rc3`` (release
candidate), ``2.6.32.71`` (2.6-era stable), ``next-20240521`` (linux-next snapshot). A leading
``v`` or ``linux-`` (as in git tags and tarball names) is accepted.

Order: ``6.12-rc3 < 6.12 < 6.12.1 < 6.13-rc1``; a release candidate sorts before the release it
leads to (unlike ``sort -V``). linux-next snapshots sort after every numbered release, by date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from functools import total_ordering

from tracker.errors import UserError

_NUMBERED = re.compile(r"^(\d{1,4})\.(\d{1,4})((?:\.\d{1,6}){0,2})(?:-rc(\d{1,3}))?$")
_NEXT = re.compile(r"^next-(\d{8})$")


class Moniker(Enum):
    """What kind of release a version is, as kernel.org names it."""

    MAINLINE = "mainline"
    STABLE = "stable"
    RC = "rc"
    NEXT = "linux-next"


@total_ordering
@dataclass(frozen=True)
class KernelVersion:
    """A parsed kernel version. Build with :meth:`parse`."""

    numbers: tuple[int, ...]  # series numbers then sublevel; mainline has sublevel 0
    rc: int | None = None
    next_date: str | None = None

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        raw = text.strip() if isinstance(text, str) else ""
        s = raw
        for prefix in ("linux-", "v"):
            if s.startswith(prefix):
                s = s[len(prefix) :]
        m = _NEXT.match(s)
        if m:
            return cls(numbers=(), next_date=m.group(1))
        m = _NUMBERED.match(s)
        if not m:
            raise UserError(
                f"not a kernel version: {raw!r}",
                hint="expected forms like 6.1, 6.1.12, 6.12-rc3, 2.6.32.71 or next-20240521",
            )
        major, minor = int(m.group(1)), int(m.group(2))
        rest = [int(x) for x in m.group(3).split(".")[1:]]
        width = 3 if major < 3 else 2  # series: 2.6.32 / 6.1
        nums = [major, minor, *rest]
        if len(nums) > width + 1:
            raise UserError(f"not a kernel version: {raw!r}", hint="too many components")
        if major >= 3 and len(nums) > 3:
            raise UserError(f"not a kernel version: {raw!r}", hint="too many components")
        while len(nums) < width + 1:
            nums.append(0)
        rc = int(m.group(4)) if m.group(4) is not None else None
        return cls(numbers=tuple(nums), rc=rc)

    @classmethod
    def try_parse(cls, text: str) -> KernelVersion | None:
        try:
            return cls.parse(text)
        except UserError:
            return None

    @property
    def is_next(self) -> bool:
        return self.next_date is not None

    @property
    def series(self) -> str:
        """``6.1`` for 6.1.12, ``2.6.32`` for 2.6.32.71, ``next`` for linux-next."""
        if self.is_next:
            return "next"
        return ".".join(str(n) for n in self.numbers[:-1])

    @property
    def sublevel(self) -> int:
        return 0 if self.is_next else self.numbers[-1]

    @property
    def moniker(self) -> Moniker:
        if self.is_next:
            return Moniker.NEXT
        if self.rc is not None:
            return Moniker.RC
        return Moniker.STABLE if self.sublevel else Moniker.MAINLINE

    @property
    def is_signed_release(self) -> bool:
        """kernel.org signs tarballs of releases; rc and next snapshots are unsigned."""
        return self.moniker in (Moniker.MAINLINE, Moniker.STABLE)

    @property
    def tag(self) -> str:
        """The upstream git tag: ``v6.1``, ``v6.1.12``, ``v6.12-rc3``, ``next-20240521``."""
        return str(self) if self.is_next else f"v{self}"

    def sort_key(self) -> tuple[int, tuple[int, ...], int, int, str]:
        if self.is_next:
            return (1, (), 0, 0, self.next_date or "")
        return (0, self.numbers, 0 if self.rc is not None else 1, self.rc or 0, "")

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, KernelVersion):
            return NotImplemented
        return self.sort_key() < other.sort_key()

    def __str__(self) -> str:
        if self.is_next:
            return f"next-{self.next_date}"
        nums = list(self.numbers)
        if nums[-1] == 0:
            nums.pop()
        text = ".".join(str(n) for n in nums)
        if self.rc is not None:
            text += f"-rc{self.rc}"
        return text


def parse(text: str) -> KernelVersion:
    return KernelVersion.parse(text)


def sort_versions(texts: list[str]) -> list[str]:
    return [str(v) for v in sorted(KernelVersion.parse(t) for t in texts)]


_CLAUSE = re.compile(r"^(>=|<=|==|=|>|<)?\s*(\S+)$")


@dataclass(frozen=True)
class KernelSpec:
    """Which releases a run or a patch set tracks.

    Comma-separated clauses. Comparisons (``>=6.1``, ``<6.13``) must all hold; exact versions
    (``6.1.12``) and series wildcards (``6.1.*``) are alternatives, of which one must hold when any
    is given. ``all`` (or an empty spec) takes every release. ``latest`` keeps, of the releases
    the other clauses take, only the newest of each series (the release a user of that stable
    line runs; what a scheduled CI matrix usually covers). Examples: ``>=6.1``, ``6.1.*,6.12.*``,
    ``>=6.1,<6.13``, ``>=6.1,latest``.
    """

    text: str
    bounds: tuple[tuple[str, KernelVersion], ...] = ()
    exact: tuple[KernelVersion, ...] = ()
    series: tuple[str, ...] = ()
    latest: bool = False
    every: bool = False  # "all" was written (with "latest": every release, newest per series)

    @classmethod
    def parse(cls, text: str) -> KernelSpec:
        bounds: list[tuple[str, KernelVersion]] = []
        exact: list[KernelVersion] = []
        series: list[str] = []
        latest = every = False
        for raw in text.split(","):
            clause = raw.strip()
            if not clause:
                continue
            if clause == "all":
                every = True
                continue
            if clause == "latest":
                latest = True
                continue
            m = _CLAUSE.match(clause)
            if not m:
                raise UserError(f"bad kernel spec clause {clause!r} in {text!r}")
            op, value = m.group(1), m.group(2)
            if value.endswith((".*", ".x")) and not op:
                series.append(str(KernelVersion.parse(value[:-2] + ".0").series))
                continue
            version = KernelVersion.parse(value)
            if op in (None, "=", "=="):
                exact.append(version)
            else:
                bounds.append((op, version))
        return cls(
            text=text,
            bounds=tuple(bounds),
            exact=tuple(exact),
            series=tuple(series),
            latest=latest,
            every=every,
        )

    def matches(self, version: KernelVersion) -> bool:
        for op, bound in self.bounds:
            ok = {
                ">=": version >= bound,
                ">": version > bound,
                "<=": version <= bound,
                "<": version < bound,
            }[op]
            if not ok:
                return False
        if self.exact or self.series:
            return version in self.exact or version.series in self.series
        return True

    @property
    def only_latest(self) -> bool:
        """``latest`` and nothing else: narrows another spec rather than replacing it."""
        return self.latest and not (self.every or self.bounds or self.exact or self.series)

    def select(self, versions: Iterable[KernelVersion]) -> list[KernelVersion]:
        """The matching versions, in their given order; with ``latest``, the newest per series."""
        chosen = [v for v in versions if self.matches(v)]
        if not self.latest:
            return chosen
        newest: dict[str, KernelVersion] = {}
        for v in chosen:
            if v.series not in newest or newest[v.series] < v:
                newest[v.series] = v
        keep = set(newest.values())
        return [v for v in chosen if v in keep]
