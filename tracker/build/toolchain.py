"""The identity of the tools that judge a stage: compiler, binutils, QEMU and our own logic.

A result (a control run, a job) computed with one toolchain says nothing about another: a new gcc
can break a build the old one passed, a new QEMU can hang where the old one booted. Every cache
and reuse decision about configure, build and boot keys on this identity, so a toolchain change
makes ktrack judge again instead of trusting a stale answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil

from tracker import proc
from tracker.arches.target import Target
from tracker.errors import InfraError
from tracker.vocab import Stage

# Bump when the judgement of configure, build, boot or test changes (what counts as a failure,
# which console lines are signatures, how the control is compared): results judged by an older
# logic are not reused.
STAGE_LOGIC_VERSION = 4  # 4: tokened markers, console signatures, timeouts judged by the control


@functools.lru_cache(maxsize=64)
def tool_version(tool: str) -> str:
    """The first line of ``tool --version``, or ``missing`` when the tool is not installed
    (the identity still changes when it is installed later)."""
    if shutil.which(tool) is None:
        return "missing"
    try:
        res = proc.run([tool, "--version"], cwd="/", timeout=30)
    except InfraError:
        return "unknown"
    text = (res.stdout or res.stderr).strip()
    return text.splitlines()[0].strip() if text else "unknown"


def identity(target: Target, stages: tuple[Stage, ...] | None = None) -> dict[str, str]:
    """The tools that judge ``stages`` (all of configure, build, boot, test when None) on
    ``target``, each with its version line, and the stage logic's version."""
    arch = target.arch_info
    wanted = set(stages) if stages is not None else set(Stage)
    ident: dict[str, str] = {"logic": str(STAGE_LOGIC_VERSION)}
    if wanted & {Stage.CONFIGURE, Stage.BUILD, Stage.BOOT, Stage.TEST}:
        ident["gcc"] = tool_version(arch.compiler)
        ident["ld"] = tool_version(f"{arch.cross_compile}ld")
        ident["make"] = tool_version("make")
    if wanted & {Stage.BOOT, Stage.TEST}:
        ident["qemu"] = tool_version(arch.qemu)
    return ident


def fingerprint(target: Target, stages: tuple[Stage, ...] | None = None) -> str:
    """A short hash of ``identity``: what cache keys and job reuse compare."""
    raw = json.dumps(identity(target, stages), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]
