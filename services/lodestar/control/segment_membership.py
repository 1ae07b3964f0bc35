"""Segment membership read model and backfill progress, in PostgreSQL (issue 4).

Plain SQL over an asyncpg pool that the caller owns (tables from migration
``0005_segment_membership``):

- ``segment_members``: one row per (application, segment, endpoint) that is a
  member now, with the segment version that admitted it and when it entered.
  Written only by the engine's projection of ``<prefix>.segment-membership``
  (``apply_membership_changes``); read by the segment status API and CLI.
- ``segment_backfill``: per (segment, version, partition) how far the worker
  owning that partition has got evaluating a new segment version over its
  endpoints (``record_backfill_progress``), summed up by ``backfill_status``.

Rows of a segment PostgreSQL does not have (deleted, or never created) are not
written: a change or a progress report for it is skipped, not an error, so an
engine still catching up after DeleteSegment cannot bring rows back. Deleting a
segment or its application removes its rows (foreign keys ``ON DELETE
CASCADE``; ``delete_segment_membership`` does it explicitly too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

ENTER = "ENTER"
EXIT = "EXIT"

PENDING = "PENDING"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"

_Key = tuple[str, str, str]

_UNNEST_MEMBERS = (
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[]) "
    "AS u(app_id, segment_id, endpoint_id, segment_version, entered_at) "
    "JOIN segments s ON s.app_id = u.app_id AND s.id = u.segment_id "
)
# A member that stayed a member keeps the time it entered; one that left and came
# back within the batch enters anew.
_UPSERT_KEEP = (
    "INSERT INTO segment_members (app_id, segment_id, endpoint_id, segment_version, entered_at) "
    "SELECT u.app_id, u.segment_id, u.endpoint_id, u.segment_version, u.entered_at "
    + _UNNEST_MEMBERS
    + "ON CONFLICT (app_id, segment_id, endpoint_id) DO UPDATE SET "
    "segment_version = EXCLUDED.segment_version"
)
_UPSERT_REPLACE = (
    "INSERT INTO segment_members (app_id, segment_id, endpoint_id, segment_version, entered_at) "
    "SELECT u.app_id, u.segment_id, u.endpoint_id, u.segment_version, u.entered_at "
    + _UNNEST_MEMBERS
    + "ON CONFLICT (app_id, segment_id, endpoint_id) DO UPDATE SET "
    "segment_version = EXCLUDED.segment_version, entered_at = EXCLUDED.entered_at"
)
_DELETE_MEMBERS = (
    "DELETE FROM segment_members m "
    "USING unnest($1::text[], $2::text[], $3::text[]) AS u(app_id, segment_id, endpoint_id) "
    "WHERE m.app_id = u.app_id AND m.segment_id = u.segment_id "
    "AND m.endpoint_id = u.endpoint_id"
)


def _when(timestamp: int | datetime) -> datetime:
    """A record's ``timestamp`` (epoch milliseconds, as the codec decodes it) as a datetime."""
    if isinstance(timestamp, datetime):
        return timestamp
    return datetime.fromtimestamp(timestamp / 1000, tz=UTC)


def _coalesce(
    records: Sequence[Mapping[str, Any]],
) -> tuple[dict[_Key, tuple[int, datetime, bool]], list[_Key]]:
    """Per (app, segment, endpoint) the outcome of the batch.

    ENTER keys map to (version of the last record, time of entry, whether the
    entry replaces a stored row's entered_at); the list holds the EXIT keys.
    The time of entry is that of the first ENTER after the key's last EXIT in
    the batch (the first ENTER when there is no EXIT: a stored row keeps its own).
    """
    last: dict[_Key, Mapping[str, Any]] = {}
    entered: dict[_Key, Mapping[str, Any]] = {}  # first ENTER since the last EXIT
    exited: set[_Key] = set()
    for record in records:
        key = (record["app_id"], record["segment_id"], record["endpoint_id"])
        change = record["change"]
        if change == ENTER:
            entered.setdefault(key, record)
        elif change == EXIT:
            entered.pop(key, None)
            exited.add(key)
        else:
            raise ValueError(f"membership change {change!r} is neither ENTER nor EXIT")
        last[key] = record
    enters: dict[_Key, tuple[int, datetime, bool]] = {}
    exits: list[_Key] = []
    for key, record in sorted(last.items()):  # a fixed order: concurrent writers lock alike
        if record["change"] == EXIT:
            exits.append(key)
        else:
            enters[key] = (record["segment_version"], _when(entered[key]["timestamp"]),
                           key in exited)
    return enters, exits


async def apply_membership_changes(
    pool: asyncpg.Pool, records: Sequence[Mapping[str, Any]]
) -> None:
    """Apply decoded ``lodestar.v1.SegmentMembershipChange`` records, in their order.

    Per (app, segment, endpoint) the last record of the batch wins: ENTER makes
    the endpoint a member (``segment_version`` from that record; ``entered_at``
    the time of the ENTER that began the membership, kept while it lasts), EXIT
    removes it. One transaction per call; applying a batch again changes
    nothing, so replays after a crash are harmless. Records of segments that
    do not exist are skipped.
    """
    enters, exits = _coalesce(records)
    if not enters and not exits:
        return
    async with pool.acquire() as conn, conn.transaction():
        if exits:
            await conn.execute(_DELETE_MEMBERS, *_columns(exits))
        for replace, statement in ((False, _UPSERT_KEEP), (True, _UPSERT_REPLACE)):
            rows = [(*key, version, at) for key, (version, at, again) in enters.items()
                    if again is replace]
            if rows:
                await conn.execute(statement, *_columns(rows))


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as columns, the arrays ``unnest`` takes."""
    return [list(column) for column in zip(*rows, strict=True)]


async def record_backfill_progress(
    pool: asyncpg.Pool,
    app_id: str,
    segment_id: str,
    segment_version: int,
    partition: int,
    evaluated: int,
    total: int,
    finished: bool,
) -> None:
    """Store how far one partition's backfill of a segment version has got.

    ``evaluated`` and ``total`` are that partition's endpoint counts and replace
    the stored ones; ``started_at`` is the first report's time. ``finished``
    sets ``finished_at`` once: a later report keeps the first ``finished_at``.
    Skipped when the segment does not exist.
    """
    await pool.execute(
        "INSERT INTO segment_backfill (app_id, segment_id, segment_version, partition, "
        "evaluated, total, started_at, updated_at, finished_at) "
        "SELECT $1, $2, $3, $4, $5, $6, now(), now(), CASE WHEN $7::boolean THEN now() END "
        "WHERE EXISTS (SELECT 1 FROM segments WHERE app_id = $1 AND id = $2) "
        "ON CONFLICT (app_id, segment_id, segment_version, partition) DO UPDATE SET "
        "evaluated = EXCLUDED.evaluated, total = EXCLUDED.total, updated_at = now(), "
        "finished_at = COALESCE(segment_backfill.finished_at, EXCLUDED.finished_at)",
        app_id, segment_id, segment_version, partition, evaluated, total, finished,
    )


async def record_backfills_progress(
    pool: asyncpg.Pool,
    app_id: str,
    segments: Sequence[tuple[str, int]],
    partition: int,
    evaluated: int,
    total: int,
    finished: bool,
) -> None:
    """``record_backfill_progress`` for several (segment id, version) evaluated together
    (one backfill job), in one statement."""
    if not segments:
        return
    ids, versions = [list(c) for c in zip(*segments, strict=True)]
    await pool.execute(
        "INSERT INTO segment_backfill (app_id, segment_id, segment_version, partition, "
        "evaluated, total, started_at, updated_at, finished_at) "
        "SELECT $1, j.id, j.version, $4, $5, $6, now(), now(), "
        "CASE WHEN $7::boolean THEN now() END "
        "FROM unnest($2::text[], $3::int[]) AS j(id, version) "
        "WHERE EXISTS (SELECT 1 FROM segments WHERE app_id = $1 AND id = j.id) "
        "ON CONFLICT (app_id, segment_id, segment_version, partition) DO UPDATE SET "
        "evaluated = EXCLUDED.evaluated, total = EXCLUDED.total, updated_at = now(), "
        "finished_at = COALESCE(segment_backfill.finished_at, EXCLUDED.finished_at)",
        app_id, ids, versions, partition, evaluated, total, finished,
    )


async def finished_partitions(
    pool: asyncpg.Pool, app_id: str, segment_id: str, segment_version: int
) -> set[int]:
    """The partitions whose backfill of this segment version has finished."""
    rows = await pool.fetch(
        "SELECT partition FROM segment_backfill WHERE app_id = $1 AND segment_id = $2 "
        "AND segment_version = $3 AND finished_at IS NOT NULL",
        app_id, segment_id, segment_version,
    )
    return {r["partition"] for r in rows}


async def backfill_status(
    pool: asyncpg.Pool, app_id: str, segment_id: str, segment_version: int, partitions: int
) -> dict[str, Any]:
    """The backfill of one segment version over ``partitions`` partitions, Pinpoint-style.

    ``{"Version", "State", "EndpointsEvaluated", "EndpointsTotal",
    "PartitionsCompleted", "Partitions"}``. State: PENDING while no partition
    has reported, COMPLETED once every partition ``0 … partitions-1`` has
    finished, IN_PROGRESS in between. The endpoint counts are summed over the
    partitions that reported.
    """
    row = await pool.fetchrow(
        "SELECT count(*) AS reported, coalesce(sum(evaluated), 0) AS evaluated, "
        "coalesce(sum(total), 0) AS total, "
        "count(*) FILTER (WHERE finished_at IS NOT NULL AND partition < $4) AS finished "
        "FROM segment_backfill WHERE app_id = $1 AND segment_id = $2 AND segment_version = $3",
        app_id, segment_id, segment_version, partitions,
    )
    assert row is not None  # an aggregate always answers one row
    finished = int(row["finished"])
    if row["reported"] == 0:
        state = PENDING
    elif finished >= partitions:
        state = COMPLETED
    else:
        state = IN_PROGRESS
    return {
        "Version": segment_version,
        "State": state,
        "EndpointsEvaluated": int(row["evaluated"]),
        "EndpointsTotal": int(row["total"]),
        "PartitionsCompleted": finished,
        "Partitions": partitions,
    }


async def segment_size(
    pool: asyncpg.Pool, app_id: str, segment_id: str
) -> tuple[int, dict[str, int]]:
    """(number of members, members per ChannelType), like Pinpoint's ChannelCounts.

    The size counts every member row. A member is counted under its endpoint's
    ChannelType only when ``endpoint_read_model`` holds a live row for it with a
    ChannelType; a member whose endpoint row is missing (not projected yet), a
    tombstone (deleted; its EXIT is on its way) or has no ChannelType counts in
    the size but under no channel, so the channel counts may add up to less.
    """
    rows = await pool.fetch(
        "SELECT e.channel_type, count(*) AS n FROM segment_members m "
        "LEFT JOIN endpoint_read_model e ON e.app_id = m.app_id "
        "AND e.endpoint_id = m.endpoint_id AND NOT e.deleted "
        "WHERE m.app_id = $1 AND m.segment_id = $2 GROUP BY e.channel_type",
        app_id, segment_id,
    )
    size = sum(int(r["n"]) for r in rows)
    channels = {r["channel_type"]: int(r["n"]) for r in rows if r["channel_type"] is not None}
    return size, dict(sorted(channels.items()))


async def delete_segment_membership(
    db: asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy, app_id: str, segment_id: str
) -> None:
    """Remove a segment's members and backfill progress (every version).

    Given a connection, runs in the caller's transaction (DeleteSegment's);
    given a pool, in a transaction of its own.
    """
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            await _delete(conn, app_id, segment_id)
    else:
        await _delete(db, app_id, segment_id)


async def _delete(
    conn: asyncpg.Connection | PoolConnectionProxy, app_id: str, segment_id: str
) -> None:
    for table in ("segment_members", "segment_backfill"):
        await conn.execute(
            f"DELETE FROM {table} WHERE app_id = $1 AND segment_id = $2", app_id, segment_id
        )
