"""Lines in a configure or build log that show our infrastructure failed, not the patch set.

One table for both stages. A configure or build that failed with one of these lines is ``error``
(cause ``infrastructure``) whatever the control run says: the same job run again on a healthy host
may pass, so no verdict is recorded and the job is tried again.

| signature | lines it recognises (real tool output) |
| --- | --- |
| ``disk-full`` | ``...: No space left on device``, ``...: Disk quota exceeded`` |
| ``memory`` | ``...: Cannot allocate memory``, ``virtual memory exhausted``, ``cc1: out of memory ...``, ``fork: Resource temporarily unavailable`` |
| ``killed`` | gcc's ``Killed signal terminated program cc1``, ``ld terminated with signal 9``, make's ``Error 137`` / ``Killed``, a shell's ``12345 Killed`` |
| ``internal-compiler-error`` | ``internal compiler error: ...``, ``Please submit a full bug report`` (gcc and clang) |
| ``ccache`` | ``ccache: error: ...`` (a read-only, full or broken cache dir, a compiler it cannot find) |
| ``read-only`` | ``...: Read-only file system`` |
| ``missing-tool`` | a shell's ``gcc: not found`` / ``command not found``, make's ``flex: No such file or directory``, gcc's ``cannot execute 'cc1'`` -- only for the toolchain and the host tools Kbuild needs (a script the patch set forgot is its own failure, judged by the control) |

Our own timeout is not a log line: ``proc.run`` raises ``InfraError`` and the stage is ``error``.

A signature must look like a tool's message (the strerror text after a colon, a program name at
the start of the line): gcc quotes source lines around an error (``  42 |  pr_err("x: out of
memory")``) and a kernel comment may say "internal compiler error"; those lines are skipped, so a
patch set's real compile error is never mistaken for ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_LINE = 300

# host tools a kernel configure or build runs; a cross prefix (aarch64-linux-gnu-) is allowed
_TOOLS = (
    "gcc", "cc", "c\\+\\+", "g\\+\\+", "clang", "ld", "ld\\.bfd", "ld\\.lld", "ld\\.gold", "as",
    "ar", "nm", "objcopy", "objdump", "strip", "readelf", "ccache", "make", "gmake", "flex",
    "bison", "bc", "perl", "python3?", "openssl", "pahole", "cpio", "lz4", "lzop", "xz", "zstd",
    "gzip", "bzip2", "lzma", "awk", "gawk", "mawk", "sed", "tar", "rsync", "depmod", "kmod",
    "pkg-config", "hostname",
)  # fmt: skip
_TOOL = r"(?:[^\s:'\"]*/)?(?:[\w.]+-)*(?:" + "|".join(_TOOLS) + r")(?:-\d+(?:\.\d+)*)?"


@dataclass(frozen=True)
class Signature:
    """One kind of infrastructure failure and the log lines that show it."""

    name: str
    what: str  # how a summary names it: "disk full"
    pattern: re.Pattern[str]


SIGNATURES: tuple[Signature, ...] = (
    Signature(
        "disk-full",
        "disk full",
        re.compile(r":\s*'?(?:No space left on device|Disk quota exceeded)\b"),
    ),
    Signature(
        "memory",
        "out of memory",
        re.compile(
            r":\s*'?Cannot allocate memory\b|^virtual memory exhausted\b|"
            r"\bfork: (?:retry: )?Resource temporarily unavailable\b|"
            r"^(?:\S+: )+(?:fatal error: )?(?:virtual memory exhausted|out of memory\b)"
        ),
    ),
    Signature(
        "killed",
        "killed (out of memory or by a signal)",
        re.compile(
            r"Killed signal terminated program \S+|terminated with signal 9\b|"
            r"^g?make(?:\[\d+\])?: \*\*\* .*(?:Error 137|\] Killed)$|"
            r"^\S*sh: (?:line )?\d+: +\d+ Killed\b"
        ),
    ),
    Signature(
        "internal-compiler-error",
        "internal compiler error",
        re.compile(
            r"(?:^|: )internal compiler error(?::|$)|^please submit a (?:full )?bug report\b|"
            r"^\S*clang\S*: error: unable to execute command: |"
            r"^\S*clang\S*: error: clang frontend command failed (?:with exit code|due to signal)",
            re.I,
        ),
    ),
    Signature("ccache", "ccache failed", re.compile(r"^ccache: (?:error|FATAL):")),
    Signature("read-only", "read-only file system", re.compile(r":\s*'?Read-only file system\b")),
    Signature(
        "missing-tool",
        "a build tool is missing",
        re.compile(
            r"^\S*sh: (?:\d+: |line \d+: )?" + _TOOL + r": (?:command )?not found$|"
            r"^g?make(?:\[\d+\])?: "
            + _TOOL
            + r": (?:No such file or directory|Command not found)$|"
            r"cannot execute '[^']+': (?:execvp|posix_spawnp?): No such file or directory|"
            r"^ccache: error: Could not find compiler"
        ),
    ),
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# source lines gcc and clang quote under a diagnostic ("  42 |   code", "     |   ^~~")
_QUOTED = re.compile(r"^\s*\d*\s*\|")


@dataclass(frozen=True)
class Match:
    """The first line of a log that shows an infrastructure failure."""

    signature: Signature
    line: str  # the log line, stripped and cut to MAX_LINE characters
    number: int  # 1-based line number in the log

    def describe(self) -> str:
        """``disk full: head: error writing 'x': No space left on device``."""
        return f"{self.signature.what}: {self.line}"

    def to_json(self) -> dict[str, object]:
        return {"signature": self.signature.name, "line": self.line, "log_line": self.number}


def classify(line: str) -> Signature | None:
    """The signature one log line shows, if any (the first in table order)."""
    clean = _ANSI.sub("", line).rstrip()
    if not clean or clean[0].isspace() or _QUOTED.match(clean):
        return None
    for sig in SIGNATURES:
        if sig.pattern.search(clean):
            return sig
    return None


def find(text: str) -> Match | None:
    """The first line of ``text`` that shows an infrastructure failure, in log order."""
    for number, raw in enumerate(text.splitlines(), 1):
        sig = classify(raw)
        if sig is not None:
            line = _ANSI.sub("", raw).strip()
            return Match(sig, line[:MAX_LINE], number)
    return None
