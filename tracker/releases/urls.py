"""Which URLs a feed may send ktrack to: only those under the feed's own root, or on a host its
settings list (``allowed_hosts``). Everything a feed's documents name (``releases.json``'s
``source`` and ``pgp``, catalog rows written from them) passes :func:`confine` before a byte is
fetched. The path is normalised first: percent-encoding decoded, ``.`` dropped, doubled slashes
collapsed; a ``..`` anywhere is refused rather than resolved.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

from tracker.errors import InfraError


class ForeignURL(InfraError):
    """A URL outside the feed's root and its allowed hosts (the feed is not trusted there)."""


def _host(parts: object) -> str:
    netloc = getattr(parts, "netloc", "")
    return netloc.rsplit("@", 1)[-1].lower()


def normalise(url: str) -> str:
    """``url`` with its path decoded and normalised; ForeignURL for ``..``, NULs, backslashes."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if any(c in path for c in "\0\\\r\n") or any(s == ".." for s in path.split("/")):
        raise ForeignURL(f"refused URL with a path that climbs or hides: {url!r}")
    segments = [s for s in path.split("/") if s not in ("", ".")]
    clean = "/" + "/".join(segments) + ("/" if path.endswith("/") and segments else "")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), quote(clean), parts.query, ""))


def confine(url: str, root: str, allowed_hosts: tuple[str, ...] = (), *, what: str = "") -> str:
    """``url`` normalised when it lies under ``root`` (or on an allowed http(s) host); else a
    ForeignURL naming it, before anything is fetched."""
    label = f"{what}: " if what else ""
    try:
        target, base = urlsplit(normalise(url)), urlsplit(normalise(root.rstrip("/") + "/"))
    except ValueError as exc:  # urlsplit: a malformed port or bracket
        raise ForeignURL(f"{label}refused malformed URL {url!r}") from exc
    if target.scheme in ("http", "https") and _host(target) in allowed_hosts:
        return urlunsplit(target)
    if (
        target.scheme == base.scheme
        and _host(target) == _host(base)
        and target.path.startswith(base.path)
    ):
        return urlunsplit(target)
    hint = "list its host in the feed's allowed_hosts to trust it" if target.netloc else None
    raise ForeignURL(f"{label}refused URL outside the feed's root {root!r}: {url!r}", hint=hint)
