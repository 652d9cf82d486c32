"""The workspace copy's filter: .env* files and .git/config credentials stay on the host."""

from __future__ import annotations

import io
import tarfile

from bottle_core.workspace import WorkspaceFilter, scrub_git_config, workspace_tar

GIT_CONFIG = """[core]
\tbare = false
[remote "origin"]
\turl = https://x-access-token:ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5@github.test/acme/app.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
[remote "mirror"]
\turl = git@github.test:acme/app.git
[http "https://github.test/"]
\textraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46c2VjcmV0
"""


def test_env_files_are_left_out_at_any_depth_unless_included():
    default = WorkspaceFilter()
    assert not default.keeps(".env") and not default.keeps("api/.env.local") and not default.keeps(".envrc")
    assert default.keeps("src/env.py") and default.keeps("README.md") and default.keeps("environment.yml")
    chosen = WorkspaceFilter(exclude=("*.pem", "secrets/"), include=(".env.example",))
    assert chosen.keeps(".env.example") and not chosen.keeps(".env")
    assert not chosen.keeps("certs/server.pem") and not chosen.keeps("secrets/prod.yaml")


def test_git_config_loses_credentials_not_remotes():
    clean, count = scrub_git_config(GIT_CONFIG)
    assert count == 2
    assert "ghp_" not in clean and "extraheader" not in clean and "x-access-token" not in clean
    assert "url = https://github.test/acme/app.git" in clean and "git@github.test:acme/app.git" in clean


def test_the_tar_copy_applies_both(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(GIT_CONFIG)
    (tmp_path / ".env").write_text("TOKEN=1")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".env.production").write_text("TOKEN=2")
    (tmp_path / "app" / "main.py").write_text("print(1)")
    stream, left = workspace_tar(tmp_path, WorkspaceFilter(), uid=1000)
    with tarfile.open(fileobj=io.BytesIO(stream.read())) as tar:
        names = {m.name.removeprefix("./") for m in tar.getmembers()}
        config = tar.extractfile("./.git/config").read().decode()
    assert "app/main.py" in names and ".env" not in names and "app/.env.production" not in names
    assert "ghp_" not in config
    assert sorted(left.paths) == [".env", "app/.env.production"] and left.credentials == 2
    assert ".env" in left.line() and "workspace.include" in left.line()
    kept, left = workspace_tar(tmp_path, WorkspaceFilter(include=(".env", ".git/config")), uid=1000)
    with tarfile.open(fileobj=io.BytesIO(kept.read())) as tar:
        assert "ghp_" in tar.extractfile("./.git/config").read().decode()
        assert "./.env" in tar.getnames()



def test_every_repository_config_inside_a_folder_loses_its_credentials(tmp_path):
    # A folder that is no repository, holding several: a nested one, a submodule's config, a linked worktree's.
    for config in ("app/.git/config", "lib/.git/modules/vendor/config", "app/.git/worktrees/w/config.worktree"):
        (tmp_path / config).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / config).write_text(GIT_CONFIG)
    (tmp_path / "app" / "config").write_text("url = https://user:hunter2hunter2@example.test/\n")  # not git's
    stream, left = workspace_tar(tmp_path, WorkspaceFilter(), uid=1000)
    with tarfile.open(fileobj=io.BytesIO(stream.read())) as tar:
        copied = {m.name.removeprefix("./"): tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}
    for config in ("app/.git/config", "lib/.git/modules/vendor/config", "app/.git/worktrees/w/config.worktree"):
        assert "ghp_" not in copied[config] and "url = https://github.test/acme/app.git" in copied[config]
    assert "hunter2" in copied["app/config"], "a file that is not a repository's config is copied as it is"
    assert left.credentials == 6 and "6 credentials in git config" in left.line()
    kept, _ = workspace_tar(tmp_path, WorkspaceFilter(include=("app/.git/config",)), uid=1000)
    with tarfile.open(fileobj=io.BytesIO(kept.read())) as tar:
        assert "ghp_" in tar.extractfile("./app/.git/config").read().decode()
        assert "ghp_" not in tar.extractfile("./lib/.git/modules/vendor/config").read().decode()


def test_a_repository_config_linking_out_of_the_folder_is_not_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kube-config").write_text("token: hunter2hunter2hunter2\n")
    folder = tmp_path / "work"
    (folder / "app" / ".git").mkdir(parents=True)
    (folder / "app" / ".git" / "config").symlink_to(outside / "kube-config")
    stream, _ = workspace_tar(folder, WorkspaceFilter(), uid=1000)
    data = stream.read()
    assert b"hunter2" not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmember("./app/.git/config").issym(), "the link is copied as a link"


def test_a_link_out_of_the_folder_is_copied_as_a_link_and_nothing_it_names_is_read(tmp_path):
    host = tmp_path / "home" / ".kube"  # a host folder holding a file called config, as ~/.kube does
    host.mkdir(parents=True)
    (host / "config").write_text("client-key-data: SECRET-KEY-OF-THE-CLUSTER\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".git").symlink_to(host)
    (project / "notes.md").symlink_to(host / "config")
    (project / "main.py").write_text("print(1)")
    stream, left = workspace_tar(project, WorkspaceFilter(), uid=1000)
    data = stream.read()
    assert b"SECRET-KEY-OF-THE-CLUSTER" not in data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        links = {m.name.removeprefix("./"): m.linkname for m in tar.getmembers() if m.issym()}
        assert links == {".git": str(host), "notes.md": str(host / "config")}
        assert "./.git/config" not in tar.getnames() and "./main.py" in tar.getnames()
    # The benign counterpart: a git dir of another name inside the project, linked as .git, is scrubbed too.
    (project / ".git").unlink()
    (project / ".realgit" / "objects").mkdir(parents=True)
    (project / ".realgit" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / ".realgit" / "config").write_text(GIT_CONFIG)
    (project / ".git").symlink_to(".realgit")
    stream, left = workspace_tar(project, WorkspaceFilter(), uid=1000)
    with tarfile.open(fileobj=io.BytesIO(stream.read())) as tar:
        assert tar.getmember("./.git").issym()
        assert "github.test/acme/app.git" in tar.extractfile("./.realgit/config").read().decode()
        assert "ghp_" not in tar.extractfile("./.realgit/config").read().decode()
    assert left.credentials == 2


# -- the clone: excluded files leave the index too; history is named --------------------------------------------


def _git(cwd, *args):
    import subprocess

    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "safe.directory=*", *args],
                          capture_output=True, text=True)


def _repo_with_secrets(path):
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / ".env").write_text("OLD=secret-in-history\n")
    (path / "app.py").write_text("print(1)\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "one")
    _git(path, "rm", "-q", "--cached", ".env")
    (path / ".env").unlink()
    _git(path, "commit", "-qm", "two")
    (path / ".env.local").write_text("STAGED=secret-in-index\n")
    (path / "notes.txt").write_text("kept\n")
    _git(path, "add", "-f", ".env.local", "notes.txt")
    return path


def _extract(stream, into):
    with tarfile.open(fileobj=stream) as tar:
        tar.extractall(into, filter="tar")
    return into


def test_the_clone_drops_excluded_files_from_the_index_and_names_those_in_history(tmp_path):
    from bottle_core import clone, hostrepo
    from bottle_core.workspace import LeftOut, history_pathspecs, recorded

    repo = hostrepo.find_repository(_repo_with_secrets(tmp_path / "host"))
    index_before = (repo.git_dir / "index").read_bytes()
    filter_, left = WorkspaceFilter(), LeftOut()
    stream = clone.clone_tar(repo, uid=1000, include_ignored=False, keep=recorded(filter_, left))
    left.in_history = clone.in_history(repo, history_pathspecs(filter_), filter_.keeps)
    inside = _extract(stream, tmp_path / "inside")
    assert _git(inside, "show", ":.env.local").returncode != 0, "a left-out file stays readable from the index"
    assert _git(inside, "show", ":notes.txt").stdout == "kept\n"  # the benign staged file stays staged
    assert not (inside / ".env.local").exists()
    assert _git(inside, "status", "--porcelain").stdout.split("\n").count("A  notes.txt") == 1
    # The host's index is untouched, and the history's .env is named in a warning.
    assert (repo.git_dir / "index").read_bytes() == index_before
    assert left.paths == [".env.local"] and left.in_history == [".env"]
    text = left.line()
    assert "history" in text and ".env" in text and "--no-copy-cwd" in text


def test_an_included_file_stays_in_the_index(tmp_path):
    from bottle_core import clone, hostrepo
    from bottle_core.workspace import LeftOut, history_pathspecs, recorded

    repo = hostrepo.find_repository(_repo_with_secrets(tmp_path / "host"))
    filter_, left = WorkspaceFilter(include=(".env.local", ".env")), LeftOut()
    inside = _extract(clone.clone_tar(repo, uid=1000, include_ignored=False, keep=recorded(filter_, left)),
                      tmp_path / "inside")
    assert _git(inside, "show", ":.env.local").stdout == "STAGED=secret-in-index\n"
    assert clone.in_history(repo, history_pathspecs(filter_), filter_.keeps) == []
