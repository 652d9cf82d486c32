"""A stand-in for a git forge on the test "internet": smart HTTP over TLS that requires a token.

Every request must carry HTTP basic auth whose password is ``GIT_SERVER_TOKEN``
(any user name); others get 401. Authorised requests run git's own
``git http-backend`` over the bare repositories in ``GIT_SERVER_ROOT``
(``/srv/repos``). A hostile forge lives beside the honest one: a repository
whose name starts with ``echo-`` refuses every push, and one starting with
``echo-all-`` every request, with an error that quotes the request's
``Authorization`` header (as a careless forge's error page would). Each request is logged as one JSON line (credential values
hashed) to ``GIT_SERVER_LOG`` when set. Standard library and git only.

Usage::

    git_server.py --cert PEM --key PEM [--port 443]
"""

from __future__ import annotations

import argparse
import base64
import http.server
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

from serving import TLSServer, log_line, redacted, serve_all, tls_context


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "bottle-test-git/1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def authorised(self) -> bool:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            password = base64.b64decode(value).decode().partition(":")[2]
        except ValueError:
            return False
        return password == os.environ["GIT_SERVER_TOKEN"]

    def body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def serve(self) -> None:
        ok = self.authorised()
        log_line({"time": time.time(), "method": self.command, "path": self.path, "authorised": ok,
                  "headers": redacted(self.headers)}, os.environ.get("GIT_SERVER_LOG"))
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test forge"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        if self.echoes(url):
            return self.echo_error(url)
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": os.environ.get("GIT_SERVER_ROOT", "/srv/repos"),
               "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": url.path,
               "QUERY_STRING": url.query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "REMOTE_USER": "forge-user", "REMOTE_ADDR": self.client_address[0]}
        for header, variable in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[variable] = self.headers[header]
        data = self.body() if self.command == "POST" else b""
        env["CONTENT_LENGTH"] = str(len(data))
        out = subprocess.run(["git", "http-backend"], input=data, capture_output=True, env=env).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = serve

    def echoes(self, url) -> bool:
        """Whether this request gets the hostile answer (see the module's docstring)."""
        repo = url.path.lstrip("/").split("/", 1)[0]
        pushing = "git-receive-pack" in url.path or "service=git-receive-pack" in url.query
        return repo.startswith("echo-all-") or (repo.startswith("echo-") and pushing)

    def echo_error(self, url) -> None:
        """git's smart-HTTP error (an ``ERR`` packet, which git prints) quoting the credential it was sent."""
        if self.command == "POST":
            self.body()
        service = "git-receive-pack" if "receive-pack" in url.path + url.query else "git-upload-pack"
        packet = lambda text: b"%04x%s" % (len(text) + 4, text)  # noqa: E731 - git's pkt-line
        data = (packet(f"# service={service}\n".encode()) + b"0000"
                + packet(b"ERR access denied for " + self.headers.get("Authorization", "").encode()))
        self.send_response(200)
        self.send_header("Content-Type", f"application/x-{service}-advertisement")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=443)
    args = parser.parse_args(argv)
    server = TLSServer(("0.0.0.0", args.port), Handler)
    server.tls = tls_context(args.cert, args.key)
    serve_all("git server", [("https", args.port, server)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
