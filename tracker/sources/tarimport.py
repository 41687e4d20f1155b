"""A tarball imported without extracting it: decompressor -> tar stream -> ``git fast-import``.

The decompressor's output is read as a tar stream and written straight into ``git fast-import``
(see ``fastimport.py``) as one parentless commit, in a quarantine repository that the store
adopts on success (see ``store.py``).
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tracker import proc
from tracker.errors import InfraError, UserError
from tracker.sources.fastimport import (
    HostileTarball,
    ImportLimits,
    TarToFastImport,
    fast_import_argv,
    open_tar_stream,
)

if TYPE_CHECKING:
    from subprocess import Popen

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: bytes of the compressed tarball read so far, and its size."""

IMPORT_REF = "refs/heads/import"
FEED_CHUNK = 1 << 20


def decompressor_argv(tarball: Path) -> list[str] | None:
    """The command that decompresses ``tarball`` to stdout, or None for a plain ``.tar``."""
    name = tarball.name.lower()
    if name.endswith((".tar.xz", ".txz")):
        return ["xz", "-dc", "-T0"]
    if name.endswith((".tar.gz", ".tgz")):
        return ["gzip", "-dc"]
    if name.endswith((".tar.bz2", ".tbz2")):
        return ["bzip2", "-dc"]
    if name.endswith((".tar.zst", ".tzst")):
        return ["zstd", "-dc", "-q"]
    if name.endswith(".tar"):
        return None
    raise UserError(
        f"{tarball}: unknown tarball type",
        hint="expected .tar, .tar.xz, .tar.gz, .tar.bz2 or .tar.zst",
    )


def stream_tarball(
    quarantine: Path,
    tarball: Path,
    message: str,
    progress: Progress | None,
    strip: int,
    limits: ImportLimits | None,
) -> None:
    """Stream ``tarball`` through its decompressor into ``git fast-import`` in ``quarantine``,
    committed as :data:`IMPORT_REF` with ``message``. A damaged tarball, a hostile member or a
    failing fast-import raises; every child is killed on the way out."""
    total = tarball.stat().st_size
    dec_argv = decompressor_argv(tarball)
    log_path = quarantine / "fast-import.log"
    dec_err_path = quarantine / "decompress.log"
    with (
        open(log_path, "wb") as log,
        open(dec_err_path, "wb") as dec_err,
        open(tarball, "rb") as src,
    ):
        fi = proc.spawn(
            fast_import_argv(),
            cwd=quarantine,
            env={"GIT_DIR": str(quarantine)},
            stdout=log,
            stderr=log,
        )
        assert fi.stdin is not None
        proc.big_pipe(fi.stdin)
        dec: Popen[bytes] | None = None
        feeder: threading.Thread | None = None
        reader: IO[bytes] | _CountingReader
        try:
            if dec_argv is not None:
                dec = proc.spawn(dec_argv, cwd=quarantine, stderr=dec_err)
                assert dec.stdin is not None and dec.stdout is not None
                proc.big_pipe(dec.stdout)
                feeder = threading.Thread(
                    target=_feed, args=(src, dec.stdin, total, progress), daemon=True
                )
                feeder.start()
                reader = open(dec.stdout.fileno(), "rb", buffering=FEED_CHUNK, closefd=False)  # noqa: SIM115
            else:
                reader = _CountingReader(src, total, progress)
            assert fi.stdin is not None
            writer = TarToFastImport(fi.stdin, strip=strip, limits=limits)
            try:
                tar = open_tar_stream(reader)  # type: ignore[arg-type]  # read() is enough
                writer.feed(tar)
            except HostileTarball as exc:
                raise HostileTarball(f"{tarball.name}: {exc.message}") from exc
            except (OSError, EOFError, ValueError) as exc:
                if fi.poll() is not None:
                    raise _fast_import_failed(log_path) from exc
                raise _broken(tarball, str(exc), dec_err_path) from exc
            while reader.read(FEED_CHUNK):  # the zero padding after the end marker
                pass
            if dec is not None:
                rc = proc.stop(dec, timeout=60)
                if feeder is not None:
                    feeder.join()
                if rc != 0:
                    raise _broken(tarball, f"decompressor exited {rc}", dec_err_path)
            try:
                writer.commit(IMPORT_REF, message)
                rc = proc.stop(fi, timeout=600)
            except BrokenPipeError as exc:
                raise _fast_import_failed(log_path) from exc
            if rc != 0:
                raise _fast_import_failed(log_path)
        except BaseException:
            proc.kill(fi)
            if dec is not None:
                proc.kill(dec)
            if feeder is not None:
                feeder.join(timeout=10)
            raise


def _fast_import_failed(log_path: Path) -> InfraError:
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    return InfraError(f"git fast-import failed: {' '.join(tail) or 'no output'}")


def _broken(tarball: Path, detail: str, dec_err: Path) -> InfraError:
    """A tarball that cannot be read to its end: the source is damaged (exit 3), not the input."""
    with contextlib.suppress(OSError):
        said = " ".join(dec_err.read_text(errors="replace").split())
        if said:
            detail = f"{said[:300]} ({detail})"
    return InfraError(
        f"{tarball}: damaged tarball, nothing imported: {detail}",
        hint="if it matched its published checksum, the source itself is broken: "
        "fetch it from another mirror",
    )


def _feed(src: IO[bytes], dst: IO[bytes], total: int, progress: Progress | None) -> None:
    """Copy the compressed tarball into the decompressor, reporting progress."""
    done = 0
    try:
        while block := src.read(FEED_CHUNK):
            dst.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    except ValueError:  # the pipe was closed under us: the import was aborted
        pass
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.EBADF, errno.EINVAL):
            raise
    finally:
        with contextlib.suppress(OSError):
            dst.close()


class _CountingReader:
    """A file wrapper reporting read progress (for plain .tar files)."""

    def __init__(self, fh: IO[bytes], total: int, progress: Progress | None) -> None:
        self.fh, self.total, self.progress, self.done = fh, total, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.done += len(data)
        if self.progress is not None:
            self.progress(self.done, self.total)
        return data
