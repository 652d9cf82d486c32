"""Reading a bottle's logs from its host state dir: ``bottle logs TARGET``.

Each kind of log is one JSON-lines file under ``<state dir>/logs`` written by
:class:`bottle_core.bundle.logs.LogSink` as the bundle's daemons report. A new
kind is one entry in :data:`KINDS`: its file and how a record reads as text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .plan import FINISHED, Plan, state_root

FOLLOW_POLL = 0.2


@dataclass(frozen=True)
class LogKind:
    """One kind of log a bottle keeps."""

    name: str
    help: str
    text: Callable[[dict], str]

    @property
    def file(self) -> str:
        return f"{self.name}.jsonl"


def _clock(record: dict) -> str:
    stamp = record.get("time")
    return time.strftime("%H:%M:%S", time.localtime(stamp)) if isinstance(stamp, (int, float)) else "--:--:--"


def _egress_target(record: dict) -> str:
    host, port, scheme = record.get("host") or "-", record.get("port"), record.get("scheme")
    if record.get("method") == "TLS":  # TLS spoken to the proxy itself; host is the server name it asked for
        return f"{host} (to the proxy port {port})"
    if scheme:  # an HTTP request: shown as its URL (no query: the proxy never logs one)
        default = {"http": 80, "https": 443}.get(scheme)
        return f"{scheme}://{host}{'' if port in (None, default) else f':{port}'}{record.get('path') or ''}"
    return f"{host}:{port}" if port else host


def egress_text(record: dict) -> str:
    """``12:00:01 deny  GET http://denied.test/ 403  rule=not-allowed`` (bytes shown when any moved)."""
    status = record.get("status")
    moved = [f"{label}={record[key]}B" for label, key in (("out", "bytes_out"), ("in", "bytes_in"))
             if record.get(key)]
    parts = [_clock(record), f"{record.get('decision', '?'):<5}", str(record.get("method") or "?"),
             _egress_target(record), str(status) if status is not None else "-", *moved]
    rule = record.get("rule") or record.get("reason")
    return " ".join(parts) + (f"  rule={rule}" if rule else "")


def git_text(record: dict) -> str:
    """``12:00:01 pushed  origin refs/heads/bottle/x 1a2b3c4..5d6e7f8`` (and the rule and reason of a refusal)."""
    refs = " ".join(f"{r.get('ref')} {str(r.get('old'))[:7]}..{str(r.get('new'))[:7]}" for r in record.get("refs") or [])
    why = f"  rule {record['rule']}: {record.get('reason') or ''}" if record.get("rule") else ""
    return f"{_clock(record)} {record.get('decision', '?'):<7} {record.get('remote', '?')} {refs}{why}".rstrip()


def audit_text(record: dict) -> str:
    """``12:00:01 #4 deny  Bash rm -rf /workspace  denied by rule Bash(rm -rf:*) (supervise.deny)``."""
    event = record.get("event", "?")
    head = f"{_clock(record)} #{record.get('seq', '?')}"
    if event == "PreToolUse":
        call = _call_text(record.get("tool"), record.get("input"))
        ident = f" [id {record['id']}]" if record.get("id") else ""
        why = record.get("reason", "")
        if record.get("policy"):
            why = f"{why}; policy: {record['policy']}"
        return f"{head} {record.get('decision', '?'):<5} {call}{ident}  {why}".rstrip()
    if event == "Answer":
        return (f"{head} {record.get('decision', '?'):<5} answer to [id {record.get('id')}] {record.get('tool')}: "
                f"{record.get('outcome')}  {record.get('reason', '')}").rstrip()
    detail = record.get("tool") or record.get("prompt") or record.get("source") or record.get("reason") or \
        record.get("message") or ""
    return f"{head} {event} {_clip(str(detail))}".rstrip()


def model_text(record: dict) -> str:
    """``12:00:01 POST /v1/messages  3 messages, last: tool_result ...  -> tool_use Bash``."""
    body = record.get("body") if isinstance(record.get("body"), dict) else {}
    reply = record.get("reply") or {}
    served = ""
    if reply:
        tools = reply.get("tool_use") or []
        names = [t.get("name") for t in ([tools] if isinstance(tools, dict) else tools) if isinstance(t, dict)]
        served = "  -> " + (f"tool_use {', '.join(map(str, names))}" if names else f"text {_clip(str(reply.get('text', '')), 40)}")
    messages = body.get("messages") or []
    said = f"  {len(messages)} messages" if messages else ""
    return f"{_clock(record)} {record.get('method', '?')} {record.get('path', '')} {record.get('status', '')}{said}{served}"


def _call_text(tool, tool_input) -> str:
    if isinstance(tool_input, dict):
        shown = tool_input.get("command") or tool_input.get("file_path") or tool_input.get("url") or \
            tool_input.get("pattern") or ""
        return f"{tool} {_clip(str(shown))}".rstrip()
    return str(tool)


def _clip(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


KINDS: dict[str, LogKind] = {
    kind.name: kind for kind in (
        LogKind("egress", "the proxy's decisions: each request allowed or refused, and the rule", egress_text),
        LogKind("git", "the git gate's push decisions: refs, old and new, pushed or refused and by which rule",
                git_text),
        LogKind("audit", "the supervisor's record: every hook event and every tool call's decision, in order",
                audit_text),
        LogKind("model", "what the scripted model server received (runs with --model-script)", model_text),
    )
}


def summary(state_dir: Path) -> list[str]:
    """The end-of-run lines: refs pushed and where they landed, pushes refused, egress counts and blocked hosts."""
    found = records(state_dir, KINDS.values())
    lines = []
    pushes = [r for r in found if r["log"] == "git"]
    landed = [f"{ref.get('ref', '?').removeprefix('refs/heads/')} -> {r.get('upstream', r.get('remote'))}"
              for r in pushes if r.get("decision") == "pushed" for ref in r.get("refs") or [] if ref.get("new", "") != "0" * 40]
    refused = [r for r in pushes if r.get("decision") == "refused"]
    if pushes:
        text = f"pushed {', '.join(landed)}" if landed else "nothing pushed"
        if refused:
            rules = sorted({str(r.get("rule")) for r in refused})
            text += f"; {len(refused)} push{'es' if len(refused) > 1 else ''} refused ({', '.join(rules)})"
        lines.append(f"git: {text}")
    egress = [r for r in found if r["log"] == "egress" and r.get("event", "egress") == "egress"]
    if egress:
        blocked = [r for r in egress if r.get("decision") == "deny"]
        text = f"egress: {len(egress) - len(blocked)} allowed, {len(blocked)} blocked"
        if blocked:
            text += f" ({', '.join(sorted({str(r.get('host')) for r in blocked}))})"
        lines.append(text)
    return lines


def find_state_dir(target: str) -> Path:
    """The state dir of bottle ``target``: a slug, or an agent name meaning its most recent bottle."""
    root = state_root()
    direct = root / target
    if target and "/" not in target and (direct / "plan.json").is_file():
        return direct
    newest: tuple[float, Path] | None = None
    for plan_file in root.glob("*/plan.json") if root.is_dir() else []:
        try:
            plan = Plan.read(plan_file)
        except (OSError, ValueError):
            continue
        if plan.agent == target and (newest is None or plan.created_at > newest[0]):
            newest = (plan.created_at, plan_file.parent)
    if newest is None:
        raise UsageError(f"no bottle or agent named {target!r} has logs here",
                         hint=f"give a slug from `bottle ls` or an agent that has run; state is kept in {root}")
    return newest[1]


def records(state_dir: Path, kinds: Iterable[LogKind]) -> list[dict]:
    """Every record of ``kinds`` so far, in time order, each tagged with its kind."""
    found = []
    for kind in kinds:
        path = state_dir / "logs" / kind.file
        if path.is_file():
            found += [dict(record, log=kind.name) for record in _parse(path.read_text(encoding="utf-8"))]
    # Stable: records of one kind stay in the order they were written (the audit log's seq) at equal times.
    return sorted(found, key=lambda r: r.get("time") if isinstance(r.get("time"), (int, float)) else 0)


def follow(state_dir: Path, kinds: Iterable[LogKind]) -> Iterator[dict]:
    """Records as they are written, until the bottle has ended (or the caller stops)."""
    kinds = list(kinds)
    offsets = {kind.name: 0 for kind in kinds}
    while True:
        ended = (state_dir / FINISHED).exists()
        for kind in kinds:
            path = state_dir / "logs" / kind.file
            if not path.is_file():
                continue
            with path.open("rb") as handle:
                handle.seek(offsets[kind.name])
                chunk = handle.read()
            complete = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next round
            offsets[kind.name] += len(complete)
            for record in _parse(complete.decode("utf-8", "replace")):
                yield dict(record, log=kind.name)
        if ended:
            return
        time.sleep(FOLLOW_POLL)


def render(record: dict, *, as_json: bool) -> str:
    """One record as a JSON line, or as text for a person."""
    if as_json:
        return json.dumps(record, sort_keys=True)
    kind = KINDS.get(record.get("log", ""))
    text = kind.text(record) if kind else json.dumps(record)
    return f"{record.get('log', '?'):<7} {text}"


def _parse(text: str) -> Iterator[dict]:
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
