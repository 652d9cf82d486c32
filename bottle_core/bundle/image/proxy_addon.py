"""mitmproxy addon: the egress allow-list and the secret swap, with one JSON line per decision.

Settings come from the bundle's configuration file (``BOTTLE_BUNDLE_CONFIG``,
see ``bottle_core.bundle.contract``). A CONNECT or plain-HTTP request to a
host that is not on the egress allow-list gets a 403 whose body says why. ``*.example.com`` allows every subdomain of
example.com (not example.com itself); an entry with ``:port`` allows that
port only.

The agent holds only placeholders for secrets (the configuration names a
JSON file holding a list of name, placeholder, value, hosts and swap_in). A request carrying a
placeholder to one of that secret's hosts goes out with the real value in its
place (in the parts ``swap_in`` names, over HTTPS only); to any other host it is refused.

Every request is inspected first (``inspection.py``), every response scrubbed
of real secret values and read for prompt injection (``response_inspection.py``).
"""

from __future__ import annotations

import json
import os
import sys
import time

from mitmproxy import http

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from inspection import Inspector  # noqa: E402
from response_inspection import Scrubber, find_injection  # noqa: E402


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
        self.inspector = Inspector(self.secrets, config["egress"]["allow"], config["proxy"].get("model_host"))
        self.scrubber = Scrubber(self.secrets)
        self.responses = config["egress"].get("responses", "block")
        self.model_host = config["proxy"].get("model_host")

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
        if flow.response is None:
            self._inspect(flow)  # data in the host name is refused before any TLS or name lookup

    def request(self, flow: http.HTTPFlow) -> None:
        # Requests inside an allowed CONNECT tunnel were decided at CONNECT time.
        if flow.response is None and not _tunnelled(flow):
            self._decide(flow)
        if flow.response is None:
            self._inspect(flow)
        if flow.response is None:
            self._swap_secrets(flow)

    def _inspect(self, flow: http.HTTPFlow) -> None:
        """Refuse a request whose content carries a secret or credential to a host it is not bound to."""
        request = flow.request
        path = "" if request.method == "CONNECT" else request.path
        finding = self.inspector.inspect(request.host, request.port, path, request.headers.items(multi=True),
                                         request.get_content(strict=False) or b"", request.headers.get("content-type", ""))
        if finding:
            emit({"event": "inspect", "time": time.time(), "host": request.host, "port": request.port,
                  "method": request.method, "decision": "deny", "rule": finding.rule, "name": finding.name,
                  "where": finding.where, "reason": finding.reason()})
            _refuse(flow, finding.rule, f"bottle: request to {request.host} refused: {finding.reason()}\n")

    def response(self, flow: http.HTTPFlow) -> None:
        """Put placeholders back for real secret values, then read the body for prompt injection."""
        if flow.response is None or flow.metadata.get("bottle-refused"):
            return
        response, host = flow.response, flow.request.host
        scrubbed = 0
        for key, value in list(response.headers.items(multi=True)):
            clean, count = self.scrubber.scrub(value.encode("utf-8", "surrogateescape"))
            if count:
                response.headers[key] = clean.decode("utf-8", "surrogateescape")
                scrubbed += count
        body = response.get_content(strict=False) or b""
        clean, count = self.scrubber.scrub(body)
        if count:
            response.set_content(clean)
            scrubbed += count
        if scrubbed:
            emit({"event": "scrub", "time": time.time(), "host": host, "decision": "scrub", "rule": "response-secret",
                  "count": scrubbed, "reason": "real secret values in the response replaced by placeholders"})
        if self.responses == "off" or host == self.model_host:
            return
        verdict = find_injection(clean, response.headers.get("content-type", ""))
        if verdict.injection:
            action = "deny" if self.responses == "block" else "warn"
            emit({"event": "response", "time": time.time(), "host": host, "method": flow.request.method,
                  "decision": action, "rule": verdict.rule(), "signals": list(verdict.signals), "reason": verdict.reason()})
            if action == "deny":
                _refuse(flow, verdict.rule(), f"bottle: the response from {host} was withheld: {verdict.reason()}\n")
            else:
                response.headers["x-bottle-warning"] = verdict.reason()

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
            if not _tunnelled(flow):
                emit({"event": "secret", "time": time.time(), "name": secret["name"], "host": host,
                      "decision": "deny", "rule": "secret-plain-http", "reason": "secrets are never sent over plain HTTP"})
                _refuse(flow, "secret-plain-http", f"bottle: secret {secret['name']} is never sent over plain HTTP; "
                        f"use https://{host}\n")
                return
            swap_in = secret.get("swap_in") or ["header"]
            for key, value in list(request.headers.items()):
                if placeholder in value and "header" in swap_in:
                    request.headers[key] = value.replace(placeholder, secret["value"])
            if in_url and "url" in swap_in:
                request.path = request.path.replace(placeholder, secret["value"])
            if in_body and "body" in swap_in:
                body = body.replace(placeholder.encode(), secret["value"].encode())
                request.set_content(body)
            emit({"event": "secret", "time": time.time(), "name": secret["name"], "host": host,
                  "decision": "swap", "reason": "placeholder replaced for a bound host"})


def _refuse(flow: http.HTTPFlow, rule: str, text: str) -> None:
    flow.metadata["bottle-refused"] = True
    flow.response = http.Response.make(403, text, {"content-type": "text/plain; charset=utf-8",
                                                   "x-bottle-decision": f"deny; rule={rule}"})


def _tunnelled(flow: http.HTTPFlow) -> bool:
    return flow.request.scheme == "https" or flow.client_conn.tls_established


addons = [Egress()]
