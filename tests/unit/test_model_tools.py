"""Which provider-side fetching a model request declares (``model_tools``): judged by shape, wherever it sits."""

from __future__ import annotations

import json

import pytest

from bottle_core.bundle.image import model_tools


def body(**extra) -> bytes:
    return json.dumps({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], **extra}).encode()


@pytest.mark.parametrize("request_body, families", [
    (body(tools=[{"type": "web_fetch_20250910", "name": "web_fetch"}]), {"web_fetch"}),
    (body(tools=[{"type": "web_fetch_20260309", "name": "web_fetch"}]), {"web_fetch"}),  # a later version
    (body(mcp_servers=[{"type": "url", "url": "https://x.example/mcp", "name": "x"}]), {"mcp"}),
    (body(tools=[{"type": "mcp_toolset", "mcp_server_name": "x"}]), {"mcp"}),
    (body(messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": "u"}}]}]),
     {"url_sources"}),
    (body(tools=[{"type": "code_execution_20250825", "name": "code_execution"}]), {"code_execution"}),
    (body(tools=[{"type": "fetch_anything_20990101", "name": "new"}]), {"fetch_anything"}),  # unknown: judged
    (json.dumps({"requests": [{"custom_id": "a", "params": json.loads(body(mcp_servers=[{"url": "u"}]))}]}).encode(),
     {"mcp"}),  # a batch nests whole requests
])
def test_fetching_declarations_are_found_and_refused_by_default(request_body, families):
    found = model_tools.declared(request_body)
    assert families <= found
    assert model_tools.refused(found, []) == sorted(families)


def test_what_claude_code_sends_passes():
    ordinary = body(tools=[{"name": "Bash", "description": "run", "input_schema": {"type": "object"}},
                           {"type": "web_search_20250305", "name": "web_search", "max_uses": 8},
                           {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}],
                    messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}])
    assert model_tools.refused(model_tools.declared(ordinary), []) == []


def test_a_bottle_allows_a_family_and_only_that_one():
    found = model_tools.declared(body(tools=[{"type": "web_fetch_20250910"}], mcp_servers=[{"url": "u"}]))
    assert model_tools.refused(found, ["web_fetch"]) == ["mcp"]


@pytest.mark.parametrize("bad", [b"{not json", b"[" * 100 + b"]" * 100])
def test_an_unreadable_body_cannot_be_judged(bad):
    with pytest.raises(model_tools.Unreadable):
        model_tools.declared(bad)
