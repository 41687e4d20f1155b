"""Run untrusted builds and guests without network.

``wrap`` is pure: it prefixes an argv with the isolation tool's command line for a mode.
``detect`` probes which mode works on this machine (bubblewrap, else ``unshare``), once per call.

- ``bwrap``: a new network namespace, the whole file system read-only except the ``writable``
  paths (the job's O= dir, the ccache dir, the boot work dir); /tmp, /dev and /proc fresh.
- ``unshare``: a new network namespace only (as root), or with ``--map-root-user`` for a normal
  user; writes are then limited by file permissions alone.
- ``none``: no isolation (explicitly chosen; never picked by ``detect``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from tracker.errors import InfraError


class SandboxMode(Enum):
    NONE = "none"
    UNSHARE = "unshare"  # root: `unshare --net`
    UNSHARE_USER = "unshare-user"  # non-root: `unshare --map-root-user --net`
    BWRAP = "bwrap"


def wrap(
    argv: Sequence[str | os.PathLike[str]],
    mode: SandboxMode,
    *,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
) -> list[str]:
    """``argv`` prefixed so that it runs without network (and, with bwrap, writes only ``writable``).

    With bwrap, /tmp is a fresh tmpfs: ``readable`` paths (the source tree, the kernel image)
    are bound again read-only so that they stay visible when they live under /tmp.
    """
    args = [os.fspath(a) for a in argv]
    if mode is SandboxMode.NONE:
        return args
    if mode is SandboxMode.UNSHARE:
        return ["unshare", "--net", "--", *args]
    if mode is SandboxMode.UNSHARE_USER:
        return ["unshare", "--map-root-user", "--net", "--", *args]
    prefix = [
        "bwrap",
        "--unshare-net",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    for path in readable:
        p = os.fspath(path)
        prefix += ["--ro-bind", p, p]
    for path in writable:
        p = os.fspath(path)
        prefix += ["--bind", p, p]
    return [*prefix, "--", *args]


def detect(*, allow_none: bool = False) -> SandboxMode:
    """The best isolation that works here; InfraError if none does (unless ``allow_none``)."""
    from tracker import proc

    candidates: list[SandboxMode] = []
    if shutil.which("bwrap"):
        candidates.append(SandboxMode.BWRAP)
    if shutil.which("unshare"):
        candidates.append(SandboxMode.UNSHARE if os.geteuid() == 0 else SandboxMode.UNSHARE_USER)
    for mode in candidates:
        try:
            result = proc.run(wrap(["true"], mode), cwd="/", timeout=20)
        except InfraError:
            continue
        if result.ok:
            return mode
    if allow_none:
        return SandboxMode.NONE
    raise InfraError(
        "cannot isolate builds from the network: neither bubblewrap nor `unshare --net` works",
        hint="install bubblewrap, allow unprivileged user namespaces, or set the sandbox to none",
    )
