"""Untrusted strings reach the terminal escaped and unparsed."""

from __future__ import annotations

import io

from rich.console import Console

from tracker.safetext import as_text, printable


def test_terminal_escapes_are_shown_not_sent() -> None:
    shown = printable("0001-\x1b]0;pwned\x07fix.patch")
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown == "0001-\\x1b]0;pwned\\x07fix.patch"


def test_c1_bidi_and_line_separators_are_escaped() -> None:
    shown = printable("a\x9bb\u202ec\u2028d\r\n")
    assert shown == "a\\x9bb\\u202ec\\u2028d\\x0d\\x0a"


def test_ordinary_text_in_any_script_is_kept() -> None:
    assert printable("fs/proc/base.c é 中文 ü") == "fs/proc/base.c é 中文 ü"


def test_invalid_utf8_bytes_are_shown_as_hex() -> None:
    assert printable(b"dir/\xff\xfename.c") == "dir/\\xff\\xfename.c"


def test_rich_markup_in_a_name_is_printed_as_it_is() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    console.print(as_text("[/bold]x.patch [link=http://evil]y[/link]"))
    assert out.getvalue().strip() == "[/bold]x.patch [link=http://evil]y[/link]"
