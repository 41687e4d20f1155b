"""Build a patched kernel tree out of tree (``O=``) with ccache, and judge the log.

``make_argv`` and ``build_env`` are pure and shared with ``kconfig``; ``build`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tracker import proc, sandbox
from tracker.arches.target import Target
from tracker.build import logparse
from tracker.config import default_cache
from tracker.errors import InfraError
from tracker.vocab import Cause, Outcome, Status

# Fixed so that two builds of the same source give the same objects (and ccache hits).
BUILD_TIMESTAMP = "Thu Jan  1 00:00:00 UTC 1970"
BUILD_USER = "ktrack"
BUILD_HOST = "ktrack"
NICENESS = 10


def default_ccache_dir() -> Path:
    return default_cache() / "ccache"


def make_argv(
    src: Path,
    out: Path,
    target: Target,
    goals: Sequence[str],
    *,
    jobs: int = 1,
    ccache: bool = True,
    niceness: int | None = NICENESS,
) -> list[str]:
    """The ``make`` command line for ``goals`` in an out-of-tree build of ``src`` into ``out``."""
    arch = target.arch_info
    argv: list[str] = []
    if niceness is not None:
        argv += ["nice", "-n", str(niceness)]
    argv += [
        "make",
        "-C",
        os.fspath(src),
        f"O={os.fspath(out)}",
        f"ARCH={arch.kernel_arch}",
    ]
    if arch.cross_compile:
        argv.append(f"CROSS_COMPILE={arch.cross_compile}")
    if ccache:
        argv += [f"CC=ccache {arch.compiler}", "HOSTCC=ccache gcc"]
    argv += ["LOCALVERSION=", f"-j{max(1, jobs)}", *goals]
    return argv


def build_env(src: Path, out: Path, ccache_dir: Path | None) -> dict[str, str]:
    """Environment for make: reproducible build stamps and ccache shared across source dirs.

    ``CCACHE_BASEDIR`` is the common parent of the source and O= dirs, so that absolute paths
    become relative and two trees laid out alike (``job/src``, ``job/out``) share cache entries.
    ``-fmacro-prefix-map`` carries the absolute source path when O= is not a child of the
    source; the map makes ``__FILE__`` relative, so it is left out of the hash.
    """
    env = {
        "KBUILD_BUILD_TIMESTAMP": BUILD_TIMESTAMP,
        "KBUILD_BUILD_USER": BUILD_USER,
        "KBUILD_BUILD_HOST": BUILD_HOST,
        "KBUILD_BUILD_VERSION": "1",
        # the kernel's Makefile unexports LC_ALL: set the others so messages are plain ASCII
        "LC_ALL": "C",
        "LANG": "C",
        "LC_CTYPE": "C",
        "LC_MESSAGES": "C",
    }
    if ccache_dir is not None:
        base = os.path.commonpath([os.fspath(src), os.fspath(out)])
        env.update(
            {
                "CCACHE_DIR": os.fspath(ccache_dir),
                "CCACHE_BASEDIR": base,
                "CCACHE_NOHASHDIR": "1",
                "CCACHE_IGNOREOPTIONS": "-fmacro-prefix-map=*",
                "CCACHE_SLOPPINESS": "include_file_mtime,include_file_ctime,time_macros",
                "CCACHE_MAXSIZE": "5G",
            }
        )
    return env


MAX_WARNING_KEYS = 2000


def warning_key(w: logparse.Diagnostic) -> str:
    return f"{w.file}: {w.message}"


def _touched_rel(touched: Mapping[str, str]) -> dict[str, str]:
    return {
        os.path.normpath(k.removeprefix("a/").removeprefix("b/")): v for k, v in touched.items()
    }


def judge(
    returncode: int,
    text: str,
    *,
    src: Path,
    out: Path,
    image: Path,
    touched: Mapping[str, str] = {},
) -> Outcome:
    """The build outcome from make's exit code and log (pure; no artifacts set)."""
    parsed = logparse.parse(text, src=src, out=out)
    rel = _touched_rel(touched)
    touched_warnings = [w for w in parsed.warnings if w.file in rel]
    detail = {
        "errors": [e.describe(rel) for e in parsed.errors[:20]],
        "warnings": len(parsed.warnings),
        "touched_warnings": [w.describe(rel) for w in touched_warnings[:20]],
        # file and message without the line (a patch moves lines): what a control build of the
        # release without the patch set is compared with, to tell new warnings from old ones
        "touched_warning_keys": [warning_key(w) for w in touched_warnings],
        "warning_keys": sorted(warning_key(w) for w in parsed.warnings)[:MAX_WARNING_KEYS],
        "returncode": returncode,
    }
    if returncode == 0:
        if not image.is_file():
            return Outcome(Status.ERROR, f"make succeeded but left no image at {image}", detail)
        if touched_warnings:
            n = len(touched_warnings)
            first = touched_warnings[0].describe(rel)
            return Outcome(Status.WARN, f"{n} warning(s) in patched files; first: {first}", detail)
        return Outcome(Status.PASS, "built", detail)
    if parsed.infra is not None:  # whatever else the log says: a full disk hides nothing
        detail["infrastructure"] = parsed.infra.to_json()
        return Outcome(
            Status.ERROR,
            f"infrastructure: {parsed.infra.describe()}",
            detail,
            cause=Cause.INFRASTRUCTURE,
        )
    if parsed.first_error is not None:
        err = parsed.first_error
        detail["first_error"] = {"file": err.file, "line": err.line, "text": err.describe()}
        return Outcome(Status.FAIL, err.describe(rel), detail)
    if parsed.make_errors:
        return Outcome(Status.FAIL, parsed.make_errors[0], detail)
    return Outcome(Status.FAIL, f"make exited {returncode} without a recognised error", detail)


def build(
    src: Path,
    out: Path,
    target: Target,
    *,
    jobs: int,
    log: Path,
    touched: Mapping[str, str] = {},
    ccache_dir: Path | None = None,
    timeout: float,
    use_ccache: bool = True,
    sandbox_mode: sandbox.SandboxMode | None = None,
) -> Outcome:
    """Build the boot image of a configured O= dir. Infrastructure failures give ``error``."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / ".config"
    image = out / target.arch_info.image_path
    if use_ccache and ccache_dir is None:
        ccache_dir = default_ccache_dir()
    if ccache_dir is not None:
        ccache_dir.mkdir(parents=True, exist_ok=True)
    try:
        mode = sandbox_mode if sandbox_mode is not None else sandbox.detect()
        for tool in ("make", target.arch_info.compiler):
            proc.which(tool)
        if use_ccache:
            proc.which("ccache")
        if not config.is_file():
            raise InfraError(f"no .config in {out}: run the configure stage first")
        if image.exists():
            image.unlink()
        argv = make_argv(
            src, out, target, [target.arch_info.image_target], jobs=jobs, ccache=use_ccache
        )
        writable = [out] + ([ccache_dir] if ccache_dir is not None else [])
        result = proc.run(
            sandbox.wrap(argv, mode, writable=writable, readable=[src]),
            cwd=out,
            timeout=timeout,
            env=build_env(src, out, ccache_dir if use_ccache else None),
            log=log,
        )
    except InfraError as exc:
        return Outcome(
            Status.ERROR, str(exc), {}, {"config": config} if config.exists() else {}, log
        )
    outcome = judge(
        result.returncode,
        result.stdout + "\n" + result.stderr,
        src=src,
        out=out,
        image=image,
        touched=touched,
    )
    outcome.log = log
    outcome.detail["duration"] = round(result.duration, 1)
    outcome.artifacts["config"] = config
    if image.is_file():
        outcome.artifacts["image"] = image
    return outcome
