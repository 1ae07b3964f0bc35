"""What every list route shares: opaque page tokens, Pinpoint's timestamps, bounds.

- ``encode_token(raw)`` / ``decode_token(token)``: URL-safe base64 without padding
  around a cursor string; ``decode_token`` raises ``ValueError`` for anything that
  is not one of ours (the handler answers 400).
- ``iso(ts)``: Pinpoint's ``2026-05-01T12:00:00.000Z`` form (UTC, milliseconds).
- ``MAX_VERSION``: the largest version number PostgreSQL's ``integer`` holds.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

MAX_VERSION = 2**31 - 1


def encode_token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(token) from None


def iso(ts: datetime) -> str:
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def created_token(created_at: datetime, entity_id: str) -> str:
    """The token of a page that ends at (created_at, id): lists ordered by creation."""
    return encode_token(f"{created_at.astimezone(UTC).isoformat()}|{entity_id}")


def decode_created_token(token: str) -> tuple[datetime, str]:
    """Inverse of ``created_token``; ``ValueError`` when it is not one."""
    created, sep, entity_id = decode_token(token).partition("|")
    if not sep or not entity_id:
        raise ValueError(token)
    return datetime.fromisoformat(created), entity_id


def version_token(version: int) -> str:
    """The token of a page of versions that ends at ``version``."""
    return encode_token(str(version))


def decode_version_token(token: str) -> int:
    """Inverse of ``version_token``; ``ValueError`` when it is not one."""
    after = int(decode_token(token))
    if not 0 <= after <= MAX_VERSION:
        raise ValueError(token)
    return after
