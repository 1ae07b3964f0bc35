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

    Reads the daily rollup ``events_types_daily`` (migration 0006): per day and type
    the exact count of distinct (endpoint, event id) pairs, so a batch replayed after
    a crash is not counted twice. An event id lives on one day (the table's sort key
    includes the date), so the per-day counts add up exactly. 10M events: ~30 ms
    instead of ~0.85 s for ``FINAL`` over the rows (docs/benchmarks.md).
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
        "SELECT event_type, sum(n) AS total FROM ("
        f"SELECT event_date, event_type, uniqExactMerge(events) AS n FROM events_types_daily "
        f"{clause} GROUP BY app_id, event_date, event_type) "
        "GROUP BY event_type HAVING total > 0 ORDER BY total DESC, event_type",
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
