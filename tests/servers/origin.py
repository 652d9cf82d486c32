"""A stand-in for an ordinary web site on the test "internet".

It answers every GET (and HEAD) with ``hello from <name>`` (OPTIONS and TRACE are answered like other methods), where the name is
``ORIGIN_NAME`` when set, else the host the client asked for, so one server
can stand for several host names. Other methods get the same text plus the
size of the body received. Two paths behave otherwise: ``/echo...`` answers
with what it received (method, path, headers, body as JSON, and the
Authorization header again as ``X-Echo-Authorization``), as a careless API
would (``/echo?reason=1`` quotes it in the status line's reason phrase too); ``/serve?type=T&body=B`` answers with body B of content type T (B is the
request's own body when not given; ``&repeat=N`` repeats it N times, for a
large answer; ``&encode=E`` hands it back encoded, as a hostile host would
echo a credential: one of :data:`ENCODINGS`). Hostile behaviours, each quoting the request's
``Authorization`` header back (as a careless server would): ``/malformed?kind=K``
answers with a response mitmproxy cannot parse, the header in the bad part
(``K``: ``status`` line, ``header`` line, ``chunk`` size, ``length``), and
``/bounce?to=URL`` redirects to URL with the
Authorization header's credential quoted in ``Location``, ``Refresh``, ``Link``
and ``Set-Cookie`` (as a careless login flow would); ``/bighead?size=N`` answers with a header ``X-Big`` of N bytes (a response head
of megabytes, or an ordinary large one); ``/upgrade`` answers 101 (asked or not) and then echoes lines, a protocol of its own; ``/ws`` is a WebSocket server (RFC 6455) that first sends a message, a ping
and later a close reason holding that header, then echoes each message as
``echo: <message>`` (and logs the pings it receives); ``/ws?split=N`` sends that first message as two, cut
``N`` bytes into the header's value. Every request is logged as one JSON line to stdout
and, when ``ORIGIN_LOG`` is set, to that file (credential header values hashed).
With ``--h2-port`` it also serves HTTP/2 there (``h2_origin.py``: trailers both
ways). With ``--tcp-port`` it also speaks a line protocol that is not HTTP on that
port (a banner first, like SSH, then each line echoed; each line logged).
Standard library only, but for ``--h2-port``.

Usage::

    origin.py [--cert PEM --key PEM] [--port 443 ...] [--http-port 80 ...] [--tcp-port 22 ...]

``ORIGIN_CERT`` / ``ORIGIN_KEY`` stand in for the options.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.server
import json
import os
import socketserver
import struct
import urllib.parse
import sys
import time

from serving import TLSServer, log_line, redacted, serve_all, tls_context



XOR_KEY = 0x5A
#: The forms a hostile host can echo a value in (``/serve?encode=``).
ENCODINGS = {
    "percent": lambda d: "".join(f"%{b:02X}" for b in d).encode(),
    "base32": base64.b32encode,
    "gzip-base64": lambda d: base64.b64encode(gzip.compress(d)),
    "reversed": lambda d: d[::-1],
    "utf-16": lambda d: d.decode("utf-8", "replace").encode("utf-16-le"),
    "entities": lambda d: "".join(f"&#{c};" for c in d).encode(),
    "unicode-escapes": lambda d: "".join(f"\\u{c:04x}" for c in d).encode(),
    "base64-twice": lambda d: base64.b64encode(base64.b64encode(d)),
    # Each byte XORed with a key: a cipher, which no reader of a request can undo (the key is the agent's).
    "xor": lambda d: bytes(b ^ XOR_KEY for b in d),
}


class Handler(http.server.BaseHTTPRequestHandler):
    """Greets every request with the origin's name."""

    protocol_version = "HTTP/1.1"
    server_version = "bottle-test-origin/1"
    timeout = 300

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # requests are logged as JSON instead

    def _name(self) -> str:
        host = self.headers.get("Host", "")
        # Strip a port, keeping IPv6 literals intact.
        if host.startswith("["):
            host = host.split("]", 1)[0] + "]"
        else:
            host = host.split(":", 1)[0]
        return os.environ.get("ORIGIN_NAME") or host or "origin"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/echo"):
            return self._echo(body)
        if self.path.startswith("/serve?"):
            return self._serve(body)
        if self.path.startswith("/malformed"):
            return self._malformed(body)
        if self.path.startswith("/ws") and "websocket" in self.headers.get("Upgrade", "").lower():
            return self._websocket()
        if self.path.startswith("/upgrade"):
            return self._upgrade()
        if self.path.startswith("/bighead?"):
            return self._big_head(body)
        if self.path.startswith("/bounce?"):
            return self._bounce(body)
        text = f"hello from {self._name()}"
        if self.command not in ("GET", "HEAD"):
            text += f" ({len(body)} bytes received)"
        self._record(body)
        data = (text + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _echo(self, body: bytes) -> None:
        self._record(body)
        data = json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                           "body": body.decode("utf-8", "replace")}).encode()
        # ``/echo?reason=1``: the status line's reason phrase quotes the header too.
        reason = f"you sent {self.headers.get('Authorization', '')}" if "reason=1" in self.path else None
        self._send(data, "application/json", {"X-Echo-Authorization": self.headers.get("Authorization", "")}, reason)

    def _serve(self, body: bytes) -> None:
        self._record(body)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        data = query["body"].encode() if "body" in query else body
        if "encode" in query:
            data = ENCODINGS[query["encode"]](data)
        self._send(data * int(query.get("repeat", "1")), query.get("type", "text/html; charset=utf-8"), {})

    def _malformed(self, body: bytes) -> None:
        self._record(body)
        kind = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)).get("kind", "status")
        quoted = f"you sent {self.headers.get('Authorization', '')}".encode()
        heads = {
            "status": b"HTTP/1.1 2OO " + quoted + b"\r\nContent-Length: 0\r\n\r\n",
            "header": b"HTTP/1.1 200 OK\r\n" + quoted + b"\r\nContent-Length: 0\r\n\r\n",
            "chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + quoted + b"\r\n",
            "length": b"HTTP/1.1 200 OK\r\nContent-Length: " + quoted + b"\r\n\r\n",
        }
        self.wfile.write(heads[kind])
        self.wfile.flush()
        self.close_connection = True

    def _bounce(self, body: bytes) -> None:
        self._record(body)
        to = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)).get("to", "/")
        target = f"{to}?t={self.headers.get('Authorization', '').split(' ')[-1]}"
        self.send_response(302)
        for key, value in {"Location": target, "Refresh": f"0; url={target}", "Link": f"<{target}>; rel=next",
                           "Set-Cookie": f"t={target.rpartition('=')[2]}; Path=/", "Content-Length": "0"}.items():
            self.send_header(key, value)
        self.end_headers()

    def _big_head(self, body: bytes) -> None:
        self._record(body)
        size = int(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)).get("size", "0"))
        self.close_connection = True
        try:
            self._send(b"big head\n", "text/plain", {"X-Big": "b" * size})
        except OSError:
            pass  # a proxy that stops reading a head past its bound closes the connection meanwhile

    def _upgrade(self) -> None:
        """Switch to a line protocol of its own (asked or not): 101, then each line logged and echoed."""
        self._record(b"")
        self.send_response(101)
        self.send_header("Upgrade", "x-raw")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        for line in self.rfile:
            log_line({"time": time.time(), "scheme": "upgraded", "port": self.server.server_address[1],
                      "data": line.decode("utf-8", "replace")}, os.environ.get("ORIGIN_LOG"))
            self.wfile.write(b"echo " + line)
            self.wfile.flush()

    def _websocket(self) -> None:
        self._record(b"")
        accept = base64.b64encode(hashlib.sha1(self.headers["Sec-WebSocket-Key"].encode()
                                               + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True
        quoted = f"you sent {self.headers.get('Authorization', '')}".encode()
        split = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query)).get("split")
        if split:  # ``/ws?split=N``: the first message goes as two, cut N bytes into the header's value
            cut = len("you sent Bearer ") + int(split)
            self._frame(0x1, quoted[:cut])
            self._frame(0x1, quoted[cut:])
        else:
            self._frame(0x1, quoted)
        self._frame(0x9, quoted[:125])
        while True:
            frame = self._read_frame()
            if frame is None:
                return
            opcode, payload = frame
            if opcode == 0x8:
                self._frame(0x8, struct.pack("!H", 1000) + quoted[:123])
                return
            if opcode in (0x1, 0x2, 0x9):
                log_line({"time": time.time(), "scheme": "websocket", "port": self.server.server_address[1],
                          "ping": opcode == 0x9, "data": payload.decode("utf-8", "replace")},
                         os.environ.get("ORIGIN_LOG"))
            if opcode in (0x1, 0x2):
                self._frame(opcode, b"echo: " + payload)

    def _frame(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([size]) if size < 126 else
                                        bytes([126]) + struct.pack("!H", size) if size < 65536 else
                                        bytes([127]) + struct.pack("!Q", size))
        self.wfile.write(head + payload)
        self.wfile.flush()

    def _read_frame(self) -> tuple[int, bytes] | None:
        """One frame from the client (masked, unfragmented), or None when the connection ended."""
        head = self.rfile.read(2)
        if len(head) < 2:
            return None
        opcode, size = head[0] & 0x0F, head[1] & 0x7F
        if size == 126:
            size = struct.unpack("!H", self.rfile.read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self.rfile.read(8))[0]
        mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = self.rfile.read(size)
        return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def _send(self, data: bytes, content_type: str, extra: dict, reason: str | None = None) -> None:
        self.send_response(200, reason)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _record(self, body: bytes) -> None:
        if self.headers.get("Authorization"):
            LAST_AUTHORIZATION[0] = self.headers["Authorization"]
        log_line({
            "time": time.time(),
            "scheme": self.server.scheme,
            "port": self.server.server_address[1],
            "method": self.command,
            "path": self.path,
            "headers": redacted(self.headers),
            "body": body.decode("utf-8", "replace"),
        }, os.environ.get("ORIGIN_LOG"))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_PROPFIND = do_OPTIONS = do_TRACE = _answer


class Server(TLSServer):
    """The origin: one scheme (https or http) on one port."""

    def __init__(self, address, scheme, tls=None):
        super().__init__(address, Handler)
        self.scheme = scheme
        self.tls = tls


#: The last Authorization header an HTTP(S) request brought, for ``recall`` on the line protocol.
LAST_AUTHORIZATION = [""]


class LineEcho(socketserver.StreamRequestHandler):
    """Not HTTP: greets with a banner, then echoes each line back; ``recall`` answers with the last
    Authorization header the HTTP side received (a hostile server handing a credential back another way)."""

    def handle(self):
        self.wfile.write(b"SSH-2.0-bottle-test-origin\r\n")
        for line in self.rfile:
            log_line({"time": time.time(), "scheme": "tcp", "port": self.server.server_address[1],
                      "data": line.decode("utf-8", "replace")}, os.environ.get("ORIGIN_LOG"))
            if line.strip() == b"recall":
                self.wfile.write(f"you sent {LAST_AUTHORIZATION[0]}\r\n".encode())
            else:
                self.wfile.write(b"echo " + line)


class TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", default=os.environ.get("ORIGIN_CERT"))
    parser.add_argument("--key", default=os.environ.get("ORIGIN_KEY"))
    parser.add_argument("--port", type=int, action="append", help="serve HTTPS on this port (default 443)")
    parser.add_argument("--http-port", type=int, action="append", default=[], help="also serve plain HTTP here")
    parser.add_argument("--tcp-port", type=int, action="append", default=[], help="also speak a non-HTTP protocol")
    parser.add_argument("--h2-port", type=int, action="append", default=[], help="also serve HTTP/2 (h2_origin.py)")
    args = parser.parse_args(argv)

    servers = []
    if args.cert:
        tls = tls_context(args.cert, args.key)
        servers += [("https", port, Server(("0.0.0.0", port), "https", tls=tls)) for port in args.port or [443]]
    servers += [("http", port, Server(("0.0.0.0", port), "http")) for port in args.http_port]
    servers += [("tcp", port, TCPServer(("0.0.0.0", port), LineEcho)) for port in args.tcp_port]
    if args.h2_port:
        import h2_origin  # python3-h2: only when asked for

        servers += [("h2", port, h2_origin.Server(("0.0.0.0", port), args.cert, args.key)) for port in args.h2_port]
    if not servers:
        parser.error("give --cert/--key (or ORIGIN_CERT/ORIGIN_KEY) or --http-port")
    serve_all("origin", servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
