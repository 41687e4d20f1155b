"""Layered settings and the data dir.

Layers, lowest first: built-in defaults < ``/etc/ktrack.toml`` < ``~/.config/ktrack/config.toml``
< ``./ktrack.toml`` (or ``--config FILE``, which replaces it) < ``KTRACK_*`` environment < flags.

Every file is TOML; a malformed file or a wrong field is a UserError naming the file and field.
Relative paths in a file are relative to the folder holding that file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tracker.errors import UserError

FEED_KINDS = ("kernelorg", "mirror", "git")
_TOP_KEYS = {"database", "feeds", "patchsets", "run", "store", "build", "boot", "celery", "report"}


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def default_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "ktrack"


def default_cache() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "ktrack"


@dataclass(frozen=True)
class FeedConfig:
    """One ``[feeds.NAME]`` table."""

    name: str
    kind: str
    url: str
    tags: str = "v*"
    keyring: str | None = None  # gpg keyring for signature checks (kernelorg, mirror)


@dataclass(frozen=True)
class Settings:
    """Everything ktrack reads from its settings layers."""

    home: Path
    cache: Path
    database_url: str | None = None
    feeds: tuple[FeedConfig, ...] = ()
    patchset_paths: tuple[Path, ...] = (Path("patches"),)
    jobs: int = 0  # 0: number of CPUs
    build_timeout: float = 3600.0
    boot_timeout: float = 120.0
    boot_accel: str = "tcg"  # tcg, kvm, or auto (KVM when a probe boot proves it works)
    baseline: bool = True  # confirm configure/build/boot failures on the unpatched release
    baseline_max_age: float = 7 * 24 * 3600.0  # seconds a cached control result answers for
    celery_broker: str = "redis://127.0.0.1:6379/0"
    artifacts_dir: Path | None = None
    sources: tuple[str, ...] = field(default=())  # the files the settings were read from

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'tracker.db'}"

    @property
    def store_path(self) -> Path:
        return self.home / "store.git"

    @property
    def artifacts(self) -> Path:
        return self.artifacts_dir or (self.home / "artifacts")

    @property
    def downloads(self) -> Path:
        return self.cache / "downloads"

    def feed(self, name: str) -> FeedConfig:
        for f in self.feeds:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.feeds) or "none configured"
        raise UserError(f"unknown feed {name!r} (known: {known})")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: malformed TOML: {exc}") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read settings: {exc.strerror}") from exc


def _want(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"{where}: expected {names}, got {type(value).__name__}")
    return value


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _apply_file(values: dict[str, Any], path: Path) -> None:
    data = _read_toml(path)
    base = path.parent.resolve()
    for key in data:
        if key not in _TOP_KEYS:
            raise UserError(
                f"{path}: unknown table [{key}] (known: {', '.join(sorted(_TOP_KEYS))})"
            )
    db = _want(data.get("database", {}), dict, f"{path}: [database]")
    if "url" in db:
        url = _want(db["url"], str, f"{path}: database.url")
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///") :]
            if rel and rel != ":memory:":
                url = "sqlite:///" + str(_resolve(base, rel))
        values["database_url"] = url
    feeds = _want(data.get("feeds", {}), dict, f"{path}: [feeds]")
    merged = dict(values.get("feeds", {}))
    for name, table in feeds.items():
        where = f"{path}: feeds.{name}"
        _want(table, dict, where)
        kind = _want(table.get("kind"), str, f"{where}.kind")
        if kind not in FEED_KINDS:
            raise UserError(
                f"{where}.kind: unknown feed kind {kind!r} (known: {', '.join(FEED_KINDS)})"
            )
        url = _want(table.get("url"), str, f"{where}.url")
        if kind == "git" and "://" not in url and not url.startswith("git@"):
            url = str(_resolve(base, url))
        if kind == "mirror" and "://" not in url:
            url = _resolve(base, url).as_uri()
        unknown = set(table) - {"kind", "url", "tags", "keyring"}
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        tags = _want(table.get("tags", "v*"), str, f"{where}.tags")
        keyring = table.get("keyring")
        if keyring is not None:
            keyring = str(_resolve(base, _want(keyring, str, f"{where}.keyring")))
        merged[name] = FeedConfig(name=name, kind=kind, url=url, tags=tags, keyring=keyring)
    values["feeds"] = merged
    ps = _want(data.get("patchsets", {}), dict, f"{path}: [patchsets]")
    if "paths" in ps:
        paths = _want(ps["paths"], list, f"{path}: patchsets.paths")
        values["patchset_paths"] = tuple(
            _resolve(base, _want(p, str, f"{path}: patchsets.paths[]")) for p in paths
        )
    run = _want(data.get("run", {}), dict, f"{path}: [run]")
    if "jobs" in run:
        values["jobs"] = _want(run["jobs"], int, f"{path}: run.jobs")
    if "baseline" in run:
        values["baseline"] = _want(run["baseline"], bool, f"{path}: run.baseline")
    if "baseline_max_age_days" in run:
        where = f"{path}: run.baseline_max_age_days"
        days = float(_want(run["baseline_max_age_days"], (int, float), where))
        if days <= 0:
            raise UserError(f"{where}: must be more than 0 (days a cached control result is used)")
        values["baseline_max_age"] = days * 24 * 3600.0
    build = _want(data.get("build", {}), dict, f"{path}: [build]")
    if "timeout" in build:
        values["build_timeout"] = float(
            _want(build["timeout"], (int, float), f"{path}: build.timeout")
        )
    boot = _want(data.get("boot", {}), dict, f"{path}: [boot]")
    if "timeout" in boot:
        values["boot_timeout"] = float(
            _want(boot["timeout"], (int, float), f"{path}: boot.timeout")
        )
    if "accel" in boot:
        accel = _want(boot["accel"], str, f"{path}: boot.accel")
        if accel not in ("tcg", "kvm", "auto"):
            raise UserError(f"{path}: boot.accel: {accel!r} is not tcg, kvm or auto")
        values["boot_accel"] = accel
    celery = _want(data.get("celery", {}), dict, f"{path}: [celery]")
    if "broker" in celery:
        values["celery_broker"] = _want(celery["broker"], str, f"{path}: celery.broker")
    store = _want(data.get("store", {}), dict, f"{path}: [store]")
    if "artifacts" in store:
        values["artifacts_dir"] = _resolve(
            base, _want(store["artifacts"], str, f"{path}: store.artifacts")
        )
    values.setdefault("sources", []).append(str(path))


def load(
    config_file: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: str | None = None,
    db: str | None = None,
) -> Settings:
    """Read every layer and return the Settings; ``home`` and ``db`` are the CLI flags."""
    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    values: dict[str, Any] = {}
    layers = [
        Path("/etc/ktrack.toml"),
        _xdg("XDG_CONFIG_HOME", ".config") / "ktrack" / "config.toml",
    ]
    for layer in layers:
        if layer.is_file():
            _apply_file(values, layer)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise UserError(f"settings file not found: {path}")
        _apply_file(values, path)
    elif (cwd / "ktrack.toml").is_file():
        _apply_file(values, cwd / "ktrack.toml")
    if "patchset_paths" not in values:
        values["patchset_paths"] = (cwd / "patches",)
    home_dir = Path(home or env.get("KTRACK_HOME") or default_home()).expanduser()
    cache_dir = Path(env.get("KTRACK_CACHE") or default_cache()).expanduser()
    if env.get("KTRACK_DB"):
        values["database_url"] = env["KTRACK_DB"]
    if env.get("KTRACK_JOBS"):
        try:
            values["jobs"] = int(env["KTRACK_JOBS"])
        except ValueError as exc:
            raise UserError(f"KTRACK_JOBS: not a number: {env['KTRACK_JOBS']!r}") from exc
    if env.get("KTRACK_BROKER"):
        values["celery_broker"] = env["KTRACK_BROKER"]
    if db:
        values["database_url"] = db
    feeds = values.pop("feeds", {})
    sources = tuple(values.pop("sources", []))
    settings = Settings(
        home=home_dir.resolve(), cache=cache_dir.resolve(), sources=sources, **values
    )
    return replace(settings, feeds=tuple(feeds.values()))
