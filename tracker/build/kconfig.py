"""Configure a kernel: base config + boot options + the patch set's fragment, then verify.

Steps (all out of tree, in ``out``):
1. the base: ``make tinyconfig`` / ``make defconfig``, or a copy of a config file;
2. the options a QEMU boot needs (``BOOT_OPTIONS``) and the fragment appended to ``.config``
   (a later assignment overrides an earlier one, as ``scripts/kconfig/merge_config.sh`` does);
3. ``make olddefconfig``;
4. every requested symbol checked in the final ``.config``. One that did not survive fails the
   stage, with the reason read from the tree's Kconfig files (its ``depends on``, the values of
   the symbols named there, or "no such symbol").
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from tracker import proc, sandbox
from tracker.arches import loader
from tracker.arches.target import Target
from tracker.build import signatures
from tracker.build.kbuild import build_env, default_ccache_dir, make_argv
from tracker.errors import InfraError, UserError
from tracker.vocab import Cause, Outcome, Status

# The options a QEMU boot needs, per architecture: each arch file's ``[kconfig] boot`` list
# (``tracker/arches/<arch>.toml``), here as a read-only view by arch name.
BOOT_OPTIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: arch.boot_options for name, arch in loader.known().items()}
)

_ASSIGN = re.compile(r"^CONFIG_(?P<sym>[A-Za-z0-9_]+)=(?P<val>.*)$")
_UNSET = re.compile(r"^# CONFIG_(?P<sym>[A-Za-z0-9_]+) is not set\s*$")


def parse_config(text: str, *, origin: str = ".config") -> dict[str, str]:
    """Symbol (without ``CONFIG_``) -> value (``y``, ``m``, ``n``, a number or a quoted string).

    Comments and blank lines are skipped; any other line is a UserError naming ``origin``.
    """
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _UNSET.match(line):
            values[m["sym"]] = "n"
        elif m := _ASSIGN.match(line):
            values[m["sym"]] = m["val"].strip()
        elif line and not line.startswith("#"):
            raise UserError(f"{origin}:{number}: not a Kconfig assignment: {line[:80]!r}")
    return values


def render(values: Mapping[str, str]) -> str:
    """``.config`` lines for ``values``."""
    lines = []
    for sym, val in values.items():
        lines.append(f"# CONFIG_{sym} is not set" if val == "n" else f"CONFIG_{sym}={val}")
    return "\n".join(lines) + ("\n" if lines else "")


def requested_options(
    target: Target, fragment_text: str | None, *, origin: str = ""
) -> dict[str, str]:
    """The boot options of ``target``'s arch, overridden by the fragment's assignments."""
    wanted = {sym: "y" for sym in target.arch_info.boot_options}
    if fragment_text:
        wanted.update(parse_config(fragment_text, origin=origin or "fragment"))
    return wanted


@dataclass(frozen=True)
class KconfigEntry:
    """One ``config SYMBOL`` definition found in the tree's Kconfig files."""

    symbol: str
    file: str
    line: int
    type: str | None
    has_prompt: bool
    depends: tuple[str, ...]  # its own `depends on` expressions
    enclosing: tuple[str, ...] = field(default=())  # `if` / `menu ... depends on` in the same file


_ENTRY_START = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$")
_ENDS_ENTRY = re.compile(
    r"^\s*(?:config|menuconfig|choice|endchoice|comment|menu|endmenu|if|endif|source|rsource|"
    r"osource|orsource|mainmenu)\b"
)
_TYPE = re.compile(r"^\s*(bool|tristate|string|int|hex|def_bool|def_tristate)\b\s*(.*)$")
_DEPENDS = re.compile(r"^\s*depends\s+on\s+(.*)$")
_IF = re.compile(r"^\s*if\s+(.*)$")
_MENU = re.compile(r"^\s*menu\s+\"")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        out.append((start, pending + raw))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _skip_help(lines: list[tuple[int, str]], i: int) -> int:
    """The index of the first line after the help text that starts at ``lines[i]``."""
    base = _indent(lines[i][1])
    j = i + 1
    while j < len(lines) and (not lines[j][1].strip() or _indent(lines[j][1]) > base):
        j += 1
    return j


def parse_kconfig_file(text: str, relpath: str, symbols: Iterable[str]) -> list[KconfigEntry]:
    """Entries defining any of ``symbols`` in one Kconfig file's text."""
    wanted = set(symbols)
    entries: list[KconfigEntry] = []
    stack: list[tuple[str, list[str]]] = []  # ("if"|"menu"|"choice", its depends)
    lines = _logical_lines(text)
    i = 0
    while i < len(lines):
        number, line = lines[i]
        stripped = line.split("#", 1)[0].strip()
        if stripped in ("help", "---help---"):
            i = _skip_help(lines, i)
            continue
        m = _ENTRY_START.match(line.split("#", 1)[0])
        if m and m[1] in wanted:
            sym = m[1]
            typ: str | None = None
            prompt = False
            depends: list[str] = []
            j = i + 1
            in_help = False
            while j < len(lines):
                body = lines[j][1]
                if _ENDS_ENTRY.match(body) and not (in_help and body[:1].isspace()):
                    break
                code = body.split("#", 1)[0].strip()
                if in_help:
                    j += 1
                    continue
                if code in ("help", "---help---"):
                    in_help = True
                elif tm := _TYPE.match(code):
                    typ = tm[1].removeprefix("def_")
                    if tm[1] in ("bool", "tristate", "string", "int", "hex") and tm[2].startswith(
                        '"'
                    ):
                        prompt = True
                elif code.startswith("prompt"):
                    prompt = True
                elif dm := _DEPENDS.match(code):
                    depends.append(dm[1].strip())
                j += 1
            enclosing = tuple(d for _, ds in stack for d in ds)
            entries.append(
                KconfigEntry(sym, relpath, number, typ, prompt, tuple(depends), enclosing)
            )
            i = j
            continue
        if m2 := _IF.match(stripped):
            stack.append(("if", [m2[1].strip()]))
        elif stripped == "endif" or stripped == "endmenu" or stripped == "endchoice":
            kind = {"endif": "if", "endmenu": "menu", "endchoice": "choice"}[stripped]
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == kind:
                    del stack[k:]
                    break
        elif _MENU.match(stripped) or stripped == "choice" or stripped.startswith("choice "):
            kind = "menu" if stripped.startswith("menu") else "choice"
            deps: list[str] = []
            j = i + 1
            while j < len(lines):
                code = lines[j][1].split("#", 1)[0].strip()
                if dm := _DEPENDS.match(code):
                    deps.append(dm[1].strip())
                elif code and not code.startswith(
                    ("visible", "prompt", "bool", "tristate", "default", "optional")
                ):
                    break
                j += 1
            stack.append((kind, deps))
        i += 1
    return entries


def find_definitions(
    src: Path, symbols: Iterable[str], *, skip: Iterable[Path] = (), srcarch: str | None = None
) -> dict[str, list[KconfigEntry]]:
    """Every ``config SYMBOL`` for ``symbols`` in the Kconfig files of ``src``.

    With ``srcarch``, only that folder of ``arch/`` is read (the others are not sourced).
    """
    wanted = sorted(set(symbols))
    found: dict[str, list[KconfigEntry]] = {s: [] for s in wanted}
    if not wanted:
        return found
    quick = re.compile(
        r"^\s*(?:menu)?config\s+(?:" + "|".join(map(re.escape, wanted)) + r")\s*$", re.M
    )
    skipped = {os.path.realpath(p) for p in skip}
    if srcarch is not None and (src / "arch").is_dir():
        skipped |= {os.path.realpath(p) for p in (src / "arch").iterdir() if p.name != srcarch}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [
            d
            for d in dirnames
            if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) not in skipped
        ]
        for name in filenames:
            if not name.startswith("Kconfig"):
                continue
            path = os.path.join(dirpath, name)
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if not quick.search(text):
                continue
            rel = os.path.relpath(path, src)
            for entry in parse_kconfig_file(text, rel, wanted):
                found[entry.symbol].append(entry)
    return found


_IDENT = re.compile(r"(?<![!\w])([A-Z][A-Z0-9_]*)\b")


def explain(symbol: str, entries: list[KconfigEntry], final: Mapping[str, str]) -> str:
    """Why ``symbol`` did not get its requested value, from its Kconfig definitions."""
    if not entries:
        return "no such symbol in this tree's Kconfig files"
    reasons: list[str] = []
    for e in entries:
        conds = [*e.enclosing, *e.depends]
        if conds:
            names = sorted(
                {n for c in conds for n in _IDENT.findall(c) if n not in ("y", "m", "n")}
            )
            unmet = [f"{n}={final.get(n, 'n')}" for n in names if final.get(n, "n") in ("n",)]
            text = f"{e.file}:{e.line}: depends on " + " && ".join(
                f"({c})" if "||" in c else c for c in conds
            )
            if unmet:
                text += f" [{', '.join(unmet)}]"
            reasons.append(text)
        elif not e.has_prompt:
            reasons.append(f"{e.file}:{e.line}: has no prompt (only set by select or default)")
        else:
            reasons.append(
                f"{e.file}:{e.line}: no dependency found (a choice, select or range may decide it)"
            )
    return "; ".join(reasons)


def _survived(requested: str, actual: str | None, final: Mapping[str, str]) -> bool:
    actual = actual if actual is not None else "n"
    if requested == actual:
        return True
    # a module request is met by a built-in when the kernel has no module support
    return requested == "m" and actual == "y" and final.get("MODULES", "n") == "n"


def verify(requested: Mapping[str, str], final: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(symbol, requested, actual) for every request the final config does not meet."""
    missing = []
    for sym, val in requested.items():
        if not _survived(val, final.get(sym), final):
            missing.append((sym, val, final.get(sym, "n")))
    return missing


def configure(
    src: Path,
    out: Path,
    target: Target,
    fragment: Path | None,
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    ccache_dir: Path | None = None,
    sandbox_mode: sandbox.SandboxMode | None = None,
) -> Outcome:
    """Produce ``out/.config`` for ``target`` plus ``fragment`` and verify every request."""
    fragment_text = None
    if fragment is not None:
        try:
            fragment_text = fragment.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read Kconfig fragment {fragment}: {exc.strerror}") from exc
    requested = requested_options(target, fragment_text, origin=str(fragment or ""))
    out.mkdir(parents=True, exist_ok=True)
    config = out / ".config"
    ccache_dir = ccache_dir or default_ccache_dir()
    ccache_dir.mkdir(parents=True, exist_ok=True)
    full_env = build_env(src, out, ccache_dir)
    full_env.update(env or {})
    try:
        mode = sandbox_mode if sandbox_mode is not None else sandbox.detect()
        proc.which("make")

        def make(goal: str) -> proc.Result:
            argv = make_argv(src, out, target, [goal], jobs=1)
            return proc.run(
                sandbox.wrap(argv, mode, writable=[out, ccache_dir], readable=[src]),
                cwd=out,
                timeout=timeout,
                env=full_env,
                log=log,
            )

        base = target.config_file
        if base is None:
            result = make(target.config)
            if not result.ok:
                return _make_failed(target.config, result, log)
        else:
            if not base.is_file():
                raise UserError(f"target {target}: base config file not found: {base}")
            shutil.copyfile(base, config)
        with config.open("a", encoding="utf-8") as fh:
            fh.write("\n# ktrack: boot options and fragment\n" + render(requested))
        result = make("olddefconfig")
        if not result.ok:
            return _make_failed("olddefconfig", result, log)
        final = parse_config(config.read_text(encoding="utf-8", errors="replace"))
    except InfraError as exc:
        return Outcome(Status.ERROR, str(exc), {}, {}, log)
    missing = verify(requested, final)
    artifacts = {"config": config}
    detail: dict[str, object] = {"requested": len(requested)}
    if not missing:
        return Outcome(
            Status.PASS, f"{len(requested)} requested options set", detail, artifacts, log
        )
    defs = find_definitions(
        src, [m[0] for m in missing], skip=[out], srcarch=target.arch_info.srcarch
    )
    rows = []
    for sym, want, got in missing:
        reason = explain(sym, defs[sym], final)
        rows.append({"symbol": f"CONFIG_{sym}", "requested": want, "actual": got, "reason": reason})
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"ktrack: CONFIG_{sym}={want} requested, got {got}: {reason}\n")
    detail["missing"] = rows
    first = rows[0]
    summary = f"{first['symbol']}={first['requested']} did not survive: {first['reason']}"
    if len(rows) > 1:
        summary += f" (and {len(rows) - 1} more)"
    return Outcome(Status.FAIL, summary, detail, artifacts, log)


def _make_failed(goal: str, result: proc.Result, log: Path) -> Outcome:
    """``make goal`` failed: ``error`` (infrastructure) when the log shows ours failed (disk,
    memory, a killed or crashed compiler, ccache, a missing tool), else ``fail``, which the
    stage loop confirms against the release without the patch set (the control)."""
    detail: dict[str, object] = {"returncode": result.returncode, "goal": goal}
    infra = signatures.find(result.stdout + "\n" + result.stderr)
    if infra is not None:
        detail["infrastructure"] = infra.to_json()
        summary = f"infrastructure: make {goal} failed: {infra.describe()}"
        return Outcome(Status.ERROR, summary, detail, {}, log, cause=Cause.INFRASTRUCTURE)
    tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
    return Outcome(
        Status.FAIL,
        f"make {goal} failed ({result.returncode}): {' '.join(tail)[:300]}",
        detail,
        {},
        log,
    )
