"""Downloads: streaming, resumable (HTTP Range), retried with backoff, verified by sha256.

``http://``, ``https://`` and ``file://`` URLs. A file is written to ``NAME.part`` and renamed only
once complete and verified, so a file under its final name is always whole. A checksum mismatch
deletes the file and raises InfraError: it never becomes a verdict about a patch set.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from tracker.errors import InfraError, UserError

if TYPE_CHECKING:
    import requests

Progress = Callable[[int, int | None], None]
CHUNK = 1 << 20
READ_CHUNK = 1 << 16
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "ktrack (kernel patch compatibility tracker)"


class NotFound(InfraError):
    """The server answered 404/410, or the file:// path does not exist."""


_T = TypeVar("_T")


class ChecksumMismatch(InfraError):
    """The downloaded bytes do not match the published sha256."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 60.0  # seconds of silence before a read is abandoned

    def delays(self) -> list[float]:
        """The pause before each retry: exponential, capped (0.5, 1, 2, 4, ...)."""
        return [min(self.max_delay, self.base_delay * 2**i) for i in range(self.attempts - 1)]


@dataclass(frozen=True)
class Again:
    """A transient failure of one attempt: why it is worth another."""

    reason: str


def range_headers(offset: int) -> dict[str, str]:
    """Request headers to resume a download at ``offset``."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    return headers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise UserError(f"unsupported URL (want http://, https:// or file://): {url}")
    return scheme


def file_path(url: str) -> Path:
    """The local path of a ``file://`` URL."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"file:// URL with a remote host: {url}")
    return Path(unquote(parts.path))


def new_session() -> requests.Session:
    import requests

    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    return s


class Downloader:
    """One HTTP session and retry policy; ``sleep`` is injectable so tests do not wait."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self._session = session
        self.sleep = sleep
        self.guard: Callable[[str], object] | None = None
        """Called with every redirect target before it is followed; raises to refuse it (a
        feed's URL confinement, ``releases/urls.py``)."""

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = new_session()
        hooks = self._session.hooks.setdefault("response", [])
        if self._check_redirect not in hooks:
            hooks.append(self._check_redirect)
        return self._session

    def _check_redirect(self, r: requests.Response, *args: object, **kwargs: object) -> None:
        if self.guard is not None and r.is_redirect:
            self.guard(urljoin(r.url, r.headers.get("Location", "")))

    @contextlib.contextmanager
    def guarded(self, guard: Callable[[str], object]) -> Iterator[Downloader]:
        """This downloader with ``guard`` checking redirects for the duration."""
        previous, self.guard = self.guard, guard
        try:
            yield self
        finally:
            self.guard = previous

    # -- small files ----------------------------------------------------------------------
    def get_bytes(self, url: str, *, limit: int = 64 << 20) -> bytes:
        """The body of a small file (an index page, releases.json, sha256sums.asc)."""

        if _scheme(url) == "file":
            path = file_path(url)
            try:
                if path.is_dir():
                    return "".join(
                        f"{e.name}/\n" if e.is_dir() else f"{e.name}\n"
                        for e in sorted(os.scandir(path), key=lambda e: e.name)
                    ).encode()
                return path.read_bytes()
            except FileNotFoundError as exc:
                raise NotFound(f"not found: {url}") from exc
            except OSError as exc:
                raise InfraError(f"cannot read {url}: {exc.strerror}") from exc

        def attempt() -> bytes | Again:
            r = self.session.get(url, timeout=self.policy.timeout, headers=range_headers(0))
            if r.status_code in (404, 410):
                raise NotFound(f"not found (HTTP {r.status_code}): {url}")
            if r.status_code in TRANSIENT_STATUS:
                return Again(f"HTTP {r.status_code} from {url}")
            if r.status_code != 200:
                raise InfraError(f"HTTP {r.status_code} from {url}")
            if len(r.content) > limit:
                raise InfraError(f"{url}: larger than {limit} bytes")
            return bytes(r.content)

        return self._retrying(url, attempt)

    # -- large files ----------------------------------------------------------------------
    def download(
        self,
        url: str,
        dest: Path,
        *,
        sha256: str | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Fetch ``url`` to ``dest``, resuming ``dest.part``; verify ``sha256`` when given."""
        dest = Path(dest)
        if dest.is_file() and sha256 is not None and sha256_file(dest) == sha256.lower():
            return dest
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfraError(f"cannot create {dest.parent}: {exc.strerror}") from exc
        part = dest.with_name(dest.name + ".part")
        if _scheme(url) == "file":
            self._copy(file_path(url), part, progress)
        else:
            self._http(url, part, progress)
        if sha256 is not None:
            got = sha256_file(part)
            if got != sha256.lower():
                part.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {got}; "
                    "the file was deleted",
                    hint="retry later or use another mirror",
                )
        os.replace(part, dest)
        return dest

    def _copy(self, src: Path, part: Path, progress: Progress | None) -> None:
        try:
            total = src.stat().st_size
            with open(src, "rb") as fin, open(part, "wb") as fout:
                done = 0
                while block := fin.read(CHUNK):
                    fout.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
        except FileNotFoundError as exc:
            part.unlink(missing_ok=True)
            raise NotFound(f"not found: {src}") from exc
        except OSError as exc:
            part.unlink(missing_ok=True)  # a local copy restarts cheaply: free the space now
            raise InfraError(f"cannot copy {src} to {part}: {exc.strerror}") from exc

    def _http(self, url: str, part: Path, progress: Progress | None) -> None:
        def attempt() -> None | Again:
            offset = part.stat().st_size if part.exists() else 0
            try:
                outcome = self._attempt(url, part, offset, progress)
            except OSError as exc:
                import requests

                if isinstance(exc, requests.RequestException):
                    raise
                raise InfraError(f"cannot write {part}: {exc.strerror}") from exc
            return None if outcome is None else Again(outcome)

        self._retrying(url, attempt, hint=f"the partial file {part} is kept; rerun to resume")

    def _retrying(self, url: str, attempt: Callable[[], _T | Again], hint: str | None = None) -> _T:
        """The one retry loop: ``attempt`` until it returns a value, pausing as the policy says
        after a transient failure (an :class:`Again`, or a network error)."""
        import requests

        last = ""
        for delay in [*self.policy.delays(), None]:
            try:
                got = attempt()
            except requests.RequestException as exc:
                got = Again(f"{type(exc).__name__}: {exc}")
            if not isinstance(got, Again):
                return got
            last = got.reason
            if delay is None:
                break
            self.sleep(delay)
        raise InfraError(
            f"cannot download {url} after {self.policy.attempts} attempts: {last}", hint=hint
        )

    def _attempt(self, url: str, part: Path, offset: int, progress: Progress | None) -> str | None:
        """One GET; None when the file is complete, else why it should be retried."""
        with self.session.get(
            url, stream=True, timeout=self.policy.timeout, headers=range_headers(offset)
        ) as r:
            if r.status_code in (404, 410):
                raise NotFound(f"not found (HTTP {r.status_code}): {url}")
            if r.status_code == 416 and offset > 0:
                part.unlink()  # our partial file is longer than the file: start over
                return "HTTP 416 on resume; starting over"
            if r.status_code in TRANSIENT_STATUS:
                return f"HTTP {r.status_code}"
            if r.status_code not in (200, 206):
                raise InfraError(f"HTTP {r.status_code} from {url}")
            start = 0
            if r.status_code == 206:
                start = _content_range_start(r.headers.get("Content-Range", ""))
                if start != offset:
                    part.unlink(missing_ok=True)
                    return f"server resumed at {start}, not {offset}; starting over"
            length = r.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            done = start
            with open(part, "ab" if start else "wb") as out:
                # small reads: bytes already received when a connection is cut are kept
                for block in r.iter_content(READ_CHUNK):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
            if total is not None and done < total:
                return f"connection closed at {done} of {total} bytes"
            return None


def _content_range_start(value: str) -> int:
    # "bytes 100-199/200"
    try:
        unit, _, rest = value.partition(" ")
        if unit != "bytes":
            return -1
        return int(rest.split("-", 1)[0])
    except ValueError:
        return -1
