"""Request inspection (bundle image's inspection.py): secrets in any form, credential shapes, subdomain data."""

from __future__ import annotations

import base64
import gzip
import json
import random
import urllib.parse

import pytest

from tests import corpus

from bottle_core.bundle.image import inspection

VALUE = "Zq8rT2vL9xWm4KpN7sHc3JdF6gYb1RtE"
PLACEHOLDER = "bottle-placeholder-token-0123456789abcdef01234567"
SECRETS = [{"name": "TOKEN", "value": VALUE, "placeholder": PLACEHOLDER, "hosts": ["bound.test"]}]


@pytest.fixture
def inspector():
    return inspection.Inspector(SECRETS, ["allowed.test", "bound.test", "*.wild.test"], model_host="api.anthropic.test")


def check(inspector, *, host="allowed.test", path="/", headers=(), body=b"", content_type=""):
    return inspector.inspect(host, 443, path, list(headers), body, content_type)


@pytest.mark.parametrize("form", [
    VALUE, base64.b64encode(VALUE.encode()).decode(), base64.b64encode(b"x" + VALUE.encode()).decode(),
    base64.b64encode(b"xy" + VALUE.encode()).decode(), base64.urlsafe_b64encode(VALUE.encode()).decode().rstrip("="),
    VALUE.encode().hex(), VALUE.encode().hex().upper(), urllib.parse.quote(VALUE), "".join(f"%{b:02x}" for b in VALUE.encode()),
    base64.b32encode(VALUE.encode()).decode(), VALUE[::-1], base64.b64encode(gzip.compress(VALUE.encode())).decode(),
    VALUE[5:25], PLACEHOLDER, base64.b64encode(PLACEHOLDER.encode()).decode(),
])
@pytest.mark.parametrize("place", ["query", "header", "json", "text"])
def test_a_secret_in_any_form_and_place_is_refused_to_an_unbound_host(inspector, form, place):
    request = {"query": {"path": "/s?q=" + urllib.parse.quote(form, safe="%")},
               "header": {"headers": [("X-Data", form)]},
               "json": {"body": json.dumps({"data": form}).encode(), "content_type": "application/json"},
               "text": {"body": f"notes\n{form}\nmore".encode()}}[place]
    finding = check(inspector, **request)
    assert finding is not None and (finding.rule, finding.name) == ("secret-value", "TOKEN")


def test_the_same_secret_may_go_to_its_own_host(inspector):
    assert check(inspector, host="bound.test", headers=[("Authorization", f"Bearer {VALUE}")]) is None
    assert check(inspector, host="bound.test", path=f"/?k={PLACEHOLDER}") is None


@pytest.mark.parametrize("pieces", [[VALUE[:10], VALUE[10:20], VALUE[20:]], [VALUE[:16], VALUE[16:]]])
def test_a_secret_split_across_fields_is_refused(inspector, pieces):
    shuffled = list(reversed(pieces))
    assert check(inspector, body=json.dumps({"a": shuffled}).encode(), content_type="application/json")
    assert check(inspector, path="/?" + urllib.parse.urlencode([("p", p) for p in pieces]))
    assert check(inspector, headers=[(f"X-{i}", p) for i, p in enumerate(pieces)])


def test_a_form_and_a_multipart_body_are_read(inspector):
    assert check(inspector, body=urllib.parse.urlencode({"a": VALUE}).encode(),
                 content_type="application/x-www-form-urlencoded")
    body = f"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n{VALUE}\r\n--b--\r\n".encode()
    assert check(inspector, body=body, content_type="multipart/form-data; boundary=b")


@pytest.mark.parametrize("name", sorted(corpus.credentials(random.Random(3))))
def test_every_credential_shape_is_refused(inspector, name):
    credential = corpus.credentials(random.Random(3))[name]
    finding = check(inspector, body=json.dumps({"x": credential}).encode(), content_type="application/json")
    assert finding is not None and finding.rule == "credential", name
    assert check(inspector, body=base64.b64encode(credential.encode()))


def test_a_credential_shape_may_go_where_a_secret_of_that_shape_is_bound():
    github = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    inspector = inspection.Inspector([{"name": "GH", "value": github, "placeholder": PLACEHOLDER, "hosts": ["api.github.test"]}],
                                     ["api.github.test", "allowed.test"], model_host="api.anthropic.test")
    other = "ghp_" + "Zz9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8"
    assert check(inspector, host="api.github.test", headers=[("Authorization", f"token {other}")]) is None
    assert check(inspector, host="allowed.test", headers=[("Authorization", f"token {other}")]).name == "github-token"
    key = "sk-ant-api03-" + "k" * 3 + "Q7wE9rT1yU3iO5pA7sD9fG1hJ3kL5zX7cV9bN1mQ3wE5rT7yU9iO1pA3sD5fG7hJ9kL1"
    assert check(inspector, host="api.anthropic.test", headers=[("x-api-key", key)]) is None


@pytest.mark.parametrize("host", [
    VALUE.encode().hex() + ".wild.test", base64.b32encode(VALUE.encode()).decode().rstrip("=").lower() + ".wild.test",
    "726f6f743a783a303a303a726f6f74.x.wild.test", "cm9vdDp4OjA6MDpyb290Oi9yb290.wild.test",
    "a8f3k2m9x7q1w5e4r6t8y0u2i4o6p8a1s3d5f7g9h2j4k6l8.wild.test",
])
def test_data_in_subdomain_labels_under_a_wildcard_is_refused(inspector, host):
    assert check(inspector, host=host) is not None


@pytest.mark.parametrize("host", ["d1a2b3c4d5e6f7.wild.test", "acme-build-artifacts-2025.s3.wild.test",
                                  "app-git-feature-login-acme.wild.test", "www.wild.test", "0a1b2c3d.wild.test"])
def test_ordinary_subdomains_pass(inspector, host):
    assert check(inspector, host=host) is None


@pytest.mark.parametrize("body", [
    corpus.DOC_ABOUT_KEYS, corpus.DOC_WITH_REDACTED_KEYS, corpus.CODE, corpus.PROSE,
    json.dumps({"id": "550e8400-e29b-41d4-a716-446655440000", "sha": "a" * 7 + "3f9c" * 14 + "e1b"}),
    json.dumps({"password": "hunter2", "csrf_token": "q8D2kLm9ZxP4vT7wR1sY6nB3cF5gH0jK2aE4uI8oQ9t"}),
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
])
def test_benign_bodies_pass(inspector, body):
    assert check(inspector, body=body.encode()) is None


def test_findings_name_no_value(inspector):
    finding = check(inspector, headers=[("X-A", VALUE)])
    assert VALUE not in finding.reason() and "TOKEN" in finding.reason() and "header x-a" in finding.reason()


def test_a_hostile_body_is_bounded():
    nested = base64.b64encode(base64.b64encode(base64.b64encode(b"A" * 100_000)))
    views = list(inspection.decoded_views(nested))
    assert sum(len(v) for v in views) <= inspection.MAX_DECODED + 2 * len(nested)


def test_seed_phrases_need_the_word_list_words():
    words = "abandon ability able about above absent absorb abstract absurd abuse access accident".split()
    assert inspection.seed_phrase(__import__("re").match(r"(?s).+", " ".join(words)))
    prose = "the quick brown fox jumps over the lazy dog while the committee reviews the annual budget"
    assert not inspection.seed_phrase(__import__("re").match(r"(?s).+", prose))
    assert inspection.BIP39, "the BIP-39 word list (python3-mnemonic / mnemonic) is missing"


def test_the_labelled_corpus_rates():
    """At least 95% of attacks refused and under 3% of benign requests (the figures are printed by the benchmark)."""
    cases = corpus.requests(seed=11)
    table = corpus.secrets_table(random.Random(11))
    inspector = inspection.Inspector(table, corpus.ALLOW, model_host="api.anthropic.test")
    attacks = [c for c in cases if c.attack]
    benign = [c for c in cases if not c.attack]

    def refused(case):
        headers = case.headers + ([("content-type", case.content_type)] if case.content_type else [])
        return inspector.inspect(case.host, 443, case.path, headers, case.body, case.content_type) is not None

    missed = [c.kind for c in attacks if not refused(c)]
    wrongly = [c.kind for c in benign if refused(c)]
    assert len(missed) <= 0.05 * len(attacks), missed
    assert len(wrongly) < 0.03 * len(benign), wrongly


# --- by shape, not costume; financial data; composed decoding; names; the bounds -------------------------------

GITHUB = "ghp_" + "Hn4Wq7Ek2Rt9Yu3Io6Pa1Sd5Fg8Jk0Lz2XcV"


@pytest.mark.parametrize("name", ["aws", "github", "slack", "stripe", "google", "gitlab", "npm", "openai", "anthropic"])
@pytest.mark.parametrize("costume", range(len(corpus.COSTUMES)))
def test_a_credential_dressed_as_an_example_is_still_refused(inspector, name, costume):
    credential = corpus.COSTUMES[costume](corpus.credentials(random.Random(4))[name])
    finding = check(inspector, body=json.dumps({"note": credential}).encode())
    assert finding is not None and finding.rule == "credential", credential


@pytest.mark.parametrize("key", corpus.DOCUMENTED_KEYS)
def test_the_documentation_keys_themselves_are_refused(inspector, key):
    assert check(inspector, path="/q?k=" + urllib.parse.quote(key)).rule == "credential"


def test_a_redacted_key_carries_nothing_and_passes(inspector):
    assert check(inspector, body=corpus.DOC_WITH_REDACTED_KEYS.encode()) is None


@pytest.mark.parametrize("value", [
    corpus.luhn_complete("4", 16, random.Random(1)), "4111 1111 1111 1111", "4242-4242-4242-4242", "378282246310005",
    corpus.iban("DE", 22, random.Random(2)), "GB82 WEST 1234 5698 7654 32", "NO07.8380.08.06006",
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "536-90-4399",
])
def test_financial_identifiers_are_refused_by_checksum(inspector, value):
    for kwargs in ({"path": "/pay?to=" + urllib.parse.quote(value)}, {"body": json.dumps({"v": value}).encode()}):
        finding = check(inspector, **kwargs)
        assert finding is not None and finding.rule in ("financial-data", "personal-data"), (value, kwargs)


@pytest.mark.parametrize("value", [
    "4111 1111 1111 1112", "1234567890123456", "978-0-306-40615-7", "2024-03-15", "+44 20 7946 0958", "1717171717171",
    "DE89370400440532013001", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
    "sha256:" + "4111111111111111" + "ab" * 24, "order 4921377720184 shipped", "000-12-3456", "2024-03-15-0001",
    "call 555-123-4567",
])
def test_numbers_that_fail_their_checksum_or_are_not_identifiers_pass(inspector, value):
    assert check(inspector, body=json.dumps({"v": value}).encode()) is None


@pytest.mark.parametrize("form", [
    "-".join(f"{b:02x}" for b in GITHUB.encode()), ":".join(f"{b:02x}" for b in GITHUB.encode()),
    ", ".join(f"0x{b:02x}" for b in GITHUB.encode()), "".join(f"%25{b:02X}" for b in GITHUB.encode()),
    "".join(f"%2525{b:02X}" for b in GITHUB.encode()), "".join(f"%{b:02X}" for b in base64.b64encode(GITHUB.encode())),
    gzip.compress(GITHUB.encode()).hex(), base64.b64encode(base64.b64encode(base64.b64encode(GITHUB.encode()))).decode(),
    # gzip a few bytes into the decoded run (a length or a header glued on before it)
    base64.b64encode(b"\x00\x00\x01\x2c" + gzip.compress(GITHUB.encode())).decode(),
])
def test_decoding_composes(inspector, form):
    finding = check(inspector, body=form.encode())
    assert finding is not None and finding.rule == "credential", form


def test_past_the_bounds_a_request_is_refused_not_passed(inspector):
    rng = random.Random(3)
    # Lower-cased: runs to count, none of them a provider's upper-case prefix (a credential would be refused first).
    noise = " ".join(base64.b64encode(rng.randbytes(12)).decode().lower() for _ in range(inspection.MAX_RUNS + 10))
    assert check(inspector, body=noise.encode()).rule == "inspection-limit"
    four = GITHUB.encode()
    for _ in range(inspection.MAX_DEPTH + 1):
        four = base64.b64encode(four)
    assert check(inspector, body=four).rule in ("inspection-limit", "credential")
    bomb = base64.b64encode(gzip.compress(b"A" * (inspection.MAX_DECODED + 1024))).decode()
    assert check(inspector, body=bomb.encode()).rule == "inspection-limit"
    glued = base64.b64encode(b"\x00\x01" + gzip.compress(b"A" * (inspection.MAX_DECODED + 1024))).decode()
    assert check(inspector, body=glued.encode()).rule == "inspection-limit"
    ordinary = " ".join(base64.b64encode(rng.randbytes(12)).decode() for _ in range(2000))
    assert check(inspector, body=ordinary.encode()) is None


@pytest.mark.parametrize("host", [
    "mfrggzdfmztwq2lk.wild.test", "ghp-Zq8r.T2vL9xWm.4KpN7sHc.3JdF6gYb.1RtEab12.wild.test",
    "deadbeef.c2vjcmV0.wild.test", "nbswy3dp.ebzxe5dg.wild.test",
])
def test_data_spread_over_labels_is_judged_together(inspector, host):
    assert check(inspector, host=host).rule in ("subdomain-data", "credential", "secret-value")


@pytest.mark.parametrize("host", ["kubernetes-dashboard.wild.test", "web01.us-east-2.wild.test", "pr-1234.wild.test",
                                  "storybook-static-assets.wild.test", "bucket-7f3a9c.wild.test"])
def test_names_people_write_pass(inspector, host):
    assert check(inspector, host=host) is None


@pytest.mark.parametrize("token", [
    "shpat_" + "3f9c" * 8, "dop_v1_" + "a1b2c3d4" * 8, "lin_api_" + "Hn4Wq7Ek2Rt9Yu3Io6Pa1Sd5Fg8Jk0Lz2XcVb7Nm",
    "sk-or-v1-" + "0f1e2d3c4b5a6978" * 4, "gsk_" + "Hn4Wq7Ek2Rt9Yu3Io6Pa1Sd5Fg8Jk0Lz2XcVb7NmQ3wE5rT7yU9iO",
    "AGE-SECRET-KEY-1" + "QX8Z3R5T7V9W2Y4A6C8E0G2J4L6N8P0S2U4W6Y8A0C2E4G6J8L0N2P4R6T8V",
])
def test_more_providers_prefixes_are_refused_however_dressed(inspector, token):
    for dressed in (token, token + "EXAMPLE", "note: " + token + " (your key)"):
        finding = check(inspector, body=json.dumps({"note": dressed}).encode())
        assert finding is not None and finding.rule == "credential", dressed


def test_random_base64_holds_no_prefixed_shape():
    rng = random.Random(6)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(rng.randbytes(1 << 20)).decode()
        assert not [p.name for p in inspection.PATTERNS if p.search(text, text.lower())]
