"""Find compiler and linker diagnostics in a kernel build log.

Paths in the log are as the compiler saw them: absolute under the source tree, relative to the
O= directory (``../init/main.c``) or generated files in the O= directory. ``parse`` returns them
relative to the source tree when it can, so they can be matched with the files a patch touched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tracker.build import signatures


class Severity(Enum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Diagnostic:
    """One compiler or linker message."""

    severity: Severity
    file: str  # relative to the source tree when possible
    line: int | None
    column: int | None
    message: str
    log_line: int  # 1-based line number in the log

    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}"

    def describe(self, touched: Mapping[str, str] | None = None) -> str:
        """``file:line: message`` plus ``(touched by PATCH)`` when a patch touched the file."""
        text = f"{self.location()}: {self.message}"
        patch = (touched or {}).get(self.file)
        if patch:
            text += f" (touched by {patch})"
        return text


@dataclass(frozen=True)
class BuildLog:
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]
    make_errors: tuple[str, ...]  # "make[2]: *** [...] Error 1" lines
    infra: signatures.Match | None  # the first line showing our infrastructure failed

    @property
    def first_error(self) -> Diagnostic | None:
        return self.errors[0] if self.errors else None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# gcc/clang: "path:line:col: error: message" (col optional); "fatal error" counts as error.
_GCC = re.compile(
    r"^(?P<file>[^\s:][^:]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s+"
    r"(?P<sev>fatal error|error|warning):\s+(?P<msg>.*)$"
)
# ld: "path:line: undefined reference to `x'" or "ld: file.o: in function ..." follow-ups
_LD_REF = re.compile(
    r"^(?:\S*ld(?:\.bfd)?:\s+)?(?P<file>[^\s:][^:]*?):(?:(?P<line>\d+):)?(?:\(\S+\):)?\s*"
    r"(?P<msg>(?:undefined reference to|multiple definition of|relocation truncated).*)$"
)
_LD_ERR = re.compile(r"^\S*ld(?:\.bfd)?: (?P<msg>.*(?:error|cannot find|undefined).*)$")
_MAKE_ERR = re.compile(r"^make(?:\[\d+\])?: \*\*\* .*$")


def normalise_path(path: str, src: Path | None = None, out: Path | None = None) -> str:
    """A log path relative to the source tree (or to O= for generated files).

    Relative paths are as the compiler saw them from the O= dir (make runs there), e.g.
    ``../src/init/main.c`` when ccache's base dir made the source path relative.
    """
    p = path.strip()
    candidates = [p]
    if out is not None and not os.path.isabs(p):
        candidates.insert(0, os.path.normpath(os.path.join(os.fspath(out), p)))
    for c in candidates:
        for base in (src, out):
            if base is None:
                continue
            b = os.fspath(base).rstrip("/") + "/"
            if c.startswith(b):
                return c[len(b) :]
    if os.path.isabs(p):
        return p
    norm = os.path.normpath(p)
    while norm.startswith("../"):
        norm = norm[3:]
    return norm


def parse(
    text: str,
    *,
    src: Path | None = None,
    out: Path | None = None,
) -> BuildLog:
    """Every diagnostic in ``text``, in log order."""
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    make_errors: list[str] = []
    seen: set[tuple[str, str, int | None, str]] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = _ANSI.sub("", raw).rstrip()
        m = _GCC.match(line)
        if m:
            sev = Severity.WARNING if m["sev"] == "warning" else Severity.ERROR
            diag = Diagnostic(
                severity=sev,
                file=normalise_path(m["file"], src, out),
                line=int(m["line"]),
                column=int(m["col"]) if m["col"] else None,
                message=m["msg"].strip(),
                log_line=number,
            )
        elif (m := _LD_REF.match(line)) and not line.startswith("make"):
            diag = Diagnostic(
                severity=Severity.ERROR,
                file=normalise_path(m["file"], src, out),
                line=int(m["line"]) if m["line"] else None,
                column=None,
                message=m["msg"].strip(),
                log_line=number,
            )
        elif m := _LD_ERR.match(line):
            diag = Diagnostic(
                severity=Severity.ERROR,
                file="(link)",
                line=None,
                column=None,
                message=m["msg"].strip(),
                log_line=number,
            )
        else:
            if _MAKE_ERR.match(line):
                make_errors.append(line)
            continue
        key = (diag.severity.value, diag.file, diag.line, diag.message)
        if key in seen:
            continue
        seen.add(key)
        (errors if diag.severity is Severity.ERROR else warnings).append(diag)
    return BuildLog(
        errors=tuple(errors),
        warnings=tuple(warnings),
        make_errors=tuple(make_errors),
        infra=signatures.find(text),
    )
