"""Untrusted strings on their way to a terminal: control characters shown escaped, no markup.

Patch names, paths, targets, commit subjects and log lines come from people we do not trust. A
terminal escape in one of them could retitle the window, hide text or forge a line; Rich markup
in one could raise or hide a hyperlink. Everything such a string shows goes through ``printable``
(or ``as_text`` for Rich), which keeps ordinary text (any script, any language) as it is.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text

# Bidirectional overrides and isolates reorder what a reader sees ("Trojan Source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def _escape_char(ch: str) -> str:
    code = ord(ch)
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
