"""The bundle's output filed by kind, and read back for `bottle logs`."""

from __future__ import annotations

import json

import pytest

from bottle_core import logs
from bottle_core.bundle.logs import LogSink
from bottle_core.errors import UsageError


def test_sink_files_records_by_kind_and_the_rest_as_text(tmp_path):
    sink = LogSink(tmp_path)
    sink.feed_stream([b'{"log": "egress", "host": "a.test", "ti', b'me": 2}\nbottle-bundle: ready\n',
                      b'{"log": "../escape", "x": 1}\n{"log": "git", "time": 1}'])
    sink.close()
    folder = tmp_path / "logs"
    assert json.loads((folder / "egress.jsonl").read_text()) == {"log": "egress", "host": "a.test", "time": 2}
    assert json.loads((folder / "git.jsonl").read_text())["time"] == 1
    other = (folder / "bundle.log").read_text().splitlines()
    assert other[0] == "bottle-bundle: ready" and "escape" in other[1]  # a kind that is no plain name stays text
    assert sorted(p.name for p in folder.iterdir()) == ["bundle.log", "egress.jsonl", "git.jsonl"]


def test_records_come_in_time_order_and_follow_stops_when_the_bottle_ended(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    state = tmp_path / "bottle" / "demo-abc123"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "egress.jsonl").write_text('{"time": 2, "host": "b"}\n{"time": 1, "host": "a"}\n')
    kinds = [logs.KINDS["egress"]]
    assert [r["host"] for r in logs.records(state, kinds)] == ["a", "b"]
    (state / "finished").write_text("3\n")
    assert [r["host"] for r in logs.follow(state, kinds)] == ["b", "a"]  # as written, and it ends
    assert "deny" not in logs.render({"log": "egress", "host": "a", "decision": "allow"}, as_json=False)


def test_an_unknown_target_names_itself_and_the_state_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    with pytest.raises(UsageError, match="'ghost'"):
        logs.find_state_dir("ghost")


@pytest.mark.parametrize(("record", "shown"), [
    ({"decision": "deny", "method": "GET", "host": "denied.test", "port": 80, "scheme": "http", "path": "/",
      "status": 403, "rule": "not-allowed"}, "deny  GET http://denied.test/ 403  rule=not-allowed"),
    ({"decision": "allow", "method": "POST", "host": "odd.test", "port": 8443, "scheme": "https", "path": "/a",
      "status": 200, "bytes_out": 5, "bytes_in": 23, "rule": "https://odd.test:8443"},
     "allow POST https://odd.test:8443/a 200 out=5B in=23B  rule=https://odd.test:8443"),
    ({"decision": "deny", "method": "CONNECT", "host": "allowed.test", "port": 22, "status": 403,
      "rule": "port-not-allowed"}, "deny  CONNECT allowed.test:22 403  rule=port-not-allowed"),
    ({"decision": "deny", "method": "TLS", "host": "", "port": 8080, "status": None, "rule": "tls-to-proxy"},
     "deny  TLS - (to the proxy port 8080) -  rule=tls-to-proxy"),
])
def test_an_egress_decision_reads_as_one_line(record, shown):
    assert logs.egress_text({"time": None, **record}) == f"--:--:-- {shown}"


# -- logs the agent cannot flood or turn against the terminal ---------------------------------------------------


def test_a_log_past_its_size_cap_keeps_nothing_more_and_says_so(tmp_path, monkeypatch):
    from bottle_core.bundle import logs as sink_logs

    monkeypatch.setattr(sink_logs, "MAX_LOG_BYTES", 10_000)
    sink = LogSink(tmp_path)
    for n in range(1000):
        sink.feed(json.dumps({"log": "audit", "time": n, "seq": n, "event": "Stop", "pad": "x" * 50}))
    sink.feed(json.dumps({"log": "egress", "time": 1, "host": "a.test"}))  # another log is not affected
    sink.close()
    audit = (tmp_path / "logs" / "audit.jsonl")
    assert audit.stat().st_size <= 10_000 + 500
    last = json.loads(audit.read_text().splitlines()[-1])
    assert last["event"] == sink_logs.LIMIT_EVENT and "nothing more" in last["reason"]
    assert json.loads((tmp_path / "logs" / "egress.jsonl").read_text())["host"] == "a.test"


def test_a_log_over_its_rate_drops_records_between_two_markers(tmp_path, monkeypatch):
    from bottle_core.bundle import logs as sink_logs

    monkeypatch.setattr(sink_logs, "BURST", 10)
    monkeypatch.setattr(sink_logs, "RATE", 0.0001)
    sink = LogSink(tmp_path)
    for n in range(100):
        sink.feed(json.dumps({"log": "egress", "time": n, "host": f"h{n}"}))
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "logs" / "egress.jsonl").read_text().splitlines()]
    kept = [r for r in lines if "host" in r]
    markers = [r for r in lines if r.get("event") == sink_logs.LIMIT_EVENT]
    assert len(kept) == 10 and len(markers) == 2 and markers[1]["dropped"] == 90


def test_an_endless_line_is_cut(tmp_path):
    from bottle_core.bundle import logs as sink_logs

    sink = LogSink(tmp_path)
    sink.feed_stream([b"x" * 100_000] * 10 + [b"\n" + b'{"log": "git", "time": 1}\n'])
    sink.close()
    other = (tmp_path / "logs" / "bundle.log").read_text().splitlines()
    assert len(other) == 1 and sink_logs.LIMIT_EVENT in other[0] and len(other[0]) < 2000
    assert json.loads((tmp_path / "logs" / "git.jsonl").read_text())["time"] == 1


def test_records_stream_from_the_files(tmp_path, monkeypatch):
    state = tmp_path / "s"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "egress.jsonl").write_text("".join(json.dumps({"time": n, "host": str(n)}) + "\n"
                                                       for n in range(0, 40, 2)))
    (state / "logs" / "audit.jsonl").write_text("".join(json.dumps({"time": n, "event": "Stop"}) + "\n"
                                                      for n in range(1, 40, 2)))
    shown = logs.records(state, [logs.KINDS["egress"], logs.KINDS["audit"]])
    assert not isinstance(shown, list), "a generator: records are read as they are shown"
    shown = list(shown)
    assert [r["time"] for r in shown] == list(range(40))
    assert [r["log"] for r in shown] == ["egress", "audit"] * 20, "each record keeps its own kind"


@pytest.mark.parametrize("hostile", ["\x1b[2K\x1b[1A", "\x1b]0;owned\x07", "\x9b2K", "a\rb", "\u202e"])
def test_control_characters_from_a_record_are_shown_not_acted_on(hostile):
    for record in ({"log": "egress", "decision": "allow", "method": "GET", "host": "a.test", "scheme": "https",
                    "path": f"/{hostile}", "status": 200},
                   {"log": "audit", "event": "PreToolUse", "decision": "ask", "tool": "Bash",
                    "input": {"command": f"echo {hostile}"}, "agent_reported": True},
                   {"log": "audit", "event": "Stop", "reason": {"x": hostile}}):
        text = logs.render(record, as_json=False)
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c == "\u202e" for c in text), repr(text)
        assert "\x1b" not in logs.render(record, as_json=True)


def test_an_agent_reported_record_says_so():
    text = logs.render({"log": "audit", "event": "PreToolUse", "decision": "allow", "tool": "Bash",
                        "input": {"command": "ls"}, "agent_reported": True}, as_json=False)
    assert text.endswith("(agent-reported)")
