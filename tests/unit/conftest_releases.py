"""Helpers for the release tests: generated kernel-shaped tarballs and a loopback HTTP server
that serves a kernel.org-shaped site with Range support and injectable faults.

Imported explicitly by tests/unit/test_releases*.py, test_download*.py, test_store*.py and
the hostile-input suites; ``Kt`` runs ``ktrack`` in-process with a private home.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tracker.sources.store import ReleaseStore


def tree_files(version: str) -> dict[str, bytes]:
    """A tiny kernel-like tree whose contents depend a little on the version."""
    return {
        "Makefile": f"VERSION = {version}\n".encode(),
        "README": b"Linux kernel\n",
        "kernel/sched/core.c": b"int schedule(void) { return 0; }\n",
        "fs/proc/base.c": f"/* proc {version} */\nint proc(void);\n".encode(),
        "scripts/checkpatch.pl": b"#!/usr/bin/perl\nexit 0;\n",
    }


def make_tarball(
    path: Path,
    files: dict[str, bytes],
    *,
    top: str = "linux-6.1",
    symlinks: dict[str, str] | None = None,
    extra: list[tarfile.TarInfo] | None = None,
    fmt: int = tarfile.PAX_FORMAT,
) -> Path:
    """Write a tarball like kernel.org's: every member under ``top/``; compression from the name."""
    mode = "w"
    for ext, m in ((".xz", "w:xz"), (".gz", "w:gz"), (".bz2", "w:bz2")):
        if path.name.endswith(ext):
            mode = m
    with tarfile.open(path, mode, format=fmt) as tar:  # type: ignore[call-overload]
        d = tarfile.TarInfo(top)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tar.addfile(d)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime = len(data), 1_700_000_000
            info.mode = 0o755 if name.endswith((".pl", ".sh")) else 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 1_700_000_000
            tar.addfile(info)
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.size else None)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sums_asc(entries: dict[str, str]) -> str:
    body = "".join(f"{digest}  {name}\n" for name, digest in entries.items())
    return (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
        + body
        + "-----BEGIN PGP SIGNATURE-----\n\nnot a real signature\n-----END PGP SIGNATURE-----\n"
    )


def build_site(root: Path, versions: list[str], *, current: list[str] | None = None) -> Path:
    """A kernel.org-shaped site under ``root``: releases.json + pub/linux/kernel/vN.x/."""
    pub = root / "pub/linux/kernel"
    by_dir: dict[str, dict[str, str]] = {}
    for v in versions:
        major = v.split(".")[0]
        folder = pub / f"v{major}.x"
        folder.mkdir(parents=True, exist_ok=True)
        tb = make_tarball(folder / f"linux-{v}.tar.xz", tree_files(v), top=f"linux-{v}")
        (folder / f"linux-{v}.tar.sign").write_text("signature\n")
        by_dir.setdefault(folder.name, {})[tb.name] = sha256(tb)
    for name, sums in by_dir.items():
        (pub / name / "sha256sums.asc").write_text(sums_asc(sums))
    releases = []
    for v in current if current is not None else versions[-2:]:
        major = v.split(".")[0]
        releases.append(
            {
                "iseol": v.startswith("5."),
                "version": v,
                "moniker": "stable" if v.count(".") == 2 else "mainline",
                "source": f"https://cdn.kernel.org/pub/linux/kernel/v{major}.x/linux-{v}.tar.xz",
                "pgp": f"https://cdn.kernel.org/pub/linux/kernel/v{major}.x/linux-{v}.tar.sign",
                "released": {"timestamp": 1607899290, "isodate": "2020-12-13"},
                "gitweb": "https://git.kernel.org/x",
                "patch": {"full": None, "incremental": None},
            }
        )
    (root / "releases.json").write_text(
        json.dumps({"latest_stable": {"version": versions[-1]}, "releases": releases})
    )
    return root


@dataclass
class Faults:
    """What the server does wrong, per URL path (each list is consumed one request at a time)."""

    cut_after: dict[str, list[int]] = field(default_factory=dict)  # close after N body bytes
    status: dict[str, list[int]] = field(default_factory=dict)  # answer this status instead
    no_range: set[str] = field(default_factory=set)  # ignore Range headers
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, table: dict[str, list[int]], path: str) -> int | None:
        with self.lock:
            todo = table.get(path)
            return todo.pop(0) if todo else None


def _handler(root: Path, faults: Faults) -> type[SimpleHTTPRequestHandler]:
    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            faults.requests.append((path, self.headers.get("Range")))
            status = faults.take(faults.status, path)
            if status is not None:
                body = f"HTTP {status}\n".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            local = Path(self.translate_path(path))
            if local.is_dir():
                super().do_GET()
                return
            if not local.is_file():
                self.send_error(404)
                return
            data = local.read_bytes()
            start = 0
            rng = self.headers.get("Range")
            if rng and path not in faults.no_range and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            cut = faults.take(faults.cut_after, path)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(root: Path, faults: Faults | None = None) -> Iterator[tuple[str, Faults]]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields the base URL and the fault table."""
    faults = faults or Faults()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, faults))
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", faults
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=5)


def git(cwd: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env={**os.environ}
    ).stdout


class Kt:
    """Runs ``ktrack`` in-process with a private home and config; returns (rc, stdout, stderr)."""

    def __init__(self, tmp_path: Path, feeds: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = tmp_path / "home"
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.config = tmp_path / "ktrack.toml"
        self.config.write_text(feeds)
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from tracker.cli import main

        self.capsys.readouterr()
        rc = main(["--config", str(self.config), "--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        return rc, out, err

    def listing(self) -> dict[str, dict[str, object]]:
        rc, out, _ = self("releases", "list", "--json")
        assert rc == 0
        doc = json.loads(out)
        assert doc["schema"] == "ktrack.releases/1"
        return {r["version"]: r for r in doc["releases"]}

    @property
    def store(self) -> ReleaseStore:
        return ReleaseStore(self.home / "store.git")
