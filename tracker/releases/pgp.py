"""PGP checks with ``gpgv`` against a configured keyring.

kernel.org signs the *uncompressed* tar (``linux-X.tar.sign``), so the tarball is decompressed
into gpgv's stdin; ``sha256sums.asc`` is clear-signed. A bad signature is an InfraError (the
download cannot be trusted), never a verdict about a patch set.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tracker import proc
from tracker.errors import InfraError
from tracker.sources.tarimport import decompressor_argv


def gpgv_argv(keyring: str, signature: Path, data: str | Path = "-") -> list[str]:
    return ["gpgv", "--keyring", keyring, str(signature), str(data)]


def verify_tarball(tarball: Path, signature: Path, keyring: str) -> None:
    """Check ``signature`` over the uncompressed contents of ``tarball``."""
    proc.which("gpgv")
    dec = decompressor_argv(tarball)
    with tempfile.TemporaryFile() as log:
        if dec is None:
            res = proc.run(gpgv_argv(keyring, signature, tarball), cwd=tarball.parent, timeout=1800)
            ok, detail = res.ok, res.stderr
        else:
            with open(tarball, "rb") as src:
                unpack = proc.spawn(dec, cwd=tarball.parent, stdin=src)
                gpgv = proc.spawn(
                    gpgv_argv(keyring, signature),
                    cwd=tarball.parent,
                    stdin=unpack.stdout,
                    stdout=log,
                    stderr=log,
                )
                if unpack.stdout is not None:
                    unpack.stdout.close()  # gpgv holds it now
                rc_gpgv = gpgv.wait()
                rc_unpack = proc.stop(unpack, timeout=60)
            log.seek(0)
            detail = log.read().decode("utf-8", "replace")
            ok = rc_gpgv == 0 and rc_unpack == 0
    if not ok:
        tail = " ".join(detail.strip().splitlines()[-2:])
        raise InfraError(f"bad or unverifiable PGP signature on {tarball.name}: {tail}")


def verify_clearsigned(data: bytes, keyring: str, what: str) -> None:
    """Check a clear-signed text (``sha256sums.asc``)."""
    proc.which("gpgv")
    with tempfile.TemporaryDirectory(prefix="ktrack-pgp-") as tmp:
        path = Path(tmp) / "signed.asc"
        path.write_bytes(data)
        res = proc.run(["gpgv", "--keyring", keyring, str(path)], cwd=tmp, timeout=120)
    if not res.ok:
        tail = " ".join(res.stderr.strip().splitlines()[-2:])
        raise InfraError(f"bad or unverifiable PGP signature on {what}: {tail}")
