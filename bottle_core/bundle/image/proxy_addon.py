"""mitmproxy addon: every request the agent makes is judged on its own, one JSON line per decision.

Settings come from the bundle's configuration file (``BOTTLE_BUNDLE_CONFIG``,
see ``bottle_core.bundle.contract``); the policy itself is ``egress_policy``.
Every way a client can speak to the proxy is judged, nothing is assumed:

* a CONNECT, by the host and port of its target (the tunnel's content is
  judged again once seen);
* every HTTP request, inside a tunnel or not, by where mitmproxy would send
  it (the tunnel's target, or the URL of an absolute-form request; outside a
  tunnel only absolute-form is taken, see :func:`proxy_request_form`) and the
  protocol (HTTPS or plain HTTP); its ``Host`` header (and an absolute-form
  target inside a tunnel) must name that same host and port, and the TLS SNI
  the same host (no domain fronting);
* a tunnel that is not HTTP(S), by its target with the protocol ``raw``:
  allowed only on a port listed explicitly;
* TLS spoken to the proxy port itself is refused (the connection is closed);
* no hop of the bundle answers in an origin's place: TRACE, and a CONNECT
  inside a tunnel, are refused, and ``Max-Forwards`` is taken out of every
  request;
* a head's bytes: a header, trailer or target holding a byte a server could
  read as a line's end is refused (``header_syntax``, rule ``header-syntax``);
  an HTTP/1 head past 64 KiB, the agent's or a server's, is not read further
  (``head_limit``, rule ``head-limit``);
* last, every outbound connection mitmproxy is about to open is judged again
  (``server_connect``; through the egress stage, ``http_connect_upstream``:
  the tunnel asked of it), so a path missed above still opens nothing.

A refusal is a 403 with ``X-Bottle-Decision: deny; rule=RULE`` and a short body
naming the rule, sent before any connection is opened or any name resolved
(the proxy runs with ``connection_strategy=lazy``). Each decision is one JSON
line on stdout with ``"log": "egress"``; the host files it (see
``bottle_core.bundle.logs``). Allowed requests are recorded when their
response is complete, refusals when refused, a CONNECT once.

The agent holds only placeholders for secrets (the configuration names a
JSON file holding a list of name, placeholder, value and hosts). A request
carrying a placeholder to one of that secret's hosts goes out with the real
value in its place; to any other host it is refused (rule ``secret-host``).

In a rehearsal (``--model-script``) every request for the model host goes to
the scripted model server on the bundle's loopback instead: the model host is
never contacted, and its egress records carry the rule ``model-script``.

Responses are scrubbed of real secret values and read for prompt injection
(``response_inspection``); large and open-ended ones are relayed as they
arrive through the same checks (``response_stream``). mitmproxy's own error
pages are replaced by fixed text (``error_pages``), so nothing a server sent
reaches the agent unscrubbed by way of an error.

WebSocket connections are refused unless the bottle lists their host, and
read both ways when it does (``websockets``). Requests to the model host that
declare server tools making the provider fetch what the request names are
refused unless the bottle allows them (``model_tools``, rule
``model-server-tool``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from urllib.parse import urlsplit

from . import error_pages, head_limit, header_syntax, model_tools, websockets
from .egress_policy import HTTP, HTTPS, RAW, TUNNEL, Decision, Policy, normal_host
from .hosts import bound
from .inspection import Inspector
from .response_inspection import Scrubber, find_injection, read_as_text
from .response_stream import ResponseStream, streamed
from mitmproxy import connection, ctx, http, tcp
from mitmproxy.net.http import http1
from mitmproxy.net.server_spec import parse_with_mode
from mitmproxy.net.tls import is_tls_record_magic
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy import layers
from mitmproxy.proxy.layers import modes
from mitmproxy.proxy.layers.tcp import TcpEndHook
from mitmproxy.proxy.layers.tls import parse_client_hello

DECISION_HEADER = "X-Bottle-Decision"
LOGGED = "bottle.logged"
ALLOWED_BY = "bottle.decision"
SWAPPED = "bottle.swapped"
PATH = "bottle.path"
GATE_RULE = "git-gate-upstream"
TARGET = "bottle.target"  # where the agent aimed a request that bottle re-aimed (the model script)
SCHEME = "bottle.scheme"  # and with which scheme (the re-aimed request goes over plain HTTP inside the bundle)
#: Set on a flow answered inside the bundle (the model script): the egress stage is not asked about its host.
IN_BUNDLE = "bottle.in_bundle"
BYTES_IN = "bottle.bytes_in"  # a streamed body's size (mitmproxy keeps no copy of it)
SCRUBBED = "bottle.scrubbed"
WARNING = "bottle.warning"
#: The egress stage's question header (``egress_stage.PREFLIGHT_HEADER``): a CONNECT carrying it never connects.
PREFLIGHT_HEADER = "X-Bottle-Preflight"
#: How an HTTP request starts (a method and a space), or could still start once more bytes come.
HTTP_START = re.compile(rb"[A-Z]{1,16}( |$)")
#: Set on a WebSocket flow once a message was refused: it carries nothing more.
WS_ENDED = "bottle.ws_ended"
#: The end of what the agent sent over a WebSocket, read again with its next message (a value split in two).
WS_TAIL = "bottle.ws_tail"
#: The end of what the server sent over a WebSocket, as sent: a real value it begins may end in the next message.
WS_SERVER_TAIL = "bottle.ws_server_tail"
MODEL_TOOL_RULE = "model-server-tool"

error_pages.install()


# -- records -------------------------------------------------------------------


#: Replaces real secret values (in every form it knows) by their placeholders; set once the secrets are read.
RECORD_SCRUBBER: Scrubber | None = None


def emit(record: dict) -> None:
    """One decision, as a JSON line on stdout: the host files it in the bottle's egress log.

    No real secret value is ever written, wherever it appeared (a path, a host label).
    """
    line = json.dumps({"log": "egress", **record}).encode()
    if RECORD_SCRUBBER is not None:
        line = RECORD_SCRUBBER.scrub(line)[0]
    sys.stdout.write(line.decode("utf-8", "replace") + "\n")
    sys.stdout.flush()


def decision_record(*, id: str, method: str, host: str, port: int | None, path: str, decision: Decision,
                    status: int | None = None, bytes_in: int = 0, bytes_out: int = 0, **extra) -> dict:
    """The fields every egress record has (bytes_out: request body sent out; bytes_in: response body back)."""
    return {"id": id, "time": time.time(), "method": method, "host": host, "port": port, "path": path,
            "status": status, "bytes_in": bytes_in, "bytes_out": bytes_out,
            "decision": "allow" if decision.allowed else "deny", "rule": decision.rule, **extra}


def log_flow(flow: http.HTTPFlow, decision: Decision, status: int | None = None, **extra) -> None:
    """Record ``flow``'s decision once (later hooks of the same flow record nothing more)."""
    if flow.metadata.get(LOGGED):
        return
    flow.metadata[LOGGED] = True
    request, response = flow.request, flow.response
    host, port = flow.metadata.get(TARGET, (request.host, request.port))
    emit(decision_record(
        id=flow.id, method=request.method, host=host, port=port,
        path=flow.metadata.get(PATH, "" if request.method == "CONNECT" else request.path.split("?", 1)[0]),
        decision=decision, status=status or (response.status_code if response else None),
        **({} if request.method == "CONNECT" else {"scheme": flow.metadata.get(SCHEME, request.scheme)}),
        bytes_out=len(request.raw_content or b"") if decision.allowed else 0,
        bytes_in=flow.metadata.get(BYTES_IN, len(response.raw_content or b"") if response is not None else 0)
        if decision.allowed else 0,
        **{key: flow.metadata[name] for key, name in (("scrubbed", SCRUBBED), ("warning", WARNING))
           if name in flow.metadata},
        **extra,
    ))


def refusal(decision: Decision, status: int = 403) -> http.Response:
    """The answer a refused request gets (403 unless said): the rule in a header for machines and in the body for people."""
    return http.Response.make(
        status, f"bottle: refused (rule {decision.rule}): {decision.reason}\n",
        {"content-type": "text/plain; charset=utf-8", DECISION_HEADER: f"deny; rule={decision.rule}"},
    )


def refuse(flow: http.HTTPFlow, decision: Decision, status: int = 403, **extra) -> None:
    flow.response = refusal(decision, status)
    log_flow(flow, decision, **extra)


#: A request head past ``head_limit.MAX_HEAD``, and a response head past it.
HEAD_TOO_LONG = Decision(False, head_limit.RULE, f"the request's head (its request line and headers) is over "
                                                 f"{head_limit.MAX_HEAD // 1024} KiB")
RESPONSE_HEAD_TOO_LONG = Decision(False, head_limit.RULE, head_limit.RESPONSE_ERROR)


def head_refused(context, start: bytes) -> bytes:
    """A request head past the bound, before any flow exists: recorded, and answered with a 431 (then closed).

    The record names the tunnel's target when there is one, and the method when it is a registered one;
    nothing else of the head (it may be what would have been refused).
    """
    host, port = context.server.address or ("", None)
    method = start.lstrip(b"\r\n").split(b" ", 1)[0].decode("ascii", "replace").upper()
    emit(decision_record(id=context.client.id, method=method if method in REGISTERED_METHODS else "",
                         host=host, port=port, path="", decision=HEAD_TOO_LONG, status=431, stage="head"))
    response = refusal(HEAD_TOO_LONG, 431)
    response.headers["connection"] = "close"
    return http1.assemble_response(response)


# -- checks that are not the allow-list ------------------------------------------


def _authority(text: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` as (host, port); None when it does not parse."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    return (normal_host(host), int(port)) if port.isdigit() and host else None


def same_target(flow: http.HTTPFlow) -> Decision | None:
    """A refusal when the request names another host than where it would go (Host, authority, SNI); else None."""
    request = flow.request
    target = (normal_host(request.host), request.port)
    default = 443 if request.scheme == "https" else 80
    host_header = request.host_header
    if not host_header:
        return Decision(False, "host-mismatch", "the request has no Host header")
    if _authority(host_header, default) != target:
        return Decision(False, "host-mismatch",
                        f"the Host header does not name {request.host}:{request.port}, where this request goes")
    if request.authority and _authority(request.authority, default) != target:
        return Decision(False, "host-mismatch", f"the request target does not name {request.host}:{request.port}")
    sni = flow.client_conn.sni
    if sni and flow.client_conn.tls_established and normal_host(sni) != target[0]:
        return Decision(False, "sni-mismatch", f"the TLS server name does not name {request.host}")
    return None


def field_syntax(flow: http.HTTPFlow) -> Decision | None:
    """A refusal for a request whose headers, trailers or target hold a byte a server could read as a line's end
    (``header_syntax``); else None."""
    request = flow.request
    fields = [*request.headers.fields, *(request.trailers.fields if request.trailers else ())]
    reason = header_syntax.fault(fields, request.data.path)
    return Decision(False, "header-syntax", reason) if reason else None


#: A request body declared larger than this is refused before it is read: inspection could not read it within its
#: bounds, and holding it would stall the proxy (the git gate's own pushes, bounded by push.max_size, aside).
MAX_REQUEST_BODY = 64 * 1024 * 1024


def oversized(flow: http.HTTPFlow) -> Decision | None:
    """A refusal for a request whose declared body is past :data:`MAX_REQUEST_BODY`; else None."""
    length = flow.request.headers.get("content-length", "").strip()
    if not (length.isdigit() and int(length) > MAX_REQUEST_BODY):
        return None
    return Decision(False, "inspection-limit", f"a request body of {int(length)} bytes is more than inspection "
                                               f"reads ({MAX_REQUEST_BODY // (1024 * 1024)} MiB)")


def proxy_request_form(flow: http.HTTPFlow) -> Decision | None:
    """A refusal for a request on the proxy's own connection that does not name its URL in full; else None.

    A client of a proxy names the whole URL (absolute-form, ``GET http://host/``)
    or asks for a tunnel (CONNECT); origin-form (``GET /``) and asterisk-form
    (``OPTIONS *``) belong inside a tunnel. Relayed as they are, the egress
    stage would take them as addressed to itself: its cache manager
    (``/squid-internal-mgr/``), its icons and its error pages would answer.
    """
    if flow.server_conn.address is not None or flow.request.authority:
        return None  # inside a tunnel (its target is known), or the URL is whole
    return Decision(False, "request-form", "a request to the proxy must name its whole URL "
                                           "('GET http://host/path') or go through a CONNECT tunnel")


#: IANA's HTTP Method Registry (RFC 9110 and the WebDAV, versioning and calendar methods it lists).
REGISTERED_METHODS = frozenset({
    "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LABEL",
    "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF", "MKWORKSPACE", "MOVE", "OPTIONS",
    "ORDERPATCH", "PATCH", "POST", "PROPFIND", "PROPPATCH", "PUT", "QUERY", "REBIND", "REPORT", "SEARCH", "TRACE",
    "UNBIND", "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL"})


def refused_method(flow: http.HTTPFlow) -> Decision | None:
    """A refusal for a method outside the registry (a method of the agent's own making is a channel for data),
    and for TRACE: whichever hop answers it echoes the request back, and no daemon of the bundle may answer in
    an origin's place (nor hand the agent the headers of a request as it left the bundle)."""
    method = flow.request.method.upper()
    if method == "TRACE":
        return Decision(False, "method", "TRACE is refused: it makes a hop echo the request back")
    if method in REGISTERED_METHODS:
        return None
    return Decision(False, "method", "the request's method is not a registered HTTP method")


def connect_in_a_tunnel(flow: http.HTTPFlow) -> Decision | None:
    """A refusal for a CONNECT that mitmproxy read inside a tunnel (and refused itself, before any hook)."""
    if flow.request.method.upper() != "CONNECT" or flow.metadata.get(LOGGED):
        return None  # a CONNECT to the proxy itself was judged (and recorded) in http_connect
    return Decision(False, "method", "CONNECT is for the proxy itself, never inside a tunnel")


#: Request headers taken out before a request leaves: ``Max-Forwards`` asks a proxy on the way to answer
#: OPTIONS (or TRACE) itself when it reaches 0, and the egress stage would, in the origin's place.
HOP_ANSWERED = ("max-forwards",)


def carried(flow: http.HTTPFlow | tcp.TCPFlow, key: str, content: bytes, size: int) -> bytes:
    """The last ``size`` bytes that came before ``content`` in one direction of ``flow`` (kept under ``key``).

    ``content``'s own end is kept for the next piece, so a value split at a boundary (between two pieces
    of a raw tunnel, two WebSocket messages) is read whole.
    """
    before = flow.metadata.get(key, b"")
    flow.metadata[key] = content[-size:] if len(content) >= size else (before + content)[-size:]
    return before


# -- raw tunnels ------------------------------------------------------------------

#: Set on a raw tunnel's flow once what the agent sent was refused: the tunnel closes both ways.
RAW_ENDED = "bottle.raw_ended"
#: The last bytes the agent sent through a raw tunnel, read again with the next piece (a value split at a boundary).
RAW_TAIL = "bottle.raw_tail"
RAW_CARRY = 512
#: What inspection found in a raw tunnel, for its record.
RAW_FINDING = "bottle.raw_finding"
#: The scrubbing state of what the server sends through a raw tunnel (a ResponseStream).
RAW_STREAM = "bottle.raw_stream"


class ReadTunnel(layers.TCPLayer):
    """mitmproxy's raw relay, which closes both sides once bottle has ended the flow (``RAW_ENDED``)."""

    def relay_messages(self, event: events.Event) -> layer.CommandGenerator[None]:
        yield from super().relay_messages(event)
        if self.flow is not None and self.flow.metadata.get(RAW_ENDED) and self._handle_event != self.done:
            self._handle_event = self.done
            yield commands.CloseConnection(self.context.server)
            yield commands.CloseConnection(self.context.client)
            yield TcpEndHook(self.flow)


# -- the addon --------------------------------------------------------------------


class Refused(layer.Layer):
    """Closes the client's connection at once and sends nothing: the answer to TLS aimed at the proxy itself."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


class Egress:
    def __init__(self) -> None:
        with open(os.environ["BOTTLE_BUNDLE_CONFIG"], encoding="utf-8") as handle:
            config = json.load(handle)
        self.policy = Policy(config["egress"]["allow"])
        self.secrets = load_secrets(config.get("secrets"))
        # Content inspection (inspection.py, response_inspection.py): what a request carries, what a response holds.
        self.inspector = Inspector(self.secrets, config["egress"]["allow"], config["proxy"].get("model_host"))
        self.scrubber = Scrubber(self.secrets)
        global RECORD_SCRUBBER
        RECORD_SCRUBBER = self.scrubber
        self.responses = config["egress"].get("responses", "block")
        self.websockets = config["egress"].get("websockets") or []
        self.model_server_tools = config["egress"].get("model_server_tools") or []
        websockets.install(self._control_frame_may_go, lambda payload: self.scrubber.scrub(payload)[0])
        # Every form of every real value the scrubber knows literally; a server's WebSocket message is scrubbed
        # with as much of the one before as the longest of them (less one byte) could reach back.
        self.value_forms = [real for real, _ in self.scrubber.pairs] + [core for core, _, _ in self.scrubber.cores]
        self.ws_server_carry = max([RAW_CARRY, *map(len, self.value_forms)])
        self.api_host = normal_host(config["proxy"].get("model_host") or "")  # its replies: scrubbed, not read
        # The git gate's https upstreams: reachable for the gate (a client on the bundle's own address) only.
        self.bundle_ip = config["proxy"]["listen_host"]
        self.gate_policy = Policy([
            f"https://{urlsplit(remote['url']).hostname}:{urlsplit(remote['url']).port or 443}"
            for remote in config.get("git_gate", {}).get("remotes", {}).values() if remote.get("kind") == "https"])
        self.upstream: tuple[str, int] | None = None
        scripted = config.get("scripted_model")
        self.model_host = normal_host(config["proxy"]["model_host"]) if scripted else None
        self.script_port = int(scripted["port"]) if scripted else None

    def load(self, loader) -> None:
        loader.add_option("bottle_policy_loaded", str, "", "File written once this policy is in force.")

    def running(self) -> None:
        # When a second stage is configured as mitmproxy's upstream, connections to it are its to judge.
        if ctx.options.mode.startswith("upstream:"):
            self.upstream = parse_with_mode(ctx.options.mode)[1].address
        if ctx.options.bottle_policy_loaded:
            with open(ctx.options.bottle_policy_loaded, "w", encoding="utf-8") as handle:
                handle.write(f"{len(self.policy.entries)} entries\n")

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if type(nextlayer.layer) is layers.TCPLayer:  # mitmproxy's own choice of a raw relay: one bottle reads
            nextlayer.layer = ReadTunnel(nextlayer.context, ignore=nextlayer.layer.flow is None)
        data = nextlayer.data_client()
        if nextlayer.layer is not None or len(data) < 3:
            return  # decided already, or too little seen yet (mitmproxy asks again)
        stack = nextlayer.context.layers
        if len(stack) == 1 and isinstance(stack[0], modes.HttpProxy):
            if is_tls_record_magic(data):
                self._refuse_tls_to_proxy(nextlayer, data)
        elif nextlayer.context.server.address and not is_tls_record_magic(data) and not HTTP_START.match(data):
            # Inside a tunnel and neither TLS nor HTTP: a raw tunnel (judged in tcp_start). mitmproxy alone
            # would take a protocol starting with letters, like SSH, for HTTP.
            nextlayer.layer = ReadTunnel(nextlayer.context)

    def _refuse_tls_to_proxy(self, nextlayer: layer.NextLayer, data: bytes) -> None:
        """TLS spoken to the proxy port itself (a proxy URL with https://) is refused before any handshake."""
        try:
            hello = parse_client_hello(data)
        except ValueError:
            hello = None
        client = nextlayer.context.client
        emit(decision_record(id=client.id, method="TLS", host=(hello.sni if hello else None) or "",
                             port=client.sockname[1] if client.sockname else None, path="",
                             decision=Decision(False, "tls-to-proxy", "TLS to the proxy port itself")))
        nextlayer.layer = Refused(nextlayer.context)

    def _scripted(self, host: str) -> bool:
        return self.model_host is not None and normal_host(host) == self.model_host

    def _judge(self, client: connection.Client | None, host: str, port: int, protocol: str) -> Decision:
        """The bottle's policy; a git gate upstream is allowed too, for the gate itself (on the bundle) only."""
        if self._scripted(host) and protocol != RAW:
            return Decision(True, "model-script", "answered by the model script; the host is never contacted")
        decision = self.policy.judge(host, port, protocol)
        if not decision.allowed and client is not None and client.peername and client.peername[0] == self.bundle_ip:
            if self.gate_policy.judge(host, port, protocol).allowed:
                return Decision(True, GATE_RULE, "an upstream of the git gate, for the gate only")
        return decision

    def http_connect(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        decision = self._judge(flow.client_conn, request.host, request.port, TUNNEL)
        if decision.allowed and request.host_header and _authority(request.host_header, request.port) != (
                normal_host(request.host), request.port):
            decision = Decision(False, "host-mismatch", "the Host header does not name the CONNECT target")
        if not decision.allowed:
            refuse(flow, decision)
            return
        if decision.rule != GATE_RULE and self._inspect(flow):  # data in the host name: refused before TLS or DNS
            return
        if decision.rule == "model-script":
            flow.metadata[IN_BUNDLE] = True
        log_flow(flow, decision, status=200)  # mitmproxy answers an allowed CONNECT with 200

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        flow.metadata[PATH] = request.path.split("?", 1)[0]  # before any secret is swapped into it
        if (malformed := field_syntax(flow)) is not None:
            refuse(flow, malformed, 400)
            return
        decision = proxy_request_form(flow) or same_target(flow) or refused_method(flow) or self._judge(
            flow.client_conn, request.host, request.port, HTTPS if request.scheme == "https" else HTTP)
        if decision.allowed and websockets.is_upgrade(request.headers) and not bound(
                self.websockets, request.host, request.port):
            decision = Decision(False, "websocket", f"WebSockets to {request.host} are not allowed; list the host "
                                                    "in egress.websockets to allow them")
        if decision.allowed and decision.rule != GATE_RULE and (too_big := oversized(flow)):
            log_flow(flow, too_big, status=413)
            flow.kill()  # the body is never read: the stream (or connection) ends here
            return
        if decision.allowed:
            flow.metadata[ALLOWED_BY] = decision
            for name in HOP_ANSWERED:
                request.headers.pop(name, None)
        else:
            refuse(flow, decision)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and ALLOWED_BY in flow.metadata and flow.request.trailers \
                and (malformed := field_syntax(flow)) is not None:  # HTTP/2 trailers come after the headers' hook
            refuse(flow, malformed, 400)
            return
        if flow.response is None and ALLOWED_BY in flow.metadata and self._inspect(flow):
            return
        if flow.response is None and ALLOWED_BY in flow.metadata and self._model_fetches(flow):
            return
        if flow.response is None and ALLOWED_BY in flow.metadata and self._scripted(flow.request.host):
            # Re-aimed before any upstream connection exists (connection_strategy=lazy).
            flow.metadata[TARGET] = (flow.request.host, flow.request.port)
            flow.metadata[SCHEME] = flow.request.scheme
            flow.metadata[IN_BUNDLE] = True
            flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", self.script_port
            return
        if flow.response is None and ALLOWED_BY in flow.metadata:
            self._swap_secrets(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """Scrub the headers (they leave first when the body streams); stream a large or open-ended body."""
        if ALLOWED_BY not in flow.metadata or flow.metadata.get(LOGGED) or flow.response is None:
            return
        response = flow.response
        if response.status_code == 101 and not (websockets.is_upgrade(flow.request.headers)
                                                and websockets.is_upgrade(response.headers)):
            # A switch to a protocol of the server's choosing would be a tunnel the policy never judged.
            decision = Decision(False, "upgrade", "the server switched to a protocol that is not WebSocket")
            flow.response = refusal(decision, 502)
            flow.response.headers["connection"] = "close"  # the server's side of it is no longer HTTP
            log_flow(flow, decision)
            return
        self._scrub_fields(flow, response.headers)
        reason = self._scrubbed(flow, response.data.reason)  # HTTP/1's reason phrase reaches the agent as sent
        if reason is not None:
            response.data.reason = reason
        read = self._reads_for_injection(flow) and read_as_text(response.headers.get("content-type", ""))
        if streamed(flow.request.method, response.status_code, response.headers, read=read,
                    scrubbing=bool(self.scrubber.pairs)):
            content_type = response.headers.get("content-type", "")
            response.stream = ResponseStream(self.scrubber, (lambda body: find_injection(body, content_type, flow.request.path))
                                             if read else None, block=self.responses == "block")
            if self.scrubber.pairs or read:
                # A placeholder need not be as long as its value, nor a page as long once instructions are taken
                # out: the body goes on without a declared length
                # (chunked to an HTTP/1.1 client; HTTP/2 frames it anyway; HTTP/1.0 ends it by closing).
                response.headers.pop("content-length", None)
                if flow.request.http_version == "HTTP/1.1":
                    response.headers["transfer-encoding"] = "chunked"

    def response(self, flow: http.HTTPFlow) -> None:
        if ALLOWED_BY not in flow.metadata and (nested := connect_in_a_tunnel(flow)):
            refuse(flow, nested)  # in place of mitmproxy's own 502 for it
            return
        if ALLOWED_BY not in flow.metadata and flow.response.status_code >= 400 \
                and DECISION_HEADER not in flow.response.headers:
            flow.response = error_pages.page(flow.response.status_code)  # made by mitmproxy: its words go
            return
        if ALLOWED_BY in flow.metadata and not flow.metadata.get(LOGGED):
            if flow.response.trailers:  # HTTP/2 trailers reach the agent after the body: the headers' rule
                self._scrub_fields(flow, flow.response.trailers)
            if isinstance(flow.response.stream, ResponseStream):
                self._finish_stream(flow, flow.response.stream)
            else:
                self._inspect_response(flow)
        if ALLOWED_BY in flow.metadata:
            log_flow(flow, flow.metadata[ALLOWED_BY], **self._swapped(flow))

    def _scrub_fields(self, flow: http.HTTPFlow, fields) -> None:
        """Scrub header (or trailer) values in place."""
        for key, value in list(fields.items(multi=True)):
            clean = self._scrubbed(flow, value.encode("utf-8", "surrogateescape"))
            if clean is not None:
                fields[key] = clean.decode("utf-8", "surrogateescape")

    def _scrubbed(self, flow: http.HTTPFlow | tcp.TCPFlow, value: bytes) -> bytes | None:
        """``value`` with real secret values replaced (the count joins the flow's record), or None if it had none."""
        clean, count = self.scrubber.scrub(value)
        if not count:
            return None
        flow.metadata[SCRUBBED] = flow.metadata.get(SCRUBBED, 0) + count
        return clean

    # -- content inspection ---------------------------------------------------------

    def _inspect(self, flow: http.HTTPFlow) -> bool:
        """Refuse a request whose content carries a secret or credential to a host it is not bound to.

        The git gate's own requests to its upstream are left alone: they carry
        the gate's credential for that upstream and the pushes its ref policy
        judged (compressed packs, which no reader of text could judge anyway).
        """
        decision = flow.metadata.get(ALLOWED_BY)
        if decision is not None and decision.rule == GATE_RULE:
            return False
        request = flow.request
        path = "" if request.method == "CONNECT" else request.path
        # HTTP/2 request trailers follow the body to the server: read with the headers.
        fields = [*request.headers.items(multi=True), *(request.trailers.items(multi=True) if request.trailers else ())]
        finding = self.inspector.inspect(request.host, request.port, path, fields,
                                         request.get_content(strict=False) or b"", request.headers.get("content-type", ""),
                                         method=request.method)
        if finding is None:
            return False
        flow.metadata[PATH] = ""  # the path may be what was refused: the record names where, never the value
        refuse(flow, Decision(False, finding.rule, finding.reason()), stage="inspect", name=finding.name,
               where=finding.where)
        return True

    def _model_fetches(self, flow: http.HTTPFlow) -> bool:
        """Refuse a request to the model host that makes the provider fetch what it names (``model_tools``)."""
        request = flow.request
        aimed_at = flow.metadata.get(TARGET, (request.host, None))[0]
        if normal_host(aimed_at) != self.api_host or request.method in ("GET", "HEAD", "OPTIONS"):
            return False
        try:
            body = request.get_content(strict=True) or b""
            looks_json = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")  # whatever the type claims
            found = model_tools.declared(body) if looks_json or "json" in \
                request.headers.get("content-type", "").lower() else set()
        except ValueError as exc:  # an encoding mitmproxy cannot undo, or JSON that cannot be read
            reason = f"the request body cannot be read, so its tools cannot be judged: {exc}"
        else:
            refused = model_tools.refused(found, self.model_server_tools)
            if not refused:
                return False
            reason = (f"the request declares {', '.join(refused)}, which make the model provider fetch "
                      f"addresses the request names; allow them in egress.model_server_tools")
        # In the API's own error shape, as a bad request (a 403 reads to Claude Code as a failed login), so
        # Claude Code shows the reason as the API's answer and does not retry.
        flow.response = http.Response.make(400, json.dumps({"type": "error", "error": {
            "type": "invalid_request_error", "message": f"bottle: refused (rule {MODEL_TOOL_RULE}): {reason}"}}),
            {"content-type": "application/json", DECISION_HEADER: f"deny; rule={MODEL_TOOL_RULE}"})
        log_flow(flow, Decision(False, MODEL_TOOL_RULE, reason), stage="inspect")
        return True

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """A listed host's WebSocket message: read on its way out, scrubbed on its way in (``websockets``)."""
        message = flow.websocket.messages[-1]
        if flow.metadata.get(WS_ENDED):
            message.drop()
            return
        request = flow.request
        if not message.from_client:
            # Scrubbed with the end of the server's last message: a value it began there is withheld here.
            before = carried(flow, WS_SERVER_TAIL, message.content, self.ws_server_carry)
            clean, count = websockets.scrub_from_server(self.scrubber, self.value_forms, before, message.content)
            if count:
                message.content = clean
                flow.metadata[SCRUBBED] = flow.metadata.get(SCRUBBED, 0) + count
            return
        # Read with the end of the agent's last message, as a raw tunnel's pieces are: a value split over two
        # messages is whole in what is read. (RAW_CARRY bytes: the longest credential shape is shorter.)
        seen = carried(flow, WS_TAIL, message.content, RAW_CARRY) + message.content
        finding = self.inspector.inspect(request.host, request.port, "", [], seen)
        if finding is None:
            return
        flow.metadata[WS_ENDED] = True
        message.content = b""  # never sent: the frame that would carry it closes the connection instead
        websockets.end(flow.server_conn, flow.client_conn)
        emit(decision_record(id=flow.id, method="WEBSOCKET", host=request.host, port=request.port,
                             path=flow.metadata.get(PATH, ""), decision=Decision(False, finding.rule, finding.reason()),
                             stage="inspect", name=finding.name, where=f"websocket message: {finding.where}"))

    def _control_frame_may_go(self, server: connection.Server, payload: bytes) -> bool:
        """Whether a ping, pong or close reason may go to ``server`` as it is (read like a message)."""
        host, port = server.address or ("", None)
        return self.inspector.inspect(host, port, "", [], payload) is None

    def _reads_for_injection(self, flow: http.HTTPFlow) -> bool:
        """Whether the response body is read for prompt injection (not the model host's: it is the agent's own model)."""
        aimed_at = flow.metadata.get(TARGET, (flow.request.host, None))[0]  # the model host, for a re-aimed request
        return self.responses != "off" and normal_host(aimed_at) != self.api_host

    def _inspect_response(self, flow: http.HTTPFlow) -> None:
        """Put placeholders back for real secret values in a held body, then read it for prompt injection."""
        response = flow.response
        body = response.get_content(strict=False) or b""
        clean = self._scrubbed(flow, body)
        if clean is not None:
            response.set_content(clean)
        else:
            clean = body
        if not self._reads_for_injection(flow):
            return
        verdict = find_injection(clean, response.headers.get("content-type", ""), flow.request.path)
        if not verdict.injection:
            return
        if self.responses == "block" and verdict.cleaned is not None:  # delivered with the instructions taken out
            response.set_content(verdict.cleaned)
            flow.metadata[WARNING] = verdict.removal()
        elif self.responses == "block":
            refuse(flow, Decision(False, verdict.rule(), f"the response was withheld: {verdict.reason()}"),
                   stage="response", signals=list(verdict.signals))
        else:
            response.headers["x-bottle-warning"] = verdict.reason()
            flow.metadata[WARNING] = verdict.rule()

    def _finish_stream(self, flow: http.HTTPFlow, stream: ResponseStream) -> None:
        """A streamed body has passed: its size and scrubs for the record; a cut one ends without completing."""
        flow.metadata[BYTES_IN] = stream.bytes_in
        if stream.scrubbed:
            flow.metadata[SCRUBBED] = flow.metadata.get(SCRUBBED, 0) + stream.scrubbed
        verdict = stream.verdict
        if verdict is None or not verdict.injection:
            return
        if stream.cut:
            decision = Decision(False, verdict.rule(), f"the response was cut off: {verdict.reason()}")
            log_flow(flow, decision, stage="response", signals=list(verdict.signals))
            flow.kill()  # the agent sees the connection close before the body completes
        else:
            flow.metadata[WARNING] = verdict.removal() if verdict.cleaned is not None and self.responses == "block" \
                else verdict.rule()

    def error(self, flow: http.HTTPFlow) -> None:
        if ALLOWED_BY in flow.metadata and flow.error and flow.error.msg == head_limit.RESPONSE_ERROR:
            log_flow(flow, RESPONSE_HEAD_TOO_LONG, status=502, **self._swapped(flow))
        elif ALLOWED_BY in flow.metadata:
            log_flow(flow, flow.metadata[ALLOWED_BY], error=flow.error.msg if flow.error else None,
                     **self._swapped(flow))

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        host, port = flow.server_conn.address or ("", 0)
        decision = self._judge(flow.client_conn, host, port, RAW)
        sni = flow.client_conn.sni
        if decision.allowed and sni and normal_host(sni) != normal_host(host):
            decision = Decision(False, "sni-mismatch", f"the TLS server name does not name {host}")
        flow.metadata[ALLOWED_BY] = decision
        if not decision.allowed:
            # mitmproxy checks server.error after server_connect: the connection is never opened.
            flow.server_conn.error = f"bottle: deny; rule={decision.rule}"
            self._log_tcp(flow)

    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        """A raw tunnel is read too: the agent's bytes like a request body, the server's scrubbed of secrets."""
        message = flow.messages[-1]
        if flow.metadata.get(RAW_ENDED):
            message.content = b""
            return
        if not message.from_client:
            # Scrubbed as a streamed body is: a tail that could begin a real value waits for the next piece.
            stream = flow.metadata.setdefault(RAW_STREAM, ResponseStream(self.scrubber, None, block=False))
            message.content = b"".join(stream(message.content)) if message.content else b""
            if stream.scrubbed:
                flow.metadata[SCRUBBED] = stream.scrubbed
            return
        host, port = flow.server_conn.address or ("", 0)
        seen = carried(flow, RAW_TAIL, message.content, RAW_CARRY) + message.content
        finding = self.inspector.inspect(host, port, "", [], seen)
        if finding is None:
            return
        message.content = b""  # never sent: the tunnel closes instead (ReadTunnel)
        flow.metadata[RAW_ENDED] = True
        flow.metadata[ALLOWED_BY] = Decision(False, finding.rule, finding.reason())
        flow.metadata[RAW_FINDING] = {"stage": "inspect", "name": finding.name, "where": f"tunnel: {finding.where}"}

    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._log_tcp(flow)

    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self._log_tcp(flow)

    def _log_tcp(self, flow: tcp.TCPFlow) -> None:
        decision = flow.metadata.get(ALLOWED_BY)
        if decision is None or flow.metadata.get(LOGGED):
            return
        flow.metadata[LOGGED] = True
        host, port = flow.server_conn.address or ("", None)
        sent = sum(len(m.content) for m in flow.messages if m.from_client)
        received = sum(len(m.content) for m in flow.messages if not m.from_client)
        emit(decision_record(id=flow.id, method="TCP", host=host, port=port, path="", decision=decision,
                             bytes_out=sent, bytes_in=received, **flow.metadata.get(RAW_FINDING, {}),
                             **({"scrubbed": flow.metadata[SCRUBBED]} if SCRUBBED in flow.metadata else {})))

    # The last line: no outbound connection opens to what the policy does not allow.
    def server_connect(self, data) -> None:
        server: connection.Server = data.server
        if server.error or not server.address or server.via is not None or server.address == self.upstream:
            return
        if self.script_port is not None and server.address == ("127.0.0.1", self.script_port):
            return  # a model-host request re-aimed at the scripted model in this bundle
        host, port = server.address
        decision = self._judge(data.client, host, port, TUNNEL)
        if decision.allowed and server.sni and normal_host(server.sni) != normal_host(host):
            decision = Decision(False, "sni-mismatch", f"the TLS server name does not name {host}")
        if not decision.allowed:
            server.error = f"bottle: deny; rule={decision.rule}"
            emit(decision_record(id=server.id, method="OPEN", host=host, port=port, path="",
                                 decision=decision, stage="connection"))

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        """The last line when the egress stage opens the connection: the tunnel asked of it, judged again.

        A target the policy does not allow gets the egress stage's question
        header, which it always answers itself: the tunnel is never opened.
        """
        host, port = flow.request.host, flow.request.port
        if self.script_port is not None and (host, port) == ("127.0.0.1", self.script_port):
            return  # a model-host request re-aimed at the scripted model in this bundle
        decision = self._judge(flow.client_conn, host, port, TUNNEL)
        if not decision.allowed:
            flow.request.headers[PREFLIGHT_HEADER] = "1"
            emit(decision_record(id=flow.id, method="OPEN", host=host, port=port, path="", decision=decision,
                                 stage="connection"))

    # -- secrets ----------------------------------------------------------------

    @staticmethod
    def _swapped(flow: http.HTTPFlow) -> dict:
        return {"secrets": flow.metadata[SWAPPED]} if flow.metadata.get(SWAPPED) else {}

    def _swap_secrets(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        body = (request.get_content(strict=False) or b"") if self.secrets else b""
        for secret in self.secrets:
            placeholder = secret["placeholder"]
            in_headers = any(placeholder in value for value in request.headers.values())
            in_url, in_body = placeholder in request.path, placeholder.encode() in body
            if not (in_headers or in_url or in_body):
                continue
            if not bound_to(secret, request.host, request.port):
                refuse(flow, Decision(False, "secret-host",
                                      f"secret {secret['name']} may not be sent to {request.host}"))
                return
            if request.scheme != "https":
                refuse(flow, Decision(False, "secret-plain-http",
                                      f"secret {secret['name']} is never sent over plain HTTP; use https://{request.host}"))
                return
            swap_in = secret.get("swap_in") or ["header"]
            for key, value in list(request.headers.items()):
                if placeholder in value and "header" in swap_in:
                    request.headers[key] = value.replace(placeholder, secret["value"])
            if in_url and "url" in swap_in:
                request.path = request.path.replace(placeholder, secret["value"])
            if in_body and "body" in swap_in:
                body = body.replace(placeholder.encode(), secret["value"].encode())
                request.set_content(body)
            flow.metadata.setdefault(SWAPPED, []).append(secret["name"])


def load_secrets(path: str | None) -> list[dict]:
    if not path:
        return []
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def bound_to(secret: dict, host: str, port: int) -> bool:
    """Whether ``host:port`` is one the secret may go to (its hosts: names or ``*.`` patterns, a port optional)."""
    return bound(secret["hosts"], host, port)


head_limit.install(head_refused)  # before the first connection: every HTTP/1 head the proxy reads is bounded
addons = [Egress()]
