"""patchset.toml: loading, validation errors naming file and field, discovery, resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import UserError
from tracker.patchsets.manifest import discover, load_manifest, resolve, version_key

GOOD = """
name = "vcontext"
summary = "VServer-style security contexts"
homepage = "https://example.org/vcontext"

[[versions]]
version = "0.9"
base = "6.1"
format = "quilt"
source = "0.9"
kconfig = "0.9/kconfig"
tests = "tests"

[[versions]]
version = "0.10"
base = "6.12"
format = "diff"
source = "0.10.diff.gz"
strip = 0
fuzz = 2

[track]
kernels = ">=6.1"
targets = ["x86_64:tinyconfig", "arm64:defconfig"]
"""


def make(root: Path, text: str = GOOD, name: str = "vcontext") -> Path:
    d = root / name
    (d / "0.9").mkdir(parents=True, exist_ok=True)
    (d / "0.9" / "series").write_text("")
    (d / "0.9" / "kconfig").write_text("CONFIG_VCONTEXT=y\n")
    (d / "tests").mkdir(exist_ok=True)
    (d / "0.10.diff.gz").write_bytes(b"")
    (d / "patchset.toml").write_text(text)
    return d / "patchset.toml"


def test_load_good_manifest(tmp_path: Path) -> None:
    m = load_manifest(make(tmp_path))
    assert (m.name, m.summary, m.homepage) == (
        "vcontext",
        "VServer-style security contexts",
        "https://example.org/vcontext",
    )
    v9, v10 = m.versions
    assert (v9.version, v9.base, v9.format, v9.strip, v9.fuzz) == ("0.9", "6.1", "quilt", 1, 0)
    assert v9.source == tmp_path / "vcontext" / "0.9"
    assert v9.kconfig == tmp_path / "vcontext" / "0.9" / "kconfig"
    assert v9.tests == tmp_path / "vcontext" / "tests"
    assert (v10.strip, v10.fuzz, v10.kconfig, v10.tests) == (0, 2, None, None)
    assert m.track.kernels == ">=6.1"
    assert m.track.targets == ("x86_64:tinyconfig", "arm64:defconfig")
    assert m.newest.version == "0.10"  # natural order, not string order


def test_track_defaults(tmp_path: Path) -> None:
    text = GOOD.split("[track]")[0]
    m = load_manifest(make(tmp_path, text))
    assert m.track.kernels == ">=6.1"
    assert m.track.targets == ("x86_64:tinyconfig",)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "vcontext"\n', "", "name: missing (required)"),
        ('name = "vcontext"', 'name = "v context"', "name: 'v context' must be"),
        ('format = "quilt"', 'format = "svn"', "versions[0].format: 'svn' is not one of"),
        ("fuzz = 2", "fuzz = 3", "versions[1].fuzz: must be less than or equal to 2, got 3"),
        ("fuzz = 2", 'fuzz = "2"', "versions[1].fuzz: expected an int, got str"),
        (
            "strip = 0",
            "strip = -1",
            "versions[1].strip: must be greater than or equal to 0, got -1",
        ),
        ('base = "6.1"', 'base = "six"', "versions[0].base: not a kernel version"),
        ('source = "0.9"', 'source = "missing"', "versions[0].source: quilt source not found"),
        ('kconfig = "0.9/kconfig"', 'kconfig = "nope"', "versions[0].kconfig: Kconfig fragment"),
        ('version = "0.10"', 'version = "0.9"', "versions: version '0.9' appears twice"),
        ('homepage = "https', 'colour = "red"\nhomepage = "https', "colour: unknown key 'colour'"),
        (
            "fuzz = 2",
            "fuzz = 2\nfuz = 1",
            "versions[1].fuz: unknown key 'fuz' (did you mean 'fuzz'?",
        ),
        ('"arm64:defconfig"', '"arm64 defconfig"', "track.targets[1]: 'arm64 defconfig'"),
        ("[track]", "[track]\nbogus = 1", "track.bogus: unknown key 'bogus'"),
        (
            'summary = "VServer-style security contexts"',
            "summary = 3",
            "summary: expected a string",
        ),
        ("[[versions]]", "[[versions]", "malformed TOML"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    path = make(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(UserError) as exc:
        load_manifest(path)
    assert str(path) in str(exc.value)
    assert message in str(exc.value)


def test_no_versions(tmp_path: Path) -> None:
    path = make(tmp_path, 'name = "x"\nsummary = "y"\n')
    with pytest.raises(UserError, match="versions: at least one"):
        load_manifest(path)


def test_discover_and_resolve(tmp_path: Path) -> None:
    make(tmp_path / "a")
    make(tmp_path / "b", GOOD.replace('name = "vcontext"', 'name = "other"'), name="other")
    (tmp_path / "b" / "not-a-patchset").mkdir()
    found = discover([tmp_path / "a", tmp_path / "b", tmp_path / "missing"])
    assert [m.name for m in found] == ["other", "vcontext"]
    m, v = resolve([tmp_path / "a"], "vcontext")
    assert v.version == "0.10"
    m, v = resolve([tmp_path / "a"], "vcontext@0.9")
    assert v.version == "0.9"
    with pytest.raises(UserError, match=r"has no version '1.0' \(known: 0.9, 0.10\)"):
        resolve([tmp_path / "a"], "vcontext@1.0")
    with pytest.raises(UserError, match=r"unknown patch set 'nope' \(known: other, vcontext\)"):
        resolve([tmp_path / "a", tmp_path / "b"], "nope")


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    make(tmp_path / "a")
    make(tmp_path / "b")
    assert [m.path for m in discover([tmp_path / "a", tmp_path / "b"], warn=None)] == [
        tmp_path / "a" / "vcontext" / "patchset.toml"
    ]
    with pytest.raises(UserError, match="already defined in"):
        resolve([tmp_path / "a", tmp_path / "b"], "vcontext")


def test_version_key_is_natural() -> None:
    versions = ["0.10", "0.9", "1.0-rc1", "0.9.1", "2.3.0.37-rc17"]
    assert sorted(versions, key=version_key) == ["0.9", "0.9.1", "0.10", "1.0-rc1", "2.3.0.37-rc17"]


def test_repository_patch_sets_load() -> None:
    root = Path(__file__).resolve().parents[2] / "patches"
    if not root.is_dir():
        pytest.skip("no patches/ folder in this checkout")
    names = [m.name for m in discover([root])]
    assert names == sorted(names) and names
