"""Supervision, host side: Claude Code's managed hooks, answering asked calls, the end-of-run summary.

The supervisor itself runs in the bundle (``bundle/image/supervisor.py``).
Here is what the host does around it:

* :func:`managed_settings` -- the Claude Code settings that send every hook
  event to it as an ``http`` hook: claude posts the event itself, no process
  is started per event. A PreToolUse or UserPromptSubmit hook says
  ``onFailure: "block"``, so Claude Code blocks the call when the supervisor
  cannot be reached, times out, answers with a status other than 2xx or with
  anything but valid hook output. They are written at the managed (policy) level,
  ``/etc/claude-code/managed-settings.json``, owned by root and read-only to
  the agent; managed hooks run whatever the user or project settings say
  (``disableAllHooks`` there does not reach them), and ``allowManagedHooksOnly``
  keeps any other hook from answering for a call.
* :func:`pending` / :func:`answer` -- ``bottle pending``, ``approve`` and
  ``deny``: the backend runs the control client in the bundle
  (hook ``exec_in_bundle``), which talks to the supervisor over a Unix
  socket the agent cannot reach.
* :func:`summary` -- one line at the end of a run from the audit log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .bundle import contract
from .bundle.logs import LIMIT_EVENT
from .errors import BottleRuntimeError, UsageError
from .plan import Plan

MANAGED_SETTINGS = "/etc/claude-code/managed-settings.json"
#: Every Claude Code hook event the supervisor records; PreToolUse alone is judged.
HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Notification", "Stop",
               "SubagentStop", "PreCompact", "SessionEnd")
#: Seconds Claude Code waits for the supervisor beyond an asked call's timeout (after which the supervisor denies).
HOOK_GRACE = 15
TOOL_EVENTS = {"PreToolUse", "PostToolUse"}
#: Events the supervisor can refuse: any failure of their hook blocks them. The others cannot be undone (a
#: blocked Stop would never stop), so a failure there is a non-blocking error.
BLOCKING_EVENTS = {"PreToolUse", "UserPromptSubmit"}
#: The first Claude Code release that honours ``onFailure``: an older one runs a tool call whose hook failed.
FAIL_CLOSED_SINCE = "2.1.295"
#: Events Claude Code runs no http hook for: a command posts them (once a session, off every tool call's path).
COMMAND_EVENTS = {"SessionStart"}


def managed_settings(plan: Plan) -> dict:
    """Claude Code's managed settings for this bottle: every hook event to the supervisor, no other hooks."""
    url = f"http://{plan.network.bundle_ip}:{plan.supervise.port}"
    hooks = {}
    for event in HOOK_EVENTS:
        wait = int(plan.supervise.ask_timeout) + HOOK_GRACE if event == "PreToolUse" else HOOK_GRACE
        handler = {"type": "http", "url": f"{url}/hook?event={event}", "timeout": wait,
                   "onFailure": "block" if event in BLOCKING_EVENTS else "continue"}
        if event in COMMAND_EVENTS:
            # Recorded only; curl by its full path, its config files off (-q), its answer kept from the model.
            handler = {"type": "command", "timeout": wait, "command": (
                f"/usr/bin/curl -q -s -o /dev/null --noproxy '*' --max-time {wait} -H 'Content-Type: "
                f"application/json' --data-binary @- '{url}/hook?event={event}'")}
        group = {"hooks": [handler]}
        if event in TOOL_EVENTS:
            group = {"matcher": "*", **group}
        hooks[event] = [group]
    return {"hooks": hooks, "allowManagedHooksOnly": True}


def provision(plan: Plan, bottle) -> None:
    """Write the managed settings into the sandbox as root (mode 0644 in a root-owned folder)."""
    if not plan.supervise.active:
        return
    folder = str(Path(MANAGED_SETTINGS).parent)
    data = json.dumps(managed_settings(plan), indent=2).encode()
    bottle.check(["sh", "-ec", f'umask 022; mkdir -p "{folder}"; cat > "{MANAGED_SETTINGS}"'], user="0", stdin=data)
    # The claude in the image (BOTTLE_CLAUDE_VERSION or BOTTLE_CLAUDE_BINARY may name any) must fail closed.
    bottle.check(["sh", "-ec", (
        'v=$(/usr/local/bin/claude --version | cut -d" " -f1); '
        f'[ "$(printf "%s\\n" {FAIL_CLOSED_SINCE} "$v" | sort -V | head -n1)" = {FAIL_CLOSED_SINCE} ] || '
        f'{{ echo "claude $v in this bottle is older than {FAIL_CLOSED_SINCE}: its supervision hooks would let a '
        f'call run when the supervisor fails; set BOTTLE_CLAUDE_VERSION to {FAIL_CLOSED_SINCE} or newer" >&2; '
        'exit 1; }')])


# -- approvals ------------------------------------------------------------------


def _control(plugins, slug: str, args: list[str]) -> dict:
    result = plugins.call_first("exec_in_bundle", slug=slug, argv=[*contract.SUPERVISE_CTL, *args])
    if result is None:
        raise BottleRuntimeError("this backend cannot reach a bottle's bundle, so calls cannot be answered here")
    try:
        reply = json.loads(result.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = result.stderr.decode("utf-8", "replace").strip()[-300:] or f"exit {result.returncode}"
        raise BottleRuntimeError(f"bottle {slug}: the supervisor's control client failed: {detail}") from None
    if reply.get("error"):
        raise UsageError(f"bottle {slug}: {reply['error']}")
    return reply


def pending(plugins, slug: str) -> list[dict]:
    """The calls of bottle ``slug`` waiting for an answer (id, tool, input, reason, age and time left)."""
    return _control(plugins, slug, ["pending"])["pending"]


def answer(plugins, slug: str, call_id: str, approve: bool, reason: str = "", expect_hash: str | None = None) -> None:
    """Approve or deny the waiting call ``call_id`` of bottle ``slug``; an unknown id is a usage error.

    :param expect_hash: the call's hash as ``bottle pending`` showed it: the answer reaches only that call.
    """
    _control(plugins, slug, ["answer", call_id, "approve" if approve else "deny", expect_hash or "-",
                             *([reason] if reason else [])])


# -- the end of a run -------------------------------------------------------------


def audit_records(state_dir: str | Path) -> Iterator[dict]:
    """The audit log's records in the order written (the supervisor's order), read a line at a time."""
    from .logs import read_records

    return read_records(Path(state_dir) / "logs" / "audit.jsonl")


#: How the summary says that the calls it counts are what the agent's side reported, not what was seen to run.
AGENT_REPORTED = "as reported by the agent's hooks, which the agent could forge"


def summary(plan: Plan) -> str | None:
    """One line on what the supervisor saw and decided this run, or None when supervision was off.

    The calls counted are hook events, which come from inside the bottle: the line says so.
    """
    if not plan.supervise.active:
        return None
    seen = 0
    calls, would, decided, outcomes, capped = 0, Counter(), Counter(), Counter(), 0
    for record in audit_records(plan.state_dir):
        seen += 1
        event = record.get("event")
        if event == "PreToolUse":
            calls += 1
            would[record.get("policy")] += 1
            decided[record.get("decision")] += 1
        elif event == "Answer":
            outcomes[record.get("outcome")] += 1
        elif event in ("RateLimit", LIMIT_EVENT):
            capped += 1
    if not seen:
        return None  # claude never ran (`bottle exec` of another command): nothing to tell
    flood = f"; {_count(capped, 'flood marker')} in the audit log (see bottle logs --audit)" if capped else ""
    if plan.supervise.mode != "enforce":
        return (f"supervise (audit): {_count(calls, 'tool call')} recorded ({AGENT_REPORTED}), none judged; the "
                f"policy would have denied {would['deny']} and asked {would['ask']}{flood}")
    return (f"supervise: {_count(calls, 'tool call')} ({AGENT_REPORTED}): {decided['allow']} allowed, "
            f"{decided['deny']} denied by policy, {decided['ask']} asked ({outcomes['approved']} approved, "
            f"{outcomes['denied']} denied, {outcomes['timeout']} timed out){flood}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
