"""Provisioning in one round: the hooks' files in one archive, their commands held and run after it, one script a user."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bottle_core import provision
from bottle_core.errors import BottleRuntimeError
from bottle_core.provision import ProvisionRound
from bottle_core.sandbox import ExecResult
from bottle_core.testing import FakeBottle


class LocalBottle(FakeBottle):
    """Runs the round's scripts here, with the files copied in written below ``root``."""

    def __init__(self, plan, root: Path):
        super().__init__(plan)
        self.root = root

    def exec(self, command, *, user=None, env=None, workdir=None, stdin=None) -> ExecResult:
        super().exec(command, user=user, env=env, workdir=workdir, stdin=stdin)
        for path, data in self.files.items():
            if path.startswith(str(self.root)):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_bytes(data)
        done = subprocess.run(list(command), capture_output=True, cwd=workdir, timeout=30)
        return ExecResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def local(plan_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(provision, "ROUND_DIR", str(tmp_path / "round"))
    plan = plan_factory()
    return LocalBottle(plan, tmp_path)


def test_files_go_in_one_archive_and_commands_in_one_exec_a_user_in_order(local, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    held = ProvisionRound(local)
    held.write_files(local.plan.guest.home, {".a": b"A"})
    held.write_files("/etc/thing", {"b.json": b"{}"}, owner=0)
    held.check(["sh", "-c", f'printf "%s" "$GREETING" > {out}/first'], env={"GREETING": "hello there"},
               workdir=str(out))
    held.check(["sh", "-c", f"cat > {out}/second"], stdin=b"from stdin", workdir=str(out))
    held.check(["sh", "-c", f"pwd > {out}/third"], workdir=str(out))
    assert local.calls == [], "nothing reaches the bottle before the round is applied"
    held.ready()
    copies = [call for call in local.calls if call[0] == "copy_in"]
    execs = [call for call in local.calls if call[0] == "exec"]
    assert copies == [("copy_in", "/")] and len(execs) == 1, local.calls
    assert local.files[f"{local.plan.guest.home}/.a"] == b"A" and local.files["/etc/thing/b.json"] == b"{}"
    assert (out / "first").read_text() == "hello there"
    assert (out / "second").read_text() == "from stdin"
    assert (out / "third").read_text().strip() == str(out)
    assert not (tmp_path / "round" / str(local.plan.guest.uid)).exists(), "the script removes its own folder"


def test_a_failing_command_is_raised_naming_it_and_the_rest_of_its_script_does_not_run(local, tmp_path):
    held = ProvisionRound(local)
    held.check(["true"], workdir=str(tmp_path))
    held.check(["sh", "-c", "echo no room >&2; exit 3"], workdir=str(tmp_path))
    held.check(["touch", str(tmp_path / "after")], workdir=str(tmp_path))
    with pytest.raises(BottleRuntimeError) as caught:
        held.ready()
    assert "`sh -c 'echo no room >&2; exit 3'` exited 3: no room" in str(caught.value)
    assert not (tmp_path / "after").exists()


def test_exec_applies_what_is_held_first(local, tmp_path):
    held = ProvisionRound(local)
    held.check(["touch", str(tmp_path / "held")], workdir=str(tmp_path))
    assert held.exec(["test", "-e", str(tmp_path / "held")]).ok


class OwnWayBottle(LocalBottle):
    """A bottle with its own way to apply a round (a claimed pooled one's): it gets the archive and the users,
    and answers each user's outcome, having run the scripts here."""

    def __init__(self, plan, root: Path):
        super().__init__(plan, root)
        self.rounds: list[list[str]] = []

    def apply_round(self, archive, users):
        self.rounds.append(list(users))
        FakeBottle.copy_in(self, archive, "/")
        for path, data in self.files.items():
            if path.startswith(str(self.root)):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_bytes(data)
        outcomes = {}
        for user in users:
            done = subprocess.run(["sh", f"{provision.ROUND_DIR}/{user}/script"], capture_output=True, timeout=30)
            outcomes[user] = ExecResult(done.returncode, b"", done.stderr)
        self.calls = [call for call in self.calls if call[0] != "copy_in"]
        return outcomes


@pytest.fixture
def own_way(plan_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(provision, "ROUND_DIR", str(tmp_path / "round"))
    return OwnWayBottle(plan_factory(), tmp_path)


def test_a_bottle_with_its_own_way_takes_the_round_whole_with_no_exec(own_way, tmp_path):
    held = ProvisionRound(own_way)
    held.write_files(own_way.plan.guest.home, {".a": b"A"})
    held.check(["sh", "-c", f"echo mine > {tmp_path}/agent-side"], workdir=str(tmp_path))
    held.check(["sh", "-c", f"echo root > {tmp_path}/root-side"], user="0", workdir=str(tmp_path))
    held.ready()
    assert own_way.rounds == [[str(own_way.plan.guest.uid), "0"]]
    assert [call for call in own_way.calls if call[0] in ("exec", "copy_in")] == [], own_way.calls
    assert own_way.files[f"{own_way.plan.guest.home}/.a"] == b"A"
    assert (tmp_path / "agent-side").read_text() == "mine\n" and (tmp_path / "root-side").read_text() == "root\n"


def test_a_failure_reported_by_the_bottles_own_way_is_raised_naming_the_step(own_way, tmp_path):
    held = ProvisionRound(own_way)
    held.check(["true"], user="0", workdir=str(tmp_path))
    held.check(["sh", "-c", "echo 'the disk is full' >&2; exit 4"], user="0", workdir=str(tmp_path))
    with pytest.raises(BottleRuntimeError) as failed:
        held.ready()
    assert "`sh -c 'echo '\"'\"'the disk is full'\"'\"' >&2; exit 4'` exited 4: the disk is full" in failed.value.message
