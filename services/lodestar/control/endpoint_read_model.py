"""The endpoint read model in PostgreSQL: what GetEndpoint and GetUserEndpoints answer.

Written only by the engine's projection of ``lodestar.endpoints``
(``apply_changes``), read by every API process. Consistency: a change the
engine publishes is readable once the projection's batch is written — within
``LODESTAR_PROJECTION_FLUSH_SECONDS`` (0.2 s by default) plus the engine's own
batching, well inside 1 s on a healthy system.

``apply_changes`` is idempotent and order-safe: per endpoint only the newest
change of a batch is written, and a stored row is replaced only by a change
with an equal or later ``timestamp``; deletions stay as tombstones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from lodestar.core.endpoint_view import endpoint_response


@dataclass(frozen=True)
class ReadModelRow:
    """One endpoint's row, as the projection writes it."""

    app_id: str
    endpoint_id: str
    user_id: str | None
    address: str | None
    channel_type: str | None
    endpoint: dict[str, Any] | None  # Pinpoint EndpointResponse; None when deleted
    deleted: bool
    change_ts: int


def row_from_change(change: Mapping[str, Any]) -> ReadModelRow:
    """The read-model row for a decoded ``lodestar.v1.EndpointChange``."""
    endpoint = change.get("endpoint")
    base = {"app_id": change["app_id"], "endpoint_id": change["endpoint_id"],
            "change_ts": change["timestamp"]}
    if change["kind"] == "DELETED" or endpoint is None:
        return ReadModelRow(**base, user_id=None, address=None, channel_type=None,
                            endpoint=None, deleted=True)
    return ReadModelRow(
        **base,
        user_id=(endpoint.get("user") or {}).get("user_id"),
        address=endpoint.get("address"),
        channel_type=endpoint.get("channel_type"),
        endpoint=endpoint_response(change["app_id"], endpoint),
        deleted=False,
    )


def newest_per_endpoint(rows: Iterable[ReadModelRow]) -> list[ReadModelRow]:
    """Keep the newest row per (app, endpoint); later rows win ties (Kafka order)."""
    newest: dict[tuple[str, str], ReadModelRow] = {}
    for row in rows:
        key = (row.app_id, row.endpoint_id)
        current = newest.get(key)
        if current is None or row.change_ts >= current.change_ts:
            newest[key] = row
    return list(newest.values())


_UPSERT = """
INSERT INTO endpoint_read_model
    (app_id, endpoint_id, user_id, address, channel_type, endpoint, deleted, change_ts, updated_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, now())
ON CONFLICT (app_id, endpoint_id) DO UPDATE SET
    user_id = EXCLUDED.user_id, address = EXCLUDED.address,
    channel_type = EXCLUDED.channel_type, endpoint = EXCLUDED.endpoint,
    deleted = EXCLUDED.deleted, change_ts = EXCLUDED.change_ts, updated_at = now()
WHERE endpoint_read_model.change_ts <= EXCLUDED.change_ts
"""


async def apply_changes(pool: asyncpg.Pool, rows: Iterable[ReadModelRow]) -> None:
    """Write a batch of rows (one transaction)."""
    args = [
        (
            r.app_id, r.endpoint_id, r.user_id, r.address, r.channel_type,
            None if r.endpoint is None else json.dumps(r.endpoint), r.deleted, r.change_ts,
        )
        for r in newest_per_endpoint(rows)
    ]
    if not args:
        return
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(_UPSERT, args)


async def get_endpoint(pool: asyncpg.Pool, app_id: str, endpoint_id: str) -> dict[str, Any] | None:
    """The EndpointResponse of a live endpoint, or None."""
    raw = await pool.fetchval(
        "SELECT endpoint FROM endpoint_read_model"
        " WHERE app_id = $1 AND endpoint_id = $2 AND NOT deleted",
        app_id, endpoint_id,
    )
    return None if raw is None else json.loads(raw)


async def user_endpoints(pool: asyncpg.Pool, app_id: str, user_id: str) -> list[dict[str, Any]]:
    """EndpointResponses of the user's live endpoints, oldest first."""
    rows = await pool.fetch(
        "SELECT endpoint FROM endpoint_read_model"
        " WHERE app_id = $1 AND user_id = $2 AND NOT deleted ORDER BY endpoint->>'CreationDate'",
        app_id, user_id,
    )
    return [json.loads(r["endpoint"]) for r in rows]


async def holders_of_addresses(
    pool: asyncpg.Pool, app_id: str, addresses: Iterable[str]
) -> dict[str, list[str]]:
    """Address → ids of the app's live ACTIVE endpoints holding it (one query)."""
    rows = await pool.fetch(
        "SELECT address, endpoint_id FROM endpoint_read_model"
        " WHERE app_id = $1 AND address = ANY($2::text[]) AND NOT deleted"
        " AND endpoint->>'EndpointStatus' = 'ACTIVE'",
        app_id, sorted(set(addresses)),
    )
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["address"], []).append(r["endpoint_id"])
    return out


async def endpoint_ids_of_users(
    pool: asyncpg.Pool, app_id: str, user_ids: Iterable[str]
) -> dict[str, list[str]]:
    """User id → ids of the user's live endpoints (one query)."""
    rows = await pool.fetch(
        "SELECT user_id, endpoint_id FROM endpoint_read_model"
        " WHERE app_id = $1 AND user_id = ANY($2::text[]) AND NOT deleted",
        app_id, sorted(set(user_ids)),
    )
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["user_id"], []).append(r["endpoint_id"])
    return out


async def endpoint_channels_of_users(
    pool: asyncpg.Pool, app_id: str, user_ids: Iterable[str]
) -> dict[str, dict[str, str]]:
    """User id → {endpoint id → ChannelType} of the user's live endpoints (one query)."""
    rows = await pool.fetch(
        "SELECT user_id, endpoint_id, coalesce(channel_type, 'UNKNOWN') AS channel"
        " FROM endpoint_read_model"
        " WHERE app_id = $1 AND user_id = ANY($2::text[]) AND NOT deleted",
        app_id, sorted(set(user_ids)),
    )
    out: dict[str, dict[str, str]] = {}
    for r in rows:
        out.setdefault(r["user_id"], {})[r["endpoint_id"]] = r["channel"]
    return out


async def endpoints_by_ids(
    pool: asyncpg.Pool, app_id: str, endpoint_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Endpoint id → EndpointResponse of the app's live endpoints among ``endpoint_ids``."""
    rows = await pool.fetch(
        "SELECT endpoint_id, endpoint FROM endpoint_read_model"
        " WHERE app_id = $1 AND endpoint_id = ANY($2::text[]) AND NOT deleted",
        app_id, sorted(set(endpoint_ids)),
    )
    return {r["endpoint_id"]: json.loads(r["endpoint"]) for r in rows}


async def endpoints_of_users(
    pool: asyncpg.Pool, app_id: str, user_ids: Iterable[str]
) -> dict[str, list[dict[str, Any]]]:
    """User id → EndpointResponses of the user's live endpoints, oldest first (one query)."""
    rows = await pool.fetch(
        "SELECT user_id, endpoint FROM endpoint_read_model"
        " WHERE app_id = $1 AND user_id = ANY($2::text[]) AND NOT deleted"
        " ORDER BY endpoint->>'CreationDate', endpoint_id",
        app_id, sorted(set(user_ids)),
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["user_id"], []).append(json.loads(r["endpoint"]))
    return out
