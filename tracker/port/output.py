"""The output folder of a port: a refreshed quilt series, the conflicts, the report and a manifest.

``DIR/<patch>``: each patch with its original header (mail headers, description; a stale diffstat
cut off) and a body regenerated against the target with real GNU ``diff -up`` (``a/``/``b/``
names, three lines of context, the C function in each ``@@`` line as quilt users set it), so it applies at offset 0; ``DIR/series`` lists them in order
(dropped patches left out); ``DIR/conflicts/<patch>.txt`` what a human must resolve;
``DIR/port.json`` the ``ktrack.port/1`` report plus the sha256 of every patch written, which is
how a rerun tells the maintainer's edits (kept) from its own output (redone); ``DIR/patchset.toml``
the candidate version, loadable as it is (``ktrack run`` with DIR among the patch set paths).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tracker import proc
from tracker.errors import InfraError, UserError
from tracker.patchsets.diff import Patch, parse_patch
from tracker.patchsets.manifest import Manifest, VersionSpec
from tracker.port.model import PatchPort, PortReport, PortStatus
from tracker.port.series import PortedPatch
from tracker.safetext import printable
from tracker.sources.tree import safe_relpath

STATE = "port.json"
CONFLICTS = "conflicts"


def diff_argv(old: Path, new: Path, old_label: str, new_label: str) -> list[str]:
    return ["diff", "-up", "--label", old_label, "--label", new_label, str(old), str(new)]


def split_header(data: bytes) -> bytes:
    """What precedes the first file section of a patch; a diffstat after ``---`` is cut."""
    lines = data.splitlines(keepends=True)
    out: list[bytes] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else b""
        if line.startswith((b"diff --git ", b"Index: ")) or (
            line.startswith(b"--- ") and nxt.startswith(b"+++ ")
        ):
            break
        out.append(line)
    for i, line in enumerate(out):
        if line.rstrip(b"\r\n") == b"---":
            return b"".join(out[: i + 1])
    return b"".join(out)


def _diff(old: bytes | None, new: bytes | None, path: str, tmp: Path) -> bytes:
    if printable(path) != path:
        raise UserError(
            f"cannot refresh a patch of {printable(path)!r}: diff -u names a file on one line",
            hint="rename the file in the patch set",
        )
    a, b = tmp / "a", tmp / "b"
    a.write_bytes(old or b"")
    b.write_bytes(new or b"")
    argv = diff_argv(
        a,
        b,
        f"a/{path}" if old is not None else "/dev/null",
        f"b/{path}" if new is not None else "/dev/null",
    )
    out = tmp / "out"
    with out.open("wb") as fh:
        child = proc.spawn(argv, cwd=tmp, stdin=subprocess.DEVNULL, stdout=fh)
        rc = proc.stop(child, timeout=120)
    if rc not in (0, 1):
        raise InfraError(f"diff -u failed ({rc}) while refreshing {path}")
    return out.read_bytes()


def refreshed(ported: PortedPatch, header: bytes) -> bytes:
    """The patch regenerated against the target: header, then one ``diff -u`` per file."""
    body = bytearray()
    with tempfile.TemporaryDirectory(prefix="ktrack-refresh-") as tmp:
        for path, new in ported.after.items():
            old = ported.before.get(path)
            if old == new:
                continue
            body += _diff(old, new, path, Path(tmp))
    if header and not header.endswith(b"\n"):
        header += b"\n"
    return header + bytes(body)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_folder(out: Path) -> None:
    """Refuse a folder port would clobber: a file, or a non-empty folder it did not write (the
    version's own patches, say)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"--out {out}: not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE).is_file():
        raise UserError(
            f"--out {out}: the folder is not empty and holds no {STATE}: not a port's output",
            hint="give a new or empty folder, or the one an earlier port wrote",
        )


def previous(out: Path, names: Iterable[str]) -> dict[str, Patch]:
    """The maintainer's edits in ``out``: patches whose bytes differ from what port wrote."""
    state = out / STATE
    if not state.is_file():
        return {}
    try:
        written = json.loads(state.read_text()).get("written", {})
    except (OSError, ValueError) as exc:
        raise UserError(f"{state}: unreadable port state: {exc}") from None
    if not isinstance(written, dict):
        raise UserError(f"{state}: 'written' must be a table of patch names")
    mine: dict[str, Patch] = {}
    for name in names:
        path = out / safe_relpath(name)
        if name in written and path.is_file():
            data = path.read_bytes()
            if _sha(data) != written[name]:
                mine[name] = parse_patch(data, name=name, strip=1)
    return mine


def _conflict_text(p: PatchPort) -> str:
    out: list[str] = []
    for f in p.files:
        if f.note:
            out.append(f"== {f.path}: {f.note}\n")
        for h in f.hunks:
            if h.conflict is None:
                continue
            c = h.conflict
            out.append(f"== {f.path} hunk {h.index}\n{c.diff3}")
            if c.note:
                out.append(f"-- not merged: {c.note}\n")
            if c.moved_to:
                out.append("-- its lines are now in: " + ", ".join(c.moved_to) + "\n")
            if c.upstream.kind == "commits":
                out.append("-- upstream commits touching these lines:\n")
                out += [f"   {commit[:12]} {subject}\n" for commit, subject in c.upstream.commits]
            elif c.upstream.kind == "release-diff":
                out.append("-- the release diff of this region:\n" + c.upstream.diff)
            out.append("\n")
    return "".join(out)


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string takes JSON's escapes


def manifest_text(manifest: Manifest, spec: VersionSpec, report: PortReport, series: str) -> str:
    targets = ", ".join(_toml(t) for t in manifest.track.targets)
    lines = [
        f"# written by `ktrack port {manifest.name}@{spec.version} --to {report.target}`",
        f"name = {_toml(manifest.name)}",
        f"summary = {_toml(manifest.summary)}",
        "",
        "[[versions]]",
        f"version = {_toml(report.candidate)}",
        f"base = {_toml(series)}",
        'format = "quilt"',
        'source = "."',
        "strip = 1",
        f"fuzz = {spec.fuzz}",
    ]
    if spec.kconfig is not None:
        lines.append('kconfig = "kconfig"')
    if spec.tests is not None:
        lines.append('tests = "tests"')
    lines += ["", "[track]", f"kernels = {_toml(report.target)}", f"targets = [{targets}]", ""]
    return "\n".join(lines)


def write(
    out: Path,
    report: PortReport,
    ported: list[PortedPatch],
    headers: dict[str, bytes],
    manifest: Manifest,
    spec: VersionSpec,
    series: str,
) -> None:
    """Write the output folder (created when missing); ``series``: the target's kernel series."""
    try:
        (out / CONFLICTS).mkdir(parents=True, exist_ok=True)
        names: list[str] = []
        written: dict[str, str] = {}
        for pp in ported:
            data = _write_patch(out, pp, headers.get(pp.report.name, b""))
            if pp.report.status is not PortStatus.DROPPED:
                names.append(pp.report.name)
            if data is not None:
                written[pp.report.name] = _sha(data)
        (out / "series").write_text("".join(f"{n}\n" for n in names))
        state: dict[str, Any] = report.to_json()
        state["written"] = _keep_written(out, written, ported)
        (out / STATE).write_text(json.dumps(state, indent=2) + "\n")
        (out / "patchset.toml").write_text(manifest_text(manifest, spec, report, series))
        if spec.kconfig is not None:
            shutil.copyfile(spec.kconfig, out / "kconfig")
        if spec.tests is not None:
            shutil.copytree(spec.tests, out / "tests", symlinks=True, dirs_exist_ok=True)
    except OSError as exc:
        raise InfraError(f"cannot write the port to {out}: {exc.strerror or exc}") from exc


def _write_patch(out: Path, pp: PortedPatch, header: bytes) -> bytes | None:
    """Write one refreshed patch and its conflicts; the bytes port owns (None: it wrote none)."""
    name = safe_relpath(pp.report.name)
    conflicts = out / CONFLICTS / f"{name.replace('/', '_')}.txt"
    if pp.report.status is PortStatus.NEEDS_HUMAN:
        conflicts.write_text(_conflict_text(pp.report))
    else:
        conflicts.unlink(missing_ok=True)
    if pp.report.status in (PortStatus.DROPPED, PortStatus.KEPT):
        return None  # dropped: left out; kept: the maintainer's bytes, untouched
    data = refreshed(pp, header)
    dest = out / name
    if pp.mine_failed:
        dest = dest.with_name(dest.name + ".proposed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return None if pp.mine_failed else data


def _keep_written(out: Path, written: dict[str, str], ported: list[PortedPatch]) -> dict[str, str]:
    """What port wrote, plus the records of patches it left alone (kept or failing edits)."""
    state = out / STATE
    old: dict[str, str] = {}
    if state.is_file():
        old = json.loads(state.read_text()).get("written", {})
    for pp in ported:
        name = pp.report.name
        if name not in written and name in old:
            written[name] = old[name]
    return written
