"""Map decoded ``lodestar.v1.Event`` records to rows of the ``events`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_COLUMNS: tuple[str, ...] = (
    "app_id",
    "event_type",
    "event_time",
    "arrival_time",
    "endpoint_id",
    "event_id",
    "session_id",
    "attributes",
    "metrics",
    "app_version_code",
    "sdk_name",
)


def event_row(record: Mapping[str, Any]) -> list[Any]:
    """One row in ``EVENT_COLUMNS`` order (timestamps stay epoch milliseconds)."""
    session = record.get("session") or {}
    client = record.get("client") or {}
    return [
        record["app_id"],
        record["event_type"],
        record["timestamp"],
        record["arrival_timestamp"],
        record["endpoint_id"],
        record["event_id"],
        session.get("id") or "",
        record.get("attributes") or {},
        record.get("metrics") or {},
        client.get("app_version_code") or "",
        client.get("sdk_name") or "",
    ]
