"""Credential rules as data: the table generated from gitleaks' rule set, and the classes it closes."""

from __future__ import annotations

import base64
import json
import random
import re
import uuid

import pytest

from bottle_core.bundle.image import inspection, inspection_catalogue
from bottle_core.bundle.image.inspection_catalogue_build import bare_value, build, python_regex

RNG = random.Random(18)
HEX = "0123456789abcdef"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _random(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


@pytest.fixture
def inspector():
    return inspection.Inspector([], ["allowed.test"])


def refused(inspector, text: str):
    body = json.dumps({"note": text}).encode()
    return inspector.inspect("allowed.test", 443, "/notes", [("content-type", "application/json")], body,
                             "application/json")


def test_the_table_names_its_source_and_version_and_every_rule_compiles():
    assert "gitleaks" in inspection_catalogue.SOURCE and inspection_catalogue.VERSION
    assert len(inspection_catalogue.RULES) > 200
    for row in inspection_catalogue.RULES:
        re.compile(row[1])
    assert {rule.name for rule in inspection.CATALOGUE.rules} >= {"mailchimp-api-key", "shippo-api-token",
                                                                  "gitlab-pat", "heroku-api-key"}


def test_go_expressions_are_rewritten_for_python():
    assert python_regex(r"(?:a|b)(?i)xyz\z") == r"(?:a|b)(?i:xyz\Z)"
    assert python_regex(r"(x(?i)ab)c") == r"(x(?i:ab))c"
    # A leading lazy run only widens a match leftwards: it goes.
    assert python_regex(r"(?i)[\w.-]{0,50}?(?:mailchimp)=") == r"(?i)(?:mailchimp)="


def test_a_value_with_its_own_marker_gets_a_row_without_the_name_before_it():
    rule = (r"""(?i)(?:mailchimp)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=|>|:{1,3}=|\|\||:|=>|\?=|,)[\x60'"\s=]{0,5}"""
            r"""([a-f0-9]{32}-us\d\d)(?:[\x60'"\s;]|\\[nr]|$)""")
    regex, markers = bare_value(rule)
    assert markers == ("-us",) and re.search(regex, "key " + "a" * 32 + "-us12")
    assert bare_value(r"""(?i)(?:discord)(?:[ \t\w.-]{0,20})[\s'"]{0,3}(?:=)[\x60'"\s=]{0,5}([a-f0-9]{64})"""
                      r"""(?:[\x60'"\s;]|\\[nr]|$)""") is None  # a bare hex run carries no marker


def test_example_allow_lists_are_dropped_and_template_allow_lists_kept():
    config = {"rules": [
        {"id": "aws-access-token", "regex": r"\bAKIA[A-Z2-7]{16}\b", "keywords": ["akia"],
         "allowlists": [{"regexes": [".+EXAMPLE$"]}]},
        {"id": "curl-auth-user", "regex": "curl -u (x)", "keywords": ["curl"],
         "allowlists": [{"regexes": ["[^:]+:password"]}, {"paths": ["README"]}]},
    ], "allowlist": {"regexes": [r"^\$\{[A-Z_]+\}$"]}}
    namespace: dict = {}
    exec(build(config, "test"), namespace)  # the generated module is plain literals
    aws, curl = namespace["RULES"]
    assert aws[5:8] == ((), (), ()) and curl[5] == ("[^:]+:password",)
    assert namespace["GLOBAL_ALLOW"] == (r"^\$\{[A-Z_]+\}$",) and namespace["VERSION"] == "test"


@pytest.mark.parametrize("text", [
    _random(HEX, 32) + "-us" + str(RNG.randint(10, 21)),                     # Mailchimp, no name before it
    "mailchimp_api_key = " + _random(HEX, 32) + "-us7",
    "shippo_live_" + _random(HEX, 40),                                        # a shape only the catalogue knows
    "postgres://app:" + _random(ALNUM, 20) + "@db.internal:5432/app",         # URL userinfo with a password
    "https://deploy:" + _random(ALNUM, 12) + "@git.example.test/repo.git",
    "postgres://app:sunshine42@db.internal:5432/app",                         # words and digits a person chose
    "https://admin:TqGlXzWk_PASSWORD@api.example.test",                       # a credential's word, and data
    "example" + "glpat-" + _random(ALNUM, 20) + "EXAMPLE",                   # dressed as an example
])
def test_catalogue_classes_are_refused(inspector, text):
    finding = refused(inspector, text)
    assert finding is not None and finding.rule == "credential", text


@pytest.mark.parametrize("text", [
    "https://user:password@example.test/",                                    # gitleaks' own stand-in pairs
    "https://<user>:<password>@example.test/", "https://$USER:$PASS@example.test/",
    # A password's place named rather than filled, or a published default: no password.
    "https://YOUR_USERNAME:YOUR_PASSWORD@api.example.test", "https://username:REPLACE_WITH_PASSWORD@example.test",
    "https://username:mypassword@example.test/endpoint",
    "https://url:8000 @something else",
    # A time-based UUID under a name that may name a lookup (an object's key): an id, no secret (under a name that
    # says token it is one: test_inspection_names).
    "object_key=" + str(uuid.uuid1(node=0x0242AC120002, clock_seq=0x1D64)),
    "glptt-" + "hellOworld380_testin",                                        # not the catalogue's length/alphabet
    # Starts like a JWT, but its header is not JSON: not a token.
    base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"').decode().rstrip("=") + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0.x",
])
def test_their_benign_counterparts_pass(inspector, text):
    assert refused(inspector, text) is None, text


def test_a_catalogue_rule_passes_a_published_default_password_or_a_template_and_refuses_a_chosen_one(inspector):
    # gitleaks' Terraform password rule reads any 'password = "…"' line: its stand-ins pass as under a name.
    for text in ('String password = "password";', 'password = "changeme"', 'password = "${DB_PASSWORD}"'):
        assert refused(inspector, text) is None, text
    finding = refused(inspector, 'administrator_login_password = "thisIsDog11"')
    assert finding is not None and finding.rule == "credential"


def test_a_jwt_with_a_json_header_is_refused(inspector):
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(b'{"sub":"1234567890","name":"Ada"}').decode().rstrip("=")
    assert refused(inspector, f"{header}.{claims}.{_random(ALNUM, 43)}").name == "jwt"


def test_a_token_whose_payload_is_not_json_is_refused_by_its_header(inspector):
    # RFC 7515 lets a signed token's payload be any bytes, and an encrypted token (RFC 7516, five parts) has an
    # opaque one: a header that names its algorithm, then two parts or more, is a token.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=")
    assert refused(inspector, f"token = {header}.{_random(ALNUM, 120)}.{_random(ALNUM, 43)}").name == "jwt"
    jwe = base64.urlsafe_b64encode(b'{"alg":"RSA-OAEP","enc":"A256GCM"}').decode().rstrip("=")
    parts = ".".join(_random(ALNUM, n) for n in (342, 22, 80, 22))
    assert refused(inspector, f"{jwe}.{parts}").name == "jwt"


@pytest.mark.parametrize("text", [
    # A JSON object encoded, then parts that are no signature: a cursor, a cache key, a file's name.
    base64.urlsafe_b64encode(b'{"page":2,"size":50}').decode().rstrip("=") + ".nextpagecursorvalue.moreresultshere",
    base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=") + ".short.json",
])
def test_an_encoded_object_without_a_token_shape_passes(inspector, text):
    assert refused(inspector, text) is None, text


def test_a_host_bound_to_a_declared_catalogue_shape_may_take_it():
    key = _random(HEX, 32) + "-us14"
    inspector = inspection.Inspector([{"name": "MC", "value": key, "placeholder": "bottle-placeholder-x",
                                       "hosts": ["us14.api.mailchimp.test"]}], [])
    body = json.dumps({"k": key}).encode()
    assert inspector.inspect("us14.api.mailchimp.test", 443, "/", [], body, "application/json") is None
    elsewhere = inspector.inspect("other.test", 443, "/", [], body, "application/json")
    assert elsewhere is not None and elsewhere.rule == "secret-value"


def test_a_long_body_with_common_keywords_and_no_credential_passes(inspector):
    prose = ("The key to a good test is a secret: keep the token count low and the live tests apart. " * 20000)
    assert refused(inspector, prose) is None
    assert refused(inspector, prose + " shippo_test_" + _random(HEX, 40)).name == "shippo-api-token"


def test_an_iban_with_lower_case_letters_is_refused_and_a_failing_one_passes(inspector):
    from tests import corpus

    number = corpus.iban("GB", 22, random.Random(4), bank="NWBK")
    grouped = " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    assert refused(inspector, f"pay to {grouped[:5] + grouped[5:].lower()} today").name == "iban"
    broken = number[:-1] + ("0" if number[-1] != "0" else "1")
    assert refused(inspector, f"pay to {broken[:4] + broken[4:].lower()} today") is None
