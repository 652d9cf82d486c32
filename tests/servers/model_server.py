"""A scripted stand-in for the Anthropic Messages API, served over HTTPS.

Integration tests run it as ``api.anthropic.com`` on a test network so the
real ``claude`` binary can talk to it. Standard library only.

Usage::

    model_server.py [--cert PEM] [--key PEM] [--port 443] [--http-port N]

Environment (each used when the matching option is absent):

- ``MODEL_SERVER_CERT`` / ``MODEL_SERVER_KEY``: the TLS certificate and key.
- ``MODEL_SCRIPT``: a JSON file holding a list of replies, served in order to
  ``POST /v1/messages``. Each reply is consumed (removed from the file) when
  served, so writing the file again starts a new script. A reply is either a
  string (a text answer) or an object with ``text`` and/or ``tool_use``
  (``{"name": ..., "input": {...}}``, or a list of such). When the script is
  empty every request gets ``MODEL_DEFAULT_TEXT`` (``pong``).
- ``MODEL_LOG``: a file to which every request is appended as one JSON line
  (method, path, headers with credential values hashed, JSON body, and the
  reply served); each line is printed to stdout too.

- ``MODEL_AUTH``: a JSON file ``{"accept": ["sha256:<hex>", ...]}``; while it lists
  anything, a ``POST /v1/messages`` whose ``x-api-key`` or ``authorization`` value
  hashes to none of them gets a 401 (the API's ``authentication_error``).

``POST /v1/oauth/token`` stands in for Claude Code's token endpoint: a
``refresh_token`` grant gets a new pair derived from the refresh token
(``refreshed_pair`` below), so a test knows what to expect.

Other requests: ``POST /v1/messages/count_tokens`` gets a token count,
``GET``/``HEAD`` of ``/`` and ``/api/hello`` get 200, anything else a 404 in
the API's error shape (Claude Code takes that as "no settings, no policy").
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import uuid

from serving import TLSServer, log_line, redacted, serve_all, tls_context

#: Paths answered 200 to GET/HEAD: connectivity checks (Claude Code sends ``HEAD /api/hello``).
HEALTH_PATHS = {"/", "/api/hello"}

_lock = threading.Lock()


def next_reply(script_path: str | None, default_text: str) -> dict:
    """Take the first reply off the script file, or the default text when there is none."""
    with _lock:
        if not script_path or not os.path.exists(script_path):
            return {"text": default_text}
        try:
            with open(script_path, encoding="utf-8") as handle:
                script = json.load(handle)
        except (OSError, ValueError):
            return {"text": default_text}
        if not isinstance(script, list) or not script:
            return {"text": default_text}
        reply, rest = script[0], script[1:]
        # Rename over the old file so a reader never sees a half-written script.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(script_path) or ".", prefix=".script-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(rest, handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, script_path)
    return {"text": reply} if isinstance(reply, str) else reply


def refreshed_pair(refresh_token: str) -> tuple[str, str]:
    """The (access, refresh) tokens the token endpoint hands out for ``refresh_token``."""
    digest = hashlib.sha256(refresh_token.encode()).hexdigest()
    return f"sk-ant-oat01-refreshed-{digest[:24]}", f"sk-ant-ort01-refreshed-{digest[24:48]}"


def accepted_credentials(auth_path: str | None) -> set[str]:
    """The credential hashes ``MODEL_AUTH`` accepts; empty means every request is let in."""
    try:
        with open(auth_path or "", encoding="utf-8") as handle:
            return set(json.load(handle).get("accept") or [])
    except (OSError, ValueError, AttributeError):
        return set()


def content_blocks(reply: dict) -> list[dict]:
    """The Messages API content blocks of one script reply."""
    blocks = []
    if reply.get("text"):
        blocks.append({"type": "text", "text": reply["text"]})
    tools = reply.get("tool_use") or []
    for tool in [tools] if isinstance(tools, dict) else tools:
        blocks.append({
            "type": "tool_use",
            "id": tool.get("id") or "toolu_" + uuid.uuid4().hex[:24],
            "name": tool["name"],
            "input": tool.get("input", {}),
        })
    return blocks or [{"type": "text", "text": ""}]


def stop_reason(blocks: list[dict]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def message(model: str, blocks: list[dict]) -> dict:
    """A complete (non-streamed) Messages API response."""
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason(blocks),
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 10},
    }


def sse_events(model: str, blocks: list[dict]):
    """The (event, data) pairs of a streamed response carrying ``blocks``."""
    start = message(model, [])
    start.update(stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            first = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            # Tool input arrives as JSON text deltas after an empty input, as the real API sends it.
            first = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": first}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(blocks), "stop_sequence": None},
        "usage": {"output_tokens": 10},
    }
    yield "message_stop", {"type": "message_stop"}


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers the Messages API and anything else Claude Code may ask, logging every request."""

    protocol_version = "HTTP/1.1"
    server_version = "bottle-test-model/1"
    timeout = 300  # idle keep-alive connections end eventually

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # every request is logged as JSON instead

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, body, reply=None, status=200):
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": self.path,
            "headers": redacted(self.headers),
            "body": body,
            "status": status,
        }
        if reply is not None:
            entry["reply"] = reply
        log_line(entry, self.server.log_path)

    def _send_json(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_stream(self, model: str, blocks: list[dict]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        for event, data in sse_events(model, blocks):
            chunk = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self._body()
        path = self.path.split("?", 1)[0]
        if path == "/v1/messages/count_tokens":
            self._record(body)
            return self._send_json(200, {"input_tokens": 10})
        if path == "/v1/oauth/token":
            return self._token(body if isinstance(body, dict) else {})
        if path == "/v1/messages" and not self._authorised():
            self._record(body, status=401)
            return self._send_json(401, {"type": "error", "error": {"type": "authentication_error",
                                                                     "message": "invalid credentials"}})
        if path != "/v1/messages":
            self._record(body, status=404)
            return self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": path}})
        reply = next_reply(self.server.script_path, self.server.default_text)
        self._record(body, reply=reply)
        request = body if isinstance(body, dict) else {}
        model = request.get("model") or "claude-test"
        blocks = content_blocks(reply)
        if request.get("stream"):
            self._send_stream(model, blocks)
        else:
            self._send_json(200, message(model, blocks))

    def _authorised(self) -> bool:
        accept = accepted_credentials(self.server.auth_path)
        if not accept:
            return True
        given = redacted(self.headers)
        return any(given.get(name) in accept for name in ("x-api-key", "authorization"))

    def _token(self, body: dict) -> None:
        shown = {k: ("sha256:" + hashlib.sha256(str(v).encode()).hexdigest() if k == "refresh_token" else v)
                 for k, v in body.items()}
        if body.get("grant_type") != "refresh_token" or not body.get("refresh_token"):
            self._record(shown, status=400)
            return self._send_json(400, {"error": "invalid_grant"})
        access, refresh = refreshed_pair(str(body["refresh_token"]))
        self._record(shown)
        self._send_json(200, {"access_token": access, "refresh_token": refresh, "expires_in": 28800,
                              "token_type": "Bearer"})

    def do_GET(self):  # noqa: N802
        if self.path.split("?", 1)[0] in HEALTH_PATHS:
            self._record(None)
            return self._send_json(200, {"ok": True})
        # Claude Code's settings, policy and bootstrap look-ups: a 404 reads as "nothing configured
        # here" and is asked once, where a 200 with an unexpected body makes it ask again.
        self._record(None, status=404)
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

    do_HEAD = do_GET

    def do_PUT(self):  # noqa: N802
        self._record(self._body(), status=404)
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

    do_DELETE = do_PATCH = do_PUT


class Server(TLSServer):
    """The model server: its script, its log, and its default reply."""

    def __init__(self, address, script_path, log_path, default_text, tls=None, auth_path=None):
        super().__init__(address, Handler)
        self.auth_path = auth_path
        self.script_path = script_path
        self.log_path = log_path
        self.default_text = default_text
        self.tls = tls


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", default=os.environ.get("MODEL_SERVER_CERT"))
    parser.add_argument("--key", default=os.environ.get("MODEL_SERVER_KEY"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MODEL_SERVER_PORT", "443")))
    parser.add_argument("--http-port", type=int, default=None, help="also serve plain HTTP on this port")
    args = parser.parse_args(argv)
    script = os.environ.get("MODEL_SCRIPT")
    log = os.environ.get("MODEL_LOG")
    default_text = os.environ.get("MODEL_DEFAULT_TEXT", "pong")
    auth = os.environ.get("MODEL_AUTH")

    servers = []
    if args.cert:
        https = Server(("0.0.0.0", args.port), script, log, default_text, tls=tls_context(args.cert, args.key),
                       auth_path=auth)
        servers.append(("https", args.port, https))
    if args.http_port:
        servers.append(("http", args.http_port, Server(("0.0.0.0", args.http_port), script, log, default_text,
                                                             auth_path=auth)))
    if not servers:
        parser.error("give --cert/--key (or MODEL_SERVER_CERT/KEY) or --http-port")
    serve_all("model server", servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
