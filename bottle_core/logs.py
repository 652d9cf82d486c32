"""Reading a bottle's logs from its host state dir: ``bottle logs TARGET``.

Each kind of log is one JSON-lines file under ``<state dir>/logs`` written by
:class:`bottle_core.bundle.logs.LogSink` as the bundle's daemons report. A new
kind is one entry in :data:`KINDS`: its file and how a record reads as text.

Logs are read a line at a time, never whole (a log is capped, but can still be
large), and every text shown has its control characters made visible
(:func:`bottle_core.terminal.visible`): a record holds what the agent sent.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .bundle.logs import LIMIT_EVENT
from .errors import UsageError
from .log_kinds import KIND_HELP
from .plan import FINISHED, UNCLAIMED, Plan, state_root
from .terminal import visible

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
    if not isinstance(detail, str):  # a forged event can put anything where a name goes
        detail = json.dumps(detail)
    return f"{head} {event} {_clip(detail)}".rstrip()


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


_RENDER = {"egress": egress_text, "git": git_text, "audit": audit_text, "model": model_text}
KINDS: dict[str, LogKind] = {name: LogKind(name, help_, _RENDER[name]) for name, help_ in KIND_HELP.items()}


def summary(state_dir: Path) -> list[str]:
    """The end-of-run lines: refs pushed and where they landed, pushes refused, egress counts and blocked hosts.

    Counted while the logs are read, a record at a time; a log that hit its cap says so.
    """
    lines = []
    pushes, landed, refused, rules = 0, [], 0, set()
    for r in read_records(state_dir / "logs" / KINDS["git"].file):
        if r.get("event") == LIMIT_EVENT:
            continue
        pushes += 1
        if r.get("decision") == "pushed":
            landed += [f"{str(ref.get('ref', '?')).removeprefix('refs/heads/')} -> {r.get('upstream', r.get('remote'))}"
                       for ref in r.get("refs") or [] if isinstance(ref, dict) and ref.get("new", "") != "0" * 40]
        elif r.get("decision") == "refused":
            refused += 1
            rules.add(str(r.get("rule")))
    if pushes:
        text = f"pushed {', '.join(landed)}" if landed else "nothing pushed"
        if refused:
            text += f"; {refused} push{'es' if refused > 1 else ''} refused ({', '.join(sorted(rules))})"
        lines.append(f"git: {text}")
    allowed, blocked, hosts = 0, 0, set()
    for r in read_records(state_dir / "logs" / KINDS["egress"].file):
        if r.get("event", "egress") != "egress":
            continue
        if r.get("decision") == "deny":
            blocked += 1
            if len(hosts) < 20:
                hosts.add(str(r.get("host")))
        else:
            allowed += 1
    if allowed or blocked:
        text = f"egress: {allowed} allowed, {blocked} blocked"
        if hosts:
            text += f" ({', '.join(sorted(hosts))}{', ...' if blocked > len(hosts) and len(hosts) == 20 else ''})"
        lines.append(text)
    capped = sorted(kind.name for kind in KINDS.values() if any(
        r.get("event") == LIMIT_EVENT for r in read_records(state_dir / "logs" / kind.file, only_markers=True)))
    if capped:
        lines.append(f"logs: {', '.join(capped)} hit {'its' if len(capped) == 1 else 'their'} size or rate cap; "
                     "records past it were dropped (see bottle logs)")
    return lines


def find_state_dir(target: str) -> Path:
    """The state dir of bottle ``target``: a slug, or an agent name meaning its most recent bottle (a warm
    pool's bottles count once a run has claimed them)."""

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
        if (plan_file.parent / UNCLAIMED).exists():
            continue
        if plan.agent == target and (newest is None or plan.created_at > newest[0]):
            newest = (plan.created_at, plan_file.parent)
    if newest is None:
        raise UsageError(f"no bottle or agent named {target!r} has logs here",
                         hint=f"give a slug from `bottle ls` or an agent that has run; state is kept in {root}")
    return newest[1]


def read_records(path: Path, *, only_markers: bool = False) -> Iterator[dict]:
    """The records of one log file in the order written, read a line at a time (nothing when it is missing).

    :param only_markers: skip lines that cannot be a cap's marker without parsing them (fast scan).
    """
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        for line in handle:
            if only_markers and LIMIT_EVENT.encode() not in line:
                continue
            record = _parse_line(line)
            if record is not None:
                yield record


def _time(record: dict) -> float:
    stamp = record.get("time")
    return float(stamp) if isinstance(stamp, (int, float)) else 0.0


#: Records held back per log to put it in time order (a daemon may file a record after a later one).
REORDER_WINDOW = 10_000


def _in_time_order(stream: Iterator[dict]) -> Iterator[dict]:
    """``stream`` sorted by time within a sliding window of :data:`REORDER_WINDOW` records (bounded memory)."""
    held: list[tuple[float, int, dict]] = []
    for number, record in enumerate(stream):
        heapq.heappush(held, (_time(record), number, record))
        if len(held) > REORDER_WINDOW:
            yield heapq.heappop(held)[2]
    while held:
        yield heapq.heappop(held)[2]


def records(state_dir: Path, kinds: Iterable[LogKind]) -> Iterator[dict]:
    """Every record of ``kinds`` so far, each tagged with its kind, in time order, streamed as the files are read.

    Each log is put in time order within a bounded window and the logs are
    merged, so memory stays bounded however long the logs are. Records of one
    kind keep the order they were written in (the audit log's seq) at equal times.
    """
    return heapq.merge(*(_in_time_order(_tagged(state_dir, kind)) for kind in kinds), key=_time)


def _tagged(state_dir: Path, kind: LogKind) -> Iterator[dict]:
    for record in read_records(state_dir / "logs" / kind.file):
        yield dict(record, log=kind.name)


def follow(state_dir: Path, kinds: Iterable[LogKind]) -> Iterator[dict]:
    """Records as they are written, until the bottle has ended (or the caller stops); read a line at a time."""
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
                for line in handle:
                    if not line.endswith(b"\n"):
                        break  # a line still being written waits for the next round
                    offsets[kind.name] += len(line)
                    record = _parse_line(line)
                    if record is not None:
                        yield dict(record, log=kind.name)
        if ended:
            return
        time.sleep(FOLLOW_POLL)


def render(record: dict, *, as_json: bool) -> str:
    """One record as a JSON line (control characters escaped), or as text for a person (made visible)."""
    if as_json:
        return json.dumps(record, sort_keys=True)
    if record.get("event") == LIMIT_EVENT:
        text = f"{_clock(record)} CAPPED {record.get('reason', '')}"
    else:
        kind = KINDS.get(record.get("log", ""))
        text = kind.text(record) if kind else json.dumps(record)
    if record.get("agent_reported"):
        text += "  (agent-reported)"
    return visible(f"{record.get('log', '?'):<7} {text}")


def _parse_line(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
