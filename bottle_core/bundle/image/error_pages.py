"""bottle's own words in place of every error page the bundle's daemons would write themselves.

mitmproxy answers a request it could not complete (a server's malformed
status line, header, chunk size or length, a refused or failed connection, a
TLS failure, an HTTP/2 stream error, a request it could not read) with a page
that quotes the error, and the error quotes what it could not parse: a bound
host that answers with the request echoed back into a malformed response
would hand the agent the real secret swapped into that request, on a page
the response scrubber never sees. Every such page is built by one function
per protocol (``make_error_response`` for HTTP/1, ``format_error`` for
HTTP/2); :func:`install` replaces both, so each page is a fixed text chosen
by its status code alone, and its ``Server`` header names no release. Responses mitmproxy makes as flows (an invalid
request scheme) reach the addon's ``response`` hook, which uses :func:`page`
too. The error itself goes to the egress log, scrubbed like every record.

The git gate and the supervisor are Python ``http.server`` daemons the agent
reaches directly; its stock error page quotes the request line (in the body
and in the status line's reason phrase) and its ``Server`` header names the
Python release. :class:`FixedErrors` gives their handlers the same kind of
page: one fixed sentence per status code, and no version.

Standard library only at import time (the daemons import this module); the
mitmproxy parts are imported where they are used.
"""

from __future__ import annotations

import http.server
from http import HTTPStatus

#: Where the agent is told to look; nothing from the server or the request is ever added.
TEXTS = {
    4: "bottle: the proxy could not read this request (HTTP {code}); the reason is in the bottle's egress log "
       "(bottle logs --egress).\n",
    5: "bottle: the server's answer could not be relayed (HTTP {code}); the reason is in the bottle's egress log "
       "(bottle logs --egress).\n",
}
#: Marks a page made here, for machines (the rule names the class, never the cause).
HEADER = ("X-Bottle-Decision", "error; rule=proxy-error")


def text(code: int) -> bytes:
    """The fixed text for ``code``: it depends on the status code alone."""
    return TEXTS.get(code // 100, TEXTS[5]).format(code=int(code)).encode()


def page(code: int):
    """The whole fixed response for ``code``, as a flow's response (a ``mitmproxy.http.Response``)."""
    from mitmproxy import http

    return http.Response.make(code, text(code), {"content-type": "text/plain; charset=utf-8", HEADER[0]: HEADER[1]})


#: The ``Server`` header of the proxy's own pages: its name, never mitmproxy's release.
SERVER = "bottle"


def _http1_page(status_code: int, message: str = "") -> bytes:
    from mitmproxy.net.http import http1

    response = page(status_code)
    response.headers["server"] = SERVER
    response.headers["connection"] = "close"
    return http1.assemble_response(response)


def _http2_body(status_code: int, message: str) -> bytes:
    return text(status_code)


def install() -> None:
    """Replace mitmproxy's error pages with :func:`text` (once; a mitmproxy without them stops the proxy)."""
    import types

    from mitmproxy.proxy.layers.http import _http1, _http2

    if not callable(getattr(_http1, "make_error_response", None)) or not callable(getattr(_http2, "format_error", None)) \
            or not isinstance(getattr(getattr(_http2, "version", None), "MITMPROXY", None), str):
        raise RuntimeError("this mitmproxy builds its error pages elsewhere: bottle cannot replace them")
    _http1.make_error_response = _http1_page
    _http2.format_error = _http2_body
    # The HTTP/2 page's Server header is the one use of the release the HTTP/2 layer makes: it names bottle instead.
    _http2.version = types.SimpleNamespace(MITMPROXY=SERVER)


# -- the bundle's own http.server daemons ------------------------------------------------------------------


def daemon_text(name: str, code: int) -> bytes:
    """A daemon's fixed sentence for ``code``: its name, the code and the code's standard phrase, nothing else."""
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = "Error"
    return f"{name}: the request was not served (HTTP {int(code)} {phrase}).\n".encode()


class FixedErrors(http.server.BaseHTTPRequestHandler):
    """An ``http.server`` handler whose error pages quote nothing of the request and name no version.

    ``send_error`` is what ``http.server`` answers a request it cannot take
    with (a malformed request line, a method with no ``do_`` handler, a line
    or header too long, too many headers): the stock page repeats the
    request's words in its body and its reason phrase. Here it is the
    standard reason phrase and :func:`daemon_text`, and the connection
    closes. ``Server`` is :attr:`server_version` alone, no Python release.
    """

    #: The name the daemon answers with (its ``Server`` header and its error pages); no version.
    server_version = "bottle"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        body = daemon_text(self.server_version, code)
        self.close_connection = True
        self.send_response(code)  # the standard reason phrase, never ``message`` (it may quote the request)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.wfile.write(body)
