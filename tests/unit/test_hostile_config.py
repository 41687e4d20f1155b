"""Hostile input to what users hand ktrack: settings and manifests (issue 15, items 2, 14, 15,
19); imported results and Ctrl-C are in test_hostile_import.py. One test per case; docs/SECURITY.md
names each in its table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.hostile_cli import ktrack, one_line, write
from tracker import config
from tracker.errors import UserError

# --- 14: settings -----------------------------------------------------------------------------


def test_settings_typo_in_known_table_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path / "ktrack.toml", '[database]\nulr = "postgresql+psycopg://db/x"\n')
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value) == (
        f"{path}: database.ulr: unknown key 'ulr' (did you mean 'url'? known: url)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\njbos = 2\n", "run.jbos: unknown key 'jbos' (did you mean 'jobs'?"),
        ("[build]\ntimout = 9\n", "build.timout: unknown key 'timout' (did you mean 'timeout'?"),
        (
            '[feeds.k]\nkind = "git"\nurl = "r"\nverfy = "off"\n',
            "feeds.k.verfy: unknown key 'verfy' (did you mean 'verify'?",
        ),
        ("[store]\nzzz = 1\n", "store.zzz: unknown key 'zzz' (known: artifacts)"),
        ("[report]\ntheme = 'dark'\n", "report.theme: unknown key 'theme'"),
        ("[patchset]\npaths = []\n", "unknown table [patchset] (did you mean 'patchsets'?"),
        ('[run]\n"x\\u001b[31m" = 1\n', "run.x\\x1b[31m: unknown key 'x\\x1b[31m' (known: "),
    ],
)
def test_settings_unknown_keys_are_refused_everywhere(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "ktrack.toml", text)
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[run]\njobs = 0\n", "run.jobs: must be greater than or equal to 1, got 0"),
        ("[run]\njobs = -3\n", "run.jobs: must be greater than or equal to 1, got -3"),
        ("[run]\njobs = 1.5\n", "run.jobs: expected an int, got float 1.5"),
        ("[run]\njobs = 100000000000000000000\n", "run.jobs: must be less than or equal to"),
        ("[build]\ntimeout = inf\n", "build.timeout: inf is not a finite number"),
        ("[build]\ntimeout = nan\n", "build.timeout: nan is not a finite number"),
        ("[boot]\ntimeout = 0\n", "boot.timeout: must be greater than 0, got 0"),
        ("[boot]\ntimeout = -1.5\n", "boot.timeout: must be greater than 0, got -1.5"),
        ("[boot]\ntest_timeout = '10'\n", "boot.test_timeout: expected a float, got str '10'"),
        ("[run]\napply_timeout = -inf\n", "run.apply_timeout: -inf is not a finite number"),
        ("[run]\nbaseline_max_age_days = 0\n", "run.baseline_max_age_days: must be greater than 0"),
        ('[feeds.k]\nkind = "git"\nurl = "r"\nverify = "maybe"\n', "feeds.k.verify: 'maybe'"),
        ('[feeds.k]\nkind = "git"\nurl = ""\n', "feeds.k.url: must not be empty"),
        ("[patchsets]\npaths = 'patches'\n", "patchsets.paths: expected a list, got str"),
    ],
)
def test_settings_numbers_and_values_are_validated(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "ktrack.toml", text)
    with pytest.raises(UserError) as info:
        config.load(cwd=tmp_path, env={})
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


def test_settings_environment_jobs_is_validated_too(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="KTRACK_JOBS: jobs: must be greater than or equal"):
        config.load(cwd=tmp_path, env={"KTRACK_JOBS": "0"})


def test_settings_new_keys_load_and_layer(tmp_path: Path) -> None:
    """The keys other parts of ktrack read (timeouts, feed verification, allowed hosts) load,
    and a later layer wins key by key."""
    write(
        Path.home() / ".config/ktrack/config.toml", "[boot]\ntest_timeout = 30\n[run]\njobs = 3\n"
    )
    write(
        tmp_path / "ktrack.toml",
        "[run]\napply_timeout = 12.5\nbaseline_max_age_days = 2\n"
        '[feeds.m]\nkind = "mirror"\nurl = "https://m.example"\nverify = "if-published"\n'
        'allowed_hosts = ["cdn.example"]\n',
    )
    s = config.load(cwd=tmp_path, env={})
    assert (s.test_timeout, s.jobs, s.apply_timeout, s.baseline_max_age) == (30.0, 3, 12.5, 172800)
    assert (s.feeds[0].verify, s.feeds[0].allowed_hosts) == ("if-published", ("cdn.example",))
    assert s.boot_timeout == 120.0 and s.baseline  # untouched keys keep their defaults


def test_settings_typo_exits_2_from_the_command_line(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", '[database]\nulr = "sqlite:////nowhere/x.db"\n')
    r = ktrack("db", "upgrade", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert "ktrack.toml: database.ulr: unknown key 'ulr' (did you mean 'url'?" in line
    assert not (tmp_path / "h" / "tracker.db").exists()  # no fallback to the default database


# --- 15: non-UTF-8 TOML -------------------------------------------------------------------------


def test_non_utf8_settings_file_is_one_line_naming_it(tmp_path: Path) -> None:
    write(tmp_path / "ktrack.toml", b"[run]\n# caf\xe9\njobs = 2\n")
    r = ktrack("db", "upgrade", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert str(tmp_path / "ktrack.toml") in line and "not UTF-8" in line


def test_non_utf8_manifest_is_one_line_naming_it(tmp_path: Path) -> None:
    manifest = write(tmp_path / "patches" / "bad" / "patchset.toml", b'name = "b\xff"\n')
    r = ktrack("check", "bad", "6.1", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 2
    line = one_line(r)
    assert str(manifest) in line and "not UTF-8" in line


# --- 2: manifest paths out of the patch set's folder -----------------------------------------

NUMBERS = "".join(f"{i}\n" for i in range(1, 31))
PATCH = "--- a/f.c\n+++ b/f.c\n@@ -7,7 +7,7 @@\n 7\n 8\n 9\n-10\n+ten\n 11\n 12\n 13\n"


def patch_set(root: Path, name: str, version: str = "") -> Path:
    """A valid quilt set ``name`` under ``root`` (one patch, a Kconfig fragment, a tests folder);
    ``version`` replaces its [[versions]] table."""
    d = root / name
    write(d / "q" / "series", "a.patch\n")
    write(d / "q" / "a.patch", PATCH)
    write(d / "kconfig", "CONFIG_X=y\n")
    write(d / "tests" / "run", "#!/bin/sh\n")
    version = version or 'source = "q"\nkconfig = "kconfig"\ntests = "tests"\n'
    return write(
        d / "patchset.toml",
        f'name = "{name}"\nsummary = "s"\n[[versions]]\nversion = "1"\nbase = "6.1"\n'
        f'format = "quilt"\n{version}',
    )


@pytest.mark.parametrize(
    ("field", "version", "message"),
    [
        (
            "source",
            'source = "../../elsewhere"\n',
            "versions[0].source: '../../elsewhere' leads out",
        ),
        (
            "source",
            'source = "q/../../other/q"\n',
            "versions[0].source: 'q/../../other/q' leads out",
        ),
        ("source", 'source = "LINK"\n', "versions[0].source: 'LINK' is absolute"),
        ("kconfig", 'source = "q"\nkconfig = "LINK/kconfig"\n', "versions[0].kconfig: 'LINK"),
        ("kconfig", 'source = "q"\nkconfig = "~/kconfig"\n', "versions[0].kconfig: '~/kconfig'"),
        ("tests", 'source = "q"\ntests = "LINK"\n', "versions[0].tests: 'LINK' is absolute"),
        (
            "tests",
            'source = "q"\ntests = "../other/tests"\n',
            "versions[0].tests: '../other/tests'",
        ),
    ],
)
def test_manifest_paths_outside_the_set_folder_are_refused(
    tmp_path: Path, field: str, version: str, message: str
) -> None:
    """``source``, ``kconfig`` and ``tests`` must stay in the set's folder: no ``..`` out of it,
    no absolute path, no ``~``."""
    from tracker.patchsets.manifest import load_manifest

    outside = tmp_path / "elsewhere"
    patch_set(tmp_path, "other")
    write(outside / "series", "a.patch\n")
    write(outside / "a.patch", PATCH)
    write(outside / "kconfig", "CONFIG_EVIL=y\n")
    message = message.replace("LINK", str(outside))
    path = patch_set(tmp_path / "sets", "demo", version.replace("LINK", str(outside)))
    with pytest.raises(UserError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)


@pytest.mark.parametrize("field", ["source", "kconfig", "tests"])
def test_manifest_symlink_in_the_set_folder_pointing_out_is_refused(
    tmp_path: Path, field: str
) -> None:
    """A symlink inside the set's folder whose target is outside it is judged where it ends up."""
    from tracker.patchsets.manifest import load_manifest

    outside = tmp_path / "host"
    write(outside / "series", "a.patch\n")
    write(outside / "a.patch", PATCH)
    write(outside / "kconfig", "CONFIG_EVIL=y\n")
    write(outside / "run", "#!/bin/sh\n")
    path = patch_set(tmp_path / "sets", "demo")
    link = path.parent / "escape"
    target = outside / "kconfig" if field == "kconfig" else outside
    link.symlink_to(target)
    text = path.read_text().replace(f'{field} = "', f'{field} = "escape" #', 1)
    path.write_text(text.replace('= "escape" #q"', '= "escape"'))
    with pytest.raises(UserError) as info:
        load_manifest(path)
    assert str(info.value).startswith(
        f"{path}: versions[0].{field}: 'escape' leads out of the patch set's folder"
    ), str(info.value)


def test_mbox_folder_entry_linking_out_is_refused(tmp_path: Path) -> None:
    from tracker.patchsets.formats import load_series
    from tracker.patchsets.manifest import load_manifest

    write(tmp_path / "host" / "secret.patch", "From x\n")
    path = patch_set(tmp_path / "sets", "demo", 'source = "mails"\n')
    mails = path.parent / "mails"
    mails.mkdir()
    (mails / "0001.patch").symlink_to(tmp_path / "host" / "secret.patch")
    path.write_text(path.read_text().replace('format = "quilt"', 'format = "mbox"'))
    spec = load_manifest(path).versions[0]
    with pytest.raises(UserError, match="'0001.patch' leads out of the patch folder"):
        load_series(spec)


def test_manifest_path_escape_exits_2_from_check(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere.patch", PATCH)
    path = patch_set(tmp_path / "patches", "demo", 'source = "../../elsewhere.patch"\n')
    path.write_text(path.read_text().replace('format = "quilt"', 'format = "diff"'))
    write(tmp_path / "tree" / "f.c", NUMBERS)
    r = ktrack(
        "check", "demo", "6.1", "--tree", str(tmp_path / "tree"), cwd=tmp_path, home=tmp_path / "h"
    )
    assert r.returncode == 2
    line = one_line(r)
    assert str(path) in line and "versions[0].source" in line and "leads out" in line
    assert (tmp_path / "tree" / "f.c").read_text() == NUMBERS


# --- 19: one broken patchset.toml -------------------------------------------------------------


def _two_sets(tmp_path: Path) -> Path:
    patch_set(tmp_path / "patches", "good")
    broken = patch_set(tmp_path / "patches", "bad")
    broken.write_text(broken.read_text().replace('base = "6.1"', 'base = "6.1"\nfuz = 1'))
    write(tmp_path / "tree" / "f.c", NUMBERS)
    return broken


def test_broken_manifest_keeps_other_sets_usable(tmp_path: Path) -> None:
    broken = _two_sets(tmp_path)
    tree = str(tmp_path / "tree")
    good = ktrack("check", "good", "6.1", "--tree", tree, cwd=tmp_path, home=tmp_path / "h")
    assert good.returncode == 0, good.stderr
    assert "Traceback" not in good.stderr
    bad = ktrack("check", "bad", "6.1", "--tree", tree, cwd=tmp_path, home=tmp_path / "h")
    assert bad.returncode == 2
    line = one_line(bad)
    assert (
        str(broken) in line and "versions[0].fuz: unknown key 'fuz' (did you mean 'fuzz'?" in line
    )


def test_broken_manifest_is_reported_when_every_set_is_used(tmp_path: Path) -> None:
    """``run`` and ``plan`` over every set: the broken one is reported in one line and left
    out; the others are planned."""
    from tracker.patchsets.manifest import discover

    broken = _two_sets(tmp_path)
    lines: list[str] = []
    assert [m.name for m in discover([tmp_path / "patches"], warn=lines.append)] == ["good"]
    assert lines == [
        f"patch set 'bad' left out: {broken}: versions[0].fuz: unknown key 'fuz' "
        "(did you mean 'fuzz'? known: base, format, fuzz, kconfig, range, source, strip, tests, "
        "version)"
    ]


def test_bad_kernel_spec_in_one_manifest_is_that_manifest_broken(tmp_path: Path) -> None:
    """``[track] kernels`` is checked on load: a bad spec makes that set broken, not every run."""
    from tracker.patchsets.manifest import discover

    patch_set(tmp_path / "patches", "good")
    bad = patch_set(tmp_path / "patches", "bad")
    bad.write_text(bad.read_text() + '[track]\nkernels = ">=six.one"\n')
    lines: list[str] = []
    assert [m.name for m in discover([tmp_path / "patches"], warn=lines.append)] == ["good"]
    assert lines == [
        f"patch set 'bad' left out: {bad}: track.kernels: not a kernel version: 'six.one'"
    ]


def test_run_over_every_set_leaves_out_a_set_whose_series_is_broken(tmp_path: Path) -> None:
    """Planning every set (``run``, ``plan`` without ``--patchset``): a set whose series does not
    load is reported and left out; naming it is still an error."""
    from tracker.config import Settings
    from tracker.pipeline.plan import plan
    from tracker.results.db import Database
    from tracker.results.models import KernelRelease
    from tracker.vocab import Stage

    patch_set(tmp_path / "patches", "good")
    gone = patch_set(tmp_path / "patches", "gone")
    write(gone.parent / "q" / "series", "a.patch\nnot-there.patch\n")
    settings = Settings(
        home=tmp_path / "h", cache=tmp_path / "c", patchset_paths=(tmp_path / "patches",)
    )
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.session() as s:
        s.add(KernelRelease(version="6.1.1", series="6.1", moniker="stable", feed="t"))
    with db.session() as s:
        jobs = plan(settings, s, stages=[Stage.APPLY])
        assert {j.patchset for j in jobs} == {"good"}
        with pytest.raises(UserError, match="not-there.patch"):
            plan(settings, s, patchsets=["gone"], stages=[Stage.APPLY])


def test_broken_manifest_is_listed_as_invalid_with_the_reason(tmp_path: Path) -> None:
    broken = _two_sets(tmp_path)
    r = ktrack("patchsets", "list", "--json", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 0, r.stderr
    sets = {p["name"]: p for p in json.loads(r.stdout)["patchsets"]}
    assert sets["good"]["valid"] and sets["good"]["versions"][0]["version"] == "1"
    assert sets["bad"]["valid"] is False and sets["bad"]["path"] == str(broken)
    assert "versions[0].fuz: unknown key 'fuz'" in sets["bad"]["error"]
    r = ktrack("patchsets", "list", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 0 and "invalid" in r.stdout and "good" in r.stdout


def test_set_with_a_broken_series_is_listed_as_invalid(tmp_path: Path) -> None:
    patch_set(tmp_path / "patches", "good")
    missing = patch_set(tmp_path / "patches", "gone")
    write(missing.parent / "q" / "series", "a.patch\nnot-there.patch\n")
    r = ktrack("patchsets", "list", "--json", cwd=tmp_path, home=tmp_path / "h")
    assert r.returncode == 0, r.stderr
    sets = {p["name"]: p for p in json.loads(r.stdout)["patchsets"]}
    assert sets["good"]["valid"] and not sets["gone"]["valid"]
    assert "not-there.patch" in sets["gone"]["error"]
