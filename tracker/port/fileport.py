"""Port one file section that the apply engine could not place on the target (steps 2-4).

* follow the file when upstream renamed or moved it (``Releases.renamed``), then try the engine
  again on the new name;
* merge three ways (``git merge-file --diff3``) the file in the base release (as the earlier
  patches of the version left it), the same with the patch applied, and the target's file; each
  hunk the engine could not place is merged on its own first, so that a conflict is pinned to
  the hunk that causes it, then every hunk that merged is merged together;
* what still conflicts needs a human: its diff3 text beside the upstream change (the commits
  when the store has the history, else the release diff of the region) and, when the hunk's
  lines left the file, the target files that now hold them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.apply.engine import FileResult, HunkResult, patch_lines, split_lines
from tracker.patchsets.diff import FileOp, FilePatch, Hunk
from tracker.port import merge as merging
from tracker.port import rename, upstream
from tracker.port.model import Conflict, FilePort, HunkAction, HunkPort, Upstream
from tracker.port.resolve import number_clash, resolve
from tracker.safetext import printable
from tracker.vocab import HunkClass

BASE_FUZZ = 2  # the patch on its own base release: lenient, it only has to give "theirs"

ENGINE_ACTION = {
    HunkClass.CLEAN: HunkAction.CLEAN,
    HunkClass.OFFSET: HunkAction.OFFSET,
    HunkClass.FUZZ: HunkAction.FUZZ,
    HunkClass.ALREADY_APPLIED: HunkAction.ALREADY_APPLIED,
}


class Releases:
    """The two releases of a port in the store, and what git says about the way between them."""

    def __init__(
        self,
        git_dir: Path,
        base: str,
        target: str,
        base_commit: str,
        target_commit: str,
        *,
        history: bool,
        fuzz: int,
        paths: Sequence[str] = (),
    ) -> None:
        self.git_dir = git_dir
        self.base, self.target = base, target
        self.base_commit, self.target_commit = base_commit, target_commit
        self.history = history
        self.fuzz = fuzz
        self._paths = tuple(paths)
        self._renames: dict[str, str] | None = None

    def renamed(self, path: str) -> str | None:
        """``path``'s name in the target when upstream renamed or moved it (computed once, for
        every path the patch set touches)."""
        if self._renames is None:
            self._renames = rename.renames(
                self.git_dir, self.base_commit, self.target_commit, self._paths
            )
        return self._renames.get(path)

    def labels(self, path: str, base_path: str, patch: str) -> tuple[str, str, str]:
        """The merge's labels; a name from a patch never brings a line break into the markers."""
        return (
            printable(f"target {self.target}:{path}"),
            printable(f"base {self.base}:{base_path}"),
            printable(patch),
        )


@dataclass
class FileInputs:
    """The three versions of one file the merge needs (``ours`` None: the target lacks it) and
    the file as the two releases have it (without any patch: what upstream changed)."""

    base_path: str
    target_path: str
    base: bytes | None
    ours: bytes | None
    followed_from: str | None = None
    release_base: bytes | None = None
    release_target: bytes | None = None


@dataclass
class Ported:
    """A file's port: its report and its new content in the target (None: left as it is)."""

    report: FilePort
    output: bytes | None = None


def engine_hunks(result: FileResult) -> list[HunkPort]:
    return [_engine_hunk(r) for r in result.hunks]


def _engine_hunk(r: HunkResult) -> HunkPort:
    action = ENGINE_ACTION.get(r.klass, HunkAction.NEEDS_HUMAN)
    return HunkPort(r.index, action, offset=r.offset, fuzz=r.fuzz, line=r.line)


def _apply(data: bytes, hunks: Sequence[Hunk], fuzz: int) -> bytes | None:
    if not hunks:
        return data
    result = patch_lines(split_lines(data), hunks, max_fuzz=fuzz, detect_reverse=False, data=data)
    return result.output


def follow(fp: FilePatch, new: str) -> FilePatch:
    """The file section addressed to the file's new name."""
    old = new if fp.old_path is not None else None
    return dataclasses.replace(fp, old_path=old, new_path=new if fp.new_path else None)


def port_file(fp: FilePatch, inputs: FileInputs, rel: Releases, patch: str) -> Ported:
    """Steps 1-4 for one file section the engine refused on the target as it stood."""
    if inputs.ours is not None and inputs.followed_from is not None:
        result = patch_lines(
            split_lines(inputs.ours), fp.hunks, max_fuzz=rel.fuzz, data=inputs.ours
        )
        if result.output is not None:  # step 1 on the new name
            return Ported(
                FilePort(inputs.target_path, tuple(engine_hunks(result)), inputs.followed_from),
                result.output,
            )
    if inputs.base is None:
        return _unportable(fp, inputs, "the base release has no such file: nothing to merge from")
    if inputs.ours is None:
        return _gone(fp, inputs, rel)
    if b"\0" in inputs.base or b"\0" in inputs.ours:
        return _unportable(fp, inputs, "binary content: not merged")
    if _apply(inputs.base, fp.hunks, BASE_FUZZ) is None:
        return _unportable(
            fp, inputs, f"the patch does not apply to its own base release {rel.base}"
        )
    return _merge(fp, inputs, rel, patch)


def _merge(fp: FilePatch, inputs: FileInputs, rel: Releases, patch: str) -> Ported:
    assert inputs.base is not None and inputs.ours is not None
    base, ours = inputs.base, inputs.ours
    labels = rel.labels(inputs.target_path, inputs.base_path, patch)
    on_ours = patch_lines(split_lines(ours), fp.hunks, max_fuzz=rel.fuzz, data=ours)
    placed = {r.index: r for r in on_ours.hunks if r.klass in ENGINE_ACTION}
    if on_ours.reversed:
        placed = _already_there(fp.hunks, ours, rel.fuzz)
    conflicts: dict[int, merging.MergeResult] = {}
    rules: dict[int, str] = {}
    for h in fp.hunks:
        if h.index in placed:
            continue
        theirs = _apply(base, [h], BASE_FUZZ)
        if theirs is None:  # applies with its siblings, not alone: nothing to merge it from
            conflicts[h.index] = merging.MergeResult(b"", ())
            continue
        alone = merging.merge(ours, base, theirs, labels)
        resolved, used = resolve(alone, ours)
        if not resolved.clean:
            conflicts[h.index] = alone
        elif used:
            rules[h.index] = "+".join(sorted(set(used)))
    good = [h for h in fp.hunks if h.index not in conflicts]
    theirs_all = _apply(base, good, BASE_FUZZ)
    together = merging.MergeResult(b"", ())
    if theirs_all is not None:
        together, _ = resolve(merging.merge(ours, base, theirs_all, labels), ours)
    if theirs_all is None or not together.clean:
        # the hunks merge one by one but not together: every hunk the engine refused is a human's
        for h in fp.hunks:
            if h.index not in placed:
                conflicts.setdefault(h.index, together)
        output = _apply(ours, [h for h in fp.hunks if _engine_placed(placed, h)], rel.fuzz)
    else:
        output = together.output
    hunks = []
    for h in fp.hunks:
        if h.index in conflicts:
            conflict = _conflict(h, conflicts[h.index], labels, inputs, rel)
            hunks.append(HunkPort(h.index, HunkAction.NEEDS_HUMAN, conflict=conflict))
        elif h.index in placed:
            hunks.append(_engine_hunk(placed[h.index]))
        else:
            hunks.append(HunkPort(h.index, HunkAction.MERGED, resolution=rules.get(h.index, "")))
    report = FilePort(inputs.target_path, tuple(hunks), inputs.followed_from)
    return Ported(report, output if output != ours else None)


def _engine_placed(placed: dict[int, HunkResult], h: Hunk) -> bool:
    r = placed.get(h.index)
    return r is not None and r.klass is not HunkClass.ALREADY_APPLIED


def _already_there(hunks: Sequence[Hunk], ours: bytes, fuzz: int) -> dict[int, HunkResult]:
    """The hunks that the target already has, each checked alone (reversed)."""
    lines = split_lines(ours)
    out = {}
    for h in hunks:
        r = patch_lines(lines, [h], max_fuzz=fuzz, data=ours)
        if r.reversed and r.hunks[0].klass is HunkClass.ALREADY_APPLIED:
            out[h.index] = r.hunks[0]
    return out


def _conflict(
    h: Hunk,
    merged: merging.MergeResult,
    labels: tuple[str, str, str],
    inputs: FileInputs,
    rel: Releases,
) -> Conflict:
    diff3 = "".join(r.text(labels) for r in merged.regions)
    first = merged.regions[0] if merged.regions else None
    # upstream's change is between the releases themselves, without the earlier patches
    base_lines = split_lines(inputs.release_base or b"")
    ours_lines = split_lines(inputs.release_target or b"")
    on_base = patch_lines(base_lines, [h], max_fuzz=BASE_FUZZ, detect_reverse=False)
    base_at = on_base.hunks[0].line or h.first
    base_region = (base_at, base_at + max(len(h.old_lines()), 1) - 1)
    ours_region = _find(ours_lines, first.ours, base_at) if first is not None else None
    if rel.history:
        removed = first.base if first is not None else tuple(h.old_lines())
        cause = upstream.commits(
            rel.git_dir,
            rel.base_commit,
            rel.target_commit,
            inputs.target_path,
            ours_region,
            removed,
        )
    else:
        cause = upstream.release_diff(base_lines, ours_lines, base_region, inputs.target_path)
    clashes = [number_clash(r.theirs, inputs.ours or b"") for r in merged.regions]
    note = next((c for c in clashes if c), "")
    return Conflict(diff3, cause, _moved_to(h, inputs, rel), note)


def _moved_to(h: Hunk, inputs: FileInputs, rel: Releases) -> tuple[str, ...]:
    """Other target files holding the hunk's lines, when its own file no longer does."""
    needle = rename.distinctive(h.old_lines())
    if inputs.ours is not None and needle and needle in inputs.ours:
        return ()
    return rename.places(rel.git_dir, rel.target_commit, h.old_lines(), exclude=inputs.target_path)


def _find(lines: list[bytes], want: tuple[bytes, ...], near: int) -> tuple[int, int] | None:
    """The 1-based inclusive range where ``want`` occurs in ``lines``, nearest to ``near``."""
    if not want:
        return None
    n = len(want)
    starts = [i for i, ln in enumerate(lines) if ln == want[0] and tuple(lines[i : i + n]) == want]
    if not starts:
        return None
    best = min(starts, key=lambda i: abs(i + 1 - near))
    return best + 1, best + n


def _unportable(fp: FilePatch, inputs: FileInputs, note: str) -> Ported:
    hunks = tuple(
        HunkPort(h.index, HunkAction.NEEDS_HUMAN, conflict=Conflict("", Upstream("none")))
        for h in fp.hunks
    )
    return Ported(FilePort(inputs.target_path, hunks, inputs.followed_from, note=note))


def _gone(fp: FilePatch, inputs: FileInputs, rel: Releases) -> Ported:
    """The target has no such file and git saw no rename: upstream removed or split it."""
    base_lines = split_lines(inputs.release_base or b"")
    hunks = []
    for h in fp.hunks:
        where = rename.places(rel.git_dir, rel.target_commit, h.old_lines(), exclude="")
        text = "".join(ln.decode("utf-8", "replace") for ln in h.old_lines())
        if rel.history:
            cause = upstream.commits(
                rel.git_dir,
                rel.base_commit,
                rel.target_commit,
                inputs.base_path,
                None,
                h.old_lines(),
            )
        else:
            cause = upstream.release_diff(base_lines, [], (h.first, h.first + 1), inputs.base_path)
        conflict = Conflict(
            f"the target has no {inputs.base_path}; the patch expects:\n{text}", cause, where
        )
        hunks.append(HunkPort(h.index, HunkAction.NEEDS_HUMAN, conflict=conflict))
    note = f"the target has no {inputs.base_path} and git found no rename of it"
    if fp.op is FileOp.DELETE:
        note = f"the target has no {inputs.base_path}: nothing to delete"
    return Ported(FilePort(inputs.target_path, tuple(hunks), note=note))
