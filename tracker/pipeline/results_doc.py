"""The ``ktrack.results/1`` document as ``ktrack import`` accepts it: every field typed and bounded
by the validation layer of ``tracker.schema`` (unknown keys refused, integers within 64 bits,
numbers finite, nesting depth bounded by the JSON parser), so a hostile file is one UserError
naming the file and the field, never a RecursionError or an OverflowError."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from tracker.patchsets.manifest import kernel_version
from tracker.schema import AS_TUPLE, Count, Int64, Positive, Table, Text
from tracker.vocab import Cause, Stage, Status

SCHEMA = "ktrack.results/1"


def _one_of(values: set[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"unknown {what} {value!r}")
        return value

    return AfterValidator(check)


def _finite(value: Any) -> Any:
    """Free-form JSON (a stage's detail) holds no NaN or infinity (PostgreSQL's JSON refuses
    them); its depth is already bounded by the parser."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"{item!r} is not a finite number")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


StageName = Annotated[str, _one_of({s.value for s in Stage}, "stage")]
StatusName = Annotated[str, _one_of({s.value for s in Status}, "status")]
CauseName = Annotated[str, _one_of({c.value for c in Cause}, "cause")]


def _fingerprint(value: str) -> str:
    if len(value) > 32 or not value.isalnum() or not value.isascii():
        raise ValueError(f"{value[:80]!r} is not a toolchain fingerprint")
    return value


def _digest(value: str) -> str:
    if len(value) != 64 or value.strip("0123456789abcdef"):
        raise ValueError(f"{value[:80]!r} is not a sha256 hex digest")
    return value


Digest = Annotated[str, AfterValidator(_digest)]
When = Annotated[datetime, Field(strict=False)]  # ISO 8601 text in JSON
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ReleaseDoc(Table):
    version: Annotated[Text, AfterValidator(kernel_version)]
    released_at: When | None = None
    series: str | None = None
    moniker: str | None = None
    feed: str | None = None
    source_url: str | None = None
    pgp_url: str | None = None
    sha256: str | None = None
    eol: bool | None = None
    signed: bool | None = None


class StageDoc(Table):
    stage: StageName
    status: StatusName
    cause: CauseName | None = None
    summary: str | None = None
    detail: Annotated[dict[str, Any], AfterValidator(_finite)] | None = None
    started_at: When | None = None
    duration: Seconds | None = None
    log_hash: Digest | None = None
    log_excerpt: str | None = None


class PatchDoc(Table):
    klass: Text = Field(alias="class")
    position: Count
    name: str
    hunks: Count | None = None
    hunks_failed: Count | None = None
    max_fuzz: Count | None = None
    total_offset: Int64 | None = None
    depends_on_failed: bool | None = None


class JobDoc(Table):
    key: Text
    patchset: Text
    version: Text
    content_hash: Text
    base: str | None = None
    release: ReleaseDoc
    target: Text
    stages: Annotated[tuple[StageName, ...], AS_TUPLE]
    status: StatusName
    cause: CauseName | None = None
    furthest_stage: StageName | None = None
    summary: str | None = None
    started_at: When | None = None
    finished_at: When | None = None
    attempts: Positive | None = None
    toolchain: Annotated[str, AfterValidator(_fingerprint)] | None = None  # toolchain.fingerprint
    stage_results: Annotated[tuple[StageDoc, ...], AS_TUPLE]
    patch_results: Annotated[tuple[PatchDoc, ...], AS_TUPLE] | None = None


class ResultsDoc(Table):
    """One export file."""

    schema_: Literal["ktrack.results/1"] = Field(alias="schema")
    exported_at: When | None = None
    host: str | None = None
    jobs: Annotated[tuple[JobDoc, ...], AS_TUPLE]
    logs: dict[Digest, str] | None = None
