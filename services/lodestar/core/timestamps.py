"""Timestamps as Pinpoint writes them and as Lodestar keeps them (epoch milliseconds, UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


class TimestampError(ValueError):
    """A value is not an ISO-8601 timestamp; the message names the field."""


def parse_timestamp(value: object, name: str) -> int:
    """An ISO-8601 timestamp (``Z`` or an offset; naive means UTC) as epoch millis.

    Raises ``TimestampError`` naming ``name`` when ``value`` is missing or malformed.
    """
    if not isinstance(value, str) or not value:
        raise TimestampError(f"{name} is required and must be an ISO-8601 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise TimestampError(
            f"{name} {value!r} is not an ISO-8601 timestamp such as 2026-05-01T12:00:00.000Z."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - EPOCH) // MILLISECOND


def iso_millis(ms: int) -> str:
    """Epoch millis as Pinpoint writes dates: ``2026-05-01T12:00:00.000Z``."""
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
