from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lodestar.core.webhook_signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    VerifyResult,
    app_secret,
    signature,
    signed_headers,
    verify,
)

SECRET = b"whsec-test-secret"
BODY = b'{"Data":"hello","MessageId":"m-1"}'
NOW = 1_777_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1777000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == expected
    headers = signed_headers(SECRET, BODY, NOW)
    assert headers == {TIMESTAMP_HEADER: "1777000000", SIGNATURE_HEADER: f"v1={expected}"}


def test_a_signed_request_verifies_within_the_tolerance() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    for skew in (0, 299, -299):
        result = verify(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
                        NOW + skew)
        assert result.valid, result


@pytest.mark.parametrize(("secret", "body", "now", "result"), [
    (b"other-secret", BODY, NOW, VerifyResult.MISMATCH),
    (SECRET, BODY + b" ", NOW, VerifyResult.MISMATCH),
    (SECRET, BODY, NOW + 301, VerifyResult.STALE),
    (SECRET, BODY, NOW - 301, VerifyResult.STALE),
])
def test_tampering_wrong_secrets_and_replays_are_refused(
        secret: bytes, body: bytes, now: int, result: VerifyResult) -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    verdict = verify(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now)
    assert verdict.result is result and not verdict.valid


def test_a_changed_timestamp_breaks_the_signature() -> None:
    headers = signed_headers(SECRET, BODY, NOW)
    verdict = verify(SECRET, BODY, str(NOW + 1), headers[SIGNATURE_HEADER], NOW)
    assert verdict.result is VerifyResult.MISMATCH


@pytest.mark.parametrize(("timestamp", "sig", "result"), [
    (None, "v1=" + "0" * 64, VerifyResult.MISSING),
    ("1777000000", "", VerifyResult.MISSING),
    ("soon", "v1=" + "0" * 64, VerifyResult.MALFORMED),
    ("1777000000", "v0=" + "0" * 64, VerifyResult.MALFORMED),
    ("1777000000", "v1=xyz", VerifyResult.MALFORMED),
])
def test_missing_and_malformed_headers(timestamp: str | None, sig: str,
                                       result: VerifyResult) -> None:
    assert verify(SECRET, BODY, timestamp, sig, NOW).result is result


def test_rotation_accepts_any_matching_entry() -> None:
    old = signature(b"old-secret", NOW, BODY)
    new = signature(SECRET, NOW, BODY)
    header = f"v1={old}, v1={new.upper()}"
    assert verify(SECRET, BODY, str(NOW), header, NOW).valid
    assert verify(b"old-secret", BODY, str(NOW), header, NOW).valid
    assert not verify(b"third", BODY, str(NOW), header, NOW).valid


def test_app_secrets_are_derived_per_app() -> None:
    a = app_secret(b"master", "app-a")
    assert a == app_secret(b"master", "app-a")
    assert a != app_secret(b"master", "app-b") != app_secret(b"other", "app-a")
    assert len(a) == 64 and a.decode().isalnum()
    with pytest.raises(ValueError):
        app_secret(b"", "app-a")


def test_the_receiver_example_in_the_docs_verifies_lodestars_signature() -> None:
    import re
    import time
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs/voice-and-custom.md").read_text()
    [code] = [block for block in re.findall(r"```python\n(.*?)```", doc, re.S)
              if "def verify" in block]
    namespace: dict[str, object] = {}
    exec(code, namespace)
    receiver_verify: Any = namespace["verify"]
    now = int(time.time())
    headers = signed_headers(SECRET, BODY, now)
    assert receiver_verify(SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    assert not receiver_verify(SECRET, BODY + b"x", headers[TIMESTAMP_HEADER],
                               headers[SIGNATURE_HEADER])
    old = signed_headers(SECRET, BODY, now - 600)
    assert not receiver_verify(SECRET, BODY, old[TIMESTAMP_HEADER], old[SIGNATURE_HEADER])
