"""Erase a deleted endpoint's rows from ClickHouse.

DeleteEndpoint / DeleteUserEndpoints end in an EndpointChange of kind
``DELETED`` on ``lodestar.endpoints``; the worker that owns ClickHouse
consumes those (its own consumer group) and deletes the endpoint's events
with a lightweight ``DELETE``. Events still in flight for the endpoint when
it is deleted can land after the erasure; deleting again is harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

ERASABLE_TABLES: tuple[str, ...] = ("events",)

EndpointKey = tuple[str, str]  # (app_id, endpoint_id)


def erasure_key(change: Mapping[str, Any]) -> EndpointKey | None:
    """The endpoint to erase for a decoded EndpointChange, or None if it is not a deletion."""
    if change["kind"] != "DELETED":
        return None
    return (change["app_id"], change["endpoint_id"])


def erase_endpoints(client: Client, keys: Sequence[EndpointKey | None]) -> int:
    """Delete every row of the given endpoints from each erasable table; returns how many keys."""
    wanted = sorted({k for k in keys if k is not None})
    if not wanted:
        return 0
    for table in ERASABLE_TABLES:
        client.command(
            f"DELETE FROM {table} WHERE (app_id, endpoint_id) IN "
            "{keys:Array(Tuple(String, String))}",
            parameters={"keys": wanted},
        )
    return len(wanted)
