"""The one git module: exact command lines, refused names, and the GitPython queries on a real
(tiny) repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest_releases import git as sh_git

from tracker.errors import InfraError, UserError
from tracker.sources import git


def test_command_lines_are_exact(tmp_path: Path) -> None:
    g = tmp_path / "s.git"
    assert git.init_argv(g) == ["git", "init", "--quiet", "--bare", str(g)]
    assert git.update_ref_argv(g, "refs/tags/v6.1", "abc") == [
        "git", f"--git-dir={g}", "update-ref", "refs/tags/v6.1", "abc",
    ]  # fmt: skip
    assert git.update_ref_argv(g, "refs/tags/v6.1", "abc", "") == [
        "git", f"--git-dir={g}", "update-ref", "refs/tags/v6.1", "abc", "",
    ]  # fmt: skip
    assert git.commit_graph_argv(g) == [
        "git", f"--git-dir={g}", "commit-graph", "write", "--reachable", "--changed-paths",
    ]  # fmt: skip
    assert git.ls_tree_argv(g, "abc", folders=True) == [
        "git", f"--git-dir={g}", "ls-tree", "-r", "-t", "-z", "--full-tree", "abc",
    ]  # fmt: skip
    assert git.fsck_argv(g) == ["git", f"--git-dir={g}", "fsck", "--full", "--no-dangling"]
    assert git.fsck_argv(g, full=False) == [
        "git", f"--git-dir={g}", "fsck", "--connectivity-only", "--no-dangling",
    ]  # fmt: skip
    assert git.show_index_argv() == ["git", "show-index"]
    assert git.cat_file_check_argv(g) == ["git", f"--git-dir={g}", "cat-file", "--batch-check"]
    assert git.pack_objects_argv(g, tmp_path / "p") == [
        "git", f"--git-dir={g}", "pack-objects", "-q", str(tmp_path / "p"),
    ]  # fmt: skip
    assert git.ls_files_argv(g, "abc") == [
        "git", f"--git-dir={g}", "ls-tree", "-r", "-z", "--name-only", "abc",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "url", ["", "--upload-pack=touch /tmp/x", "a\nb", "ext::sh -c touch% /tmp/x"]
)
def test_hostile_urls_are_refused(url: str) -> None:
    with pytest.raises(UserError):
        git.check_url(url)


@pytest.mark.parametrize("rev", ["", "--output=/tmp/x", "v6.1 v6.2", "-n1"])
def test_hostile_revs_are_refused(rev: str) -> None:
    with pytest.raises(UserError):
        git.check_rev(rev)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    sh_git(work, "init", "-q")
    sh_git(work, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty",
           "-m", "one")  # fmt: skip
    sh_git(work, "tag", "v6.1")
    sh_git(work, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty",
           "-m", "two")  # fmt: skip
    sh_git(work, "-c", "user.name=a", "-c", "user.email=a@b", "tag", "-a", "-m", "t", "v6.2")
    sh_git(work, "checkout", "-q", "--orphan", "other")
    sh_git(work, "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-q", "--allow-empty",
           "-m", "unrelated")  # fmt: skip
    sh_git(work, "tag", "lone")
    return work / ".git"


def test_queries(repo: Path) -> None:
    one = sh_git(repo, "rev-parse", "v6.1^{commit}").strip()
    two = sh_git(repo, "rev-parse", "v6.2^{commit}").strip()
    lone = sh_git(repo, "rev-parse", "lone").strip()
    assert git.resolve(repo, "refs/tags/v6.2") == two  # an annotated tag is peeled
    assert git.resolve(repo, one[:10]) == one
    assert git.resolve(repo, "v9.9") is None
    assert git.tags(repo) == {"v6.1": one, "v6.2": two, "lone": lone}
    committed = int(sh_git(repo, "log", "-1", "--format=%ct", "v6.1").strip())
    assert git.tag_dates(repo)["v6.1"] == committed  # a lightweight tag: its commit's date
    assert git.is_ancestor(repo, one, two) and not git.is_ancestor(repo, two, one)
    assert git.merge_base(repo, one, two) == one
    assert git.merge_base(repo, two, lone) is None  # no shared history
    with pytest.raises(UserError):
        git.resolve(repo, "--all")


def test_remote_tags_and_failures(repo: Path, tmp_path: Path) -> None:
    assert sorted(git.remote_tags(str(repo), cwd=tmp_path)) == ["lone", "v6.1", "v6.2"]
    with pytest.raises(InfraError, match="cannot list the tags"):
        git.remote_tags(str(tmp_path / "nowhere"), cwd=tmp_path)
    with pytest.raises(InfraError, match="not a git repository"):
        git.tags(tmp_path / "nowhere")
    with pytest.raises(InfraError, match="git rev-parse failed"):
        git.query(repo, "rev-parse", "--verify", "no-such-rev^{commit}")


def test_missing_git_is_infrastructure(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InfraError, match="required tool not found: git"):
        git.remote_tags(str(repo), cwd=tmp_path)
    with pytest.raises(InfraError, match="required tool not found: git"):
        git.tags(repo)


def test_feed_with_a_command_transport_runs_nothing(tmp_path: Path) -> None:
    from tracker.sources.store import ReleaseStore

    marker = tmp_path / "ran"
    store = ReleaseStore(tmp_path / "store.git")
    with pytest.raises(UserError, match="transport that runs commands"):
        store.fetch_git(f"ext::sh -c touch% {marker}", "v*")
    assert not marker.exists() and not store.path.exists()
