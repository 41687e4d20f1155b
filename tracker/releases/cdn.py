"""The kernel.org download layout, shared by the ``kernelorg`` and ``mirror`` feeds.

``<root>/v6.x/linux-6.1.12.tar.xz`` (+ ``.tar.sign``, + ``sha256sums.asc`` in the folder);
2.6-era releases in ``v2.6/`` and ``v2.6/longterm/v2.6.32/``. The root is ``pub/linux/kernel/`` of
a kernel.org-shaped site, or a mirror's folder, over http(s) (an autoindex page) or ``file://``.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urljoin

from tracker.errors import InfraError
from tracker.releases import pgp, sha256sums
from tracker.releases.release import Release
from tracker.sources.download import Downloader, NotFound, file_path
from tracker.versions import KernelVersion

Warn = Callable[[str], None]

_HREF = re.compile(
    r'<a\s[^>]*?href="([^"?#]+)"[^>]*>[^<]*</a>\s*(\d{1,2}-\w{3}-\d{4} \d{2}:\d{2})?', re.I
)
_SERIES_DIR = re.compile(r"^v\d+\.(x|\d+)/$")
_SUB_DIR = re.compile(r"^(longterm|testing|v\d+\.\d+(\.\d+)?)/$")
TARBALL = re.compile(r"^linux-(?P<version>[0-9][^/]*?)\.tar\.(?P<ext>xz|gz|bz2)$")
EXT_PREFERENCE = ("xz", "gz", "bz2")
SUMS = "sha256sums.asc"
MAX_DEPTH = 3


@dataclass(frozen=True)
class Entry:
    """A name in a folder listing (folders end with ``/``) and its date when the listing has one."""

    name: str
    modified: datetime | None = None


def parse_index(body: str) -> list[Entry]:
    """Entries of an autoindex page (nginx/Apache) or of a plain one-name-a-line listing."""
    if "<a" not in body.lower():
        return [Entry(line.strip()) for line in body.splitlines() if line.strip()]
    out: dict[str, Entry] = {}
    for m in _HREF.finditer(body):
        name = unquote(html.unescape(m.group(1)))
        if name.startswith(("/", "..", ".")) or "://" in name or name.count("/") > 1:
            continue
        if "/" in name and not name.endswith("/"):
            continue
        when = None
        if m.group(2):
            try:
                when = datetime.strptime(m.group(2), "%d-%b-%Y %H:%M").replace(tzinfo=UTC)
            except ValueError:
                when = None
        out[name] = Entry(name, when)
    return list(out.values())


def list_folder(dl: Downloader, url: str) -> list[Entry]:
    """The entries of the folder at ``url`` (which ends with ``/``)."""
    if url.startswith("file:"):
        path = file_path(url)
        try:
            with os.scandir(path) as it:
                return [
                    Entry(
                        e.name + "/" if e.is_dir() else e.name,
                        datetime.fromtimestamp(e.stat().st_mtime, UTC),
                    )
                    for e in it
                ]
        except FileNotFoundError as exc:
            raise NotFound(f"not found: {url}") from exc
        except OSError as exc:
            raise InfraError(f"cannot list {url}: {exc.strerror}") from exc
    return parse_index(dl.get_bytes(url).decode("utf-8", "replace"))


def releases_in_folder(
    url: str, entries: list[Entry], sums: dict[str, str], feed: str
) -> list[Release]:
    """One Release per version with a tarball in the folder (xz preferred over gz and bz2)."""
    names = {e.name: e for e in entries}
    best: dict[str, tuple[int, Entry]] = {}
    for e in entries:
        m = TARBALL.match(e.name)
        if not m:
            continue
        rank = EXT_PREFERENCE.index(m.group("ext"))
        key = m.group("version")
        if key not in best or rank < best[key][0]:
            best[key] = (rank, e)
    out = []
    for text, (_, e) in best.items():
        kv = KernelVersion.try_parse(text)
        if kv is None:
            continue
        sign = f"linux-{text}.tar.sign"
        has_sign = sign in names
        out.append(
            Release(
                version=kv,
                feed=feed,
                moniker=kv.moniker.value,
                released_at=e.modified,
                source_url=urljoin(url, e.name),
                pgp_url=urljoin(url, sign) if has_sign else None,
                signed=has_sign and kv.is_signed_release,
                sha256=sums.get(e.name),
            )
        )
    return out


def crawl(
    dl: Downloader, root: str, feed: str, warn: Warn, *, keyring: str | None = None
) -> list[Release]:
    """Every release under ``root`` (a folder holding ``vN.x/`` folders).

    With a ``keyring``, every ``sha256sums.asc`` must carry a good signature (InfraError if not).
    """
    root = root if root.endswith("/") else root + "/"
    found: dict[str, Release] = {}

    def visit(url: str, depth: int) -> None:
        entries = list_folder(dl, url)
        names = {e.name for e in entries}
        sums: dict[str, str] = {}
        if SUMS in names:
            try:
                data = dl.get_bytes(urljoin(url, SUMS))
            except NotFound:
                warn(f"{url}{SUMS} is listed but missing")
                data = b""
            if data and keyring:
                pgp.verify_clearsigned(data, keyring, f"{url}{SUMS}")
            sums = sha256sums.parse(data.decode("utf-8", "replace"))
        for rel in releases_in_folder(url, entries, sums, feed):
            if rel.sha256 is None:
                warn(f"{rel.source_url}: not in {url}{SUMS}; it cannot be verified")
            key = str(rel.version)
            found[key] = found[key].merged(rel) if key in found else rel
        if depth < MAX_DEPTH:
            for e in entries:
                if _SUB_DIR.match(e.name):
                    visit(urljoin(url, e.name), depth + 1)

    top = list_folder(dl, root)
    series = [e for e in top if _SERIES_DIR.match(e.name)]
    if not series:
        raise InfraError(f"{root}: no vN.x folders found; is this a kernel.org-shaped tree?")
    for e in series:
        visit(urljoin(root, e.name), 1)
    return list(found.values())
