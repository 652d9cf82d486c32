"""The test "internet" works on its own: its servers answer by name, over TLS from the test CA.

Each check runs a client in a throwaway container on the ``internet`` network,
as the bundle's proxy would reach these hosts, with no bottle involved.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration

# Runs inside a throwaway container: one HTTPS request, trusting only the test CA; prints status and body.
CLIENT = """
import json, ssl, sys, urllib.request
url, body = sys.argv[1], sys.argv[2]
context = ssl.create_default_context(cafile="/ca/ca.pem")
request = urllib.request.Request(url, data=body.encode() or None, method="POST" if body else "GET",
                                 headers={"content-type": "application/json", "x-api-key": "test-key",
                                          "anthropic-version": "2023-06-01"})
with urllib.request.urlopen(request, context=context, timeout=20) as response:
    print(response.status)
    print(response.headers.get("content-type"))
    sys.stdout.write(response.read().decode())
"""


def fetch(internet, test_ca, url: str, body: dict | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of one request made from a container on ``internet``."""
    result = internet.run(
        ["python3", "-c", CLIENT, url, json.dumps(body) if body is not None else ""],
        binds={str(test_ca.pem_path.parent): {"bind": "/ca", "mode": "ro"}},
        timeout=60,
    )
    assert result.exit_code == 0, result.stderr
    status, content_type, text = result.stdout.split("\n", 2)
    return int(status), content_type, text


def parse_sse(text: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a server-sent-events body."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


MESSAGES_URL = "https://api.anthropic.com/v1/messages"
REQUEST = {
    "model": "claude-test",
    "max_tokens": 64,
    "stream": True,
    "system": "You are a test.",
    "messages": [{"role": "user", "content": "ping"}],
}


def test_model_server_streams_scripted_text(internet, test_ca, model_server):
    model_server.set_script([{"text": "scripted hello"}])

    status, content_type, body = fetch(internet, test_ca, MESSAGES_URL, REQUEST)

    assert status == 200
    assert content_type == "text/event-stream"
    events = parse_sse(body)
    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "scripted hello"}
    assert events[4][1]["delta"]["stop_reason"] == "end_turn"
    # The request was recorded as sent, with the key's value hidden.
    [recorded] = model_server.requests()
    assert recorded["method"] == "POST" and recorded["path"] == "/v1/messages"
    assert recorded["body"]["system"] == "You are a test."
    assert model_server.system_prompts() == ["You are a test."]
    assert recorded["headers"]["host"] == "api.anthropic.com"
    assert "test-key" not in json.dumps(recorded)
    assert recorded["headers"]["x-api-key"].startswith("sha256:")


def test_model_server_streams_tool_use(internet, test_ca, model_server):
    tool_input = {"command": "echo hi > /tmp/out", "description": "write a file"}
    model_server.set_script([{"tool_use": {"name": "Bash", "input": tool_input}}])

    _, _, body = fetch(internet, test_ca, MESSAGES_URL, REQUEST)

    events = parse_sse(body)
    start, delta = events[1][1], events[2][1]
    assert start["content_block"]["type"] == "tool_use"
    assert start["content_block"]["name"] == "Bash"
    assert start["content_block"]["input"] == {}
    assert start["content_block"]["id"].startswith("toolu_")
    assert delta["delta"]["type"] == "input_json_delta"
    assert json.loads(delta["delta"]["partial_json"]) == tool_input
    assert events[4][1]["delta"]["stop_reason"] == "tool_use"


def test_model_server_falls_back_to_pong_and_answers_plain_json(internet, test_ca, model_server):
    model_server.set_script(["only once"])
    request = dict(REQUEST, stream=False)

    first = json.loads(fetch(internet, test_ca, MESSAGES_URL, request)[2])
    second = json.loads(fetch(internet, test_ca, MESSAGES_URL, request)[2])

    assert first["content"] == [{"type": "text", "text": "only once"}]
    assert second["content"] == [{"type": "text", "text": "pong"}]
    assert second["type"] == "message" and second["stop_reason"] == "end_turn"
    assert model_server.remaining_script() == []
    assert len(model_server.messages()) == 2


def test_model_server_counts_tokens(internet, test_ca, model_server):
    status, _, body = fetch(internet, test_ca, MESSAGES_URL + "/count_tokens", REQUEST)

    assert status == 200
    assert json.loads(body)["input_tokens"] > 0


def test_origin_answers_by_name_over_https(internet, test_ca, origin):
    for name in origin.names:
        status, _, body = fetch(internet, test_ca, f"https://{name}/")
        assert status == 200
        assert body.strip() == f"hello from {name}"
    assert [r["headers"]["host"] for r in origin.requests()] == list(origin.names)


def test_origin_has_an_address_on_the_internet_network(internet, origin):
    result = internet.run(["python3", "-c", f"import urllib.request; print(urllib.request.urlopen('http://{origin.ip}/', timeout=10).read().decode())"])

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("hello from ")


def test_outbound_env_names_the_network_and_ca(outbound_env, internet, test_ca):
    assert outbound_env["BOTTLE_DOCKER_OUTBOUND_NETWORK"] == internet.name
    assert internet.network.attrs["Internal"] is True
    assert open(outbound_env["BOTTLE_UPSTREAM_CA_FILE"]).read().startswith("-----BEGIN CERTIFICATE-----")


@pytest.fixture
def claude_bin() -> str:
    """The same real claude binary the agent image is built with (BOTTLE_CLAUDE_BINARY, or bottle's cached copy)."""
    from bottle_core.claude_binary import locate

    return str(locate())


def run_claude(internet, test_ca, claude_bin: str, args: str):
    """Run ``claude`` as root in a throwaway container on ``internet``, talking to the model server by name."""
    return internet.run(
        ["sh", "-c", f"cd /tmp && claude {args}; echo; cat /tmp/proof.txt 2>/dev/null"],
        environment={
            "ANTHROPIC_API_KEY": "test",
            "NODE_EXTRA_CA_CERTS": "/ca/ca.pem",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "IS_SANDBOX": "1",  # claude refuses to skip permissions as root without it
        },
        binds={claude_bin: {"bind": "/usr/local/bin/claude", "mode": "ro"},
               str(test_ca.pem_path.parent): {"bind": "/ca", "mode": "ro"}},
        timeout=120,
    )


def test_real_claude_runs_a_scripted_tool(internet, test_ca, model_server, claude_bin):
    model_server.set_script([
        {"tool_use": {"name": "Bash", "input": {"command": "echo made-by-tool > /tmp/proof.txt",
                                                "description": "write a file"}}},
        "file written",
    ])

    result = run_claude(internet, test_ca, claude_bin, "-p 'write the file' --output-format json "
                                                        "--dangerously-skip-permissions")

    assert result.exit_code == 0, result.stderr
    answer, proof = result.stdout.strip().split("\n", 1)
    assert json.loads(answer)["result"] == "file written"
    assert proof.strip() == "made-by-tool"
    assert "Claude" in model_server.system_prompts()[0]
    first, second = model_server.messages()
    assert "Bash" in [tool["name"] for tool in first["tools"]]
    # The second turn carries the tool's result back to the model.
    results = [block for block in second["messages"][-1]["content"] if block.get("type") == "tool_result"]
    assert len(results) == 1
