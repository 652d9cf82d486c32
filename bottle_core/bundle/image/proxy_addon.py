"""mitmproxy addon: the egress allow-list and the secret swap, with one JSON line per decision.

Settings come from the bundle's configuration file (``BOTTLE_BUNDLE_CONFIG``,
see ``bottle_core.bundle.contract``). A CONNECT or plain-HTTP request to a
host that is not on the egress allow-list gets a 403 whose body says why. ``*.example.com`` allows every subdomain of
example.com (not example.com itself); an entry with ``:port`` allows that
port only.

The agent holds only placeholders for secrets (the configuration names a
JSON file holding a list of name, placeholder, value and hosts). A request carrying a
placeholder to one of that secret's hosts goes out with the real value in its
place; to any other host it is refused.

In a rehearsal (``--model-script``) every request for the model host goes to
the scripted model server on the bundle's loopback instead: the model host is
never contacted, and its egress records say ``script``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from mitmproxy import http


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
    """One decision, as a JSON line on stdout: the host files it in the bottle's egress log."""
    sys.stdout.write(json.dumps({"log": "egress", **record}) + "\n")
    sys.stdout.flush()


def load_secrets(path: str | None) -> list[dict]:
    if not path:
        return []
    with open(path, encoding="utf-8") as handle:
        secrets = json.load(handle)
    for secret in secrets:
        secret["rules"] = parse_allow(",".join(secret["hosts"]))
    return secrets


class Egress:
    def __init__(self) -> None:
        with open(os.environ["BOTTLE_BUNDLE_CONFIG"], encoding="utf-8") as handle:
            config = json.load(handle)
        self.rules = parse_allow(",".join(config["egress"]["allow"]))
        self.secrets = load_secrets(config.get("secrets"))
        scripted = config.get("scripted_model")
        self.model_host = config["proxy"]["model_host"].lower() if scripted else None
        self.script_port = int(scripted["port"]) if scripted else None

    def _scripted(self, host: str) -> bool:
        return self.model_host is not None and host.lower().rstrip(".") == self.model_host

    def _decide(self, flow: http.HTTPFlow) -> None:
        host, port = flow.request.host, flow.request.port
        if self._scripted(host):
            emit({"event": "egress", "time": time.time(), "host": host, "port": port, "method": flow.request.method,
                  "decision": "script", "reason": "answered by the model script; the host is never contacted"})
            return
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
        if flow.response is None and self._scripted(flow.request.host):
            # Re-aimed before any upstream connection exists (connection_strategy=lazy).
            flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", self.script_port
            return
        if flow.response is None:
            self._swap_secrets(flow)

    def _swap_secrets(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        body = (request.get_content(strict=False) or b"") if self.secrets else b""
        for secret in self.secrets:
            placeholder = secret["placeholder"]
            in_headers = any(placeholder in value for value in request.headers.values())
            in_url, in_body = placeholder in request.path, placeholder.encode() in body
            if not (in_headers or in_url or in_body):
                continue
            host = request.host
            if not allowed(secret["rules"], host, request.port):
                emit({"event": "secret", "time": time.time(), "name": secret["name"], "host": host,
                      "decision": "deny", "reason": "host is not one the secret is bound to"})
                flow.response = http.Response.make(
                    403, f"bottle: secret {secret['name']} may not be sent to {host}\n",
                    {"content-type": "text/plain; charset=utf-8"},
                )
                return
            for key, value in list(request.headers.items()):
                if placeholder in value:
                    request.headers[key] = value.replace(placeholder, secret["value"])
            if in_url:
                request.path = request.path.replace(placeholder, secret["value"])
            if in_body:
                body = body.replace(placeholder.encode(), secret["value"].encode())
                request.set_content(body)
            emit({"event": "secret", "time": time.time(), "name": secret["name"], "host": host,
                  "decision": "swap", "reason": "placeholder replaced for a bound host"})


def _tunnelled(flow: http.HTTPFlow) -> bool:
    return flow.request.scheme == "https" or flow.client_conn.tls_established


addons = [Egress()]
