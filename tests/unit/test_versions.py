"""Kernel version parsing and ordering, checked against GNU ``sort -V``."""

from __future__ import annotations

import random
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.errors import UserError
from tracker.versions import KernelSpec, KernelVersion, Moniker


def real_release_names() -> list[str]:
    names: list[str] = []
    for minor in range(0, 13):
        names.append(f"6.{minor}")
        names += [f"6.{minor}-rc{n}" for n in range(1, 8)]
        names += [f"6.{minor}.{n}" for n in range(1, 30, 3)]
    names += [f"6.1.{n}" for n in range(30, 200, 4)]
    names += (
        ["2.6.32"] + [f"2.6.32.{n}" for n in range(1, 72, 5)] + ["2.6.32-rc8", "2.6.33", "2.6.9"]
    )
    names += ["3.0", "3.0.1", "3.10", "3.10.108", "4.19.325", "5.10", "5.10.1", "5.4.290"]
    return names


def test_order_agrees_with_sort_v_with_rc_exception() -> None:
    names = real_release_names()
    assert len(names) > 300
    random.Random(7).shuffle(names)
    ours = [str(v) for v in sorted(KernelVersion.parse(n) for n in names)]
    # sort -V puts "6.12-rc3" after "6.12"; with "~" (which sorts before everything, as in Debian
    # versions) it orders rcs as we do. That substitution is the documented exception.
    text = "\n".join(n.replace("-rc", "~rc") for n in names) + "\n"
    gnu = subprocess.run(
        ["sort", "-V"], input=text, capture_output=True, text=True, check=True
    ).stdout
    assert ours == [n.replace("~rc", "-rc") for n in gnu.split()]


def test_documented_examples() -> None:
    p = KernelVersion.parse
    assert p("6.12-rc3") < p("6.12") < p("6.12.1") < p("6.13-rc1")
    assert p("6.1") == p("6.1.0") == p("v6.1") == p("linux-6.1")
    assert str(p("6.1.0")) == "6.1"
    assert p("2.6.32.71").series == "2.6.32"
    assert p("6.1.12").series == "6.1"
    assert p("6.9") < p("6.10")
    assert p("next-20240521") > p("7.0") and p("next-20240521") > p("next-20240520")


def test_monikers_and_tags() -> None:
    p = KernelVersion.parse
    assert p("6.1").moniker is Moniker.MAINLINE and p("6.1").is_signed_release
    assert p("6.1.3").moniker is Moniker.STABLE
    assert p("6.2-rc1").moniker is Moniker.RC and not p("6.2-rc1").is_signed_release
    assert p("next-20240521").moniker is Moniker.NEXT and not p("next-20240521").is_signed_release
    assert p("6.2-rc1").tag == "v6.2-rc1" and p("next-20240521").tag == "next-20240521"


@pytest.mark.parametrize(
    "bad", ["", "6", "six.one", "6.1.2.3", "6.1-rc", "v", "6..1", "next-2024", "6.1 " * 3]
)
def test_unparsable_versions_are_user_errors(bad: str) -> None:
    with pytest.raises(UserError, match="not a kernel version"):
        KernelVersion.parse(bad)


@given(st.text(max_size=40))
def test_parse_never_raises_anything_but_user_error(text: str) -> None:
    try:
        v = KernelVersion.parse(text)
    except UserError:
        return
    assert KernelVersion.parse(str(v)) == v


@given(
    st.lists(
        st.tuples(st.integers(2, 7), st.integers(0, 20), st.integers(0, 300)),
        min_size=2,
        max_size=20,
    )
)
def test_order_is_total_and_consistent(triples: list[tuple[int, int, int]]) -> None:
    versions = [
        KernelVersion.parse(f"{a}.{b}.{c}" if a >= 3 else f"2.6.{b}.{c}") for a, b, c in triples
    ]
    ordered = sorted(versions)
    assert all(x <= y for x, y in zip(ordered, ordered[1:], strict=False))


def test_kernel_spec() -> None:
    p = KernelVersion.parse
    spec = KernelSpec.parse(">=6.1,<6.13")
    assert spec.matches(p("6.1")) and spec.matches(p("6.12.9")) and not spec.matches(p("6.13"))
    assert spec.matches(p("6.13-rc1"))  # an rc sorts before its release
    alt = KernelSpec.parse("6.1.*,6.12.*")
    assert alt.matches(p("6.1.5")) and alt.matches(p("6.12")) and not alt.matches(p("6.6.1"))
    assert KernelSpec.parse("all").matches(p("2.6.32"))
    assert KernelSpec.parse("6.1.12").matches(p("6.1.12")) and not KernelSpec.parse(
        "6.1.12"
    ).matches(p("6.1.13"))
    with pytest.raises(UserError):
        KernelSpec.parse(">=banana")


def test_kernel_spec_latest_keeps_the_newest_of_each_series() -> None:
    p = KernelVersion.parse
    catalog = [p(v) for v in ("6.1", "6.1.170", "6.1.176", "6.6.60", "6.12-rc7", "6.12",
                              "6.12.117", "6.13-rc2", "next-20261120", "next-20261127")]  # fmt: skip
    latest = KernelSpec.parse(">=6.1,latest").select(catalog)
    assert [str(v) for v in latest] == [
        "6.1.176", "6.6.60", "6.12.117", "6.13-rc2", "next-20261127"
    ]  # fmt: skip
    # the other clauses choose first: the newest 6.1 below 6.1.176 is 6.1.170
    assert [str(v) for v in KernelSpec.parse("6.1.*,<6.1.176,latest").select(catalog)] == [
        "6.1.170"
    ]
    assert KernelSpec.parse(">=6.1").select(catalog) == [
        v for v in catalog if KernelSpec.parse(">=6.1").matches(v)
    ]
    assert KernelSpec.parse("latest").latest and not KernelSpec.parse("all").latest
