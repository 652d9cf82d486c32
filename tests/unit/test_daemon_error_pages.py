"""The bundle's http.server daemons answer a request they cannot take with a fixed page and no version."""

from __future__ import annotations

import socket
import threading
from http.server import ThreadingHTTPServer

import pytest

from bottle_core.bundle.image.error_pages import FixedErrors


class Handler(FixedErrors):
    protocol_version = "HTTP/1.1"
    server_version = "bottle-test-daemon"

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_POST(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def daemon():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def ask(address, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out and out.endswith(b")\n") or out.endswith(b"ok"):
                break
        return out


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE-marker\r\n\r\n",
    b"PUT /hook?marker=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /marker HTTP/9.9\r\n\r\n",
    b"POST /marker HTTP/1.1\r\n" + b"X-Marker: " + b"m" * 70000 + b"\r\n\r\n",
])
def test_a_request_it_cannot_take_gets_a_fixed_page_quoting_nothing_of_it(daemon, request_bytes):
    answer = ask(daemon, request_bytes)
    assert b"the request was not served (HTTP " in answer
    assert b"marker" not in answer.lower() and b"Python" not in answer and b"GARBAGE" not in answer


def test_an_ordinary_request_is_served_and_the_server_names_no_version(daemon):
    answer = ask(daemon, b"POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok")
    assert b"Server: bottle-test-daemon\r\n" in answer and b"Python" not in answer
