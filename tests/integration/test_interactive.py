"""`bottle run AGENT` in a real terminal: the real claude opens at its prompt, with no first-run dialog, every time.

Each test runs on docker and on k8s (``seat``): on k8s the terminal reaches claude through ``kubectl exec -t``.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from bottle_core.claude_state import CLAUDE_VERSION

from .bottles import BOTTLE, GONE_WITHIN, bottle_cli, left_after, write_manifest
from .terminal import Terminal
from .test_k8s import objects_of

pytestmark = pytest.mark.integration

MODEL_KEY = "sk-ant-test-not-a-real-key-0123456789"
PLANTED = "sk-ant-oat01-planted-host-secret-must-not-travel"
#: What Claude Code shows in each first-run dialog (2.1.332); none may appear.
DIALOGS = ("Choose the text style", "Unable to connect", "Quick safety check", "trust this folder",
           "Detected a custom API key", "Bypass Permissions mode", "Security notes", "Not logged in")
PROMPT_READY = "bypass permissions on"


def at_prompt(screen: str) -> bool:
    return PROMPT_READY in screen or any(dialog in screen for dialog in DIALOGS)


@pytest.fixture
def agent_name() -> str:
    return f"tty-{secrets.token_hex(3)}"


@pytest.fixture
def run_env(tmp_path: Path, outbound_env, agent_name, seat) -> dict[str, str]:
    """The environment of `bottle run`: the backend, the test internet, a made-up key, a host Claude Code folder."""
    host = tmp_path / "host-claude"
    host.mkdir()
    (host / ".claude.json").write_text(json.dumps({
        "theme": "light", "editorMode": "vim", "numStartups": 41,
        "oauthAccount": {"accessToken": PLANTED, "emailAddress": "someone@example.com"},
        "primaryApiKey": PLANTED, "projects": {"/home/someone/secret-project": {"history": [PLANTED]}},
    }))
    # On k8s the cluster's settings are already in this process's environment (``k8s_cluster``), which the
    # terminal's own tmux server passes on.
    return {**outbound_env, "BOTTLE_BACKEND": seat, "ANTHROPIC_API_KEY": MODEL_KEY, "CLAUDE_CONFIG_DIR": str(host)}


@pytest.fixture
def manifest(tmp_path: Path, agent_name, internet_egress) -> Path:
    return write_manifest(tmp_path, {"bottles": {"dev": {"egress": internet_egress}},
                                     "agents": {agent_name: {"skills": [], "prompt": "Be brief.", "bottle": "dev"}}})


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The user's directory, copied into /workspace (the host Claude Code folder lies outside it)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "README.md").write_text("a project\n")
    return folder


@pytest.fixture
def terminal(tmp_path: Path):
    term = Terminal(f"bottle-test-{secrets.token_hex(4)}", tmp_path)
    yield term
    term.close()


def container_of(agent: str, role: str) -> str:
    names = subprocess.run(["docker", "ps", "--filter", f"label=bottle.agent={agent}", "--filter",
                            f"label=bottle.role={role}", "--format", "{{.Names}}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(names) == 1, f"expected one {role} container of {agent}, found {names}"
    return names[0]


def pods_of(agent: str, role: str | None = None) -> list[str]:
    """The names of the test cluster's pods of ``agent``'s bottles (of one role)."""
    from bottle_k8s import settings
    from bottle_k8s.cluster import core

    selector = f"bottle.agent={agent}" + (f",bottle.role={role}" if role else "")
    return [pod.metadata.name for pod in core().list_namespaced_pod(settings.namespace(),
                                                                    label_selector=selector).items]


def in_agent(seat: str, agent: str, command: str) -> str:
    """What ``command`` prints run as the agent in ``agent``'s running bottle."""
    if seat == "k8s":
        from bottle_k8s import settings
        from bottle_k8s.streams import exec_in

        pods = pods_of(agent, "agent")
        assert len(pods) == 1, f"expected one agent pod of {agent}, found {pods}"
        return exec_in(pods[0], "agent", ["sh", "-c", command], namespace=settings.namespace()).text()
    return subprocess.run(["docker", "exec", container_of(agent, "agent"), "sh", "-c", command],
                          capture_output=True, text=True).stdout


def left_of(seat: str, agent: str) -> list[str]:
    """What is left of ``agent``'s bottles once their removal had time to finish: containers, networks, and the
    cluster's objects."""
    containers, networks = left_after("bottle.agent", agent)
    left = [*containers, *networks]
    if seat == "k8s":
        deadline = time.monotonic() + GONE_WITHIN
        while objects_of(agent=agent) and time.monotonic() < deadline:
            time.sleep(0.2)
        left += objects_of(agent=agent)
    return left


def egress_decisions(agent: str, env: dict[str, str]) -> list[dict]:
    """The proxy's decisions so far in the agent's running bottle, as `bottle logs` shows them."""
    shown = bottle_cli("logs", agent, "--egress", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return [json.loads(line) for line in shown.stdout.decode().splitlines()]


def start_run(terminal: Terminal, manifest: Path, agent: str, env: dict[str, str], cwd: Path) -> str:
    """`bottle run -m MANIFEST AGENT` in the terminal, until claude's input prompt shows; returns the screen."""
    terminal.start([BOTTLE, "run", "-m", str(manifest), agent], env, cwd)
    screen = terminal.wait_for(at_prompt, "claude's input prompt", timeout=120)
    shown = [dialog for dialog in DIALOGS if dialog in screen]
    assert not shown, f"claude showed a first-run dialog ({shown}):\n{screen}"
    return screen


def test_bottle_run_opens_at_the_prompt_every_time(terminal, manifest, agent_name, run_env, model_server, workdir,
                                                   seat):
    for attempt, (question, answer) in enumerate([("first question", "first answer from the scripted model"),
                                                  ("second question", "second answer from the scripted model")]):
        model_server.set_script([answer])
        start_run(terminal, manifest, agent_name, run_env, workdir)

        # The host's preferences travelled; its secrets, history and projects did not.
        settings = json.loads(in_agent(seat, agent_name, "cat ~/.claude/settings.json"))
        assert settings["theme"] == "light" and settings["editorMode"] == "vim"
        found = in_agent(seat, agent_name, f"grep -rl {PLANTED} ~ /workspace /tmp 2>/dev/null; true")
        assert found == "", f"a planted host secret reached the bottle: {found}"
        assert "secret-project" not in in_agent(seat, agent_name, "cat ~/.claude.json")

        terminal.type(question)
        terminal.send("Enter")
        terminal.wait_for(lambda s, a=answer: a in s, "the scripted model's reply")
        assert any(question in json.dumps(body.get("messages")) for body in model_server.messages())

        decisions = egress_decisions(agent_name, run_env)
        assert decisions and all(d["decision"] == "allow" for d in decisions), decisions
        assert {d["host"] for d in decisions} == {"api.anthropic.com"}

        terminal.type("/exit")
        terminal.send("Enter")
        assert terminal.exit_code() == 0, terminal.screen()
        assert left_of(seat, agent_name) == [], f"run {attempt + 1} left resources behind"
        terminal.close()


@pytest.mark.parametrize("key", ["C-d", "C-c"])
def test_ctrl_d_and_ctrl_c_end_the_run_and_a_resize_reaches_claude(terminal, manifest, agent_name, run_env,
                                                                   model_server, workdir, key, seat):
    start_run(terminal, manifest, agent_name, run_env, workdir)
    terminal.resize(150, 40)
    # claude's terminal inside the bottle is the pty docker exec (kubectl exec) made; its size follows the outer
    # one, soon.
    probe = ('for p in /proc/[0-9]*; do case "$(tr "\\0" " " < $p/cmdline)" in claude*) '
             'stty -F "$(readlink $p/fd/0)" size;; esac; done 2>/dev/null')
    size = None
    for _ in range(100):  # bounded: the resize travels through tmux, bottle and docker exec
        size = in_agent(seat, agent_name, probe).split()
        if size == ["40", "150"]:
            break
        time.sleep(0.2)
    assert size == ["40", "150"], size
    # claude wants the key twice within a moment ("Press Ctrl-D again to exit"): a user presses it again
    # once claude asks for it.
    terminal.send(key)
    terminal.wait_for(lambda screen: "again to exit" in screen, "claude asking for the key again")
    terminal.send(key)
    assert terminal.exit_code() == 0, terminal.screen()
    assert left_of(seat, agent_name) == []  # removal finishes just after the run


def test_an_attached_commands_exit_status_comes_back(terminal, manifest, agent_name, run_env, tmp_path, seat):
    """`bottle exec` in a terminal attaches a TTY (kubectl exec -t on k8s); the command's own status is bottle's."""
    terminal.start([BOTTLE, "exec", "-m", str(manifest), agent_name, "--", "sh", "-c",
                    'test -t 0 && test -t 1 && echo "on a tty"; exit 7'], run_env, tmp_path)
    assert terminal.exit_code(timeout=180) == 7, terminal.screen()
    assert "on a tty" in terminal.screen()
    assert left_of(seat, agent_name) == []
    # Without a terminal (no TTY): the same status.
    piped = bottle_cli("exec", "-m", str(manifest), agent_name, "--", "sh", "-c", "test -t 0 || exit 5", cwd=tmp_path,
                       env=run_env)
    assert piped.returncode == 5, piped.stderr.decode()
    assert left_of(seat, agent_name) == []


def test_the_image_carries_the_claude_release_bottle_provisions_for(manifest, agent_name, outbound_env, tmp_path):
    """On docker only: every backend runs the same agent image."""
    result = bottle_cli("exec", "-m", str(manifest), agent_name, "--", "claude", "--version", cwd=tmp_path,
                        env={**outbound_env, "BOTTLE_BACKEND": "docker"})
    assert result.returncode == 0, result.stderr.decode()
    version = result.stdout.decode().split()[0]
    assert version == CLAUDE_VERSION, (
        f"the agent image carries claude {version}, but bottle_core/claude_state.py was checked against "
        f"{CLAUDE_VERSION}: run tests/integration/test_interactive.py against the new release, check the "
        "~/.claude.json and settings keys in it still hold, then update CLAUDE_VERSION")
