"""Python run inside the agent by the attacker's-seat tests: a tunnel through the bottle's proxy, as a client makes one.

Each script is :data:`TUNNEL` followed by its own lines, run with ``python3 -c``.
"""

#: ``tunnel(host, port, alpn)``: CONNECT through the bottle's proxy, then TLS inside it offering ``alpn`` (no TLS when
#: None); ``read_all(sock, then=None, until=None)``: everything the other side sends until it closes or goes quiet
#: (or a whole line holding ``until`` has come), sending ``then`` once a head (a blank line) has come.
TUNNEL = r'''
import os, socket, ssl, sys
from urllib.parse import urlsplit


def tunnel(host, port, alpn, timeout=15):
    proxy = urlsplit(os.environ["HTTPS_PROXY"])
    raw = socket.create_connection((proxy.hostname, proxy.port), timeout=timeout)
    raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = raw.recv(1)
        if not chunk:
            raise EOFError("the proxy closed the tunnel")
        answer += chunk
    if alpn is None:
        return raw
    context = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    context.set_alpn_protocols([alpn])
    return context.wrap_socket(raw, server_hostname=host)


def read_all(sock, then=None, until=None):
    out = b""
    while until is None or not (until in out and out.endswith(b"\n")):
        try:
            data = sock.recv(65536)
        except OSError:
            break
        if not data:
            break
        out += data
        if then is not None and b"\r\n\r\n" in out:
            sock.sendall(then)
            then = None
    return out
'''


def script(body: str) -> str:
    """:data:`TUNNEL` and then ``body``."""
    return TUNNEL + body
