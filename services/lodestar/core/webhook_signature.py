"""Signing custom-channel webhook requests, and checking such a signature.

Every webhook POST carries two headers:

- ``X-Lodestar-Timestamp``: Unix seconds when the request was signed;
- ``X-Lodestar-Signature``: ``v1=<hex>``, the lowercase hex HMAC-SHA256 of
  ``f"{timestamp}.".encode() + body`` keyed with the app's webhook secret.
  During a secret rotation the header may hold several comma-separated
  ``v1=`` entries; one matching entry is enough.

A receiver recomputes the HMAC over the raw body bytes (before any JSON
parsing), compares in constant time, and refuses timestamps further than the
tolerance (default 300 s) from its own clock, which bounds replays; the body's
``MessageId`` lets it drop the rest (see docs/voice-and-custom.md).

``app_secret(master_key, app_id)`` derives a per-app secret from one master
key, so secrets need no storage of their own: give each app owner its derived
secret. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

TIMESTAMP_HEADER = "X-Lodestar-Timestamp"
SIGNATURE_HEADER = "X-Lodestar-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def app_secret(master_key: bytes, app_id: str) -> bytes:
    """The webhook secret of ``app_id``: HMAC-SHA256(master_key, "lodestar-webhook:" + app_id),
    hex-encoded (what the app owner configures in the receiver)."""
    if not master_key:
        raise ValueError("the webhook master key must not be empty")
    digest = hmac.new(master_key, f"lodestar-webhook:{app_id}".encode(), hashlib.sha256)
    return digest.hexdigest().encode("ascii")


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of ``f"{timestamp}." + body`` keyed with ``secret``."""
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def signed_headers(secret: bytes, body: bytes, now_s: int) -> dict[str, str]:
    """The two headers for a request whose body is ``body``, signed at ``now_s``."""
    return {
        TIMESTAMP_HEADER: str(int(now_s)),
        SIGNATURE_HEADER: f"{SCHEME}={signature(secret, int(now_s), body)}",
    }


class VerifyResult(StrEnum):
    VALID = "VALID"
    MISSING = "MISSING"
    """A header is absent or empty."""
    MALFORMED = "MALFORMED"
    """The timestamp is not an integer, or no ``v1=<64 hex>`` entry was found."""
    STALE = "STALE"
    """The timestamp is outside the tolerance window (replay or clock skew)."""
    MISMATCH = "MISMATCH"
    """No entry matches: wrong secret or a changed body."""


@dataclass(frozen=True)
class Verification:
    result: VerifyResult
    detail: str

    @property
    def valid(self) -> bool:
        return self.result is VerifyResult.VALID


def _entries(header: str) -> list[str]:
    out = []
    for item in header.split(","):
        scheme, _, value = item.strip().partition("=")
        value = value.strip().lower()
        if scheme.strip() == SCHEME and len(value) == 64 and all(
                c in "0123456789abcdef" for c in value):
            out.append(value)
    return out


def verify(
    secret: bytes,
    body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> Verification:
    """Check a received request: headers present, timestamp within ``tolerance_s`` of
    ``now_s``, and one ``v1=`` entry equal (constant-time) to the expected HMAC."""
    if not timestamp_header or not signature_header:
        return Verification(VerifyResult.MISSING, "the timestamp or signature header is missing")
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        return Verification(VerifyResult.MALFORMED, "the timestamp is not Unix seconds")
    if abs(now_s - timestamp) > tolerance_s:
        return Verification(
            VerifyResult.STALE, f"the timestamp is {abs(now_s - timestamp):.0f} s away from now")
    entries = _entries(signature_header)
    if not entries:
        return Verification(VerifyResult.MALFORMED, "no v1=<hex> signature entry")
    expected = signature(secret, timestamp, body)
    matched = False
    for entry in entries:  # compare every entry: timing does not tell which one matched
        matched = hmac.compare_digest(expected, entry) or matched
    if matched:
        return Verification(VerifyResult.VALID, "signature valid")
    return Verification(VerifyResult.MISMATCH, "the signature does not match the body")
