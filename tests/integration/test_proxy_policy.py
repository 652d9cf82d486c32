"""The proxy judges every request, tried from inside the agent through each way a client can speak to it.

One bottle serves the module. Its allow-list (below) lets each origin name
through on other ports and protocols; the origin (``conftest.py``) answers
every name on HTTPS 443 and 8443, plain HTTP 80 and 8000, and a protocol that
is not HTTP on 22, and logs what reaches it, so "refused" is checked at both
ends: the agent's answer and the origin's silence.

The module runs once on docker and once on k8s (``module_seat``), one bottle each.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import socketserver
import subprocess
import threading

import pytest

from .agent_scripts import script
from .bottles import bottle_of, write_manifest
from .test_isolation import listening

pytestmark = pytest.mark.integration

ALLOW = ["allowed.test", "http://plain.test", "odd.test:8000", "https://odd.test:8443", "ssh.test:22",
         "*.wild.test"]
ENCODED = "6d792070617373776f7264.wild.test"

#: A raw client run inside the agent: send bytes to the proxy, print what came back (base64 would hide text).
PROBE = r"""
import socket, sys
host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection((host, port), timeout=5)
s.sendall(data)
s.settimeout(3)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
        if b"\r\n\r\n" in out and len(sys.argv) > 4:
            s.sendall(sys.argv[4].encode().decode("unicode_escape").encode("latin-1"))
            sys.argv = sys.argv[:4]
except OSError:
    pass
sys.stdout.write(out.decode("latin-1"))
"""


@pytest.fixture(scope="module")
def bottle(module_seat, tmp_path_factory, internet_egress, origin_session):
    folder = tmp_path_factory.mktemp("policy")
    manifest = write_manifest(folder, {"bottles": {"web": {"egress": {**internet_egress, "allow": ALLOW}}},
                                       "agents": {"surfer": {"bottle": "web"}}})
    with bottle_of(manifest, "surfer", backend=module_seat) as running:
        yield running


@pytest.fixture
def origin(origin_session):
    origin_session.reset()
    return origin_session


def curl(bottle, *args: str) -> tuple[str, str]:
    """curl through the proxy: the status (or CONNECT status) and X-Bottle-Decision of the answer, as text."""
    result = bottle.exec(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-D", "-",
                          "-w", "%{http_code} %{http_connect}", *args])
    out = result.stdout.decode("utf-8", "replace")
    decision = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.lower().startswith("x-bottle-decision:")), "")
    return out.strip().splitlines()[-1] if out.strip() else "", decision


def body(bottle, *args: str) -> str:
    result = bottle.exec(["curl", "-sS", "--max-time", "10", *args])
    return result.stdout.decode("utf-8", "replace")


def probe(bottle, data: str, then: str | None = None) -> str:
    """Raw bytes to the proxy port from inside the agent; what the proxy answered."""
    argv = ["python3", "-c", PROBE, bottle.plan.network.bundle_ip, str(bottle.plan.proxy.port), data]
    return bottle.exec(argv + ([then] if then else [])).stdout.decode("latin-1")


def curl_codes(bottle, cases: list[list[str]]) -> list[str]:
    """What :func:`curl` says of the status for each case (curl's arguments), all tried in one exec."""
    script = "; ".join(shlex.join(["curl", "-sS", "--max-time", "10", "-o", "/dev/null",
                                   "-w", "%{http_code} %{http_connect}\\n", *args]) + " 2>/dev/null" for args in cases)
    return bottle.exec(["sh", "-c", script]).stdout.decode("utf-8", "replace").splitlines()


#: What separates the answers of :func:`probes`.
ANSWER_END = "--- end of answer ---"


def probes(bottle, requests: list[str]) -> list[str]:
    """What the proxy answered each of ``requests`` (as :func:`probe` sends them), all sent in one exec."""
    head = ["python3", "-c", PROBE, bottle.plan.network.bundle_ip, str(bottle.plan.proxy.port)]
    script = "; ".join(f"{shlex.join([*head, data])}; echo; echo {shlex.quote(ANSWER_END)}" for data in requests)
    out = bottle.exec(["sh", "-c", script]).stdout.decode("latin-1")
    return [answer.lstrip("\n") for answer in out.split(ANSWER_END + "\n")[:-1]]


def bundle_output(bottle) -> str:
    """Everything the bundle has printed so far, read from its engine: its container's logs, its pod's on k8s."""
    if bottle.plan.backend == "k8s":
        from bottle_k8s.bundle import CONTAINER
        from bottle_k8s.cluster import core

        bundle = bottle.bundle
        return core().read_namespaced_pod_log(bundle.pod, bundle.namespace, container=CONTAINER,
                                              _preload_content=False).data.decode("utf-8", "replace")
    return bottle.client.api.logs(bottle.bundle_id).decode("utf-8", "replace")


def bundle_records(bottle) -> list[dict]:
    """The JSON records the bundle has printed so far (egress, git, ...)."""
    return [json.loads(line) for line in bundle_output(bottle).splitlines() if line.startswith("{")]


def decisions(bottle) -> list[dict]:
    """The egress records the bundle has printed so far."""
    return [record for record in bundle_records(bottle) if record.get("log") == "egress"]


def last_decision(bottle, **match) -> dict:
    found = [r for r in decisions(bottle) if all(r.get(k) == v for k, v in match.items())]
    assert found, f"no egress record with {match}: {decisions(bottle)[-5:]}"
    return found[-1]


# -- ports ----------------------------------------------------------------------------------------------------


def test_an_entry_without_a_port_allows_https_on_443_only(bottle, origin):
    assert curl(bottle, "https://allowed.test/")[0] == "200 200"
    assert curl(bottle, "http://allowed.test/") == ("403 000", "deny; rule=port-not-allowed")
    code, _ = curl(bottle, "https://allowed.test:8443/")
    assert code.endswith(" 403")  # the CONNECT is refused
    assert last_decision(bottle, host="allowed.test", port=8443)["rule"] == "port-not-allowed"
    assert [(r["scheme"], r["port"]) for r in origin.requests()] == [("https", 443)]


def test_plain_http_needs_an_http_entry_and_odd_ports_an_explicit_one(bottle, origin):
    assert curl(bottle, "http://plain.test/")[0] == "200 000"
    assert curl(bottle, "https://plain.test/")[0].endswith(" 403")
    assert last_decision(bottle, host="plain.test", port=443)["rule"] == "port-not-allowed"
    assert curl(bottle, "http://odd.test:8000/")[0] == "200 000"
    assert curl(bottle, "https://odd.test:8443/")[0] == "200 200"
    assert curl(bottle, "http://odd.test:8443/") == ("403 000", "deny; rule=protocol-not-allowed")
    seen = sorted((r["scheme"], r["port"]) for r in origin.requests())
    assert seen == [("http", 80), ("http", 8000), ("https", 8443)]


def test_a_tunnel_that_is_not_http_needs_its_port_listed(bottle, origin):
    # CONNECT to port 22 of a host allowed for HTTPS only: refused at the CONNECT.
    refused = probe(bottle, "CONNECT allowed.test:22 HTTP/1.1\\r\\nHost: allowed.test:22\\r\\n\\r\\n")
    assert refused.startswith("HTTP/1.1 403") and "rule=port-not-allowed" in refused
    # SSH-like bytes through an allowed HTTPS tunnel (port 443 of allowed.test): the tunnel is closed.
    raw = probe(bottle, "CONNECT allowed.test:443 HTTP/1.1\\r\\nHost: allowed.test:443\\r\\n\\r\\n",
                then="SSH-2.0-probe\\r\\n")
    assert raw.startswith("HTTP/1.1 200") and "SSH-2.0-bottle-test-origin" not in raw
    assert last_decision(bottle, method="TCP", host="allowed.test")["rule"] == "raw-tunnel"
    # The same to a host whose port 22 is listed: the protocol passes both ways.
    listed = probe(bottle, "CONNECT ssh.test:22 HTTP/1.1\\r\\nHost: ssh.test:22\\r\\n\\r\\n", then="SSH-2.0-probe\\r\\n")
    assert "SSH-2.0-bottle-test-origin" in listed and "echo SSH-2.0-probe" in listed
    assert [(r["scheme"], r["port"]) for r in origin.requests()] == [("tcp", 22)]


def test_a_listed_raw_tunnel_is_read_like_a_request_body(bottle, origin):
    token = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"
    connect = "CONNECT ssh.test:22 HTTP/1.1\\r\\nHost: ssh.test:22\\r\\n\\r\\n"
    fine = probe(bottle, connect, then="SSH-2.0-probe\\r\\n")
    assert "echo SSH-2.0-probe" in fine
    # A credential through the same listed tunnel: never sent, the tunnel closed, the refusal logged with its rule.
    carried = probe(bottle, connect, then=f"note {token}\\r\\n")
    assert carried.startswith("HTTP/1.1 200") and "echo note" not in carried
    record = last_decision(bottle, method="TCP", host="ssh.test")
    assert (record["decision"], record["rule"], record["stage"]) == ("deny", "credential", "inspect")
    sent = [r.get("data", "") for r in origin.requests() if r["scheme"] == "tcp"]
    assert "SSH-2.0-probe\r\n" in sent and not any(token in line for line in sent)


#: Through a tunnel to allowed.test, over TLS: GET /upgrade with the headers in argv[1] (\\r\\n-separated), then the
#: line in argv[2] once an answer's head has come; prints everything the proxy sent back.
UPGRADE_CLIENT = script(r"""
sock = tunnel("allowed.test", 443, "http/1.1", timeout=5)
sock.sendall(b"GET /upgrade HTTP/1.1\r\nHost: allowed.test\r\n" + sys.argv[1].encode().decode("unicode_escape").encode()
             + b"\r\n")
sys.stdout.write(read_all(sock, then=sys.argv[2].encode() + b"\r\n").decode("latin-1"))
""")


def test_a_switch_to_a_protocol_that_is_not_websocket_is_refused(bottle, origin):
    token = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"
    # Asked for (Upgrade: x-raw) and unasked (the server switches anyway): neither turns the connection into a
    # tunnel nobody reads.
    for upgrade in ("Upgrade: x-raw\\r\\nConnection: Upgrade\\r\\n", ""):
        answer = bottle.exec(["python3", "-c", UPGRADE_CLIENT, upgrade, f"note {token}"]).stdout.decode("latin-1")
        assert answer.startswith("HTTP/1.1 502") and "echo" not in answer, answer
        record = last_decision(bottle, host="allowed.test", path="/upgrade")
        assert (record["decision"], record["rule"]) == ("deny", "upgrade"), (answer, record)
    # Over plain HTTP the egress stage (squid) already answers a switch with its own 502.
    answer = probe(bottle, "GET http://plain.test/upgrade HTTP/1.1\\r\\nHost: plain.test\\r\\n"
                           "Upgrade: x-raw\\r\\nConnection: Upgrade\\r\\n\\r\\n", then=f"note {token}\\r\\n")
    assert answer.startswith("HTTP/1.1 502") and "echo" not in answer, answer
    assert not [r for r in origin.requests() if r["scheme"] == "upgraded"]


# -- side doors -----------------------------------------------------------------------------------------------


def test_absolute_form_requests_on_a_plain_connection_are_judged_by_url_and_host(bottle, origin):
    for target in ("https://denied.test/", "http://denied.test/", "http://allowed.test:22/"):
        answer = probe(bottle, f"GET {target} HTTP/1.1\\r\\nHost: {target.split('/')[2]}\\r\\n\\r\\n")
        assert answer.startswith("HTTP/1.1 403") and "X-Bottle-Decision: deny; rule=" in answer, (target, answer)
    mismatch = probe(bottle, "GET http://plain.test/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n")
    assert mismatch.startswith("HTTP/1.1 403") and "rule=host-mismatch" in mismatch
    assert origin.requests() == []
    allowed = probe(bottle, "GET http://plain.test/x?token=abc HTTP/1.1\\r\\nHost: plain.test\\r\\n"
                            "Connection: close\\r\\n\\r\\n")
    assert allowed.startswith("HTTP/1.1 200") and "hello from plain.test" in allowed
    record = last_decision(bottle, host="plain.test", decision="allow")
    assert record["path"] == "/x" and record["status"] == 200 and record["bytes_in"] > 0  # no query logged


def test_a_request_to_the_proxy_not_naming_its_whole_url_is_refused(bottle, origin):
    # Origin-form and asterisk-form on the proxy's own connection: relayed as they were, the egress stage took
    # them as its own (its cache manager listed what the bundle resolved; its pages named the bundle's host).
    forms = ["GET /squid-internal-mgr/menu HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
             "GET /squid-internal-mgr/ipcache HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
             "GET / HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n",
             "OPTIONS * HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n"]
    for form, answer in zip(forms, probes(bottle, forms)):
        assert answer.startswith("HTTP/1.1 403") and "rule=request-form" in answer, (form, answer)
        assert "Cache Manager" not in answer and "squid" not in answer.lower(), answer
    assert last_decision(bottle, rule="request-form")["decision"] == "deny"
    # The cache manager by a whole URL: the egress stage serves it to no one, in its own fixed words.
    whole = probe(bottle, "GET http://plain.test/squid-internal-mgr/menu HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n")
    assert whole.startswith("HTTP/1.1 403") and "Cache Manager" not in whole
    assert "bottle: the egress stage did not relay this request (ERR_ACCESS_DENIED)" in whole
    assert origin.requests() == []
    # The benign forms: a whole URL, and origin-form inside a tunnel, reach the origin.
    whole, tunnelled = probes(bottle, [
        "GET http://plain.test/a HTTP/1.1\\r\\nHost: plain.test\\r\\nConnection: close\\r\\n\\r\\n",
        "CONNECT plain.test:80 HTTP/1.1\\r\\nHost: plain.test:80\\r\\n\\r\\n"
        "GET /b HTTP/1.1\\r\\nHost: plain.test\\r\\nConnection: close\\r\\n\\r\\n"])
    assert whole.startswith("HTTP/1.1 200") and "hello from plain.test" in whole
    assert "200 Connection established" in tunnelled and "hello from plain.test" in tunnelled
    assert sorted(r["path"] for r in origin.requests()) == ["/a", "/b"]


def test_the_egress_stages_own_pages_name_no_host_of_the_bundle(bottle, origin):
    hostname = bottle.bundle.exec(["cat", "/proc/sys/kernel/hostname"]).stdout.decode().strip()
    assert hostname
    # Past squid's longest URL (8 KiB) and within the proxy's bound on a head (64 KiB): squid's own page.
    too_long = probe(bottle, f"GET http://plain.test/{'a' * 10000} HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n")
    assert too_long.startswith("HTTP/1.1 400 "), too_long
    assert too_long.rstrip().endswith("bottle: the egress stage did not relay this request (ERR_INVALID_URL)"), too_long
    assert hostname not in too_long and "Generated" not in too_long
    assert origin.requests() == []


def test_tls_to_the_proxy_port_itself_is_refused(bottle, origin):
    proxy = f"https://{bottle.plan.network.bundle_ip}:{bottle.plan.proxy.port}"
    result = bottle.exec(["curl", "-sS", "--max-time", "10", "--proxy", proxy, "--proxy-insecure",
                          "https://allowed.test/"])
    assert result.returncode != 0 and b"hello" not in result.stdout
    hello = bottle.exec(["sh", "-c", f"echo | openssl s_client -connect {bottle.plan.network.bundle_ip}:"
                                     f"{bottle.plan.proxy.port} -servername denied.test 2>&1"])
    assert b"BEGIN CERTIFICATE" not in hello.stdout  # no handshake at all
    assert last_decision(bottle, method="TLS", host="denied.test")["rule"] == "tls-to-proxy"
    assert origin.requests() == []


def test_domain_fronting_through_an_allowed_tunnel_is_refused(bottle, origin):
    # CONNECT allowed.test, then a Host header naming another host.
    assert curl(bottle, "-H", "Host: denied.test", "https://allowed.test/") == ("403 200", "deny; rule=host-mismatch")
    # CONNECT allowed.test, then TLS whose server name is another host (the Host header agreeing with the CONNECT).
    fronted = curl(bottle, "--connect-to", "denied.test:443:allowed.test:443", "-H", "Host: allowed.test",
                   "https://denied.test/")
    assert fronted == ("403 200", "deny; rule=sni-mismatch")
    # Plain HTTP through a tunnel: the same.
    plain = probe(bottle, "CONNECT plain.test:80 HTTP/1.1\\r\\nHost: plain.test:80\\r\\n\\r\\n",
                  then="GET / HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n")
    assert "rule=host-mismatch" in plain
    assert origin.requests() == []


def test_the_onboarding_app_answers_nowhere(bottle, origin):
    assert curl(bottle, "http://mitm.it/") == ("403 000", "deny; rule=not-allowed")
    assert curl(bottle, "https://mitm.it/")[0].endswith(" 403")
    inside = body(bottle, "-H", "Host: mitm.it", "https://allowed.test/")
    assert "mitmproxy" not in inside.lower() and "host-mismatch" in inside


def test_names_that_look_like_encoded_data_are_refused_under_a_wildcard(bottle, origin):
    assert curl(bottle, "https://www.wild.test/")[0] == "200 200"
    assert curl(bottle, f"https://{ENCODED}/")[0].endswith(" 403")
    assert last_decision(bottle, host=ENCODED)["rule"] == "encoded-label"
    assert [r["headers"]["host"] for r in origin.requests()] == ["www.wild.test"]


# -- a scan of what is near the bundle -----------------------------------------------------------------------


class _Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def host_addresses() -> list[str]:
    """This machine's IPv4 addresses (the engine's bridges' gateways among them), loopback left out."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return sorted({line.split()[3].split("/")[0] for line in out.splitlines()} - {"127.0.0.1"})


def neighbours(bottle, internet, port: int) -> list[tuple[str, int]]:
    """What is near the bundle, besides this machine's addresses: the stand-in internet's gateway (docker's bridge on
    this machine); on k8s the cluster's own, too: its node, the API server's service address, the cluster DNS,
    and the agent's pod (the bundle's one peer)."""
    near = [(internet.network.attrs["IPAM"]["Config"][0]["Gateway"], port)]
    if bottle.plan.backend == "k8s":
        from bottle_k8s.cluster import core

        api = core()
        nodes = [address.address for node in api.list_node().items for address in node.status.addresses
                 if address.type == "InternalIP"]
        near += [(node, port) for node in nodes] + [(node, 10250) for node in nodes]  # 10250: the kubelet
        near.append((api.read_namespaced_service("kubernetes", "default").spec.cluster_ip, 443))
        near += [(service.spec.cluster_ip, 53) for service in api.list_namespaced_service("kube-system").items
                 if service.spec.cluster_ip not in (None, "None") and 53 in [p.port for p in service.spec.ports or []]]
        near.append((api.read_namespaced_pod(bottle.pod, bottle.namespace).status.pod_ip, 22))
    return near


def test_a_scan_through_the_proxy_of_what_is_near_the_bundle_gets_nothing(bottle, origin, internet):
    hits = []

    class Record(socketserver.BaseRequestHandler):
        def handle(self):
            hits.append(self.client_address)

    # A service on every address of this machine, and one on the bundle's own loopback: both must stay unreached.
    listener = _Listener(("0.0.0.0", 0), Record)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    port = listener.server_address[1]
    bottle.exec_bundle(["sh", "-c", "python3 -m http.server --bind 127.0.0.1 9999 >/dev/null 2>&1 &"], user="bundle")
    try:
        targets = [("127.0.0.1", 9999), ("127.0.0.1", bottle.plan.proxy.port), ("localhost", 9999),
                   ("127.0.0.11", 53), *neighbours(bottle, internet, port),
                   *((address, port) for address in host_addresses())]
        # Every way in one exec (an exec is what costs, on k8s most): plain, as the proxy itself, over TLS, raw.
        cases = [args for host, target_port in targets
                 for args in ([f"http://{host}:{target_port}/"], ["-p", f"http://{host}:{target_port}/"],
                              [f"https://{host}:{target_port}/"])]
        for args, code in zip(cases, curl_codes(bottle, cases), strict=True):
            assert "200" not in code.split(), (args, code)
        # (Connection: close, so each answer ends when the proxy has said it, not when the client gives up.)
        raw = probes(bottle, [f"GET http://{host}:{target_port}/ HTTP/1.1\\r\\nHost: {host}:{target_port}\\r\\n"
                              "Connection: close\\r\\n\\r\\n" for host, target_port in targets])
        for (host, target_port), answer in zip(targets, raw, strict=True):
            assert answer.startswith("HTTP/1.1 403"), (host, target_port, answer)
        records = decisions(bottle)
        for host, _ in targets:
            rules = {r["rule"] for r in records if r.get("host") == host}
            assert rules == {"not-allowed"}, (host, rules)
        # The loopback service was there to be found (listening: the packet filter lets no user of the bundle
        # connect to it, which is the point, so its socket is read from the kernel's table instead).
        assert listening(bottle, "127.0.0.1:9999")
    finally:
        listener.shutdown()
        listener.server_close()
    assert hits == []
    assert origin.requests() == []


def test_a_refused_request_never_reaches_the_origin_or_the_network(bottle, origin):
    before = len(decisions(bottle))
    for args in (["http://denied.test/"], ["https://denied.test/"], ["-H", "Host: denied.test", "https://allowed.test/"],
                 [f"http://{ENCODED}/"]):
        curl(bottle, *args)
    records = decisions(bottle)[before:]
    assert [r["decision"] for r in records] == ["deny", "deny", "allow", "deny", "deny"]  # the CONNECT allowed
    assert all(r["bytes_out"] == 0 and r["bytes_in"] == 0 for r in records)
    assert origin.requests() == []


def test_every_record_has_the_documented_fields(bottle):
    fields = {"id", "time", "method", "host", "port", "path", "status", "bytes_in", "bytes_out", "decision", "rule"}
    records = decisions(bottle)
    assert records and all(fields <= r.keys() for r in records)
    assert all(r["rule"] for r in records)
    assert len({r["id"] for r in records}) == len(records)  # one record per decision



# -- requests a hop of the bundle would answer itself -----------------------------------------------------------

#: A request written raw inside a TLS tunnel to allowed.test (argv: the request, with \r\n escapes); prints the answer.
IN_TUNNEL = script(r'''
sock = tunnel("allowed.test", 443, "http/1.1")
sock.sendall(sys.argv[1].encode().decode("unicode_escape").encode("latin-1"))
sock.settimeout(5)
sys.stdout.write(read_all(sock, until=b"bottle: ").decode("latin-1"))
''')


def in_tunnel(bottle, request: str) -> str:
    return bottle.exec(["python3", "-c", IN_TUNNEL, request]).stdout.decode("latin-1")


def test_no_hop_of_the_bundle_answers_in_the_origins_place(bottle, origin):
    # TRACE (the request echoed back by whichever hop answers it), plain and inside a tunnel, and a CONNECT
    # inside a tunnel: each refused by the proxy, with its rule, and nothing reaches the origin.
    assert curl(bottle, "-X", "TRACE", "-H", "X-Mine: abc", "http://plain.test/") == ("403 000", "deny; rule=method")
    assert curl(bottle, "-X", "TRACE", "https://allowed.test/") == ("403 200", "deny; rule=method")
    nested = in_tunnel(bottle, "CONNECT plain.test:80 HTTP/1.1\\r\\nHost: plain.test:80\\r\\n\\r\\n")
    assert nested.startswith("HTTP/1.1 403 ") and "X-Bottle-Decision: deny; rule=method" in nested, nested
    assert origin.requests() == []
    assert last_decision(bottle, method="CONNECT", host="plain.test")["rule"] == "method"
    # Max-Forwards 0 asks the first proxy on the way to answer OPTIONS itself: the egress stage did. It is taken
    # out, so the origin answers, plain and inside a tunnel.
    for url in ("http://plain.test/", "https://allowed.test/"):
        answered = body(bottle, "-X", "OPTIONS", "-H", "Max-Forwards: 0", url)
        assert answered.startswith("hello from "), answered
    # The benign counterpart: a CORS preflight reaches the origin as sent.
    preflight = body(bottle, "-X", "OPTIONS", "-H", "Origin: https://app.test", "-H",
                     "Access-Control-Request-Method: PUT", "https://allowed.test/")
    assert preflight.startswith("hello from allowed.test"), preflight
    received = origin.requests()
    assert [r["method"] for r in received] == ["OPTIONS"] * 3
    assert not any("max-forwards" in r["headers"] for r in received)
    assert received[-1]["headers"]["access-control-request-method"] == "PUT"


# -- forms tried from inside that reach nothing -------------------------------------------------------------------


def test_requests_naming_the_bundles_own_daemons_or_ipv6_literals_are_refused(bottle, origin):
    ip = bottle.plan.network.bundle_ip
    targets = {f"{ip}:9418": "/x.git/info/refs", f"{ip}:9090": "/hook", "bottle-egress:3128": "/squid-internal-mgr/info",
               "bottle-egress": "/", "localhost:3128": "/", "[::1]:3128": "/", "[::ffff:127.0.0.1]:3128": "/",
               "[fe80::1%25eth0]": "/"}
    requests = [f"GET http://{target}{path} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n" for target, path in targets.items()]
    requests += [f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n"
                 for target in (f"{ip}:9418", f"{ip}:9090", "[::1]:9090", "bottle-egress:3128")]
    answers = probes(bottle, requests)
    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers):
        assert answer.startswith("HTTP/1.1 403 ") and "rule=not-allowed" in answer, (request, answer)
    assert origin.requests() == []


def test_limits_and_switches_are_answered_cleanly(bottle, origin):
    too_long_header = probe(bottle, f"GET http://plain.test/ HTTP/1.1\\r\\nHost: plain.test\\r\\nX-Long: {'a' * 70000}"
                                    "\\r\\n\\r\\n")
    switched, h2c = probes(bottle, [
        "GET http://plain.test/ws HTTP/1.1\\r\\nHost: plain.test\\r\\nConnection: Upgrade\\r\\nUpgrade: websocket\\r\\n"
        "Sec-WebSocket-Version: 13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n\\r\\n",
        "GET http://plain.test/ HTTP/1.1\\r\\nHost: plain.test\\r\\nConnection: Upgrade, HTTP2-Settings\\r\\n"
        "Upgrade: h2c\\r\\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\\r\\n\\r\\n"])
    assert too_long_header.startswith("HTTP/1.1 431 ") and "rule=head-limit" in too_long_header, too_long_header
    assert switched.startswith("HTTP/1.1 403 ") and "rule=websocket" in switched, switched
    # h2c asked for: the origin's answer is an ordinary one; an origin switching anyway is refused (rule upgrade).
    assert h2c.startswith("HTTP/1.1 200 ") and "hello from plain.test" in h2c, h2c
    upgraded = in_tunnel(bottle, "GET /upgrade HTTP/1.1\\r\\nHost: allowed.test\\r\\nConnection: Upgrade\\r\\n"
                                 "Upgrade: h2c\\r\\n\\r\\n")
    assert upgraded.startswith("HTTP/1.1 502 ") and "rule=upgrade" in upgraded, upgraded
    assert [r["path"] for r in origin.requests()] == ["/", "/upgrade"]


#: A request head with a ``Cookie`` of argv[2] bytes, in a TLS tunnel to allowed.test (argv[1] ``tunnel``) or as a
#: plain absolute-form request to plain.test (``plain``): its first 96 KiB are sent, the answer read, then the rest
#: tried. Prints the answer and, past a blank line, whether the rest could be sent.
LONG_HEAD = script(r'''
where, size = sys.argv[1], int(sys.argv[2])
if where == "tunnel":
    sock, start = tunnel("allowed.test", 443, "http/1.1"), b"GET / HTTP/1.1\r\nHost: allowed.test\r\n"
else:
    proxy = urlsplit(os.environ["HTTP_PROXY"])
    sock = socket.create_connection((proxy.hostname, proxy.port), timeout=15)
    start = b"GET http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\n"
cookie = b"; ".join(b"pref%d=%s" % (i, b"v" * 90) for i in range(size // 100))[:size]
head = start + b"Cookie: " + cookie + b"\r\nConnection: close\r\n\r\n"
sock.sendall(head[:96 * 1024])
sock.settimeout(15)
answer = read_all(sock, until=b"bottle: " if size > 96 * 1024 else b"hello from")
rest = "nothing more"
if len(head) > 96 * 1024:
    try:
        sock.sendall(head[96 * 1024:])
        rest = "the rest sent"
    except OSError:
        rest = "the rest refused"
sys.stdout.write(answer.decode("latin-1") + "\n\n" + rest)
''')


def cookie_of(size: int) -> bytes:
    """The cookie :data:`LONG_HEAD` sends for ``size``."""
    return b"; ".join(b"pref%d=%s" % (i, b"v" * 90) for i in range(size // 100))[:size]


def long_head(bottle, where: str, size: int) -> tuple[str, str]:
    """What the proxy answered a request head with a cookie of ``size`` bytes (see :data:`LONG_HEAD`), and what
    became of the rest of the head."""
    out = bottle.exec(["python3", "-c", LONG_HEAD, where, str(size)]).stdout.decode("latin-1")
    answer, _, rest = out.rpartition("\n\n")
    return answer, rest


def test_a_request_head_of_megabytes_is_refused_in_a_tunnel_and_outside_one(bottle, origin):
    # A head of 4 MB: the proxy answers once 64 KiB came without the blank line ending it, and reads no more.
    for where, host in (("tunnel", "allowed.test"), ("plain", "")):
        answer, rest = long_head(bottle, where, 4 * 1024 * 1024)
        assert answer.startswith("HTTP/1.1 431 ") and "X-Bottle-Decision: deny; rule=head-limit" in answer, answer
        assert "bottle: refused (rule head-limit): the request's head" in answer, answer
        assert rest == "the rest refused", (where, rest)
        record = last_decision(bottle, rule="head-limit", host=host)
        assert record["decision"] == "deny" and record["status"] == 431 and record["method"] == "GET", record
    assert origin.requests() == []


def test_ordinary_large_heads_pass_both_ways(bottle, origin):
    # 16 KiB of cookies, in a tunnel and outside one: relayed whole.
    for where, host in (("tunnel", "allowed.test"), ("plain", "plain.test")):
        answer, rest = long_head(bottle, where, 16 * 1024)
        assert answer.startswith("HTTP/1.1 200 ") and f"hello from {host}" in answer, answer
    cookie = "sha256:" + hashlib.sha256(cookie_of(16 * 1024)).hexdigest()
    assert [r["headers"]["cookie"] for r in origin.requests()] == [cookie, cookie]
    # A response head of 16 KiB comes back whole.
    header = bottle.exec(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-D", "-",
                          "https://allowed.test/bighead?size=16384"]).stdout.decode("latin-1")
    assert header.startswith("HTTP/1.1 200 ") and "x-big: " + "b" * 16384 + "\r\n" in header.lower(), header[:300]


def test_a_response_head_of_megabytes_gets_the_agent_a_fixed_page(bottle, origin):
    # An origin answering with a head of 4 MB over HTTPS: the proxy stops reading it at 64 KiB, ends the server's
    # connection, and the agent gets the proxy's fixed 502 page; the egress log names the rule.
    answer = bottle.exec(["curl", "-sS", "--max-time", "20", "-D", "-",
                          "https://allowed.test/bighead?size=4000000"]).stdout.decode("latin-1")
    assert re.search(r"^HTTP/[\d.]+ 502 ", answer, re.M) and "b" * 1000 not in answer, answer[:500]
    assert "bottle: the server's answer could not be relayed (HTTP 502)" in answer, answer[:500]
    assert "server: bottle\r\n" in answer.lower() and "mitmproxy" not in answer.lower(), answer[:500]  # no release
    record = last_decision(bottle, rule="head-limit", path="/bighead")
    assert record["decision"] == "deny" and record["status"] == 502 and record["host"] == "allowed.test", record
    # Over plain HTTP the egress stage reads the answer first, and its own bound (64 KiB) answers: its fixed page.
    answer = bottle.exec(["curl", "-sS", "--max-time", "20", "-D", "-",
                          "http://plain.test/bighead?size=4000000"]).stdout.decode("latin-1")
    assert answer.startswith("HTTP/1.1 502 ") and "b" * 1000 not in answer, answer[:500]
    assert answer.rstrip().endswith("bottle: the egress stage did not relay this request (ERR_TOO_BIG)"), answer
    assert [r["path"] for r in origin.requests()] == ["/bighead?size=4000000"] * 2


# -- request smuggling ------------------------------------------------------------------------------------------

#: Header bytes a server on the way could read as a line's end, each hiding a Host the policy never judged. mitmproxy
#: relayed each as it came; Python's own header parser (the test origin's) took the bare CR as a line's end.
HIDDEN_HOST = {"a bare CR": "X-A: a\\rHost: denied.test", "a NUL": "X-A: a\\x00Host: denied.test",
               "a folded line": "X-A: a\\r\\n Host: denied.test"}
#: Framing a server could read otherwise than the proxy: refused by mitmproxy itself (its own 400 page).
MIXED_FRAMING = {
    "Content-Length with Transfer-Encoding": "Content-Length: 5\\r\\nTransfer-Encoding: chunked",
    "two Content-Lengths": "Content-Length: 5\\r\\nContent-Length: 6",
    "chunked, then identity": "Transfer-Encoding: chunked, identity",
    "a space before the colon": "Transfer-Encoding : chunked",
}


def test_header_bytes_a_server_could_read_as_a_line_end_are_refused(bottle, origin):
    for name, header in HIDDEN_HOST.items():
        answer = in_tunnel(bottle, f"GET /echo HTTP/1.1\\r\\nHost: allowed.test\\r\\n{header}\\r\\n"
                                   "Connection: close\\r\\n\\r\\n")
        assert answer.startswith("HTTP/1.1 400 ") and "X-Bottle-Decision: deny; rule=header-syntax" in answer, \
            (name, answer)
    plain, nul_target = probes(bottle, [
        "GET http://plain.test/echo HTTP/1.1\\r\\nHost: plain.test\\r\\nX-A: a\\rHost: denied.test\\r\\n\\r\\n",
        "GET http://plain.test/echo\\x00x HTTP/1.1\\r\\nHost: plain.test\\r\\n\\r\\n"])
    for answer in (plain, nul_target):
        assert answer.startswith("HTTP/1.1 400 ") and "rule=header-syntax" in answer, answer
    two_hosts = in_tunnel(bottle, "GET /echo HTTP/1.1\\r\\nHost: allowed.test\\r\\nHost: denied.test\\r\\n\\r\\n")
    assert two_hosts.startswith("HTTP/1.1 403 ") and "rule=host-mismatch" in two_hosts, two_hosts
    for name, framing in MIXED_FRAMING.items():
        answer = in_tunnel(bottle, f"POST /echo HTTP/1.1\\r\\nHost: allowed.test\\r\\n{framing}\\r\\n"
                                   "Connection: close\\r\\n\\r\\n0\\r\\n\\r\\n")
        assert answer.startswith("HTTP/1.1 400 ") and "bottle: the proxy could not read this request" in answer, \
            (name, answer)
        assert "mitmproxy" not in answer.lower(), (name, answer)
    assert origin.requests() == []
    record = last_decision(bottle, rule="header-syntax", host="plain.test")
    assert record["decision"] == "deny" and record["status"] == 400 and record["bytes_out"] == 0, record


#: A second request, to a host off the list, carried as a body: any hop that lost the body's framing would relay it.
SMUGGLED = "GET http://denied.test/smuggled HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n"


def test_framing_headers_named_hop_by_hop_still_frame_the_body(bottle, origin):
    # Connection naming Content-Length or Transfer-Encoding asks each hop to drop it: a hop that did would read
    # the body as the next request. The egress stage (plain HTTP) and the origin get the body as a body.
    size = len(SMUGGLED.encode().decode("unicode_escape"))
    chunked = f"{size:x}\\r\\n{SMUGGLED}\\r\\n0\\r\\n\\r\\n"
    answers = probes(bottle, [
        f"POST http://plain.test/a HTTP/1.1\\r\\nHost: plain.test\\r\\nContent-Length: {size}\\r\\n"
        f"Connection: Content-Length\\r\\n\\r\\n{SMUGGLED}",
        "POST http://plain.test/b HTTP/1.1\\r\\nHost: plain.test\\r\\nTransfer-Encoding: chunked\\r\\n"
        f"Connection: Transfer-Encoding\\r\\n\\r\\n{chunked}"])
    answers.append(in_tunnel(bottle, f"POST /c HTTP/1.1\\r\\nHost: allowed.test\\r\\nContent-Length: {size}\\r\\n"
                                     f"Connection: Content-Length\\r\\n\\r\\n{SMUGGLED}"))
    for answer in answers:
        assert answer.startswith("HTTP/1.1 200 ") and f"({size} bytes received)" in answer, answer
    received = origin.requests()
    assert [r["path"] for r in received] == ["/a", "/b", "/c"], received
    assert all(r["body"].startswith("GET http://denied.test/smuggled ") for r in received), received


def test_headers_with_tabs_utf8_and_bare_line_feeds_still_pass(bottle, origin):
    answer = in_tunnel(bottle, "GET /echo HTTP/1.1\\nHost: allowed.test\\nX-Note: a\\tb \u00fcber 'q' (c)\\n"
                               "Connection: close\\n\\n")
    assert answer.startswith("HTTP/1.1 200 "), answer
    plain = probe(bottle, "GET http://plain.test/echo HTTP/1.1\\r\\nHost: plain.test\\r\\nX-Note: a\\tb\\r\\n\\r\\n")
    assert plain.startswith("HTTP/1.1 200 "), plain
    notes = [r["headers"]["x-note"] for r in origin.requests()]
    assert notes == ["a\tb \u00c3\u00bcber 'q' (c)", "a\tb"], notes  # the UTF-8 bytes, read as Latin-1


#: Sends a request's head with ``Expect: 100-continue``, and its body once the proxy says 100; prints every answer.
EXPECTING = r'''
import os, socket, sys
from urllib.parse import urlsplit
proxy = urlsplit(os.environ["HTTP_PROXY"])
body = sys.argv[1].encode()
sock = socket.create_connection((proxy.hostname, proxy.port), timeout=10)
sock.sendall(b"POST http://plain.test/ HTTP/1.1\r\nHost: plain.test\r\nExpect: 100-continue\r\n"
             b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
out = b""
while b"\r\n\r\n" not in out:
    out += sock.recv(1)
if b" 100 " in out.split(b"\r\n")[0]:
    sock.sendall(body)
    while True:
        chunk = sock.recv(65536)
        out += chunk
        if not chunk or b"bottle: " in out or b"hello from" in out:
            break
sys.stdout.write(out.decode("latin-1"))
'''


def test_a_body_sent_after_100_continue_is_read_like_any(bottle, origin):
    token = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"
    refused = bottle.exec(["python3", "-c", EXPECTING, f"note {token}"]).stdout.decode("latin-1")
    assert "HTTP/1.1 100 " in refused and "HTTP/1.1 403 " in refused and "rule=credential" in refused, refused
    assert origin.requests() == []
    passed = bottle.exec(["python3", "-c", EXPECTING, "an ordinary note"]).stdout.decode("latin-1")
    assert "hello from plain.test (16 bytes received)" in passed, passed
    assert [r["body"] for r in origin.requests()] == ["an ordinary note"]
