"""OAuth2 token answers (RFC 6749 §5.1), read without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULT_LIFETIME_S = 3600.0
"""``expires_in`` when an answer leaves it out."""


def read_token(body: Any) -> tuple[str, float]:
    """(access token, lifetime in seconds) of a 200 token answer; ``ValueError`` when the
    answer lacks a usable token (one with a line break would break the header)."""
    if not isinstance(body, Mapping) or not isinstance(body.get("access_token"), str):
        raise ValueError("no access_token in the answer")
    token = body["access_token"]
    if not token or "\r" in token or "\n" in token:
        raise ValueError("an unusable access_token")
    lifetime = body.get("expires_in", DEFAULT_LIFETIME_S)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float | str):
        raise ValueError("an unreadable expires_in")
    try:
        return token, float(lifetime)
    except ValueError:
        raise ValueError("an unreadable expires_in") from None
