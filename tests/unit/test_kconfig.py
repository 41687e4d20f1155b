"""Configure: merge of base, boot options and fragment; verification; reasons from Kconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_kbuild import fake_kernel

from tracker.arches.target import Target
from tracker.build import kconfig
from tracker.build.kconfig import (
    BOOT_OPTIONS,
    configure,
    explain,
    find_definitions,
    parse_config,
    parse_kconfig_file,
    render,
    requested_options,
    verify,
)
from tracker.errors import UserError
from tracker.sandbox import SandboxMode
from tracker.vocab import Status

X86 = Target.parse("x86_64:tinyconfig")


def test_parse_config_values_and_unset_lines() -> None:
    text = '# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=0x10\n\nCONFIG_A=m\n'
    assert parse_config(text) == {"A": "m", "B": "n", "C": '"x y"', "D": "0x10"}


def test_parse_config_rejects_garbage_naming_file_and_line() -> None:
    with pytest.raises(UserError, match=r"frag:2: not a Kconfig assignment"):
        parse_config("CONFIG_A=y\nA=y\n", origin="frag")


def test_render_round_trips() -> None:
    values = {"A": "y", "B": "n", "C": '"s"'}
    assert render(values) == 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="s"\n'
    assert parse_config(render(values)) == values


def test_fragment_overrides_boot_options() -> None:
    wanted = requested_options(X86, "# CONFIG_ACPI is not set\nCONFIG_FOO=y\n")
    assert wanted["ACPI"] == "n"
    assert wanted["FOO"] == "y"
    assert set(BOOT_OPTIONS["x86_64"]) <= set(wanted)


def test_verify_reports_lost_symbols_and_accepts_m_as_y_without_modules() -> None:
    final = {"A": "y", "C": "y"}
    assert verify({"A": "y", "B": "y", "C": "m", "D": "n"}, final) == [("B", "y", "n")]
    assert verify({"C": "m"}, {"C": "y", "MODULES": "y"}) == [("C", "m", "y")]


KCONFIG_TEXT = """\
menu "Things"
\tdepends on NET

config PLAIN
\tbool "plain"
\tdepends on PCI && \\
\t\t(ACPI || OF)
\tselect FOO
\thelp
\t  config NOT_THIS one, help text
\t  depends on NOTHING

if X86

config INSIDE_IF
\ttristate "inside"
\tdepends on FOO

endif
endmenu

config HIDDEN
\tbool
\tdefault y if PCI

menuconfig MENUISH
\tbool "menu"
"""


def test_parse_kconfig_file_reads_depends_enclosing_blocks_and_prompts() -> None:
    entries = {
        e.symbol: e
        for e in parse_kconfig_file(
            KCONFIG_TEXT, "drivers/Kconfig", ["PLAIN", "INSIDE_IF", "HIDDEN", "MENUISH"]
        )
    }
    plain = entries["PLAIN"]
    assert (plain.file, plain.line, plain.type, plain.has_prompt) == (
        "drivers/Kconfig",
        4,
        "bool",
        True,
    )
    assert [d.split() for d in plain.depends] == [["PCI", "&&", "(ACPI", "||", "OF)"]]
    assert plain.enclosing == ("NET",)
    assert entries["INSIDE_IF"].depends == ("FOO",)
    assert entries["INSIDE_IF"].enclosing == ("NET", "X86")
    assert entries["HIDDEN"].has_prompt is False and entries["HIDDEN"].enclosing == ()
    assert entries["MENUISH"].has_prompt is True
    assert "NOT_THIS" not in {e.symbol for e in parse_kconfig_file(KCONFIG_TEXT, "k", ["NOT_THIS"])}


def test_explain_names_unmet_dependencies_and_missing_symbols() -> None:
    (entry,) = parse_kconfig_file(KCONFIG_TEXT, "drivers/Kconfig", ["INSIDE_IF"])
    reason = explain("INSIDE_IF", [entry], {"NET": "y", "X86": "y"})
    assert reason == "drivers/Kconfig:15: depends on NET && X86 && FOO [FOO=n]"
    assert explain("NOPE", [], {}) == "no such symbol in this tree's Kconfig files"
    (hidden,) = parse_kconfig_file(KCONFIG_TEXT, "k", ["HIDDEN"])
    assert "has no prompt" in explain("HIDDEN", [hidden], {})


def test_find_definitions_walks_kconfig_files_only(tmp_path: Path) -> None:
    (tmp_path / "drivers").mkdir()
    (tmp_path / "drivers" / "Kconfig").write_text(KCONFIG_TEXT)
    (tmp_path / "drivers" / "notes.txt").write_text("config PLAIN\n\tdepends on BOGUS\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "Kconfig").write_text("config PLAIN\n\tdepends on BOGUS\n")
    found = find_definitions(tmp_path, ["PLAIN", "ABSENT"], skip=[tmp_path / "out"])
    assert [e.file for e in found["PLAIN"]] == ["drivers/Kconfig"]
    assert found["ABSENT"] == []


def _configure(tree: Path, tmp_path: Path, fragment: str | None, target: Target = X86):
    frag = None
    if fragment is not None:
        frag = tmp_path / "kconfig"
        frag.write_text(fragment)
    return configure(
        tree,
        tmp_path / "out",
        target,
        frag,
        log=tmp_path / "configure.log",
        ccache_dir=tmp_path / "ccache",
        sandbox_mode=SandboxMode.NONE,
    )


def test_configure_passes_when_every_request_survives(tmp_path: Path) -> None:
    tree = fake_kernel(tmp_path / "src", symbols='config FOO\n\tbool "foo"\n')
    outcome = _configure(tree, tmp_path, "CONFIG_FOO=y\n")
    assert outcome.status is Status.PASS, outcome.summary
    final = parse_config((tmp_path / "out" / ".config").read_text())
    assert final["FOO"] == "y" and final["ACPI"] == "y"
    assert outcome.artifacts["config"] == tmp_path / "out" / ".config"
    calls = (tmp_path / "out" / "make-calls").read_text().splitlines()
    assert calls == [
        "tinyconfig ARCH=x86_64 CC=ccache gcc LOCALVERSION=",
        "olddefconfig ARCH=x86_64 CC=ccache gcc LOCALVERSION=",
    ]


def test_configure_fails_naming_a_symbol_that_does_not_exist(tmp_path: Path) -> None:
    tree = fake_kernel(tmp_path / "src")
    outcome = _configure(tree, tmp_path, "CONFIG_KTRACK_NO_SUCH_THING=y\n")
    assert outcome.status is Status.FAIL
    assert outcome.summary == (
        "CONFIG_KTRACK_NO_SUCH_THING=y did not survive: no such symbol in this tree's Kconfig files"
    )
    assert "CONFIG_KTRACK_NO_SUCH_THING" in (tmp_path / "configure.log").read_text()


def test_configure_fails_with_the_unmet_dependency(tmp_path: Path) -> None:
    symbols = 'config NEEDY\n\tbool "needy"\n\tdepends on BASE\n\nconfig BASE\n\tbool "base"\n'
    tree = fake_kernel(tmp_path / "src", symbols=symbols)
    outcome = _configure(tree, tmp_path, "CONFIG_NEEDY=y\nCONFIG_OTHER_MISSING=y\n")
    assert outcome.status is Status.FAIL
    assert outcome.summary.startswith("CONFIG_NEEDY=y did not survive: Kconfig:")
    assert "depends on BASE [BASE=n]" in outcome.summary
    assert outcome.summary.endswith("(and 1 more)")
    assert [m["symbol"] for m in outcome.detail["missing"]] == [
        "CONFIG_NEEDY",
        "CONFIG_OTHER_MISSING",
    ]


def test_configure_from_a_config_file_target(tmp_path: Path) -> None:
    tree = fake_kernel(tmp_path / "src", symbols='config FOO\n\tbool "foo"\n')
    base = tmp_path / "my.config"
    base.write_text("CONFIG_FOO=y\n")
    target = Target.parse("x86_64:my.config", base_dir=tmp_path)
    outcome = _configure(tree, tmp_path, None, target)
    assert outcome.status is Status.PASS
    assert parse_config((tmp_path / "out" / ".config").read_text())["FOO"] == "y"
    calls = (tmp_path / "out" / "make-calls").read_text().splitlines()
    assert [c.split()[0] for c in calls] == ["olddefconfig"]


def test_configure_missing_base_file_is_a_user_error(tmp_path: Path) -> None:
    tree = fake_kernel(tmp_path / "src")
    target = Target.parse("x86_64:/nonexistent/x.config")
    with pytest.raises(UserError, match="base config file not found"):
        _configure(tree, tmp_path, None, target)


def test_configure_without_make_is_an_error_not_a_fail(tmp_path: Path, monkeypatch) -> None:
    tree = fake_kernel(tmp_path / "src")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    outcome = _configure(tree, tmp_path, None)
    assert outcome.status is Status.ERROR
    assert "make" in outcome.summary


def test_boot_options_cover_reference_list() -> None:
    assert "ACPI" in kconfig.BOOT_OPTIONS["x86_64"] and "PCI" in kconfig.BOOT_OPTIONS["x86_64"]


def test_find_definitions_reads_only_the_target_arch(tmp_path: Path) -> None:
    for arch in ("x86", "mips"):
        (tmp_path / "arch" / arch).mkdir(parents=True)
        (tmp_path / "arch" / arch / "Kconfig").write_text(
            f'config SMP\n\tbool "smp"\n\tdepends on {arch.upper()}_SMP_OK\n'
        )
    found = find_definitions(tmp_path, ["SMP"], srcarch="x86")
    assert [e.file for e in found["SMP"]] == ["arch/x86/Kconfig"]
    assert len(find_definitions(tmp_path, ["SMP"])["SMP"]) == 2


def test_explain_does_not_blame_negated_dependencies() -> None:
    (entry,) = parse_kconfig_file(
        'config I915\n\ttristate "i915"\n\tdepends on DRM && PCI && !PREEMPT_RT\n', "k", ["I915"]
    )
    assert explain("I915", [entry], {"PCI": "y"}) == (
        "k:1: depends on DRM && PCI && !PREEMPT_RT [DRM=n]"
    )


def test_help_text_words_do_not_open_blocks() -> None:
    text = (
        'config A\n\tbool "a"\n\thelp\n\t  if you say Y here, things happen\n\n'
        '\t  menu "x" in prose\n\n'
        'config B\n\tbool "b"\n\tdepends on C\n'
    )
    (b,) = parse_kconfig_file(text, "k", ["B"])
    assert (b.line, b.depends, b.enclosing) == (8, ("C",), ())
