"""``ktrack bisect`` end to end: release store with history, real apply engine, culprit rows."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from tracker import cli, proc
from tracker.config import Settings

sys.path.insert(0, str(Path(__file__).parent))
from bisect_history import (  # noqa: E402
    History,
    build_history,
    initial_tree,
    patch_proc,
    unrelated_store,
)


def _setup(
    tmp_path: Path, *, scenario: str = "two", flat: bool = False, catalog: bool = True
) -> tuple[list[str], History | None]:
    home = tmp_path / "home"
    home.mkdir()
    history = None
    if flat:
        unrelated_store(home / "store.git")
    else:
        history = build_history(
            home / "store.git", seed=5, main_commits=300, side_branches=8, scenario=scenario
        )
    patches = tmp_path / "patches" / "vx"
    (patches / "0.2").mkdir(parents=True)
    source = history.patches if history else []
    if not source:  # the flat store: the same patch, made against its v6.1
        source = [("0001-proc-vx-check.patch", patch_proc(initial_tree(5)))]
    for name, text in source:
        (patches / "0.2" / name).write_bytes(text)
    (patches / "0.2" / "series").write_text("".join(f"{n}\n" for n, _ in source))
    (patches / "patchset.toml").write_text(
        'name = "vx"\nsummary = "test set"\n\n[[versions]]\nversion = "0.2"\nbase = "6.1"\n'
        'format = "quilt"\nsource = "0.2"\n\n[track]\nkernels = ">=6.1"\n'
        'targets = ["x86_64:tinyconfig"]\n'
    )
    db_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    cfg = tmp_path / "ktrack.toml"
    cfg.write_text(
        f'[database]\nurl = "{db_url}"\n\n[patchsets]\npaths = ["{tmp_path / "patches"}"]\n'
    )
    from tracker.results.db import Database
    from tracker.results.models import KernelRelease
    from tracker.versions import KernelVersion

    db = Database(db_url)
    with db.session() as s:
        for r in ("6.1", "6.1.1", "6.2") if catalog else ():
            v = KernelVersion.parse(r)
            s.add(
                KernelRelease(version=str(v), series=v.series, moniker=v.moniker.value, feed="test")
            )
    db.dispose()
    return ["--config", str(cfg), "--home", str(home)], history


def test_bisect_command_names_both_culprits_and_stores_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, h = _setup(tmp_path)
    assert h is not None
    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.2", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["schema"] == "ktrack.bisect/1"
    assert doc["patchset"] == "vx" and doc["patchset_version"] == "0.2"
    assert doc["exact"] is True
    assert doc["culprit"]["commit"] == h.commits["culprit"]
    assert [b["culprit"]["commit"] for b in doc["breaks"]] == [
        h.commits["culprit"],
        h.commits["culprit2"],
    ]
    assert doc["breaks"][0]["files"] == ["fs/proc/base.c"]
    assert doc["breaks"][0]["hunks"][0]["patch"] == "0001-proc-vx-check.patch"
    assert "+static int proc_pid_show_status" in doc["breaks"][0]["excerpt"]
    assert [c["commit"] for c in doc["breaks"][0]["later"]] == [h.commits["later"]]
    assert doc["checks"] <= 15

    from sqlalchemy import select

    from tracker.report.bisect import culprit_line
    from tracker.results.culprits import culprits_for
    from tracker.results.db import Database
    from tracker.results.models import Culprit, KernelRelease

    db = Database(f"sqlite:///{tmp_path / 'tracker.db'}")
    with db.session() as s:
        rows = s.scalars(select(Culprit).order_by(Culprit.id)).all()
        # one row per break and tracked target (the matrix looks culprits up per target)
        assert [(r.commit, r.target) for r in rows] == [
            (h.commits["culprit"], "x86_64:tinyconfig"),
            (h.commits["culprit2"], "x86_64:tinyconfig"),
        ]
        assert rows[0].stage == "apply" and (rows[0].subject or "").startswith("proc: rename")
        bad = s.scalars(select(KernelRelease).where(KernelRelease.version == "6.2")).one()
        found = culprits_for(s, rows[0].patchset_version_id, bad.id, "apply")
        assert {r.commit for r in found} == {h.commits["culprit"], h.commits["culprit2"]}
        assert culprit_line(rows[0]).startswith(
            f"culprit {h.commits['culprit'][:12]} 'proc: rename"
        )
    db.dispose()

    # ktrack check shows the recorded culprits next to the failure
    rc = cli.main([*base, "check", "vx@0.2", "6.2", "--json"])
    out = capsys.readouterr()
    assert rc == 1, out.err
    checked = json.loads(out.out)
    assert [c["commit"] for c in checked["culprits"]] == [
        h.commits["culprit"],
        h.commits["culprit2"],
    ]
    rc = cli.main([*base, "check", "vx@0.2", "6.2"])
    assert f"culprit {h.commits['culprit'][:12]}" in capsys.readouterr().out

    # a second bisect replaces the rows instead of piling them up; human output names the culprit
    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.2"])
    out = capsys.readouterr()
    assert rc == 0
    assert f"culprit {h.commits['culprit']}" in out.out
    assert "subject: mm: util: count b from three" in out.out
    db = Database(f"sqlite:///{tmp_path / 'tracker.db'}")
    with db.session() as s:
        assert len(s.scalars(select(Culprit)).all()) == 2
    db.dispose()


def test_bisect_command_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, h = _setup(tmp_path, scenario="rename")
    assert h is not None
    git_dir = tmp_path / "home" / "store.git"
    proc.run(
        ["git", f"--git-dir={git_dir}", "tag", "v6.1.1", h.commits["culprit"]],
        cwd=git_dir,
        check=True,
    )

    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.2", "--bad", "6.1"])
    assert rc == 2
    assert "reversed" in capsys.readouterr().err

    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1.1", "--bad", "6.2"])
    assert rc == 2
    assert "already fails at the good release 6.1.1" in capsys.readouterr().err

    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.3"])
    assert rc == 2
    assert "6.3 is not in the store" in capsys.readouterr().err


def test_bisect_command_without_history_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = _setup(tmp_path, flat=True)
    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.2"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no history between 6.1 and 6.2" in err
    assert "git" in err


def _settings(base: list[str]) -> Settings:
    from tracker import config

    return config.load(Path(base[1]), home=base[3])


def test_build_stage_bisect_builds_each_tree_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--stage build: the pipeline's stage functions per commit, verdicts cached by tree hash."""
    from tracker.bisect.history import first_parent_commits
    from tracker.bisect.service import bisect_patchset
    from tracker.pipeline import stages
    from tracker.vocab import Outcome, Stage, Status

    base, h = _setup(tmp_path, scenario="rename")
    assert h is not None
    git_dir = tmp_path / "home" / "store.git"
    fp = first_parent_commits(git_dir, h.commits["good"], h.commits["culprit"], ())
    breaker = fp[len(fp) // 2]  # the build breaks here, long before the patch stops applying
    proc.run(["git", f"--git-dir={git_dir}", "tag", "v6.1.2", fp[-2]], cwd=git_dir, check=True)
    built: list[str] = []

    def configure(state: stages.JobState) -> Outcome:
        assert state.report is not None and state.report.status.proceeds
        return Outcome(Status.PASS, "configured")

    def build(state: stages.JobState) -> Outcome:
        assert state.rev is not None
        built.append(state.rev)
        res = proc.run(
            ["git", f"--git-dir={git_dir}", "merge-base", "--is-ancestor", breaker, state.rev],
            cwd=git_dir,
        )
        return Outcome(Status.FAIL if res.ok else Status.PASS, "make")

    monkeypatch.setitem(stages.STAGE_FUNCS, Stage.CONFIGURE, configure)
    monkeypatch.setitem(stages.STAGE_FUNCS, Stage.BUILD, build)
    # stand-in stages: no control build of the unpatched commit (tests/integration/
    # test_bisect_build.py covers that with real builds)
    settings = dataclasses.replace(_settings(base), baseline=False)
    result = bisect_patchset(settings, None, "vx@0.2", "6.1", "6.1.2", "build")
    assert result.culprit == breaker
    assert result.stage == "build" and result.paths == ()  # no hunks: no narrowing
    assert len(built) == len(set(built)) == result.checks
    assert result.checks <= 2 + len(fp).bit_length() + 1
    first = len(built)
    again = bisect_patchset(settings, None, "vx@0.2", "6.1", "6.1.2", "build")
    assert again.culprit == breaker
    assert len(built) == first  # every verdict came from the tree-hash cache
    assert list((settings.cache / "bisect").glob("build-*.json"))


def test_run_bisects_new_release_regressions(tmp_path: Path) -> None:
    from tracker.bisect.service import bisect_new_regressions
    from tracker.results.db import Database
    from tracker.results.queries import RegressionRow

    base, h = _setup(tmp_path, scenario="rename")
    assert h is not None
    settings = _settings(base)
    db = Database(settings.db_url)

    def reg(kind: str, good: str | None, bad: str) -> RegressionRow:
        return RegressionRow(
            id=0,
            psv_id=0,
            patchset="vx",
            psv_version="0.2",
            target="x86_64:tinyconfig",
            kind=kind,
            stage="apply",
            last_good_release=good,
            first_bad_release=bad,
            opened_run_id=None,
            closed_run_id=None,
            summary="",
            opened_at=None,
            closed_at=None,
        )

    done = bisect_new_regressions(
        settings,
        db,
        [reg("release", "6.1", "6.2"), reg("run", "6.1", "6.2"), reg("release", "6.1", "6.3")],
    )
    assert done[0].result is not None and done[0].result.culprit == h.commits["culprit"]
    assert "culprit" in done[0].line()
    assert done[1].result is None and done[2].result is None
    assert "not in the store" in done[2].reason
    from sqlalchemy import select

    from tracker.results.models import Culprit

    with db.session() as s:
        assert [r.commit for r in s.scalars(select(Culprit))] == [h.commits["culprit"]]
    db.dispose()


def test_run_regression_bisect_and_matrix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ktrack run opens the regression; bisect_new_regressions (what run calls) names the
    culprit; ktrack matrix shows it next to the failing cell."""
    from tracker.bisect.service import bisect_new_regressions
    from tracker.results import queries
    from tracker.results.db import Database

    base, h = _setup(tmp_path, scenario="rename")
    assert h is not None
    rc = cli.main(
        [*base, "run", "--stages", "apply", "--executor", "inline", "--kernels", "6.1,6.2"]
    )
    capsys.readouterr()
    assert rc == 0
    settings = _settings(base)
    db = Database(settings.db_url)
    with db.session() as s:
        new = [r for r in queries.regressions(s) if r.is_open]
    assert [(r.last_good_release, r.first_bad_release) for r in new] == [("6.1", "6.2")]
    done = bisect_new_regressions(settings, db, new)
    assert done[0].result is not None and done[0].result.culprit == h.commits["culprit"]
    db.dispose()

    rc = cli.main([*base, "matrix", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [(c["release"], c["commit"]) for c in doc["culprits"]] == [("6.2", h.commits["culprit"])]
    rc = cli.main([*base, "matrix"])
    assert f"culprit {h.commits['culprit'][:12]}" in capsys.readouterr().out


def test_git_feed_brings_the_history_bisect_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real flow: a git feed's tags are the releases; sync, run, then bisect the break."""
    upstream = tmp_path / "linux.git"
    h = build_history(upstream, seed=9, main_commits=300, side_branches=8, scenario="side")
    series = tmp_path / "patches" / "vx" / "0.2"
    series.mkdir(parents=True)
    for name, text in h.patches:
        (series / name).write_bytes(text)
    (series / "series").write_text("".join(f"{n}\n" for n, _ in h.patches))
    (series.parent / "patchset.toml").write_text(
        'name = "vx"\nsummary = "s"\n\n[[versions]]\nversion = "0.2"\nbase = "6.1"\nformat = "quilt"\n'
        'source = "0.2"\n\n[track]\nkernels = ">=6.1"\ntargets = ["x86_64:tinyconfig"]\n'
    )
    (tmp_path / "ktrack.toml").write_text(
        f'[feeds.up]\nkind = "git"\nurl = "{upstream}"\ntags = "v6.*"\n\n'
        f'[patchsets]\npaths = ["{tmp_path / "patches"}"]\n'
    )
    monkeypatch.chdir(tmp_path)
    base = ["--home", str(tmp_path / "data")]
    assert cli.main([*base, "releases", "sync"]) == 0
    assert cli.main([*base, "run", "--stages", "apply", "--executor", "inline"]) == 0
    capsys.readouterr()
    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.2", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    doc = json.loads(out.out)
    assert doc["culprit"]["commit"] == h.commits["culprit"]  # a side-branch commit
    assert doc["breaks"][0]["via_merge"]


def test_a_culprit_outside_the_catalog_is_reported_not_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, h = _setup(tmp_path, scenario="rename", catalog=False)
    assert h is not None
    rc = cli.main([*base, "bisect", "vx@0.2", "--good", "6.1", "--bad", "6.2", "--json"])
    out = capsys.readouterr()
    assert rc == 0
    doc = json.loads(out.out)
    assert doc["culprit"]["commit"] == h.commits["culprit"] and doc["stored"] == 0
    assert "not in the catalog" in out.err and "releases sync" in out.err
