"""Untrusted strings on their way to a terminal: control characters shown escaped, no markup.

Patch names, paths, targets, commit subjects and log lines come from people we do not trust. A
terminal escape in one of them could retitle the window, hide text or forge a line; Rich markup
in one could raise or hide a hyperlink. Everything such a string shows goes through ``printable``
(or ``as_text`` for Rich), which keeps ordinary text (any script, any language) as it is.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.console import Console
from rich.text import Text

# Bidirectional overrides and isolates reorder what a reader sees ("Trojan Source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by "surrogateescape"
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: str | bytes, *, keep_tab: bool = False) -> str:
    """``value`` with every control character (C0, DEL, C1, line and paragraph separators,
    bidirectional controls, lone surrogates) written as a visible escape; bytes are decoded as
    UTF-8 and an invalid byte is shown as ``\\xNN``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    out: list[str] = []
    for ch in value:
        if ch == "\t" and keep_tab:
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def as_text(value: str | bytes, style: str = "") -> Text:
    """A Rich ``Text`` of ``printable(value)``: never parsed as markup."""
    return Text(printable(value), style=style)


def unsurrogate(value: str) -> str:
    """``value`` with each byte that was not UTF-8 (kept by ``surrogateescape`` when a name was
    decoded) written as ``\\xNN``: a string that encodes as UTF-8, for JSON, logs and databases.
    Everything else is kept (JSON escapes control characters itself)."""
    if value.isascii():
        return value
    return "".join(
        f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else ch for ch in value
    )


def printable_lines(value: str | bytes) -> str:
    """``printable`` line by line: newlines and tabs kept, everything else escaped."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    return "\n".join(printable(line, keep_tab=True) for line in value.split("\n"))


class SafeConsole(Console):
    """A Rich console for ktrack's commands: every plain string it renders (printed, a table
    cell, a title) is text, never markup or emoji codes, with control characters escaped.

    Code that builds ``Text`` itself must still use ``as_text`` for untrusted parts.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("emoji", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs["markup"] = False
        kwargs["emoji"] = False
        return super().render_str(printable_lines(text), **kwargs)
