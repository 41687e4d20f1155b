"""Layered settings and the data dir.

Layers, lowest first: built-in defaults < ``/etc/ktrack.toml`` < ``~/.config/ktrack/config.toml``
< ``./ktrack.toml`` (or ``--config FILE``, which replaces it) < ``KTRACK_*`` environment < flags.

Every file is TOML; a malformed file or a wrong field is a UserError naming the file and field.
Relative paths in a file are relative to the folder holding that file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ValidationInfo, create_model

from tracker.errors import UserError
from tracker.schema import AS_TUPLE, Positive, Seconds, Table, Text, read_toml, validate

FEED_KINDS = ("kernelorg", "mirror", "git")


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def default_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "ktrack"


def default_cache() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / "ktrack"


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _file_relative(value: Any, info: ValidationInfo) -> Any:
    """A path in a settings file is relative to the folder holding that file."""
    if isinstance(value, str) and info.context:
        return _resolve(info.context["base"], value)
    return value


def _sqlite_relative(url: str, info: ValidationInfo) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and info.context:
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            return "sqlite:///" + str(_resolve(info.context["base"], rel))
    return url


FilePath = Annotated[Path, BeforeValidator(_file_relative)]
FilePaths = Annotated[tuple[FilePath, ...], AS_TUPLE]
DatabaseUrl = Annotated[str, AfterValidator(_sqlite_relative)]


class FeedTable(Table):
    """The keys of one ``[feeds.NAME]`` table: a key is one line here and its field in
    ``FeedConfig`` (same name)."""

    kind: Literal["kernelorg", "mirror", "git"]
    url: Text
    tags: Text = "v*"
    keyring: Text | None = None
    verify: Literal["required", "if-published", "off"] | None = None  # None: the kind's default
    allowed_hosts: Annotated[tuple[Text, ...], AS_TUPLE] = ()


@dataclass(frozen=True)
class FeedConfig:
    """One ``[feeds.NAME]`` table."""

    name: str
    kind: str
    url: str
    tags: str = "v*"
    keyring: str | None = None  # gpg keyring for signature checks (kernelorg, mirror)
    # issue 15: what a tarball needs before it is imported (see VERIFY_MODES), and the hosts
    # besides the feed's own root that its documents may send ktrack to
    verify: str = "required"
    allowed_hosts: tuple[str, ...] = ()


def setting(key: str, default: Any, schema: Any) -> Any:
    """A Settings field read from ``[table] key`` of the settings files, validated as ``schema``."""
    return field(default=default, metadata={"key": key, "schema": schema})


@dataclass(frozen=True)
class Settings:
    """Everything ktrack reads from its settings layers. A field made with ``setting()`` is a key
    of the settings files: adding a key is one line here."""

    home: Path
    cache: Path
    database_url: str | None = setting("database.url", None, DatabaseUrl)
    feeds: tuple[FeedConfig, ...] = ()  # [feeds.NAME] tables: FeedTable
    patchset_paths: tuple[Path, ...] = setting("patchsets.paths", (Path("patches"),), FilePaths)
    jobs: int = setting("run.jobs", 0, Positive)  # 0 (the default): number of CPUs
    baseline: bool = setting("run.baseline", True, bool)  # confirm failures on the plain release
    apply_timeout: float = setting("run.apply_timeout", 300.0, Seconds)  # expiry: error, no verdict
    # days a cached control result answers for (then the control runs again)
    baseline_max_age_days: float = setting("run.baseline_max_age_days", 7.0, Seconds)
    build_timeout: float = setting("build.timeout", 3600.0, Seconds)
    boot_timeout: float = setting("boot.timeout", 120.0, Seconds)
    test_timeout: float = setting("boot.test_timeout", 60.0, Seconds)
    # auto: KVM only when a probe boot proves it works
    boot_accel: str = setting("boot.accel", "tcg", Literal["tcg", "kvm", "auto"])
    celery_broker: str = setting("celery.broker", "redis://127.0.0.1:6379/0", Text)
    artifacts_dir: Path | None = setting("store.artifacts", None, FilePath)
    sources: tuple[str, ...] = field(default=())  # the files the settings were read from

    @property
    def baseline_max_age(self) -> float:
        """Seconds a cached control result answers for."""
        return self.baseline_max_age_days * 24 * 3600.0

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


EMPTY_TABLES = ("report",)  # tables ktrack accepts with no keys yet


def _keys() -> dict[str, dict[str, tuple[str, Any]]]:
    """``{table: {key: (Settings attribute, schema)}}`` from the fields made with ``setting()``."""
    out: dict[str, dict[str, tuple[str, Any]]] = {t: {} for t in EMPTY_TABLES}
    for f in fields(Settings):
        if "key" in f.metadata:
            table, key = f.metadata["key"].split(".")
            out.setdefault(table, {})[key] = (f.name, f.metadata["schema"])
    return out


KEYS = _keys()
TABLES = {
    table: create_model(  # type: ignore[call-overload]
        f"{table}_table", __base__=Table, **{k: (s | None, None) for k, (_, s) in keys.items()}
    )
    for table, keys in KEYS.items()
}
SettingsFile = create_model(  # type: ignore[call-overload]
    "SettingsFile",
    __base__=Table,
    feeds=(dict[str, FeedTable], {}),  # tables of named tables are fields here, like this one
    **{table: (model, model()) for table, model in TABLES.items()},
)


VERIFY_MODES = ("required", "if-published", "off")
"""``required``: a tarball is imported only with a published sha256 (from a signed
``sha256sums.asc`` when a keyring is set) or a good signature; ``if-published``: whatever is
published must verify, an unpublished tarball is imported with a warning; ``off``: no checks
beyond a known sha256. Git feeds are ``off`` (git's object ids only; tags are not verified)."""


def _feed_trust(table: FeedTable, where: str) -> dict[str, Any]:
    """The ``verify`` and ``allowed_hosts`` of a ``[feeds.NAME]`` table (issue 15): ``verify``
    defaults by kind (git feeds can only be ``off``); a host is a name or host:port."""
    verify = table.verify or ("off" if table.kind == "git" else "required")
    if table.kind == "git" and verify != "off":
        raise UserError(f"{where}.verify: a git feed cannot verify signatures; only 'off'")
    for host in table.allowed_hosts:
        if not host or "/" in host or host != host.strip():
            raise UserError(f"{where}.allowed_hosts: not a host name or host:port: {host!r}")
    return {"verify": verify, "allowed_hosts": tuple(h.lower() for h in table.allowed_hosts)}


def _apply_file(values: dict[str, Any], path: Path) -> None:
    base = path.parent.resolve()
    doc = validate(SettingsFile, read_toml(path, "settings"), str(path), context={"base": base})
    for table, keys in KEYS.items():
        given = getattr(doc, table)
        for key, (attr, _) in keys.items():
            if key in given.model_fields_set:
                values[attr] = getattr(given, key)
    merged = dict(values.get("feeds", {}))
    for name, t in doc.feeds.items():
        url = t.url
        if t.kind == "git" and "://" not in url and not url.startswith("git@"):
            url = str(_resolve(base, url))
        if t.kind == "mirror" and "://" not in url:
            url = _resolve(base, url).as_uri()
        keyring = str(_resolve(base, t.keyring)) if t.keyring is not None else None
        merged[name] = FeedConfig(
            name=name,
            **(
                t.model_dump()
                | {"url": url, "keyring": keyring}
                | _feed_trust(t, f"{path}: feeds.{name}")
            ),
        )
    values["feeds"] = merged
    values.setdefault("sources", []).append(str(path))


def _from_env(values: dict[str, Any], env: Mapping[str, str]) -> None:
    if env.get("KTRACK_DB"):
        values["database_url"] = env["KTRACK_DB"]
    if env.get("KTRACK_JOBS"):
        text = env["KTRACK_JOBS"]
        try:
            jobs = int(text)
        except ValueError:
            raise UserError(f"KTRACK_JOBS: not a number: {text!r}") from None
        values["jobs"] = validate(TABLES["run"], {"jobs": jobs}, "KTRACK_JOBS").jobs
    if env.get("KTRACK_BROKER"):
        values["celery_broker"] = env["KTRACK_BROKER"]


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
    for flag, folder in (("--home/KTRACK_HOME", home_dir), ("KTRACK_CACHE", cache_dir)):
        if folder.exists() and not folder.is_dir():  # issue 15: a file named as a folder
            raise UserError(f"{flag}: {folder} is not a directory")
    _from_env(values, env)
    if db:
        values["database_url"] = db
    feeds = values.pop("feeds", {})
    sources = tuple(values.pop("sources", []))
    settings = Settings(
        home=home_dir.resolve(), cache=cache_dir.resolve(), sources=sources, **values
    )
    return replace(settings, feeds=tuple(feeds.values()))
