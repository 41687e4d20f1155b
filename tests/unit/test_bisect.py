"""Bisect on generated histories of 2,000+ commits: the culprit must be exact in every case."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from tracker import proc
from tracker.bisect import describe
from tracker.bisect.history import (
    first_parent_argv,
    first_parent_commits,
    history_available,
    is_ancestor,
    parents,
)
from tracker.bisect.model import BisectResult, HunkRef, Verdict
from tracker.bisect.search import ProbeCache, find_breaks, find_culprit
from tracker.errors import InfraError, UserError
from tracker.patchsets.diff import parse_patch
from tracker.report import bisect as bisect_report
from tracker.vocab import Status

sys.path.insert(0, str(Path(__file__).parent))
from bisect_history import (  # noqa: E402
    PROC,
    PROC_MOVED,
    UTIL,
    GnuChecker,
    History,
    build_history,
    unrelated_store,
)

PATCH1 = "0001-proc-vx-check.patch"
PATCH2 = "0002-util-vx-account.patch"


def _git(git_dir: Path, *args: str) -> str:
    return proc.run(["git", f"--git-dir={git_dir}", *args], cwd=git_dir, check=True).stdout


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, History]:
    root = tmp_path_factory.mktemp("histories")
    out = {}
    for n, scenario in enumerate(("rename", "side", "evil-merge", "two")):
        out[scenario] = build_history(
            root / f"{scenario}.git", seed=11 + n, main_commits=1800, scenario=scenario
        )
    return out


def _bisect(h: History, checker: GnuChecker | None = None) -> BisectResult:
    checker = checker or GnuChecker(h.git_dir, h.patches)
    result = find_breaks(h.git_dir, "v6.1", "v6.2", ProbeCache(checker))
    return describe.describe(h.git_dir, result)


def _budget(result: BisectResult, rounds: int = 1, merges: int = 0) -> int:
    """Endpoints, log2 of the candidates per round, one verification, merge descents."""
    per_round = math.ceil(math.log2(max(result.candidates, 2))) + 1
    return 2 + rounds * per_round + merges * (2 + per_round)


def test_fixture_is_a_big_history_with_merges(histories: dict[str, History]) -> None:
    for h in histories.values():
        commits = int(_git(h.git_dir, "rev-list", "--count", "v6.1..v6.2"))
        merges = int(_git(h.git_dir, "rev-list", "--count", "--merges", "v6.1..v6.2"))
        touching = len(_git(h.git_dir, "rev-list", "v6.1..v6.2", "--", PROC).split())
        assert commits >= 2000
        assert merges >= 30
        assert 30 < touching < commits / 5  # irrelevant commits dominate


def test_rename_culprit_is_exact(histories: dict[str, History]) -> None:
    h = histories["rename"]
    result = _bisect(h)
    assert result.culprit == h.commits["culprit"]
    assert result.exact and len(result.breaks) == 1
    brk = result.breaks[0]
    assert brk.commit is not None
    assert brk.commit.subject == "proc: rename proc_pid_status to proc_pid_show_status"
    assert brk.commit.author == "Culprit Person <culprit@example.org>"
    assert [h_.key for h_ in brk.hunks] == [(PATCH1, PROC, 1)]
    assert brk.files == (PROC,)
    assert "-static int proc_pid_status(struct seq_file *m)" in brk.excerpt
    assert "+static int proc_pid_show_status(struct seq_file *m)" in brk.excerpt
    assert len(brk.excerpt.splitlines()) <= 20
    assert [c.hash for c in brk.later] == [h.commits["later"]]
    # narrowed to the commits touching the failing file, and logarithmic in them
    assert result.paths == (PROC,)
    assert result.candidates < result.commits / 10
    assert result.checks <= _budget(result)


def test_culprit_on_a_side_branch_is_found_through_its_merge(
    histories: dict[str, History],
) -> None:
    h = histories["side"]
    result = _bisect(h)
    culprit = h.commits["culprit"]
    assert result.culprit == culprit
    assert result.via_merge is not None
    assert len(parents(h.git_dir, result.via_merge)) == 2
    assert is_ancestor(h.git_dir, culprit, result.via_merge)
    # the culprit is not on the first-parent line: only the full graph finds it
    assert culprit not in first_parent_commits(h.git_dir, h.commits["good"], h.commits["bad"], ())
    assert result.breaks[0].via_merge == result.via_merge
    assert result.checks <= _budget(result, merges=1)


def test_evil_merge_is_the_culprit(histories: dict[str, History]) -> None:
    h = histories["evil-merge"]
    result = _bisect(h)
    assert result.culprit == h.commits["culprit"]
    brk = result.breaks[0]
    assert brk.commit is not None and brk.commit.is_merge
    assert "fix up proc naming" in brk.commit.subject
    assert result.via_merge is None
    assert "+static int proc_pid_show_status(struct seq_file *m)" in brk.excerpt


def test_two_commits_breaking_two_patches_are_both_named(histories: dict[str, History]) -> None:
    h = histories["two"]
    result = _bisect(h)
    assert [b.commit.hash if b.commit else None for b in result.breaks] == [
        h.commits["culprit"],
        h.commits["culprit2"],
    ]
    first, second = result.breaks
    assert [x.key for x in first.hunks] == [(PATCH1, PROC, 1)]
    assert [x.key for x in second.hunks] == [(PATCH2, UTIL, 1)]
    assert second.commit is not None and second.commit.author.startswith("Other Person")
    assert "-\tint b = 2;" in second.excerpt and "+\tint b = 3;" in second.excerpt
    # the second round narrows to the util file only
    assert result.rounds[1].paths == (UTIL,)
    assert result.checks <= _budget(result, rounds=2)
    doc = bisect_report.to_json(result)
    assert doc["schema"] == "ktrack.bisect/1"
    assert doc["exact"] is True
    assert [b["culprit"]["commit"] for b in doc["breaks"]] == [
        h.commits["culprit"],
        h.commits["culprit2"],
    ]


def test_a_commit_that_cannot_be_judged_is_skipped_not_guessed(
    histories: dict[str, History],
) -> None:
    h = histories["rename"]
    culprit = h.commits["culprit"]
    cands = first_parent_commits(h.git_dir, h.commits["good"], h.commits["bad"], (PROC,))
    k = cands.index(culprit)
    checker = GnuChecker(h.git_dir, h.patches, unknown={culprit})
    result = _bisect(h, checker)
    assert result.culprit is None and not result.exact
    assert result.suspects == (culprit, cands[k + 1])
    assert result.breaks[0].commit is None
    assert [c.hash for c in result.breaks[0].suspects] == [culprit, cands[k + 1]]
    doc = bisect_report.to_json(result)
    assert doc["exact"] is False and doc["culprit"] is None

    # unknown commits away from the culprit cost a check each but do not blur the answer
    plain = _bisect(h)
    visited = [s.commit for s in plain.steps if s.role == "first-parent"]
    far = {c for c in visited[:1] if c != culprit and abs(cands.index(c) - k) > 1}
    assert far
    checker = GnuChecker(h.git_dir, h.patches, unknown=far)
    result = _bisect(h, checker)
    assert result.culprit == culprit
    assert far <= set(checker.calls)
    assert {s.commit for s in result.steps if s.status is Status.ERROR} == far


def test_find_culprit_with_a_plain_status_check(histories: dict[str, History]) -> None:
    """The pipeline's entry point: check(commit) -> Status, no hunk detail."""
    h = histories["rename"]
    checker = GnuChecker(h.git_dir, h.patches)
    calls: list[str] = []

    def check(commit: str) -> Status:
        calls.append(commit)
        return checker(commit).status

    result = find_culprit(h.git_dir, "v6.1", "v6.2", check, [PROC])
    assert result.culprit == h.commits["culprit"]
    assert len(calls) == len(set(calls)) == result.checks
    assert result.checks <= _budget(result)
    assert result.steps[0].role == "bad" and result.steps[1].role == "good"


def test_wrong_narrowing_is_caught_and_still_exact(histories: dict[str, History]) -> None:
    """Paths that miss the culprit: the last candidate is verified and the rest searched."""
    h = histories["rename"]
    checker = GnuChecker(h.git_dir, h.patches)
    result = find_culprit(
        h.git_dir, "v6.1", "v6.2", lambda c: checker(c).status, ["drivers/d3/file3.c"]
    )
    assert result.culprit == h.commits["culprit"]
    assert any("without narrowing" in n for n in result.notes)


def test_bad_input_exits_2(histories: dict[str, History], tmp_path: Path) -> None:
    h = histories["rename"]
    checker = GnuChecker(h.git_dir, h.patches)

    def check(c: str) -> Status:
        return checker(c).status

    with pytest.raises(UserError, match="reversed") as exc:
        find_culprit(h.git_dir, "v6.2", "v6.1", check, [PROC])
    assert exc.value.exit_code == 2
    assert "--good v6.1 --bad v6.2" in str(exc.value)
    with pytest.raises(UserError, match="already fails at the good release"):
        find_culprit(h.git_dir, h.commits["culprit"], "v6.2", check, [PROC])
    with pytest.raises(UserError, match="does not fail at"):
        parent = parents(h.git_dir, h.commits["culprit"])[0]
        find_culprit(h.git_dir, "v6.1", parent, check, [PROC])
    with pytest.raises(UserError, match="not in the release store"):
        find_culprit(h.git_dir, "v6.1", "v9.9", check, [PROC])
    with pytest.raises(UserError, match="same commit"):
        find_culprit(h.git_dir, "v6.1", h.commits["good"], check, [PROC])

    flat = tmp_path / "flat.git"
    unrelated_store(flat)
    with pytest.raises(UserError, match="no history between v6.1 and v6.2") as exc:
        find_culprit(flat, "v6.1", "v6.2", check, [PROC])
    assert exc.value.exit_code == 2
    assert not history_available(flat, "v6.1", "v6.2")
    assert history_available(h.git_dir, "v6.1", "v6.2")


def test_infrastructure_error_at_an_endpoint_is_exit_3(histories: dict[str, History]) -> None:
    h = histories["rename"]
    with pytest.raises(InfraError):
        find_culprit(h.git_dir, "v6.1", "v6.2", lambda c: Status.ERROR, [PROC])


def test_probe_cache_runs_once_per_commit_and_per_tree() -> None:
    runs: list[str] = []

    def probe(c: str) -> Verdict:
        runs.append(c)
        if c == "boom":
            raise InfraError("disk on fire")
        return Verdict(Status.PASS)

    cache = ProbeCache(probe, tree_key=lambda c: {"a": "T1", "b": "T1", "c": "T2"}.get(c, c))
    assert cache("a").status is Status.PASS
    assert cache("a").status is Status.PASS
    assert cache("b").status is Status.PASS  # same tree as a
    assert cache("c").status is Status.PASS
    assert cache("boom").status is Status.ERROR  # infrastructure: never a fail
    assert runs == ["a", "c", "boom"]
    assert cache.runs == 3


def test_verdict_json_round_trip() -> None:
    v = Verdict(
        Status.FAIL,
        "x",
        (HunkRef("p", "a/b.c", 2, "conflict", 17), HunkRef("p", "c", 0, "missing-file")),
    )
    back = Verdict.from_json(v.to_json())
    assert back.status is Status.FAIL and back.keys == v.keys
    assert back.failing[0].expected_line == 17


def test_commands_are_built_as_lists(tmp_path: Path) -> None:
    assert first_parent_argv(tmp_path, "G", "B", ["fs/a.c", "mm/b.c"]) == [
        "git",
        f"--git-dir={tmp_path}",
        "rev-list",
        "--first-parent",
        "--reverse",
        "B",
        "^G",
        "--",
        "fs/a.c",
        "mm/b.c",
    ]
    assert describe.later_argv(tmp_path, "C", "B", "fs/a.c")[-4:] == [
        "B",
        "^C",
        "--",
        "fs/a.c",
    ]


def test_parse_diff_and_pick_by_expected_lines() -> None:
    text = (
        "diff --git a/f.c b/f.c\nindex 1..2 100644\n--- a/f.c\n+++ b/f.c\n"
        "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        "@@ -50,3 +50,3 @@\n x\n-int y;\n+long y;\n z\n"
    )
    (diff,) = parse_patch(text.encode(), name="culprit").files
    hunks = diff.hunks
    assert [(x.old_start, x.new_start) for x in hunks] == [(1, 1), (50, 50)]
    near = describe._pick(hunks, [HunkRef("p", "f.c", 1, "conflict", expected_line=49)])
    assert near == [hunks[1]]
    by_text = describe._pick(hunks, [HunkRef("p", "f.c", 1, "conflict", want=("int y;",))])
    assert by_text == [hunks[1]]


def test_culprit_excerpt_is_the_diff_as_git_printed_it(tmp_path: Path) -> None:
    """The excerpt's hunks (parsed by patchsets.diff) read exactly as ``git diff`` wrote them:
    one-line ranges without a count, the function after ``@@``, no newline at the end."""
    work = tmp_path / "w"
    work.mkdir()
    env_git = ["git", "-C", str(work), "-c", "user.name=T", "-c", "user.email=t@example.org"]
    proc.run([*env_git, "init", "-q"], cwd=work, check=True)
    body = "".join(f"int f{i}(void)\n{{\n\treturn {i};\n}}\n\n" for i in range(12))
    (work / "f.c").write_text(body + "int last;")
    proc.run([*env_git, "add", "f.c"], cwd=work, check=True)
    proc.run([*env_git, "commit", "-qm", "one"], cwd=work, check=True)
    (work / "f.c").write_text(body.replace("return 7;", "return 70;") + "long last;")
    proc.run([*env_git, "commit", "-qam", "two"], cwd=work, check=True)
    git_dir = work / ".git"
    raw = _git(git_dir, "diff", "--no-color", "-U0", "HEAD~1", "HEAD", "--", "f.c")
    (diff,) = parse_patch(raw.encode(), name="culprit").files
    printed = [
        ln for ln in raw.splitlines() if not ln.startswith(("diff ", "index ", "---", "+++"))
    ]
    assert [ln for h in diff.hunks for ln in describe.hunk_lines(h)] == printed
    assert printed[0].startswith("@@ -38 +38 @@ int f7(void)")
    assert printed[-1] == "\\ No newline at end of file"
    head = _git(git_dir, "rev-parse", "HEAD").strip()
    assert describe.file_diff(git_dir, f"{head}~1", head, "f.c") is not None
    assert describe.file_diff(git_dir, f"{head}~1", head, "other.c") is None


def test_an_unreadable_git_diff_is_infrastructure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git's own output is never the user's bad input: exit 3, not 2."""
    broken = "diff --git a/f.c b/f.c\n--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n a\n-b\n"

    def fake_git(git_dir: Path, argv: list[str], *, check: bool = True) -> proc.Result:
        return proc.Result(tuple(argv), 0, broken, "", 0.0)

    monkeypatch.setattr(describe, "run_git", fake_git)
    with pytest.raises(InfraError, match="cannot read git's diff of 0123456789ab"):
        describe.file_diff(tmp_path, "p" * 40, "0123456789ab" + "c" * 28, "f.c")


def test_a_file_moved_away_is_a_missing_file_break(tmp_path: Path) -> None:
    h = build_history(
        tmp_path / "move.git", seed=3, main_commits=400, side_branches=8, scenario="move"
    )
    result = _bisect(h)
    assert result.culprit == h.commits["culprit"]
    brk = result.breaks[0]
    assert [(x.path, x.index, x.klass) for x in brk.hunks] == [(PROC, 0, "missing-file")]
    assert f"{PROC}: renamed to {PROC_MOVED}" in brk.excerpt


def test_real_apply_engine_agrees_on_every_scenario(
    histories: dict[str, History], tmp_path: Path
) -> None:
    """The same searches with tracker.apply on store TreeViews instead of GNU patch."""
    from tracker.bisect.probe import apply_probe
    from tracker.patchsets.diff import Series, parse_patch

    moved = build_history(
        tmp_path / "move.git", seed=3, main_commits=300, side_branches=6, scenario="move"
    )
    for h in [*histories.values(), moved]:
        series = Series("s", tuple(parse_patch(text, name=name) for name, text in h.patches))
        result = find_breaks(
            h.git_dir, "v6.1", "v6.2", ProbeCache(apply_probe(h.git_dir, series, 0))
        )
        result = describe.describe(h.git_dir, result)
        expected = [h.commits[k] for k in ("culprit", "culprit2") if k in h.commits]
        assert [b.commit.hash if b.commit else None for b in result.breaks] == expected
        if h is moved:
            assert f"{PROC}: renamed to {PROC_MOVED}" in result.breaks[0].excerpt
        else:
            assert result.breaks[0].hunks[0].want  # the engine says what the hunk expected


def test_good_release_off_the_first_parent_line(histories: dict[str, History]) -> None:
    """good on a merged side branch: the line is searched from where it leaves good's history."""
    h = histories["side"]
    culprit = h.commits["culprit"]
    before = parents(h.git_dir, culprit)[0]  # on the side branch, passes
    assert before not in first_parent_commits(h.git_dir, h.commits["good"], h.commits["bad"], ())
    checker = GnuChecker(h.git_dir, h.patches)
    result = find_breaks(h.git_dir, before, "v6.2", ProbeCache(checker))
    assert result.culprit == culprit
    assert any(s.role == "line-entry" for s in result.steps)
    assert any("off the first-parent line" in n for n in result.notes)
