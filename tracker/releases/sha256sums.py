"""kernel.org's ``sha256sums.asc``: a PGP clear-signed list of ``<sha256>  <file name>`` lines."""

from __future__ import annotations

import re

SUMS = "sha256sums.asc"
_LINE = re.compile(r"^([0-9a-fA-F]{64})[ \t]+\*?([^\s/][^/]*?)\s*$")


def clearsigned_body(text: str) -> str:
    """The signed text of a clear-signed message (dash-escaping undone); the text if unsigned."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "-----BEGIN PGP SIGNED MESSAGE-----":
        return text
    i = 1
    while i < len(lines) and lines[i].strip():  # armor headers ("Hash: SHA256") up to a blank
        i += 1
    body: list[str] = []
    for line in lines[i + 1 :]:
        if line.startswith("-----BEGIN PGP SIGNATURE-----"):
            break
        body.append(line[2:] if line.startswith("- ") else line)
    return "\n".join(body)


def parse(text: str) -> dict[str, str]:
    """``{file name: lowercase sha256}``; lines that are not checksums are ignored.

    A name listed twice with two different sums is dropped: an ambiguous sum verifies nothing.
    """
    return parse_checked(text)[0]


def parse_checked(text: str) -> tuple[dict[str, str], set[str]]:
    """:func:`parse`, and the names it dropped for conflicting sums (they must be refused)."""
    out: dict[str, str] = {}
    bad: set[str] = set()
    for line in clearsigned_body(text).splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        digest, name = m.group(1).lower(), m.group(2)
        if name in out and out[name] != digest:
            bad.add(name)
        out[name] = digest
    for name in bad:
        del out[name]
    return out, bad
