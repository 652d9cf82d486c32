"""mitmproxy addon (loaded after ``proxy_addon.py``): ask the egress stage before relaying.

The proxy runs in upstream mode: every server connection goes through the
egress stage (squid on loopback), which alone resolves names and connects,
and refuses private and host addresses. When squid refuses a tunnel,
mitmproxy can only answer the agent with a bare 502; so before an allowed
CONNECT or plain-HTTP request is relayed, this addon asks squid whether it
would connect (see ``egress_stage``). A refusal becomes a 403 with
``X-Bottle-Decision: deny; rule=private-address`` and one decision record
with ``"stage": "egress"``. The egress stage checks again when it connects,
and the packet filter underneath. A flow the proxy answers inside the bundle
(a rehearsal's model requests, sent to the scripted model) is not asked about.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from mitmproxy import http

from .egress_stage import PREFLIGHT_HEADER, REFUSED, WOULD_CONNECT

RULE = "private-address"
IN_BUNDLE = "bottle.in_bundle"  # set by proxy_addon on a flow answered inside the bundle
TIMEOUT = 15.0  # a name the resolvers are slow to answer


async def ask(port: int, host: str, target_port: int) -> str:
    """What the egress stage would do with ``host:target_port``: REFUSED, WOULD_CONNECT or its error code."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
    try:
        authority = f"[{host}]:{target_port}" if ":" in host else f"{host}:{target_port}"
        writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{PREFLIGHT_HEADER}: 1\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    finally:
        writer.close()
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-squid-error":
            return value.split()[0] if value.split() else ""
    return ""


class EgressPreflight:
    def __init__(self) -> None:
        config = json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))
        self.port = int(config["egress"]["port"])

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        await self._check(flow, path="")

    async def request(self, flow: http.HTTPFlow) -> None:
        # Absolute-form plain HTTP only: requests inside a tunnel were checked with their CONNECT.
        if flow.request.scheme == "http" and flow.request.authority and flow.request.method != "CONNECT":
            # The question is the proxy's to ask: from the agent it would only confuse the egress stage.
            flow.request.headers.pop(PREFLIGHT_HEADER, None)
            await self._check(flow, path=flow.request.path.split("?", 1)[0])

    async def _check(self, flow: http.HTTPFlow, path: str) -> None:
        if flow.response is not None:  # the proxy's own policy refused it already
            return
        if flow.metadata.get(IN_BUNDLE):  # answered inside the bundle (the model script): no host to ask about
            return
        host, port = flow.request.host, flow.request.port
        try:
            answer = await ask(self.port, host, port)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            answer = f"no answer ({exc.__class__.__name__})"
        if answer == WOULD_CONNECT:
            return
        refused = answer == REFUSED
        reason = (f"{host} resolves to an address this bottle may not reach (private, loopback, link-local, "
                  "the host's or the engine's)" if refused else f"the egress stage did not answer: {answer}")
        rule = RULE if refused else "egress-stage-error"
        sys.stdout.write(json.dumps({
            "log": "egress", "event": "egress", "stage": "egress", "id": flow.id, "time": time.time(),
            "method": flow.request.method, "host": host, "port": port, "path": path, "status": 403,
            "bytes_in": 0, "bytes_out": 0, "decision": "deny", "rule": rule, "reason": reason,
        }) + "\n")
        sys.stdout.flush()
        hint = "; a bottle may opt a private CIDR in with egress.allow_private" if refused else ""
        flow.response = http.Response.make(
            403, f"bottle: egress to {host}:{port} refused (rule {rule}): {reason}{hint}\n",
            {"content-type": "text/plain; charset=utf-8", "X-Bottle-Decision": f"deny; rule={rule}"},
        )


addons = [EgressPreflight()]
