"""Model credentials for the agent: the host's API key, or its Claude Code subscription login.

With ``ANTHROPIC_API_KEY`` set on the host, that key is the model secret (as
before). Without it, a Claude Code login on the host
(``~/.claude/.credentials.json``, or ``$CLAUDE_CONFIG_DIR/.credentials.json``:
``{"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt" (ms)}}``) is
used instead: the agent gets ``CLAUDE_CODE_OAUTH_TOKEN`` holding a placeholder,
and the bundle's proxy swaps the real access token in on the model host only.
The refresh token never leaves the host. An access token that is expired, or
expires within :data:`REFRESH_MARGIN` seconds, is refreshed on the host when
the bottle launches, and the new pair is written back to the host's file (the
old refresh token stops working once it is used).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .atomic import atomic_write
from .errors import BottleRuntimeError

API_KEY = "ANTHROPIC_API_KEY"
OAUTH_TOKEN = "CLAUDE_CODE_OAUTH_TOKEN"
CREDENTIALS_FILE = ".credentials.json"
#: Claude Code's token endpoint and OAuth client (both as in the claude release of claude_state.CLAUDE_VERSION).
DEFAULT_TOKEN_URL = "https://platform.claude.com/v1/oauth/token"
DEFAULT_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
#: Refresh an access token that has less than this many seconds left.
REFRESH_MARGIN = 15 * 60
REFRESH_TIMEOUT = 30


def host_config_dir() -> Path:
    """Claude Code's folder on the host: ``$CLAUDE_CONFIG_DIR``, else ``~/.claude``."""
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude").expanduser()


def token_url() -> str:
    """``$BOTTLE_CLAUDE_TOKEN_URL``, else Claude Code's own token endpoint."""
    from . import settings

    return settings.current().claude_token_url or DEFAULT_TOKEN_URL


def credentials_path() -> Path:
    """Where Claude Code keeps its login on this machine (Linux; other systems keep it in a keychain)."""
    return host_config_dir() / CREDENTIALS_FILE


def read_login(path: Path) -> dict[str, Any] | None:
    """The ``claudeAiOauth`` entry of a credentials file, when it holds an access token."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    login = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if isinstance(login, dict) and isinstance(login.get("accessToken"), str) and login["accessToken"]:
        return login
    return None


def has_login() -> bool:
    """True when this machine has a Claude Code subscription login bottle can use."""
    return read_login(credentials_path()) is not None


def access_token(path: Path, *, now: float | None = None) -> str | None:
    """The login's access token, refreshed first (and saved back) when it is expired or about to be."""
    login = read_login(path)
    if login is None:
        return None
    expires_at = login.get("expiresAt")
    now = time.time() if now is None else now
    if isinstance(expires_at, (int, float)) and expires_at / 1000 - now < REFRESH_MARGIN:
        login = refresh(path, login, now=now)
    return login["accessToken"]


def refresh(path: Path, login: dict[str, Any], *, now: float) -> dict[str, Any]:
    """Trade the refresh token for a new pair at the token endpoint, and write it back to ``path``."""
    url = token_url()
    refresh_token = login.get("refreshToken")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise BottleRuntimeError(f"the Claude Code login in {path} has expired and holds no refresh token",
                                 hint="run `claude` on this machine to log in again, or set ANTHROPIC_API_KEY")
    body = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": login.get("clientId") or DEFAULT_CLIENT_ID}
    if isinstance(login.get("scopes"), list):
        body["scope"] = " ".join(login["scopes"])
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=REFRESH_TIMEOUT) as response:  # noqa: S310 - a URL we chose
            answer = json.loads(response.read())
        fresh = {"accessToken": str(answer["access_token"]),
                 "refreshToken": str(answer.get("refresh_token") or refresh_token),
                 "expiresAt": int((now + float(answer["expires_in"])) * 1000)}
    except urllib.error.HTTPError as exc:
        raise _refresh_failed(path, url, f"HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _refresh_failed(path, url, str(getattr(exc, "reason", exc))) from None
    except (ValueError, KeyError, TypeError):
        raise _refresh_failed(path, url, "the answer was not a token response") from None
    login = {**login, **fresh}
    _save(path, login)
    return login


def _refresh_failed(path: Path, url: str, why: str) -> BottleRuntimeError:
    return BottleRuntimeError(f"the Claude Code login in {path} has expired and refreshing it at {url} failed: {why}",
                              hint="run `claude` on this machine to log in again, or set ANTHROPIC_API_KEY")


def _save(path: Path, login: dict[str, Any]) -> None:
    """Write the new tokens into the credentials file, keeping everything else in it; atomic, mode 0600."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["claudeAiOauth"] = login
    atomic_write(path, json.dumps(data))


def missing_credentials_message() -> str:
    """The one line `bottle run` prints when the host has neither an API key nor a login."""
    return (f"no credentials for the model: set {API_KEY}, or log in with `claude` on this machine "
            f"(bottle uses the login in {credentials_path()}); the bottle only ever sees a placeholder")
