"""mitmproxy addon: the egress allow-list, with one JSON line per decision.

A CONNECT or plain-HTTP request to a host that is not on ``BOTTLE_ALLOW``
gets a 403 whose body says why. ``*.example.com`` allows every subdomain of
example.com (not example.com itself); an entry with ``:port`` allows that
port only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

from mitmproxy import http

READY_LINE = "bottle-bundle: ready"


def parse_allow(text: str) -> list[tuple[str, int | None]]:
    rules = []
    for entry in filter(None, (part.strip().lower() for part in text.split(","))):
        host, _, port = entry.partition(":")
        rules.append((host, int(port) if port else None))
    return rules


def allowed(rules: list[tuple[str, int | None]], host: str, port: int) -> bool:
    host = host.lower().rstrip(".")
    for pattern, rule_port in rules:
        if rule_port is not None and rule_port != port:
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class Egress:
    def __init__(self) -> None:
        self.rules = parse_allow(os.environ.get("BOTTLE_ALLOW", ""))

    def running(self) -> None:
        # Say "ready" only once the listening socket accepts, not merely when start-up began.
        threading.Thread(target=self._announce_ready, daemon=True).start()

    def _announce_ready(self) -> None:
        host = os.environ["BOTTLE_PROXY_HOST"]
        port = int(os.environ.get("BOTTLE_PROXY_PORT", "8080"))
        for _ in range(600):
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        print(READY_LINE, flush=True)

    def _decide(self, flow: http.HTTPFlow) -> None:
        host, port = flow.request.host, flow.request.port
        ok = allowed(self.rules, host, port)
        reason = "on the allow-list" if ok else "not on this bottle's allow-list"
        emit({"event": "egress", "time": time.time(), "host": host, "port": port,
              "method": flow.request.method, "decision": "allow" if ok else "deny", "reason": reason})
        if not ok:
            flow.response = http.Response.make(
                403, f"bottle: egress to {host} is not on this bottle's allow-list\n",
                {"content-type": "text/plain; charset=utf-8"},
            )

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._decide(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        # Requests inside an allowed CONNECT tunnel were decided at CONNECT time.
        if flow.response is None and not _tunnelled(flow):
            self._decide(flow)


def _tunnelled(flow: http.HTTPFlow) -> bool:
    return flow.request.scheme == "https" or flow.client_conn.tls_established


addons = [Egress()]
