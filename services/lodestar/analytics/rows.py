"""Map decoded topic records to rows of their ClickHouse tables.

One mapper per table, each ``record -> list`` in its ``*_COLUMNS`` order:
``events`` (``lodestar.v1.Event``), ``deliveries`` (``lodestar.v1.Delivery``),
``activity`` (``lodestar.v1.ActivityStep``) and ``segment_membership``
(``lodestar.v1.SegmentMembershipChange``). Timestamps stay epoch
milliseconds; absent optional strings become ``""`` and absent numbers ``0``,
so every column is non-nullable and cheap to filter on.
"""

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
    "user_id",
)


def event_row(record: Mapping[str, Any]) -> list[Any]:
    """One ``events`` row in ``EVENT_COLUMNS`` order."""
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
        record.get("user_id") or "",
    ]


DELIVERY_COLUMNS: tuple[str, ...] = (
    "app_id",
    "event_type",
    "channel",
    "event_time",
    "event_id",
    "message_id",
    "endpoint_id",
    "user_id",
    "campaign_id",
    "treatment_id",
    "campaign_activity_id",
    "journey_id",
    "journey_activity_id",
    "journey_run_id",
    "delivery_type",
    "record_status",
    "iso_country_code",
    "message_parts",
    "price_millicents_usd",
    "attributes",
    "metrics",
)

MAX_MESSAGE_PARTS = 65_535  # the column is UInt16

_PROMOTED_ATTRIBUTES = (
    "campaign_id",
    "treatment_id",
    "campaign_activity_id",
    "journey_id",
    "journey_activity_id",
    "journey_run_id",
    "delivery_type",
    "record_status",
)


def message_parts(value: str | None) -> int:
    """``number_of_message_parts`` as a count: 0 when absent or not a whole number."""
    try:
        parts = int(value or 0)
    except ValueError:
        return 0
    return min(max(parts, 0), MAX_MESSAGE_PARTS)


def delivery_row(record: Mapping[str, Any]) -> list[Any]:
    """One ``deliveries`` row in ``DELIVERY_COLUMNS`` order.

    Pinpoint's attributes that KPIs filter or group on (campaign, treatment,
    journey ids, delivery type, SMS record status, country, parts) are promoted
    to columns; the full maps are kept too. The country is stored upper-case.
    """
    attributes: Mapping[str, str] = record.get("attributes") or {}
    metrics: Mapping[str, float] = record.get("metrics") or {}
    promoted = [attributes.get(name) or "" for name in _PROMOTED_ATTRIBUTES]
    return [
        record["app_id"],
        record["event_type"],
        record["channel"],
        record["timestamp"],
        record["event_id"],
        record["message_id"],
        record.get("endpoint_id") or "",
        record.get("user_id") or "",
        *promoted,
        (attributes.get("iso_country_code") or "").upper(),
        message_parts(attributes.get("number_of_message_parts")),
        float(metrics.get("price_in_millicents_usd") or 0.0),
        dict(attributes),
        dict(metrics),
    ]


ACTIVITY_COLUMNS: tuple[str, ...] = (
    "app_id",
    "source_type",
    "source_id",
    "source_version",
    "run_id",
    "activity_id",
    "activity_type",
    "channel",
    "endpoint_id",
    "user_id",
    "treatment_id",
    "outcome",
    "reason",
    "branch",
    "next_activity_id",
    "message_id",
    "step_time",
    "step_id",
    "attributes",
)


def activity_row(record: Mapping[str, Any]) -> list[Any]:
    """One ``activity`` row in ``ACTIVITY_COLUMNS`` order."""
    return [
        record["app_id"],
        record["source_type"],
        record["source_id"],
        record.get("source_version") or 0,
        record["run_id"],
        record.get("activity_id") or "",
        record["activity_type"],
        record.get("channel") or "",
        record["endpoint_id"],
        record.get("user_id") or "",
        record.get("treatment_id") or "",
        record["outcome"],
        record.get("reason") or "",
        record.get("branch") or "",
        record.get("next_activity_id") or "",
        record.get("message_id") or "",
        record["timestamp"],
        record["step_id"],
        dict(record.get("attributes") or {}),
    ]


MEMBERSHIP_COLUMNS: tuple[str, ...] = (
    "app_id",
    "segment_id",
    "segment_version",
    "endpoint_id",
    "user_id",
    "change",
    "cause",
    "event_id",
    "change_time",
)


def membership_row(record: Mapping[str, Any]) -> list[Any]:
    """One ``segment_membership`` row in ``MEMBERSHIP_COLUMNS`` order."""
    return [
        record["app_id"],
        record["segment_id"],
        record["segment_version"],
        record["endpoint_id"],
        record.get("user_id") or "",
        record["change"],
        record["cause"],
        record.get("event_id") or "",
        record["timestamp"],
    ]
