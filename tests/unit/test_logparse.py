"""Compiler and linker diagnostics from kernel build logs (synthetic lines and real logs)."""

from __future__ import annotations

from pathlib import Path

from tracker.build.logparse import Severity, normalise_path, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"


def test_gcc_error_and_warning_with_absolute_and_relative_paths() -> None:
    text = (
        "  CC      init/main.o\n"
        "/w/src/init/main.c:1490:29: error: expected expression before ';' token\n"
        " 1490 |  int ktrack_broken = ;\n"
        "../kernel/fork.c:12: warning: \x1b[01;35mfoo\x1b[m\n"
        "In file included from ../include/linux/kernel.h:1:\n"
        "make[2]: *** [../scripts/Makefile.build:250: init/main.o] Error 1\n"
    )
    log = parse(text, src=Path("/w/src"), out=Path("/w/out"))
    (err,) = log.errors
    assert (err.file, err.line, err.column, err.message, err.log_line) == (
        "init/main.c", 1490, 29, "expected expression before ';' token", 2,
    )  # fmt: skip
    (warn,) = log.warnings
    assert (warn.severity, warn.file, warn.line, warn.column) == (
        Severity.WARNING, "kernel/fork.c", 12, None,
    )  # fmt: skip
    assert warn.message == "foo"
    assert log.make_errors == ("make[2]: *** [../scripts/Makefile.build:250: init/main.o] Error 1",)
    assert log.infra is None


def test_fatal_error_counts_as_error_and_duplicates_collapse() -> None:
    line = "../drivers/x.c:3:10: fatal error: linux/nope.h: No such file or directory\n"
    log = parse(line * 2)
    assert [e.describe() for e in log.errors] == [
        "drivers/x.c:3: linux/nope.h: No such file or directory"
    ]


def test_linker_errors() -> None:
    text = (
        "  LD      vmlinux.o\n"
        "ld: vmlinux.o: in function `kernel_init':\n"
        "main.c:(.ref.text+0x5a): undefined reference to `ktrack_missing'\n"
        "ld: init/main.o:(.data+0x0): multiple definition of `foo'; kernel/a.o:(.data+0x0): first defined here\n"
        "make[1]: *** [Makefile:1250: vmlinux] Error 1\n"
    )
    log = parse(text)
    assert [(e.file, e.message) for e in log.errors] == [
        ("main.c", "undefined reference to `ktrack_missing'"),
        ("init/main.o", "multiple definition of `foo'; kernel/a.o:(.data+0x0): first defined here"),
    ]


def test_infrastructure_lines_are_flagged() -> None:
    log = parse(
        "cc1: out of memory allocating 65536 bytes\ngcc: fatal error: Killed signal terminated program cc1\n"
    )
    assert log.infra is not None
    assert (log.infra.signature.name, log.infra.line, log.infra.number) == (
        "memory", "cc1: out of memory allocating 65536 bytes", 1,
    )  # fmt: skip


def test_describe_names_the_touching_patch() -> None:
    (err,) = parse("../fs/proc/base.c:7:1: error: boom\n").errors
    assert err.describe({"fs/proc/base.c": "0002-proc.patch"}) == (
        "fs/proc/base.c:7: boom (touched by 0002-proc.patch)"
    )
    assert err.describe({}) == "fs/proc/base.c:7: boom"


def test_normalise_path() -> None:
    assert normalise_path("/w/out/include/generated/x.h", Path("/w/src"), Path("/w/out")) == (
        "include/generated/x.h"
    )
    assert normalise_path("../../a/b.c") == "a/b.c"
    assert normalise_path("/elsewhere/x.c", Path("/w/src")) == "/elsewhere/x.c"


def test_relative_paths_resolve_from_the_o_dir() -> None:
    src, out = Path("/w/job/src"), Path("/w/job/out")
    assert normalise_path("../src/init/main.c", src, out) == "init/main.c"
    assert (
        normalise_path("./include/generated/autoconf.h", src, out) == "include/generated/autoconf.h"
    )
    assert normalise_path("init/main.c", src, out) == "init/main.c"


def test_real_compiler_error_log() -> None:
    """A real 6.1 tinyconfig build with a syntax error in init/main.c (ccache, O= out of tree)."""
    text = (FIXTURES / "build-compile-error.log").read_text()
    log = parse(text, src=Path("/work/job/src"), out=Path("/work/job/out"))
    assert [e.describe({"init/main.c": "0001-x.patch"}) for e in log.errors] == [
        "init/main.c:1488: expected expression before \u2018;\u2019 token (touched by 0001-x.patch)"
    ]
    assert [w.location() for w in log.warnings] == ["init/main.c:1488"]
    assert log.errors[0].log_line == 114
    assert log.make_errors[-1] == "make: *** [Makefile:250: __sub-make] Error 2"
    assert log.infra is None
