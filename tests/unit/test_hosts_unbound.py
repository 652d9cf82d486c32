"""``hosts.Unbound``: what a request may not carry, worked out once per host, never for the wrong host or policy."""

from __future__ import annotations

from bottle_core.bundle.image.hosts import Unbound, bound
from bottle_core.bundle.image.inspection import Inspector


def test_each_host_and_port_gets_its_own_answer():
    unbound = Unbound([("token", ["api.example.com"]), ("key", ["*.example.org:8443"]), ("free", [])])
    for _ in range(2):  # the second round is answered from what was kept
        assert unbound("api.example.com", 443) == ["key", "free"]
        assert unbound("evil.test", 443) == ["token", "key", "free"]
        assert unbound("a.example.org", 8443) == ["token", "free"]
        assert unbound("a.example.org", 443) == ["token", "key", "free"]


def test_the_answer_is_what_bound_says():
    items = [(i, entries) for i, entries in enumerate([["a.test"], ["*.a.test"], ["a.test:80"], [], ["B.test."]])]
    unbound = Unbound(items)
    for host in ("a.test", "x.a.test", "A.TEST", "b.test", "b.test.", "c.test"):
        for port in (80, 443, None):
            assert unbound(host, port) == [i for i, entries in items if not bound(entries, host, port)]


def test_a_caller_cannot_change_what_is_kept():
    unbound = Unbound([("token", ["api.example.com"])])
    unbound("evil.test", 443).clear()
    assert unbound("evil.test", 443) == ["token"]


def test_what_is_kept_stays_bounded():
    unbound = Unbound([("token", ["api.example.com"])])
    for i in range(Unbound.limit + 5):
        assert unbound(f"h{i}.test", 443) == ["token"]
    assert len(unbound._answers) <= Unbound.limit
    assert unbound("api.example.com", 443) == []


SECRET = {"name": "TOKEN", "value": "sk-live-7Hq2LmXv8RkPw3NsYt6HbJdQ", "placeholder": "bottle-ph-TOKEN-01",
          "hosts": ["api.example.com"]}


def test_a_request_judged_for_one_host_does_not_let_a_value_through_to_a_second():
    inspector = Inspector([SECRET], ["api.example.com", "evil.test"], None)
    header = [("authorization", f"Bearer {SECRET['value']}")]
    for _ in range(2):
        assert inspector.inspect("api.example.com", 443, "/", header, b"") is None
        finding = inspector.inspect("evil.test", 443, "/", header, b"")
        assert finding is not None and finding.rule == "secret-value"


def test_a_changed_policy_is_judged_by_its_own_hosts():
    header = [("authorization", f"Bearer {SECRET['value']}")]
    before = Inspector([SECRET], ["api.example.com"], None)
    assert before.inspect("api.example.com", 443, "/", header, b"") is None
    after = Inspector([{**SECRET, "hosts": ["other.example.com"]}], ["api.example.com"], None)
    finding = after.inspect("api.example.com", 443, "/", header, b"")
    assert finding is not None and finding.rule == "secret-value"
