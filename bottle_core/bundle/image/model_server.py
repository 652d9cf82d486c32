"""A scripted stand-in for the Anthropic Messages API: rehearse a bottle without a model.

``bottle run --model-script FILE`` starts it in the bundle on loopback and the
proxy sends every request for the model host here, so the real ``claude``
runs against the script and the real model host is never contacted. The
integration tests run the same server over HTTPS as ``api.anthropic.com`` on
their stand-in internet. Standard library only (and ``error_pages``, beside it, which is too).

Usage::

    model_server.py --script FILE [--listen HOST] [--port N] [--cert PEM --key PEM] [--log FILE]

The script is a JSON list of replies, served in order to ``POST /v1/messages``:
each a string (a text answer) or an object with ``text`` and/or ``tool_use``
(``{"name": ..., "input": {...}}``, or a list of such). When it runs out every
request gets ``--default-text`` (``pong``). Writing the file anew (a new
inode or modification time) starts a new script.

Every request is printed as one JSON line with ``"log": "model"`` (method,
path, headers with credential values hashed, the JSON body, the reply served)
-- the bundle's host files them as the bottle's model log -- and appended to
``--log`` when given. ``POST /v1/messages/count_tokens`` gets a token count,
``GET``/``HEAD`` of ``/`` and ``/api/hello`` get 200, anything else a 404 in
the API's error shape (Claude Code takes that as "no settings, no policy").

In a rehearsal it answers the agent (through the proxy) as a daemon of the
bundle, so like the git gate and the supervisor it quotes nothing of a
request in what it makes itself: a request it cannot take gets
``error_pages.FixedErrors``' fixed sentence, its 404s a fixed message, and
its ``Server`` header names no Python release.

For tests of subscription logins: with ``--auth FILE`` (a JSON file
``{"accept": ["sha256:<hex>", ...]}``), while it lists anything a
``POST /v1/messages`` whose ``x-api-key`` or ``authorization`` value hashes to
none of them gets a 401 (the API's ``authentication_error``); and
``POST /v1/oauth/token`` stands in for Claude Code's token endpoint: a
``refresh_token`` grant gets a new pair derived from the refresh token
(:func:`refreshed_pair`), so a test knows what to expect.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import ssl
import sys
import threading
import time
import uuid

try:
    from .error_pages import FixedErrors
except ImportError:  # run as a file (the tests' stand-in internet), with error_pages.py beside it
    from error_pages import FixedErrors

#: Paths answered 200 to GET/HEAD: connectivity checks (Claude Code sends ``HEAD /api/hello``).
HEALTH_PATHS = {"/", "/api/hello"}
#: Header values never written to a log in clear; a hash lets a reader compare them.
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie"}


class Script:
    """The replies still to serve; reloaded from its file when the file is written anew."""

    def __init__(self, path: str | None, default_text: str):
        self.path = path
        self.default_text = default_text
        self.replies: list = []
        self.signature: tuple | None = None
        self.lock = threading.Lock()

    def next_reply(self) -> dict:
        with self.lock:
            self._reload()
            reply = self.replies.pop(0) if self.replies else self.default_text
        return {"text": reply} if isinstance(reply, str) else reply

    def remaining(self) -> list:
        with self.lock:
            self._reload()
            return list(self.replies)

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path) if self.path else None
        except OSError:
            stat = None
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size) if stat else None
        if signature == self.signature:
            return
        self.signature, self.replies = signature, []
        if stat:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    loaded = json.load(handle)
            except (OSError, ValueError):
                loaded = []
            self.replies = list(loaded) if isinstance(loaded, list) else []


def check_script(replies) -> str | None:
    """What is wrong with a script, or None: the host checks a ``--model-script`` file with it before launch."""
    if not isinstance(replies, list):
        return "a model script is a JSON list of replies"
    for index, reply in enumerate(replies):
        if isinstance(reply, str):
            continue
        if not isinstance(reply, dict) or not ({"text", "tool_use"} & set(reply)) or set(reply) - {"text", "tool_use"}:
            return f"reply [{index}]: give a string, or an object with 'text' and/or 'tool_use'"
        tools = reply.get("tool_use")
        for tool in [tools] if isinstance(tools, dict) else tools if isinstance(tools, list) else [] if tools is None else [None]:
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not isinstance(tool.get("input", {}), dict):
                return f"reply [{index}]: each tool_use is {{\"name\": TOOL, \"input\": {{...}}}}"
    return None


def content_blocks(reply: dict) -> list[dict]:
    """The Messages API content blocks of one script reply."""
    blocks = []
    if reply.get("text"):
        blocks.append({"type": "text", "text": reply["text"]})
    tools = reply.get("tool_use") or []
    for tool in [tools] if isinstance(tools, dict) else tools:
        blocks.append({"type": "tool_use", "id": tool.get("id") or "toolu_" + uuid.uuid4().hex[:24],
                       "name": tool["name"], "input": tool.get("input", {})})
    return blocks or [{"type": "text", "text": ""}]


def stop_reason(blocks: list[dict]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def message(model: str, blocks: list[dict]) -> dict:
    """A complete (non-streamed) Messages API response."""
    return {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": stop_reason(blocks), "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 10}}


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
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason(blocks), "stop_sequence": None},
                            "usage": {"output_tokens": 10}}
    yield "message_stop", {"type": "message_stop"}


def redacted(headers) -> dict[str, str]:
    """Headers by lower-case name, credential values replaced by ``sha256:<hex>``."""
    return {key.lower(): "sha256:" + hashlib.sha256(value.encode()).hexdigest()
            if key.lower() in SECRET_HEADERS else value for key, value in headers.items()}


def refreshed_pair(refresh_token: str) -> tuple[str, str]:
    """The (access, refresh) tokens the token endpoint hands out for ``refresh_token``."""
    digest = hashlib.sha256(refresh_token.encode()).hexdigest()
    return f"sk-ant-oat01-refreshed-{digest[:24]}", f"sk-ant-ort01-refreshed-{digest[24:48]}"


def accepted_credentials(auth_path: str | None) -> set[str]:
    """The credential hashes ``--auth`` accepts; empty means every request is let in."""
    try:
        with open(auth_path or "", encoding="utf-8") as handle:
            return set(json.load(handle).get("accept") or [])
    except (OSError, ValueError, AttributeError):
        return set()


#: The error body of every 404, quoting nothing of the request.
NOT_FOUND = {"type": "error", "error": {"type": "not_found_error", "message": "not found"}}


class Handler(FixedErrors):
    """Answers the Messages API and anything else Claude Code may ask, logging every request."""

    protocol_version = "HTTP/1.1"
    server_version = "bottle-model-script"
    timeout = 300  # idle keep-alive connections end eventually

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # every request is logged as JSON instead

    def _body(self):
        length = (self.headers.get("Content-Length") or "0").strip()
        if not length.isdigit():
            raise ValueError("Content-Length is not a number")
        raw = self.rfile.read(int(length)) if int(length) else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _record(self, body, reply=None, status=200):
        entry = {"log": "model", "time": time.time(), "method": self.command, "path": self.path,
                 "headers": redacted(self.headers), "body": body, "status": status}
        if reply is not None:
            entry["reply"] = reply
        self.server.write_log(entry)

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
        try:
            body = self._body()
        except ValueError:
            return self.send_error(400)
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
            return self._send_json(404, NOT_FOUND)
        reply = self.server.script.next_reply()
        self._record(body, reply=reply)
        request = body if isinstance(body, dict) else {}
        model = request.get("model") or "claude-scripted"
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
        self._send_json(404, NOT_FOUND)

    do_HEAD = do_GET

    def do_PUT(self):  # noqa: N802
        try:
            body = self._body()
        except ValueError:
            return self.send_error(400)
        self._record(body, status=404)
        self._send_json(404, NOT_FOUND)

    do_DELETE = do_PATCH = do_PUT


class Server(http.server.ThreadingHTTPServer):
    """The model server: its script, its log, and TLS when it has a certificate."""

    daemon_threads = True

    def __init__(self, address, script: Script, log_path: str | None = None, tls: ssl.SSLContext | None = None,
                 auth_path: str | None = None):
        super().__init__(address, Handler)
        self.auth_path = auth_path
        self.script = script
        self.log_path = log_path
        self.tls = tls
        self._log_lock = threading.Lock()

    def write_log(self, entry: dict) -> None:
        line = json.dumps(entry)
        with self._log_lock:
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(30)  # a client that never finishes its handshake frees its thread
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                print(json.dumps({"tls_error": str(exc), "client": client_address[0]}), flush=True)
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default=os.environ.get("MODEL_SCRIPT"), help="JSON list of replies")
    parser.add_argument("--listen", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="default 443 with a certificate, else 8099")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--log", default=os.environ.get("MODEL_LOG"), help="also append each request to this file")
    parser.add_argument("--default-text", default="pong")
    parser.add_argument("--auth", help="JSON file of accepted credential hashes (tests of logins)")
    args = parser.parse_args(argv)
    tls = tls_context(args.cert, args.key) if args.cert else None
    port = args.port or (443 if tls else 8099)
    server = Server((args.listen, port), Script(args.script, args.default_text), args.log, tls, args.auth)
    print(f"model server listening on {'https' if tls else 'http'} port {port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
