"""Erase a deleted endpoint's rows from ClickHouse.

DeleteEndpoint / DeleteUserEndpoints end in an EndpointChange of kind
``DELETED`` on ``lodestar.endpoints``; the worker that owns ClickHouse
consumes those (its own consumer group) and deletes the endpoint's rows
from every table that holds endpoint ids (``ERASABLE_TABLES``: events,
deliveries, journey/campaign activity, segment membership) with a lightweight
``DELETE``. The daily rollups of the days those rows were on are then rebuilt
from the rows left (``ROLLUPS``; migrations 0005 to 0007), so KPIs over whole
days and over partial days agree, and the product and dashboard queries forget
the endpoint too. Events still in flight for the endpoint when it is deleted can
land after the erasure; deleting again is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client

ERASABLE_TABLES: tuple[str, ...] = ("events", "deliveries", "activity", "segment_membership")
ROLLUPS: dict[str, tuple[str, ...]] = {
    "deliveries": ("deliveries_daily", "deliveries_channels_daily"),
    "events": ("events_daily", "events_active_daily", "events_types_daily"),
}
"""Source table → its daily rollups (each rebuilt from its view ``<rollup>_source``)."""

EndpointKey = tuple[str, str]  # (app_id, endpoint_id)


def erasure_key(change: Mapping[str, Any]) -> EndpointKey | None:
    """The endpoint to erase for a decoded EndpointChange, or None if it is not a deletion."""
    if change["kind"] != "DELETED":
        return None
    return (change["app_id"], change["endpoint_id"])


def erase_endpoints(client: Client, keys: Sequence[EndpointKey | None]) -> int:
    """Delete every row of the given endpoints from each erasable table and rebuild the
    rollups of the days they were on; returns how many keys."""
    wanted = sorted({k for k in keys if k is not None})
    if not wanted:
        return 0
    match = "(app_id, endpoint_id) IN {keys:Array(Tuple(String, String))}"
    days: dict[str, list[tuple[str, date]]] = {}
    for table in ROLLUPS:
        rows = client.query(f"SELECT DISTINCT app_id, event_date FROM {table} WHERE {match}",
                            parameters={"keys": wanted}).result_rows
        days[table] = [(str(app), day) for app, day in rows]
    for table in ERASABLE_TABLES:
        client.command(f"DELETE FROM {table} WHERE {match}", parameters={"keys": wanted})
    for table, rollups in ROLLUPS.items():
        for rollup in rollups:
            if days[table]:
                rebuild_rollup(client, rollup, days[table])
    return len(wanted)


def rebuild_rollup(client: Client, rollup: str, days: Sequence[tuple[str, date]]) -> None:
    """Recompute ``rollup`` for the given (app id, day) pairs from its source rows."""
    where = "(app_id, event_date) IN {days:Array(Tuple(String, Date))}"
    params = {"days": list(days)}
    client.command(f"DELETE FROM {rollup} WHERE {where}", parameters=params)
    client.command(f"INSERT INTO {rollup} SELECT * FROM {rollup}_source WHERE {where}",
                   parameters=params)
