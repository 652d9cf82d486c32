"""What a request to the model API asks the provider's own servers to reach.

The model host is always allowed, and its Messages API can be told to fetch
for the caller: server tools such as ``web_fetch`` or remote MCP servers
(``mcp_servers``, ``mcp_toolset``), and images or documents given by URL
(``"source": {"type": "url", ...}``). Each is a way out around the
allow-list: the agent writes the address, and the provider's servers go
there. :func:`declared` names every such thing a request body declares, by
family (a tool type without its date: ``web_fetch`` for
``web_fetch_20250910``), wherever it sits in the JSON (message batches nest
whole requests). :func:`refused` keeps those the bottle did not allow.

Allowed without asking are the families that fetch nothing the request
names: ``web_search`` (Claude Code's WebSearch tool sends it; the provider
searches and chooses the pages), the tools the client itself executes
(``bash``, ``text_editor``, ``computer``, ``memory``) and tool search over
the request's own tools. Any other typed tool is judged, so a server tool
that appears later is refused until a bottle allows it (fail closed).
"""

from __future__ import annotations

import json
import re

#: Families that make the provider reach nothing the request chooses.
SAFE = frozenset({"web_search", "bash", "text_editor", "computer", "memory", "tool_search_tool_regex",
                  "tool_search_tool_bm25", "custom"})
#: A dated tool type: its family and the date.
DATED = re.compile(r"([a-z][a-z0-9_]*?)_(\d{8})")
#: The family name of remote MCP servers, however they are declared.
MCP = "mcp"
#: The family name of content blocks whose source is a URL the provider fetches.
URL_SOURCES = "url_sources"
#: Deeper JSON than this is not read: it is refused as unreadable.
MAX_DEPTH = 64


class Unreadable(ValueError):
    """A body that claims to be JSON but cannot be read as such (it is refused: it cannot be judged)."""


def family(tool_type: str) -> str:
    """``web_fetch`` for ``web_fetch_20250910``; an undated type is its own family."""
    match = DATED.fullmatch(tool_type)
    return match[1] if match else tool_type


def declared(body: bytes) -> set[str]:
    """Every family of provider-side fetching that ``body`` (a JSON request) declares.

    :raises Unreadable: when the body is not JSON, or nests too deep to read.
    """
    try:
        document = json.loads(body.decode("utf-8-sig") if isinstance(body, bytes) else body)
    except (ValueError, RecursionError) as exc:
        raise Unreadable(f"the body is not JSON ({exc.__class__.__name__})") from None
    found: set[str] = set()
    _walk(document, found, 0)
    return found


def _walk(node, found: set[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Unreadable(f"the body nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, list):
        for item in node:
            _walk(item, found, depth + 1)
        return
    if not isinstance(node, dict):
        return
    tools = node.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("type"), str):
                kind = family(tool["type"])
                found.add(MCP if kind.startswith("mcp") else kind)
    if node.get("mcp_servers"):
        found.add(MCP)
    source = node.get("source")
    if isinstance(source, dict) and source.get("type") == "url":
        found.add(URL_SOURCES)
    for value in node.values():
        _walk(value, found, depth + 1)


def refused(found: set[str], allowed: list[str]) -> list[str]:
    """The families in ``found`` that neither fetch nothing (:data:`SAFE`) nor are in ``allowed``, sorted."""
    return sorted(found - SAFE - set(allowed))
