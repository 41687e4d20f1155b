"""Series x Tree -> ApplyReport: apply a patch series in order, recording every verdict.

The tree is never written: the state is an overlay of the files the series changed on top of a
read-only :class:`~tracker.sources.tree.Tree`, which is only asked for the files patches name (in
one batch up front). A patch that fails is recorded and left out, as ``quilt push`` would refuse it;
the rest of the series carries on against the tree as it stands, and a later patch touching a file
a failed patch touched is marked ``depends_on_failed``. A patch whose files are all already there
(every hunk applies reversed, as GNU patch's "Reversed (or previously applied)") is
``already-applied``: upstream absorbed it, drop it from the series.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from tracker.apply.engine import Deadline, FileResult, HunkResult, patch_lines, split_lines
from tracker.apply.report import ApplyReport, FileReport, HunkReport, PatchReport, PatchStep
from tracker.patchsets.diff import FileOp, FilePatch, Hunk, Patch, Series
from tracker.sources.tree import Tree
from tracker.vocab import HunkClass

_REGULAR = 0o100644


def worst(classes: Iterable[HunkClass]) -> HunkClass:
    """The worst of ``classes`` (CLEAN for none)."""
    return max(classes, default=HunkClass.CLEAN)


_SYMLINK = 0o120000
_SPLIT_CACHE = 8  # files whose split into lines is kept for the next patch touching them
EMPTY_NOTE = "appears to be empty: it holds no diff (quilt applies it as empty)"


@dataclass
class _State:
    """The tree as the series has left it so far."""

    tree: Tree
    deadline: Deadline = field(default_factory=lambda: Deadline(None))
    files: dict[str, bytes | None] = field(default_factory=dict)  # overlay
    modes: dict[str, int] = field(default_factory=dict)
    base: dict[str, bytes | None] = field(default_factory=dict)  # prefetched tree reads
    split: dict[str, tuple[bytes, list[bytes]]] = field(default_factory=dict)  # last split

    def lines(self, path: str, data: bytes) -> list[bytes]:
        """``data`` split into lines, reusing the last split of ``path`` when data is unchanged."""
        cached = self.split.get(path)
        if cached is not None and cached[0] is data:
            return cached[1]
        lines = split_lines(data)
        if len(self.split) >= _SPLIT_CACHE:  # a list of lines costs twice the file: keep few
            self.split.pop(next(iter(self.split)))
        self.split[path] = (data, lines)
        return lines

    def read(self, path: str, pending: dict[str, bytes | None]) -> bytes | None:
        if path in pending:
            return pending[path]
        if path in self.files:
            return self.files[path]
        if path not in self.base:
            self.base[path] = self.tree.read(path)
        return self.base[path]

    def mode(self, path: str, pending_modes: dict[str, int]) -> int | None:
        if path in pending_modes:
            return pending_modes[path]
        if path in self.modes:
            return self.modes[path]
        return self.tree.mode(path)


def _prefetch(tree: Tree, paths: Iterable[str]) -> dict[str, bytes | None]:
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    return dict(tree.read_many(wanted))


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _blocked(state: _State, path: str, pending: dict[str, bytes | None]) -> str | None:
    """The first parent of ``path`` that is not a directory (a symbolic link or a file): a write
    there would follow the link out of the tree, or fail. Trees read a directory as None."""
    for prefix in _parents(path):
        if state.read(prefix, pending) is not None:
            return prefix
    return None


def _best_name(names: list[str]) -> str:
    """GNU ``best_name``: fewest components, then shortest basename, then shortest name."""
    return min(names, key=lambda n: (n.count("/"), len(n.rsplit("/", 1)[-1]), len(n)))


def _text(lines: Iterable[bytes]) -> tuple[str, ...]:
    return tuple(ln.decode("utf-8", "replace").rstrip("\r\n") for ln in lines)


def _hunk_reports(
    result: FileResult, hunks: tuple[Hunk, ...], lines: list[bytes]
) -> tuple[HunkReport, ...]:
    out = []
    for r, h in zip(result.hunks, hunks, strict=True):
        want: tuple[str, ...] = ()
        have: tuple[str, ...] = ()
        if r.klass is HunkClass.CONFLICT:
            old = h.old_lines()
            want = _text(old)
            start = max(r.expected_line - 1, 0)
            have = _text(lines[start : start + max(len(old), 1)])
        out.append(_hunk_report(r, want, have))
    return tuple(out)


def _hunk_report(
    r: HunkResult, want: tuple[str, ...] = (), have: tuple[str, ...] = ()
) -> HunkReport:
    return HunkReport(
        index=r.index,
        klass=r.klass,
        offset=r.offset,
        fuzz=r.fuzz,
        line=r.line,
        expected_line=r.expected_line,
        want=want,
        have=have,
    )


def _all(hunks: tuple[Hunk, ...], klass: HunkClass) -> tuple[HunkReport, ...]:
    return tuple(HunkReport(index=h.index, klass=klass, expected_line=h.first) for h in hunks)


def _refuse_link(
    state: _State, written: str, pending: dict[str, bytes | None], fp: FilePatch
) -> FileReport | None:
    """A conflict when writing ``written`` would go through a link or a file, else None."""
    link = _blocked(state, written, pending)
    if link is None:
        return None
    return FileReport(
        written,
        HunkClass.CONFLICT,
        _all(fp.hunks, HunkClass.CONFLICT),
        note=f"refused: {link} is a symbolic link or a file, not a directory",
    )


def _apply_file(
    fp: FilePatch,
    state: _State,
    pending: dict[str, bytes | None],
    pending_modes: dict[str, int],
    fuzz: int,
) -> FileReport:
    """Check one file section; on success record its effect in ``pending``."""
    path = fp.path
    for written in {fp.new_path} - {None, fp.old_path}:
        assert written is not None
        refused = _refuse_link(state, written, pending, fp)
        if refused is not None:
            return refused
    if fp.binary:
        return FileReport(
            path,
            HunkClass.CONFLICT,
            note="binary patch: not applied (GNU patch cannot apply git binary diffs)",
            old_path=fp.old_path,
        )
    names = [n for n in fp.candidates if state.read(n, pending) is not None]
    if fp.op is FileOp.CREATE or (not names and fp.old_side_empty and fp.op is FileOp.MODIFY):
        target = fp.new_path or path
        # a modify-style header (`--- a/evil/x` with `@@ -0,0`) creates too: GNU patch says
        # "Invalid file name" when a parent is a link (from the tree or an earlier patch)
        refused = _refuse_link(state, target, pending, fp)
        if refused is not None:
            return refused
        current = state.read(target, pending)
        if current:  # an existing empty file may be created over, as GNU patch allows
            created = patch_lines(
                [], fp.hunks, max_fuzz=fuzz, detect_reverse=False, deadline=state.deadline
            )
            if created.output is not None and created.output == current:
                return FileReport(
                    target,
                    HunkClass.ALREADY_APPLIED,
                    _all(fp.hunks, HunkClass.ALREADY_APPLIED),
                    note="the file already exists with this content",
                )
            return FileReport(
                target,
                HunkClass.FILE_EXISTS,
                _all(fp.hunks, HunkClass.FILE_EXISTS),
                note="the patch creates a file the tree already has",
            )
        result = patch_lines(
            [], fp.hunks, max_fuzz=fuzz, detect_reverse=False, deadline=state.deadline
        )
        if result.output is None:
            return FileReport(target, HunkClass.CONFLICT, _hunk_reports(result, fp.hunks, []))
        pending[target] = result.output
        pending_modes[target] = fp.new_mode or _REGULAR
        return FileReport(target, _worst(result), _hunk_reports(result, fp.hunks, []))

    # modify, delete, rename, copy: find the input file as GNU patch does
    if not names:
        if fp.op is FileOp.DELETE or (fp.op is FileOp.MODIFY and fp.new_side_empty):
            return FileReport(
                path,
                HunkClass.ALREADY_APPLIED,
                _all(fp.hunks, HunkClass.ALREADY_APPLIED),
                note="the patch deletes a file the tree does not have",
            )
        return FileReport(
            path,
            HunkClass.MISSING_FILE,
            _all(fp.hunks, HunkClass.MISSING_FILE),
            note="the tree has no such file",
            old_path=fp.old_path,
        )
    if fp.op in (FileOp.RENAME, FileOp.COPY) and fp.old_path in names:
        source = fp.old_path
    else:
        source = _best_name(names)
    assert source is not None
    data = state.read(source, pending) or b""
    if (
        len(data) < 4096
        and b"\n" not in data
        and state.mode(source, pending_modes) == _SYMLINK
        and _SYMLINK not in (fp.old_mode, fp.new_mode)
    ):
        # a symlink's blob is its target (short, no newline): only then ask for the mode
        return FileReport(
            path,
            HunkClass.CONFLICT,
            _all(fp.hunks, HunkClass.CONFLICT),
            note="not a regular file (a symbolic link): refusing to patch it",
        )
    if not data and fp.hunks and fp.new_side_empty:
        # GNU: "would empty out the file, which is already empty" (reversed): nothing to do
        return FileReport(
            path,
            HunkClass.ALREADY_APPLIED,
            _all(fp.hunks, HunkClass.ALREADY_APPLIED),
            note="the patch empties a file that is already empty",
        )
    lines = state.lines(source, data)
    result = patch_lines(lines, fp.hunks, max_fuzz=fuzz, data=data, deadline=state.deadline)
    reports = _hunk_reports(result, fp.hunks, lines)
    if result.reversed:
        klass = HunkClass.CONFLICT if result.failed else HunkClass.ALREADY_APPLIED
        note = "reversed (or previously applied)"
        if fp.op is FileOp.RENAME and fp.new_path and fp.old_path != source:
            note = "already renamed"
        return FileReport(path, klass, reports, note=note, old_path=fp.old_path)
    if result.output is None:
        return FileReport(path, HunkClass.CONFLICT, reports, old_path=fp.old_path)
    output = result.output
    klass = _worst(result)
    if fp.op is FileOp.DELETE:
        if output:
            return FileReport(
                path,
                HunkClass.CONFLICT,
                reports,
                note="not deleting the file: its content differs from the patch",
            )
        pending[source] = None
        return FileReport(path, klass, reports)
    target = fp.new_path or source
    if fp.op in (FileOp.RENAME, FileOp.COPY):
        target = fp.new_path or source
        if fp.op is FileOp.RENAME and source != target:
            pending[source] = None
    if output != data or target != source:
        pending[target] = output
        state.base.pop(source, None)  # read again from the tree only if this patch fails
    if fp.new_mode is not None and fp.old_mode is not None and fp.new_mode != fp.old_mode:
        pending_modes[target] = fp.new_mode  # git "old mode"/"new mode"
    elif target != source:
        old_mode = state.mode(source, pending_modes)
        if old_mode is not None:
            pending_modes[target] = old_mode
    if target != source and target not in pending:
        pending[target] = output
    return FileReport(path, klass, reports, old_path=fp.old_path if target != source else None)


def _worst(result: FileResult) -> HunkClass:
    return worst(h.klass for h in result.hunks)


def check_patch(
    patch: Patch, state: _State, fuzz: int
) -> tuple[PatchReport, dict[str, bytes | None], dict[str, int]]:
    pending: dict[str, bytes | None] = {}
    pending_modes: dict[str, int] = {}
    files = tuple(_apply_file(fp, state, pending, pending_modes, fuzz) for fp in patch.files)
    klass = worst(f.klass for f in files)
    note = "" if files else EMPTY_NOTE
    if klass is HunkClass.ALREADY_APPLIED and all(
        f.klass is HunkClass.ALREADY_APPLIED for f in files
    ):
        note = "already applied upstream: drop it from the series"
    report = PatchReport(name=patch.name, klass=klass, files=files, note=note, empty=not files)
    return report, pending, pending_modes


def check_series(
    series: Series, tree: Tree, *, fuzz: int = 0, timeout: float | None = None
) -> ApplyReport:
    """Apply ``series`` in order to ``tree`` (read-only) and report every verdict.

    ``timeout`` (seconds) bounds the whole check: past it an InfraError is raised between two
    hunks, never a verdict (the stage records ``error``, cause infrastructure)."""
    deadline = Deadline(timeout)
    state = _State(tree=tree, deadline=deadline)
    wanted = {p for patch in series.patches for p in patch.paths}
    for patch in series.patches:
        for fp in patch.files:
            if fp.new_path is not None:
                wanted.update(_parents(fp.new_path))
    state.base = _prefetch(tree, wanted)
    failed_paths: dict[str, str] = {}  # path -> failed patch that touched it
    touched: dict[str, str] = {}
    reports: list[PatchReport] = []
    steps: list[PatchStep] = []
    for patch in series.patches:
        deadline.check()
        report, pending, pending_modes = check_patch(patch, state, fuzz)
        report = dataclasses.replace(report, sha256=patch.sha256)
        deps = sorted({failed_paths[p] for p in patch.paths if p in failed_paths})
        if deps:
            report = dataclasses.replace(report, depends_on_failed=True, depends_on=tuple(deps))
        if report.klass.is_failure:
            for p in patch.paths:
                failed_paths.setdefault(p, patch.name)
        else:
            steps.append(PatchStep(patch.name, dict(pending), dict(pending_modes)))
            for path, content in pending.items():
                state.files[path] = content
                state.base.pop(path, None)  # the overlay answers for it from now on
                touched[path] = patch.name
            for path, mode in pending_modes.items():
                state.modes[path] = mode
                touched.setdefault(path, patch.name)
        reports.append(report)
    changes = dict(state.files)
    modes = {p: m for p, m in state.modes.items() if p not in changes or changes[p] is not None}
    return ApplyReport.of(
        reports, changes=changes, modes=modes, touched=touched, steps=tuple(steps)
    )
