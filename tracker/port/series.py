"""Port a series in order: each patch on the target as the earlier ported patches left it.

Two trees advance side by side: the base release with the version's patches applied as they were
written (it gives each merge its ``base`` and ``theirs``), and the target with the patches as they
were ported. Per patch: the apply engine first (step 1, at the version's fuzz factor); the file
sections it refuses go to :func:`~tracker.port.fileport.port_file` (rename, merge, human). A patch
the maintainer fixed by hand in the output folder (``mine``) is kept as written when it applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tracker.apply.check import _State as TreeState  # the overlay the apply stage uses
from tracker.apply.check import check_patch
from tracker.apply.report import FileReport, PatchReport
from tracker.patchsets.diff import FileOp, FilePatch, Patch, Series
from tracker.port.fileport import (
    BASE_FUZZ,
    ENGINE_ACTION,
    FileInputs,
    Releases,
    follow,
    port_file,
)
from tracker.port.model import FilePort, HunkAction, HunkPort, PatchPort, PortStatus, status_of
from tracker.sources.tree import Tree
from tracker.vocab import HunkClass


@dataclass
class PortedPatch:
    """One patch's outcome and the target's files before and after it (for the refreshed diff).

    ``mine_failed``: the maintainer's version in the output folder no longer applies (it is left
    alone; the port is written beside it).
    """

    report: PatchPort
    patch: Patch
    before: dict[str, bytes | None] = field(default_factory=dict)
    after: dict[str, bytes | None] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    mine_failed: bool = False


def _engine_file(fr: FileReport) -> FilePort:
    hunks = tuple(
        HunkPort(
            h.index,
            ENGINE_ACTION.get(h.klass, HunkAction.NEEDS_HUMAN),
            offset=h.offset,
            fuzz=h.fuzz,
            line=h.line,
        )
        for h in fr.hunks
    )
    return FilePort(fr.path, hunks, note=fr.note if fr.klass.is_failure else "")


def _base_name(fp: FilePatch, base: TreeState) -> str:
    for name in fp.candidates:
        if base.read(name, {}) is not None:
            return name
    return fp.old_path or fp.path


def _inputs(
    fp: FilePatch,
    fr: FileReport,
    base: TreeState,
    target: TreeState,
    pending: dict[str, bytes | None],
    rel: Releases,
) -> tuple[FilePatch, FileInputs]:
    base_path = _base_name(fp, base)
    base_data = b"" if fp.op is FileOp.CREATE or fp.old_side_empty else base.read(base_path, {})
    release_base = base.tree.read(base_path)
    if fr.klass is HunkClass.MISSING_FILE:
        new = rel.renamed(base_path)
        ours = target.read(new, pending) if new is not None else None
        if new is not None and ours is not None:
            inputs = FileInputs(base_path, new, base_data, ours, base_path)
            fp = follow(fp, new)
        else:
            inputs = FileInputs(base_path, base_path, base_data, None)
    else:
        inputs = FileInputs(base_path, fr.path, base_data, target.read(fr.path, pending))
    inputs.release_base = release_base
    inputs.release_target = target.tree.read(inputs.target_path)
    return fp, inputs


def _port_files(
    patch: Patch,
    report: PatchReport,
    base: TreeState,
    target: TreeState,
    pending: dict[str, bytes | None],
    rel: Releases,
) -> list[FilePort]:
    files: list[FilePort] = []
    for fp, fr in zip(patch.files, report.files, strict=True):
        if not fr.klass.is_failure:
            files.append(_engine_file(fr))
            continue
        if fp.binary or fp.op is FileOp.DELETE or fr.klass is HunkClass.FILE_EXISTS:
            # the engine's note says it: a binary patch, a file to delete that upstream changed,
            # a file to create that upstream created too (a merge would paste one after the other)
            files.append(_engine_file(fr))
            continue
        fp2, inputs = _inputs(fp, fr, base, target, pending, rel)
        ported = port_file(fp2, inputs, rel, patch.name)
        files.append(ported.report)
        if ported.output is not None:
            pending[inputs.target_path] = ported.output
    return files


def _commit(
    state: TreeState, pending: Mapping[str, bytes | None], modes: Mapping[str, int]
) -> None:
    state.files.update(pending)
    state.modes.update(modes)


def _snapshot(
    patch: Patch,
    report: PatchPort,
    target: TreeState,
    pending: dict[str, bytes | None],
    modes: dict[str, int],
) -> PortedPatch:
    order = [f.path for f in report.files] + list(pending)
    out = PortedPatch(report, patch, modes=dict(modes))
    for path in dict.fromkeys(order):
        if path in pending:
            out.before[path] = target.read(path, {})
            out.after[path] = pending[path]
    return out


def port_patch(
    patch: Patch, base: TreeState, target: TreeState, rel: Releases, mine: Patch | None
) -> PortedPatch:
    """Port one patch; advances both trees."""
    _, base_pending, base_modes = check_patch(patch, base, BASE_FUZZ)
    note = ""
    if mine is not None:
        mine_report, mine_pending, mine_modes = check_patch(mine, target, rel.fuzz)
        if not mine_report.klass.is_failure:
            files = tuple(_engine_file(fr) for fr in mine_report.files)
            result = PatchPort(patch.name, PortStatus.KEPT, files, note="your version, as written")
            done = _snapshot(patch, result, target, mine_pending, mine_modes)
            _commit(target, mine_pending, mine_modes)
            _commit(base, base_pending, base_modes)
            return done
        note = "your version in the output folder no longer applies: left as it is"
    report, pending, modes = check_patch(patch, target, rel.fuzz)
    if report.klass.is_failure:
        files = tuple(_port_files(patch, report, base, target, pending, rel))
    else:
        files = tuple(_engine_file(fr) for fr in report.files)
    status = status_of(files)
    if status is PortStatus.DROPPED and not note:
        note = "already in the target: upstream took it"
    result = PatchPort(patch.name, status, files, note=note)
    done = _snapshot(patch, result, target, pending, modes)
    done.mine_failed = mine is not None
    _commit(target, pending, modes)
    _commit(base, base_pending, base_modes)
    return done


def port_series(
    series: Series,
    base_tree: Tree,
    target_tree: Tree,
    rel: Releases,
    mine: Mapping[str, Patch] | None = None,
) -> list[PortedPatch]:
    """Port every patch of ``series`` in order (``mine``: the maintainer's fixed patches)."""
    base = TreeState(tree=base_tree)
    target = TreeState(tree=target_tree)
    mine = mine or {}
    return [port_patch(p, base, target, rel, mine.get(p.name)) for p in series.patches]
