"""The supervisor: every Claude Code hook event of the agent, judged by the policy and recorded in order.

Claude Code's managed settings (see ``bottle_core/supervise.py``) send each
hook event of the agent's claude as an ``http`` hook: a ``POST`` of the hook's
JSON input to ``http://<bundle-ip>:<port>/hook?event=NAME``, made by claude
itself, with no process started per event. The answer is Claude Code's hook
output (:func:`claude_output`): ``{}`` lets the event pass (for a tool call:
no objection, claude goes on as without a hook); a PreToolUse is refused with
``permissionDecision: "deny"`` and the reason the model sees, a
UserPromptSubmit with ``decision: "block"``. Whatever else happens -- no
answer in time, the supervisor unreachable, a status other than 2xx, a body
that is not valid hook JSON -- blocks a PreToolUse or UserPromptSubmit in
Claude Code itself (their hooks say ``onFailure: "block"``); the other
events, which cannot be undone, get a non-blocking error.

In ``enforce`` mode a PreToolUse is decided by the policy (``policy.py``):
allow, deny, or ask -- an asked call waits until the user answers through the
control socket (``bottle approve`` / ``bottle deny``, see
``supervise_ctl.py``) or ``ask_timeout`` passes, which is a deny. In ``audit``
mode every call is allowed and the policy's verdict is only recorded.

Every event and decision is printed as one JSON line with ``"log": "audit"``
and a sequence number, in the order they happen; the host files them in the
bottle's audit log. The control socket is a Unix socket inside the bundle: the
agent, which reaches the bundle only over the network, cannot answer its own
questions.

The agent can also post to the hook port itself, as any program in the
bottle can: so every record made from a hook event is marked
``"agent_reported": true`` (it says what the agent's side reported, which a
hostile agent can forge or leave out), while the answers of the user are
not. And the agent cannot flood the log or the bundle: a hook event is at
most :data:`MAX_BODY` bytes, a record at most :data:`MAX_RECORD`, events
beyond :data:`RATE` a second (after a burst of :data:`BURST`) are refused
(a PreToolUse is denied, so no call runs unrecorded) with one marker record
per refusal spell; idle connections cost no thread (``held_connections``:
one watcher holds them, a client keeps a bounded number, idle ones close),
and requests run in a bounded pool.
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
import threading
import time
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import readiness
from .error_pages import FixedErrors
from .held_connections import HeldConnectionsServer
from .policy import Policy, Where
from .rate_limit import RateLimit

CONTROL_SOCKET = "/var/lib/bottle/supervise.sock"
#: Longest string kept from a tool's input or response in the audit log.
KEEP_CHARS = 4000
#: Longest list or object (in items) kept whole in the audit log.
KEEP_ITEMS = 100
#: Fields of each hook input worth keeping besides the tool's (the rest repeats itself every event).
EVENT_FIELDS = ("prompt", "source", "reason", "message", "notification_type", "stop_hook_active", "trigger")
#: Largest hook event accepted, in bytes; a larger one is refused unread.
MAX_BODY = 4 * 1024 * 1024
#: Longest audit record, in bytes of JSON; a longer one keeps only its head.
MAX_RECORD = 64 * 1024
#: Hook events accepted per second once a burst of BURST is spent; more are refused (fail closed).
RATE, BURST = 10.0, 100


def clipped(value, limit: int = KEEP_CHARS, depth: int = 0):
    """``value`` with long strings, long lists and deep nesting cut (marked), so one huge input cannot flood the log."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + f"... [{len(value) - limit} more characters]"
    if depth > 8 and isinstance(value, (dict, list)):
        return "[nested too deep]"
    if isinstance(value, dict):
        items = list(value.items())
        kept = {str(key)[:limit]: clipped(item, limit, depth + 1) for key, item in items[:KEEP_ITEMS]}
        if len(items) > KEEP_ITEMS:
            kept["..."] = f"[{len(items) - KEEP_ITEMS} more keys]"
        return kept
    if isinstance(value, list):
        kept = [clipped(item, limit, depth + 1) for item in value[:KEEP_ITEMS]]
        return kept + ([f"[{len(value) - KEEP_ITEMS} more items]"] if len(value) > KEEP_ITEMS else [])
    return value


def call_hash(tool: str, tool_input) -> str:
    """What ``bottle pending`` shows and ``bottle approve --hash`` checks: a digest of the whole call."""
    text = json.dumps({"tool": tool, "input": tool_input}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Answer:
    """The supervisor's answer to one hook event: ``allow`` or ``deny`` (a PreToolUse), ``ok`` (recorded only)."""

    decision: str
    reason: str = ""


ALLOW, OK = Answer("allow"), Answer("ok")


def claude_output(event: str, answer: Answer) -> tuple[int, dict]:
    """The HTTP status and Claude Code hook output for ``answer`` to ``event``.

    A refused event that Claude Code cannot block by its output gets a status other than 2xx: its
    hook's ``onFailure`` decides (see :mod:`bottle_core.supervise`).
    """
    if answer.decision != "deny":
        return 200, {}
    if event == "PreToolUse":
        return 200, {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                            "permissionDecisionReason": answer.reason}}
    if event == "UserPromptSubmit":
        return 200, {"decision": "block", "reason": answer.reason}
    return 429, {"error": answer.reason}


@dataclass
class Waiting:
    """A tool call held for the user's answer."""

    id: str
    tool: str
    tool_input: dict
    reason: str
    hash: str
    since: float = field(default_factory=time.time)
    answered: threading.Event = field(default_factory=threading.Event)
    approve: bool = False
    answer_reason: str = ""


class Supervisor:
    """The policy, the calls waiting for an answer, and the ordered audit record."""

    def __init__(self, config: dict):
        self.mode = config.get("mode", "audit")
        self.policy = Policy.from_config(config)
        self.ask_timeout = float(config.get("ask_timeout", 300))
        self.where = Where(workspace=config.get("workspace", "/workspace"), home=config.get("home", "/home/agent"))
        self.waiting: dict[str, Waiting] = {}
        self.rate = RateLimit(RATE, BURST)
        self._lock = threading.Lock()
        self._seq = 0
        self._ids = 0

    def record(self, record: dict) -> None:
        """One audit line, numbered in the order events happen; one too long keeps only its head (marked)."""
        with self._lock:
            self._seq += 1
            head = {"log": "audit", "time": time.time(), "seq": self._seq}
            line = json.dumps({**head, **record})
            if len(line) > MAX_RECORD:
                kept = {key: record[key] for key in ("event", "agent_reported", "decision", "id", "hash")
                        if key in record}
                line = json.dumps({**head, **kept, "tool": str(record.get("tool", ""))[:200],
                                   "truncated": f"record of {len(line)} bytes cut to its head",
                                   "head": line[:KEEP_CHARS]})
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def admit(self, name: str) -> bool:
        """Whether one more hook event fits the rate; a marker record opens and closes each spell of refusals."""
        allowed, refused = self.rate.take()
        if not allowed and refused == 1:
            self.record({"event": "RateLimit",
                         "reason": f"more than {RATE:g} hook events a second: refused (PreToolUse denied) until "
                                   "the rate drops"})
        elif allowed and refused:
            self.record({"event": "RateLimit",
                         "reason": f"{refused} hook events refused, not recorded (the first a {name})"})
        return allowed

    def event(self, name: str, payload: dict) -> Answer:
        """Record one hook event and return the answer for Claude Code."""
        if not self.admit(name):
            return Answer("deny", "bottle supervisor: too many hook events at once; refused")
        # Everything here came from the agent's side of the bottle: marked so, a hostile agent could post it.
        base = {"event": name, "session": payload.get("session_id"), "agent_reported": True}
        if name != "PreToolUse":
            extra = {key: clipped(payload[key]) for key in EVENT_FIELDS if key in payload}
            if "tool_name" in payload:
                extra.update(tool=payload["tool_name"], tool_use_id=payload.get("tool_use_id"),
                             response=clipped(payload.get("tool_response"), 1000))
            self.record({**base, **extra})
            return OK
        tool = str(payload.get("tool_name", ""))
        tool_input = payload.get("tool_input") if isinstance(payload.get("tool_input"), dict) else {}
        call = {**base, "tool": tool, "input": clipped(tool_input), "tool_use_id": payload.get("tool_use_id"),
                "hash": call_hash(tool, tool_input)}
        where = Where(self.where.workspace, self.where.home, str(payload.get("cwd") or self.where.workspace))
        verdict = self.policy.decide(tool, tool_input, where)
        if self.mode != "enforce":
            self.record({**call, "decision": "allow", "reason": "audit mode: recorded, not judged",
                         "policy": verdict.decision, "policy_reason": verdict.reason})
            return ALLOW
        if verdict.decision == "allow":
            self.record({**call, "decision": "allow", "reason": verdict.reason, "rule": verdict.rule})
            return ALLOW
        if verdict.decision == "deny":
            self.record({**call, "decision": "deny", "reason": verdict.reason, "rule": verdict.rule})
            return Answer("deny", f"bottle supervisor: {tool} call {verdict.reason}")
        return self._ask(call, tool, tool_input, verdict.reason, verdict.rule)

    def _ask(self, call: dict, tool: str, tool_input: dict, reason: str, rule: str | None) -> Answer:
        with self._lock:
            self._ids += 1
            # The whole input, as the call would run: `bottle pending --full` shows it, its hash names it.
            waiting = Waiting(str(self._ids), tool, tool_input, reason, call["hash"])
            self.waiting[waiting.id] = waiting
        self.record({**call, "decision": "ask", "id": waiting.id, "reason": reason, "rule": rule,
                     "timeout": self.ask_timeout})
        answered = waiting.answered.wait(self.ask_timeout)
        with self._lock:
            self.waiting.pop(waiting.id, None)
        if not answered:
            why = f"no answer within {self.ask_timeout:g} s (supervise.ask_timeout), so it is denied"
            self.record({"event": "Answer", "id": waiting.id, "tool": tool, "outcome": "timeout",
                         "decision": "deny", "reason": why})
            return Answer("deny", f"bottle supervisor: {tool} call {reason}; {why}")
        outcome = "approved" if waiting.approve else "denied"
        self.record({"event": "Answer", "id": waiting.id, "tool": tool, "outcome": outcome,
                     "decision": "allow" if waiting.approve else "deny", "reason": waiting.answer_reason})
        if waiting.approve:
            return ALLOW
        said = f": {waiting.answer_reason}" if waiting.answer_reason else ""
        return Answer("deny", f"bottle supervisor: the user denied this {tool} call{said}")

    def pending(self) -> list[dict]:
        now = time.time()
        with self._lock:
            return [{"id": w.id, "tool": w.tool, "input": w.tool_input, "reason": w.reason, "hash": w.hash,
                     "age": round(now - w.since, 1), "left": round(max(0.0, self.ask_timeout - (now - w.since)), 1)}
                    for w in self.waiting.values()]

    def answer(self, call_id: str, approve: bool, reason: str, expect_hash: str | None = None) -> str | None:
        """Answer a waiting call; an error text when no call waits under that id, or it is not the call hashed."""
        with self._lock:
            waiting = self.waiting.get(call_id)
            if waiting is None or waiting.answered.is_set():
                ids = ", ".join(sorted(self.waiting)) or "none"
                return f"no call waits under id {call_id!r} (waiting: {ids})"
            if expect_hash and waiting.hash != expect_hash.lower():
                return (f"call {call_id} has hash {waiting.hash}, not {expect_hash}: it is not the call you "
                        "checked; see `bottle pending --full`")
            waiting.approve, waiting.answer_reason = approve, reason
            waiting.answered.set()
        return None


class HookHandler(FixedErrors):
    """``POST /hook?event=NAME`` from Claude Code's http hooks; nothing else is served.

    Every refusal here that is not a deny in Claude Code's own words is a status other than 2xx, which
    blocks a PreToolUse or UserPromptSubmit (``onFailure: "block"``) and never passes for an answer.
    A request ``http.server`` cannot take gets a fixed page quoting nothing of it (``FixedErrors``).
    """

    protocol_version = "HTTP/1.1"
    server_version = "bottle-supervisor"
    # Claude Code keeps its connection: without this, each answer's body waits out the peer's delayed ACK (~40 ms).
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the audit log is the record

    def _reply(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        event = (parse_qs(url.query).get("event") or [""])[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body is never read
            return self._reply(413, {"error": f"bottle supervisor: a hook event over {MAX_BODY} bytes is refused"})
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            payload = None
        if url.path != "/hook" or not isinstance(payload, dict):
            return self._reply(400, {"error": "bottle supervisor: the hook sent no JSON event"})
        event = event or str(payload.get("hook_event_name", ""))
        self._reply(*claude_output(event, self.server.supervisor.event(event, payload)))

    def do_GET(self):  # noqa: N802
        self._reply(404, {"error": "not here"})


class ControlHandler(socketserver.StreamRequestHandler):
    """One JSON request a line on the control socket: ``{"op": "pending"}`` or ``{"op": "answer", ...}``."""

    def handle(self):
        supervisor: Supervisor = self.server.supervisor
        for line in self.rfile:
            try:
                request = json.loads(line)
                if request.get("op") == "pending":
                    reply = {"pending": supervisor.pending()}
                elif request.get("op") == "answer":
                    error = supervisor.answer(str(request["id"]), bool(request["approve"]),
                                              str(request.get("reason") or ""), request.get("hash") or None)
                    reply = {"error": error} if error else {"ok": True}
                else:
                    reply = {"error": f"unknown op {request.get('op')!r}"}
            except (ValueError, KeyError, AttributeError) as exc:
                reply = {"error": f"bad request: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class HookServer(HeldConnectionsServer):
    """Idle connections cost no thread (``held_connections``); asked calls wait in a worker, so more of them."""

    workers = 32


class ControlServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


def main() -> None:
    config = json.loads(Path(os.environ["BOTTLE_BUNDLE_CONFIG"]).read_text(encoding="utf-8"))
    settings = config["supervise"]
    supervisor = Supervisor(settings)
    Path(CONTROL_SOCKET).unlink(missing_ok=True)
    old_mask = os.umask(0o077)  # the socket is the bundle user's alone
    control = ControlServer(CONTROL_SOCKET, ControlHandler)
    os.umask(old_mask)
    control.supervisor = supervisor
    threading.Thread(target=control.serve_forever, daemon=True).start()
    # On the socket the entry point listened on since the bundle started (it starts the supervisor on first use).
    hooks = readiness.server(HookServer, (settings["listen_host"], int(settings["port"])), HookHandler)
    hooks.supervisor = supervisor
    hooks.serve_forever()


if __name__ == "__main__":
    main()
