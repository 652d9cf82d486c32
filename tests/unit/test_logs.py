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
