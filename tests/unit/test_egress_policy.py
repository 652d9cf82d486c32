"""The egress policy: what each allow-list entry admits, and the encoded-label rule under wildcards."""

from __future__ import annotations

import pytest

from bottle_core.bundle.image.egress_policy import HTTP, HTTPS, RAW, TUNNEL, Policy, looks_encoded, parse_entry

POLICY = Policy(["allowed.test", "http://plain.test", "odd.test:8000", "https://odd.test:8443", "ssh.test:22",
                 "*.wild.test"])


@pytest.mark.parametrize(("text", "host", "port", "scheme"), [
    ("Example.COM", "example.com", 443, "https"),
    ("*.example.com", "*.example.com", 443, "https"),
    ("https://example.com", "example.com", 443, "https"),
    ("https://example.com:8443", "example.com", 8443, "https"),
    ("http://example.com", "example.com", 80, "http"),
    ("http://example.com:8080", "example.com", 8080, "http"),
    ("example.com:80", "example.com", 80, None),
    ("example.com:22", "example.com", 22, None),
])
def test_an_entry_names_one_port_and_what_may_pass_there(text, host, port, scheme):
    entry = parse_entry(text)
    assert (entry.host, entry.port, entry.scheme) == (host, port, scheme)


@pytest.mark.parametrize(("text", "says"), [
    ("ftp://example.com", "only http:// or https://"),
    ("https://example.com/path", "not a URL with a path"),
    ("example.com:0", "from 1 to 65535"),
    ("example.com:99999", "from 1 to 65535"),
    ("example.com:ssh", "from 1 to 65535"),
    ("exa mple.com", "is not a host name"),
    ("*", "is not a host name"),
    ("a.*.example.com", "is not a host name"),
])
def test_a_bad_entry_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_entry(text)


@pytest.mark.parametrize(("host", "port", "protocol", "allowed", "rule"), [
    ("allowed.test", 443, HTTPS, True, "allowed.test"),
    ("ALLOWED.test.", 443, TUNNEL, True, "allowed.test"),
    ("allowed.test", 80, HTTP, False, "port-not-allowed"),
    ("allowed.test", 22, TUNNEL, False, "port-not-allowed"),
    ("allowed.test", 443, RAW, False, "raw-tunnel"),
    ("plain.test", 80, HTTP, True, "http://plain.test"),
    ("plain.test", 80, HTTPS, False, "protocol-not-allowed"),
    ("plain.test", 80, RAW, False, "raw-tunnel"),
    ("odd.test", 8000, RAW, True, "odd.test:8000"),
    ("odd.test", 8000, HTTP, True, "odd.test:8000"),
    ("odd.test", 8443, HTTP, False, "protocol-not-allowed"),
    ("ssh.test", 22, RAW, True, "ssh.test:22"),
    ("www.wild.test", 443, HTTPS, True, "*.wild.test"),
    ("a.b.wild.test", 443, HTTPS, True, "*.wild.test"),
    ("wild.test", 443, HTTPS, False, "not-allowed"),
    ("evilwild.test", 443, HTTPS, False, "not-allowed"),
    ("6d792070617373776f7264.wild.test", 443, TUNNEL, False, "encoded-label"),
    ("denied.test", 443, HTTPS, False, "not-allowed"),
    ("127.0.0.1", 8080, HTTP, False, "not-allowed"),
    ("mitm.it", 80, HTTP, False, "not-allowed"),
])
def test_a_destination_is_judged_with_the_rule_named(host, port, protocol, allowed, rule):
    decision = POLICY.judge(host, port, protocol)
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_an_exact_entry_lets_through_a_name_the_wildcard_would_refuse():
    name = "6d792070617373776f7264.wild.test"
    assert Policy(["*.wild.test", name]).judge(name, 443, HTTPS).allowed


@pytest.mark.parametrize("label", [
    "6d792070617373776f7264",           # hex
    "onswg4tfoqqhi33lmvxcamjsgm2a",     # base32
    "c2vjcmv0lxrva2vu",                 # base64 (lower-cased by DNS)
    "bxkgcgfzc3dvcmqgaxmgahvudgvymie",  # base64
    "a" * 41,                           # long
])
def test_labels_that_look_like_data(label):
    assert looks_encoded(label)


@pytest.mark.parametrize("label", ["www", "api", "us-east-1", "my-company-staging-server", "objectsgithubusercontent",
                                   "internationalization", "strengthslength", "cdn2", "deadbeefcafe"])
def test_labels_that_look_like_names(label):
    assert not looks_encoded(label)


def test_data_split_over_many_short_labels_is_refused():
    chunks = ".".join(["abcd1234"] * 8)  # 64 characters under the wildcard
    assert POLICY.judge(f"{chunks}.wild.test", 443, HTTPS).rule == "encoded-label"
