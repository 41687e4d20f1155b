"""The one validation layer for what users and other machines hand ktrack: settings files
(``ktrack.toml``), patch set manifests (``patchset.toml``) and imported result documents.

Every document is described by pydantic models deriving from ``Table``: unknown keys are refused
(with "did you mean" when a known key is close), types are strict (``"5"`` is not a number, ``1``
is not a boolean), numbers are bounded (finite, positive where it matters, within 64 bits) and a
``ValidationError`` becomes one ``UserError`` line naming the file and the key's full path.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from tracker.errors import UserError
from tracker.safetext import printable

INT64 = 2**63 - 1

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # a timeout or an age
Positive = Annotated[int, Field(ge=1, le=INT64)]
Count = Annotated[int, Field(ge=0, le=INT64)]  # a number a database column holds
Int64 = Annotated[int, Field(ge=-INT64, le=INT64)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Text = Annotated[str, Field(min_length=1)]


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


AS_TUPLE = BeforeValidator(_as_tuple)  # TOML and JSON arrays load as tuples (immutable)

T = TypeVar("T", bound=BaseModel)


class Table(BaseModel):
    """A table of a document: strict types, no unknown keys, immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a dict; malformed TOML, bytes that are not UTF-8 or an unreadable file are
    a UserError naming ``path`` (``what`` says which kind of file it is)."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: malformed TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "TOML files must be UTF-8"
        ) from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def validate(model: type[T], data: Any, source: str, *, context: dict[str, Any] | None = None) -> T:
    """``data`` validated as ``model``; the first problem is a UserError naming ``source``."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise UserError(f"{source}: {describe(model, exc.errors(include_url=False)[0])}") from None


def validate_json(model: type[T], text: str | bytes, source: str, *, what: str) -> T:
    """``text`` parsed and validated as ``model`` in one pass (pydantic's own JSON parser: nesting
    depth is bounded, so a deeply nested file is an error, not a RecursionError); ``what`` names
    the kind of document for a file that is not JSON at all."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            reason = err.get("ctx", {}).get("error", "invalid JSON")
            raise UserError(f"{source}: not {what} (bad JSON: {reason})") from None
        raise UserError(f"{source}: {describe(model, err)}") from None


def location(loc: tuple[int | str, ...]) -> str:
    """``("versions", 0, "fuzz")`` → ``versions[0].fuzz``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = printable(part)  # keys come from the file: control characters escaped
            out += f".{text}" if out else text
    return out or "(top level)"


def describe(model: type[BaseModel], err: ErrorDetails) -> str:
    """One line for one pydantic error: where, then what, in ktrack's words."""
    loc = tuple(p for p in err["loc"] if not _is_validator_tag(p))
    where = location(loc)
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        known = sorted(_known_keys(model, loc[:-1]))
        key = str(err["loc"][-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if isinstance(value, dict):
            return f"unknown table [{where}] ({hint}known: {', '.join(known)})"
        return f"{where}: unknown key {key!r} ({hint}known: {', '.join(known)})"
    if kind == "missing":
        return f"{where}: missing (required)"
    if kind.endswith("_type") or kind in ("model_type", "dataclass_type"):
        want = kind.removesuffix("_type")
        want = {"model": "table", "dict": "table", "tuple": "list", "str": "string"}.get(want, want)
        return f"{where}: expected {_article(want)}, got {_typename(value)}"
    if kind == "literal_error":
        return f"{where}: {_short(value)} is not one of {err.get('ctx', {}).get('expected', '')}"
    if kind.startswith(("datetime_", "date_")) and kind != "datetime_type":
        return f"{where}: {_short(value)} is not an ISO 8601 date and time"
    if kind == "string_pattern_mismatch":
        return f"{where}: {_short(value)} does not match {err.get('ctx', {}).get('pattern')}"
    if kind in ("finite_number",):
        return f"{where}: {value!r} is not a finite number"
    if kind.startswith(("greater_than", "less_than")):
        bound = err["msg"].removeprefix("Input should be ")
        return f"{where}: must be {bound}, got {_short(value)}"
    if kind.startswith(("too_short", "string_too_short")):
        return f"{where}: must not be empty"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


_TAG = re.compile(r"^(\[key\]|[a-z][a-z-]*\[.*\])$")  # pydantic's validator and union tags


def _is_validator_tag(part: int | str) -> bool:
    return isinstance(part, str) and _TAG.match(part) is not None


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _typename(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return f"{type(value).__name__} {_short(value)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            out += _models_in(arg)
    return out


def _known_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> set[str]:
    """The keys the table at ``loc`` accepts (list indexes and free-form names are stepped over)."""
    current = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is not None:
            inner = _models_in(field.annotation)
            if not inner:
                return set()
            current = inner[0]
    return {f.alias or name for name, f in current.model_fields.items()}
