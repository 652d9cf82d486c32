"""What the test servers share: a threaded HTTP(S) server, and request logging that never keeps a credential."""

from __future__ import annotations

import hashlib
import http.server
import json
import ssl
import threading

#: Header values never written to a log in clear; a hash lets a test compare them.
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie"}

_log_lock = threading.Lock()


def redacted(headers) -> dict[str, str]:
    """Headers by lower-case name, credential values replaced by ``sha256:<hex>``."""
    return {key.lower(): "sha256:" + hashlib.sha256(value.encode()).hexdigest()
            if key.lower() in SECRET_HEADERS else value for key, value in headers.items()}


def log_line(entry: dict, log_path: str | None) -> None:
    """One JSON line to the log file (when there is one) and to stdout."""
    line = json.dumps(entry)
    with _log_lock:
        if log_path:
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        print(line, flush=True)


class HandshakeInThread:
    """For a threading server: with ``tls`` set, each connection's handshake runs in its own thread."""

    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(30)  # a client that never finishes its handshake frees its thread
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                print(json.dumps({"tls_error": str(exc), "client": client_address[0]}), flush=True)
                return
        super().finish_request(request, client_address)


class TLSServer(HandshakeInThread, http.server.ThreadingHTTPServer):
    """A threaded HTTP server; with ``tls`` set, each connection's handshake runs in its own thread."""

    daemon_threads = True


def tls_context(cert: str, key: str, alpn: str = "http/1.1") -> ssl.SSLContext:
    """A server-side TLS context offering ``alpn`` with the given certificate chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols([alpn])
    return context


def serve_all(name: str, servers: list[tuple[str, int, TLSServer]]) -> None:
    """Serve every (scheme, port, server) at once; the "<name> listening on ..." lines tell the tests they are up."""
    for _, _, server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    for scheme, port, _ in servers:
        print(f"{name} listening on {scheme} port {port}", flush=True)
    servers[0][2].serve_forever()
