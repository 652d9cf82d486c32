"""Claude Code's own user state in the bottle, so an interactive run opens straight at its prompt.

Every bottle is fresh, and a Claude Code with no state runs its first-run
onboarding: a connectivity check, a theme picker, the folder-trust dialog,
the approval of an API key found in the environment, and the confirmation of
bypass-permissions mode. bottle answers each of them in advance, with the keys
Claude Code itself writes when a user answers (checked against
:data:`CLAUDE_VERSION`; an integration test fails when an upgrade changes them):

* ``~/.claude.json`` (the global config): ``hasCompletedOnboarding`` (skips the
  onboarding, connectivity check included), ``projects[<workspace>].hasTrustDialogAccepted``,
  and ``customApiKeyResponses.approved`` holding the last 20 characters of the
  agent's key placeholder (how Claude Code remembers an approved key);
* ``~/.claude/settings.json`` (user settings): ``skipDangerousModePermissionPrompt``
  (the bypass-permissions consent; bottle passes ``--dangerously-skip-permissions``
  because the bottle is the boundary), plus the user's UI preferences.

Only the preferences named in :data:`PREFERENCE_KEYS` are carried over from the
host, and only with a plain value of the expected kind: never tokens, history,
projects, account data or anything else the host's files hold.
"""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path
from typing import Any

from .claude_login import host_config_dir
from .hookspecs import hookimpl
from .settings import PINNED_CLAUDE_VERSION
from .plan import MODEL_KEY, Plan
from .sandbox import Bottle

#: The claude release these keys were read from (``claude --version``), and the one images get by default;
#: the integration tests check the image's.
CLAUDE_VERSION = PINNED_CLAUDE_VERSION
#: How many trailing characters of an API key Claude Code keeps to remember that the user approved it.
APPROVED_KEY_SUFFIX = 20

#: Non-secret UI preferences carried over from the host, with the kind of value each may hold.
#: Claude Code lists the same keys as "user intent" settings; network features are left out.
PREFERENCE_KEYS: dict[str, type] = {
    "theme": str, "editorMode": str, "preferredNotifChannel": str, "verbose": bool,
    "autoCompactEnabled": bool, "autoScrollEnabled": bool, "showTurnDuration": bool,
    "showMessageTimestamps": bool, "terminalProgressBarEnabled": bool, "todoFeatureEnabled": bool,
    "fileCheckpointingEnabled": bool,
}
#: A preference string longer than this is no preference (it is refused, whatever it holds).
MAX_PREFERENCE_LENGTH = 64

#: Environment that keeps Claude Code from reaching hosts it can do without (see docs/claude.md).
CLAUDE_ENVIRONMENT = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # At start-up it fetches the official plugin marketplace (downloads.claude.ai, then github.com).
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    "DISABLE_AUTOUPDATER": "1",
}


def claude_environment() -> dict[str, str]:
    """The agent environment Claude Code needs in a bottle, on top of the proxy's and the secrets'."""
    return dict(CLAUDE_ENVIRONMENT)


def host_global_config() -> Path:
    """The host's global config: ``$CLAUDE_CONFIG_DIR/.claude.json``, else ``~/.claude.json``."""
    given = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(given).expanduser() / ".claude.json" if given else Path.home() / ".claude.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no file, or one Claude Code itself would not read: no preferences
    return data if isinstance(data, dict) else {}


def allowed_preferences(source: dict[str, Any]) -> dict[str, Any]:
    """The allow-listed preferences of ``source``, each only when its value is a short plain one of its kind."""
    kept = {}
    for key, kind in PREFERENCE_KEYS.items():
        value = source.get(key)
        if type(value) is not kind:  # noqa: E721 - bool is an int, and neither may pass as the other
            continue
        if kind is str and (len(value) > MAX_PREFERENCE_LENGTH or not value.isprintable()):
            continue
        kept[key] = value
    return kept


def host_preferences() -> dict[str, Any]:
    """The user's UI preferences on this machine: the global config's, overridden by the user settings'."""
    return {**allowed_preferences(_read_json(host_global_config())),
            **allowed_preferences(_read_json(host_config_dir() / "settings.json"))}


def global_config(plan: Plan) -> dict[str, Any]:
    """The bottle's ``~/.claude.json``: onboarding done, the workspace trusted, the key placeholder approved."""
    config: dict[str, Any] = {
        "hasCompletedOnboarding": True,
        "projects": {plan.guest.workspace: {"hasTrustDialogAccepted": True}},
    }
    key = next((s for s in plan.secrets if s.name == MODEL_KEY), None)
    if key is not None:
        config["customApiKeyResponses"] = {"approved": [key.placeholder[-APPROVED_KEY_SUFFIX:]], "rejected": []}
    return config


def user_settings(preferences: dict[str, Any]) -> dict[str, Any]:
    """The bottle's ``~/.claude/settings.json``: the user's preferences and the bypass-permissions consent."""
    return {**preferences, "skipDangerousModePermissionPrompt": True}


@hookimpl(tryfirst=True)
def provision_claude_state(plan: Plan, bottle: Bottle) -> None:
    """Write Claude Code's global config and user settings into the agent's home."""
    home = plan.guest.home
    bottle.write_files(home, {".claude.json": _dump(global_config(plan))}, mode=0o600)
    bottle.write_files(posixpath.join(home, ".claude"), {"settings.json": _dump(user_settings(host_preferences()))},
                       mode=0o600)


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()
