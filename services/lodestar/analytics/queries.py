"""Read-side queries over the events table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.registry import analytics_query


@dataclass(frozen=True)
class EventTypeCount:
    event_type: str
    count: int


def event_counts(
    client: Client, app_id: str | None = None, event_type: str | None = None
) -> list[EventTypeCount]:
    """Events stored per event type (optionally of one app / one type), most first.

    Reads with FINAL so a batch replayed after a crash is not counted twice.
    """
    where: list[str] = []
    params: dict[str, str] = {}
    if app_id is not None:
        where.append("app_id = {app_id:String}")
        params["app_id"] = app_id
    if event_type is not None:
        where.append("event_type = {event_type:String}")
        params["event_type"] = event_type
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = client.query(
        f"SELECT event_type, count() AS n FROM events FINAL {clause} "
        "GROUP BY event_type ORDER BY n DESC, event_type",
        parameters=params,
    ).result_rows
    return [EventTypeCount(str(t), int(n)) for t, n in rows]


@analytics_query("event-counts")
def event_counts_query(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """``{"Counts": [{"EventType", "Count"}…], "Total": n}`` (params ``app-id``, ``event-type``)."""
    rows = event_counts(client, params.get("app-id"), params.get("event-type"))
    return {
        "Counts": [{"EventType": r.event_type, "Count": r.count} for r in rows],
        "Total": sum(r.count for r in rows),
    }
