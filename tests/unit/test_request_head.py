"""Inspection reads the whole head of a request: header names and the method, not only values and the URL."""

from bottle_core.bundle.image.inspection import Inspector

TOKEN = "ghp_" + "k3J9xQ2mV7bN4cZ8wL1pR6tY0uH5sD3fG9aE"


def inspector() -> Inspector:
    return Inspector([{"name": "TOKEN", "value": "Vw3kQ8zR1tY6uI9oP2aS5dF7gH4jK0lX-real",
                       "placeholder": "bottle-placeholder-token-0123456789abcdef01234567", "hosts": ["api.test"]}],
                     allow=["api.test", "other.test"])


def test_a_credential_as_a_header_name_is_found_as_sent():
    finding = inspector().inspect("other.test", 443, "/", [("Accept", "*/*"), (TOKEN, "1")], b"")
    assert (finding.rule, finding.where) == ("credential", "header names")


def test_a_credential_or_a_placeholder_in_the_method_is_found():
    assert inspector().inspect("other.test", 443, "/", [], b"", method=TOKEN).where == "method"
    placeholder = "bottle-placeholder-token-0123456789abcdef01234567"
    finding = inspector().inspect("other.test", 443, "/", [], b"", method=placeholder)
    assert (finding.rule, finding.where) == ("secret-value", "method")


def test_ordinary_names_and_methods_pass():
    headers = [("Accept", "*/*"), ("X-Request-Id", "4f1c2a"), ("If-None-Match", '"33a64df5"')]
    for method in ("GET", "PROPFIND", "PATCH"):
        assert inspector().inspect("other.test", 443, "/x", headers, b"", method=method) is None
