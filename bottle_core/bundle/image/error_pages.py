"""bottle's own words in place of every error page mitmproxy writes itself.

mitmproxy answers a request it could not complete (a server's malformed
status line, header, chunk size or length, a refused or failed connection, a
TLS failure, an HTTP/2 stream error, a request it could not read) with a page
that quotes the error, and the error quotes what it could not parse: a bound
host that answers with the request echoed back into a malformed response
would hand the agent the real secret swapped into that request, on a page
the response scrubber never sees. Every such page is built by one function
per protocol (``make_error_response`` for HTTP/1, ``format_error`` for
HTTP/2); :func:`install` replaces both, so each page is a fixed text chosen
by its status code alone. Responses mitmproxy makes as flows (an invalid
request scheme) reach the addon's ``response`` hook, which uses :func:`page`
too. The error itself goes to the egress log, scrubbed like every record.
"""

from __future__ import annotations

from mitmproxy import http, version
from mitmproxy.net.http import http1
from mitmproxy.proxy.layers.http import _http1, _http2

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


def page(code: int) -> http.Response:
    """The whole fixed response for ``code``, as a flow's response."""
    return http.Response.make(code, text(code), {"content-type": "text/plain; charset=utf-8", HEADER[0]: HEADER[1]})


def _http1_page(status_code: int, message: str = "") -> bytes:
    response = page(status_code)
    response.headers["server"] = version.MITMPROXY
    response.headers["connection"] = "close"
    return http1.assemble_response(response)


def _http2_body(status_code: int, message: str) -> bytes:
    return text(status_code)


def install() -> None:
    """Replace mitmproxy's error pages with :func:`text` (once; a mitmproxy without them stops the proxy)."""
    if not callable(getattr(_http1, "make_error_response", None)) or not callable(getattr(_http2, "format_error", None)):
        raise RuntimeError("this mitmproxy builds its error pages elsewhere: bottle cannot replace them")
    _http1.make_error_response = _http1_page
    _http2.format_error = _http2_body
