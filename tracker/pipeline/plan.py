"""The planner: which jobs a run does, each with a key that makes it idempotent.

A job is (patch set version, release, target, stages). Its key hashes the patch set content, the
release, the target and the stage list, so a result that exists is never recomputed and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.config import Settings
from tracker.errors import UserError
from tracker.results.models import KernelRelease
from tracker.versions import KernelSpec, KernelVersion
from tracker.vocab import Stage

PLAN_SCHEMA = "ktrack.plan/1"


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to run one job, serialisable to JSON."""

    patchset: str
    version: str
    content_hash: str
    manifest: str  # path of patchset.toml
    release: str
    target: str
    stages: tuple[str, ...]

    @property
    def key(self) -> str:
        blob = json.dumps(
            [
                self.patchset,
                self.version,
                self.content_hash,
                self.release,
                self.target,
                list(self.stages),
            ],
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        return f"{self.patchset}@{self.version} × {self.release} × {self.target}"

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = asdict(self)
        data["stages"] = list(self.stages)
        data["key"] = self.key
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> JobSpec:
        try:
            stages = data["stages"]
            if not isinstance(stages, list):
                raise TypeError("stages")
            spec = cls(
                patchset=str(data["patchset"]),
                version=str(data["version"]),
                content_hash=str(data["content_hash"]),
                manifest=str(data["manifest"]),
                release=str(data["release"]),
                target=str(data["target"]),
                stages=tuple(str(s) for s in stages),
            )
        except (KeyError, TypeError) as exc:
            raise UserError(f"malformed job description: missing or wrong field {exc}") from exc
        if "key" in data and data["key"] != spec.key:
            raise UserError(f"job description does not match its key {data['key']}")
        return spec


def catalog_versions(session: Session) -> list[KernelVersion]:
    rows = session.scalars(select(KernelRelease.version)).all()
    return sorted(KernelVersion.parse(v) for v in rows)


def plan(
    settings: Settings,
    session: Session,
    *,
    patchsets: Sequence[str] = (),
    kernels: str | None = None,
    stages: Sequence[Stage] = tuple(Stage),
    targets: Sequence[str] = (),
) -> list[JobSpec]:
    """The jobs of a run, in a stable order (patch set, version, release, target).

    ``patchsets`` holds names or ``name@version``; empty means every tracked patch set. ``kernels``
    overrides each patch set's ``[track] kernels``; ``latest`` alone narrows each set's releases
    to the newest of each series. UserError on an unknown patch set or version, a
    malformed manifest or series, or a spec that matches no release.
    """
    from tracker.patchsets.formats import content_hash
    from tracker.patchsets.manifest import discover, resolve, warn_stderr

    override = KernelSpec.parse(kernels) if kernels else None
    paths = settings.patchset_paths
    chosen = []
    if patchsets:
        for name in patchsets:
            manifest, version = resolve(paths, name)
            versions = (version,) if "@" in name else manifest.versions
            chosen.append((manifest, versions))
    else:
        chosen = [(m, m.versions) for m in discover(paths)]
        if not chosen:
            where = ", ".join(str(p) for p in paths)
            raise UserError(
                f"no patch sets found in {where}", hint="set [patchsets] paths in ktrack.toml"
            )
    releases = catalog_versions(session)
    if not releases:
        raise UserError("the release catalog is empty", hint="run `ktrack releases sync` first")
    stage_names = tuple(s.value for s in sorted(set(stages), key=lambda s: s.index))
    jobs: list[JobSpec] = []
    for manifest, versions in chosen:
        spec = KernelSpec.parse(manifest.track.kernels)
        if override is not None and override.only_latest:
            spec = replace(spec, latest=True)  # the set's releases, newest per series
        elif override is not None:
            spec = override
        chosen_releases = spec.select(releases)
        target_list = tuple(targets) or manifest.track.targets
        for version in versions:
            try:
                digest = content_hash(version)
            except UserError as exc:
                if patchsets:
                    raise
                warn_stderr(f"patch set {manifest.name}@{version.version} left out: {exc}")
                continue
            for release in chosen_releases:
                for target in target_list:
                    jobs.append(
                        JobSpec(
                            patchset=manifest.name,
                            version=version.version,
                            content_hash=digest,
                            manifest=str(manifest.path),
                            release=str(release),
                            target=target,
                            stages=stage_names,
                        )
                    )
    if not jobs and override is not None:
        raise UserError(f"no release in the catalog matches {kernels!r}")
    return jobs
