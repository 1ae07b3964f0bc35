"""The segment membership read model and backfill progress against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from lodestar.control.apps import AppsRepository
from lodestar.control.endpoint_read_model import ReadModelRow, apply_changes
from lodestar.control.segment_membership import (
    apply_membership_changes,
    backfill_status,
    delete_segment_membership,
    finished_partitions,
    record_backfill_progress,
    record_backfills_progress,
    segment_size,
)
from lodestar.control.segments import SegmentsRepository

pytestmark = pytest.mark.postgres

DIMS = {"Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}
T0 = 1_780_000_000_000  # epoch ms


@pytest.fixture
async def segment_id(pool: asyncpg.Pool, app_id: str) -> str:
    return (await SegmentsRepository(pool).create(app_id, "iOS", DIMS)).id


def change(app_id: str, segment_id: str, endpoint_id: str, kind: str, at: int = T0,
           version: int = 1) -> dict[str, Any]:
    return {
        "app_id": app_id, "segment_id": segment_id, "segment_version": version,
        "endpoint_id": endpoint_id, "user_id": None, "change": kind, "cause": "endpoint",
        "event_id": None, "timestamp": at,
    }


async def members(pool: asyncpg.Pool, segment_id: str) -> dict[str, tuple[int, int]]:
    """endpoint id → (segment_version, entered_at in epoch ms)."""
    rows = await pool.fetch(
        "SELECT endpoint_id, segment_version, entered_at FROM segment_members "
        "WHERE segment_id = $1", segment_id,
    )
    return {r["endpoint_id"]: (r["segment_version"], int(r["entered_at"].timestamp() * 1000))
            for r in rows}


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


async def test_last_change_of_a_batch_wins(pool: asyncpg.Pool, app_id: str,
                                           segment_id: str) -> None:
    c = lambda *a, **k: change(app_id, segment_id, *a, **k)  # noqa: E731
    await apply_membership_changes(pool, [
        c("a", "ENTER", T0),
        c("b", "ENTER", T0 + 1), c("b", "EXIT", T0 + 2),
        c("c", "EXIT", T0 + 3), c("c", "ENTER", T0 + 4),
        c("d", "ENTER", T0 + 5), c("d", "ENTER", T0 + 6, version=2),
    ])
    assert await members(pool, segment_id) == {
        "a": (1, T0), "c": (1, T0 + 4), "d": (2, T0 + 5),
    }

    await apply_membership_changes(pool, [
        c("a", "ENTER", T0 + 10, version=2),  # still a member: keeps when it entered
        c("c", "EXIT", T0 + 11), c("c", "ENTER", T0 + 12), c("c", "ENTER", T0 + 13),  # re-entered
        c("d", "ENTER", T0 + 14), c("d", "EXIT", T0 + 15),
        c("e", "EXIT", T0 + 16),  # not a member: nothing to do
    ])
    assert await members(pool, segment_id) == {"a": (2, T0), "c": (1, T0 + 12)}
    await apply_membership_changes(pool, [])


async def test_replaying_batches_changes_nothing(pool: asyncpg.Pool, app_id: str,
                                                 segment_id: str) -> None:
    c = lambda *a, **k: change(app_id, segment_id, *a, **k)  # noqa: E731
    first = [c("a", "ENTER", T0), c("b", "ENTER", T0 + 1), c("x", "ENTER", T0 + 2)]
    second = [c("b", "EXIT", T0 + 3), c("x", "EXIT", T0 + 4), c("x", "ENTER", T0 + 5)]
    await apply_membership_changes(pool, first)
    await apply_membership_changes(pool, second)
    expected = {"a": (1, T0), "x": (1, T0 + 5)}
    assert await members(pool, segment_id) == expected
    # at-least-once: after a crash the consumer re-reads from its last commit
    await apply_membership_changes(pool, second)
    assert await members(pool, segment_id) == expected
    await apply_membership_changes(pool, first + second)
    assert await members(pool, segment_id) == expected
    await apply_membership_changes(pool, first)
    await apply_membership_changes(pool, second)
    assert await members(pool, segment_id) == expected


async def test_changes_are_per_application_and_segment(pool: asyncpg.Pool, app_id: str,
                                                       segment_id: str) -> None:
    repo = SegmentsRepository(pool)
    other = (await repo.create(app_id, "other", DIMS)).id
    await apply_membership_changes(pool, [
        change(app_id, segment_id, "a", "ENTER"), change(app_id, other, "a", "ENTER"),
        change(app_id, other, "b", "ENTER"),
    ])
    await apply_membership_changes(pool, [change(app_id, other, "a", "EXIT")])
    assert set(await members(pool, segment_id)) == {"a"}
    assert set(await members(pool, other)) == {"b"}


async def test_changes_of_unknown_segments_are_skipped(pool: asyncpg.Pool, app_id: str,
                                                       segment_id: str) -> None:
    await apply_membership_changes(pool, [
        change(app_id, "0" * 32, "a", "ENTER"), change("no-such-app", segment_id, "a", "ENTER"),
        change(app_id, segment_id, "b", "ENTER"),
    ])
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 1
    with pytest.raises(ValueError, match="neither ENTER nor EXIT"):
        await apply_membership_changes(pool, [change(app_id, segment_id, "b", "MAYBE")])


async def test_a_batch_is_one_transaction(pool: asyncpg.Pool, app_id: str,
                                          segment_id: str) -> None:
    await apply_membership_changes(pool, [change(app_id, segment_id, "a", "ENTER")])
    bad = change(app_id, segment_id, "b", "ENTER")
    bad["segment_version"] = 2**40  # not a PostgreSQL integer: the insert fails
    with pytest.raises((asyncpg.PostgresError, OverflowError, asyncpg.DataError)):
        await apply_membership_changes(pool, [change(app_id, segment_id, "a", "EXIT"), bad])
    assert set(await members(pool, segment_id)) == {"a"}  # the EXIT was rolled back


async def test_backfill_progress_and_status(pool: asyncpg.Pool, app_id: str,
                                            segment_id: str) -> None:
    status = await backfill_status(pool, app_id, segment_id, 1, 3)
    assert status == {"Version": 1, "State": "PENDING", "EndpointsEvaluated": 0,
                      "EndpointsTotal": 0, "PartitionsCompleted": 0, "Partitions": 3}
    assert await finished_partitions(pool, app_id, segment_id, 1) == set()

    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 10, 100, False)
    await record_backfill_progress(pool, app_id, segment_id, 1, 1, 50, 50, True)
    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 40, 100, False)
    status = await backfill_status(pool, app_id, segment_id, 1, 3)
    assert status == {"Version": 1, "State": "IN_PROGRESS", "EndpointsEvaluated": 90,
                      "EndpointsTotal": 150, "PartitionsCompleted": 1, "Partitions": 3}
    assert await finished_partitions(pool, app_id, segment_id, 1) == {1}

    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 100, 100, True)
    assert (await backfill_status(pool, app_id, segment_id, 1, 3))["State"] == "IN_PROGRESS"
    await record_backfill_progress(pool, app_id, segment_id, 1, 2, 0, 0, True)  # empty partition
    status = await backfill_status(pool, app_id, segment_id, 1, 3)
    assert status == {"Version": 1, "State": "COMPLETED", "EndpointsEvaluated": 150,
                      "EndpointsTotal": 150, "PartitionsCompleted": 3, "Partitions": 3}
    assert await finished_partitions(pool, app_id, segment_id, 1) == {0, 1, 2}
    # more partitions than have reported: not complete
    assert (await backfill_status(pool, app_id, segment_id, 1, 4))["State"] == "IN_PROGRESS"

    # versions are separate
    assert (await backfill_status(pool, app_id, segment_id, 2, 3))["State"] == "PENDING"
    await record_backfill_progress(pool, app_id, segment_id, 2, 0, 1, 10, False)
    assert (await backfill_status(pool, app_id, segment_id, 2, 3))["State"] == "IN_PROGRESS"
    assert await finished_partitions(pool, app_id, segment_id, 2) == set()


async def test_first_finished_at_is_kept(pool: asyncpg.Pool, app_id: str,
                                         segment_id: str) -> None:
    async def row() -> asyncpg.Record:
        return await pool.fetchrow("SELECT * FROM segment_backfill WHERE partition = 0")

    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 5, 10, False)
    started = await row()
    assert started["finished_at"] is None and started["evaluated"] == 5
    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 10, 10, True)
    finished = await row()
    assert finished["finished_at"] is not None
    assert finished["started_at"] == started["started_at"]
    assert finished["updated_at"] >= started["updated_at"]
    for done in (True, False):  # a worker that reports again (after a rebalance)
        await record_backfill_progress(pool, app_id, segment_id, 1, 0, 10, 10, done)
        again = await row()
        assert again["finished_at"] == finished["finished_at"]
    assert await finished_partitions(pool, app_id, segment_id, 1) == {0}
    # progress of a segment that does not exist is not stored
    await record_backfill_progress(pool, app_id, "0" * 32, 1, 0, 1, 1, True)
    assert await pool.fetchval("SELECT count(*) FROM segment_backfill") == 1


async def test_size_and_channel_counts(pool: asyncpg.Pool, app_id: str,
                                       segment_id: str) -> None:
    assert await segment_size(pool, app_id, segment_id) == (0, {})

    def endpoint(eid: str, channel: str | None, deleted: bool = False) -> ReadModelRow:
        return ReadModelRow(app_id=app_id, endpoint_id=eid, user_id=None, address=None,
                            channel_type=channel, endpoint=None if deleted else {"Id": eid},
                            deleted=deleted, change_ts=T0)

    await apply_changes(pool, [
        endpoint("e1", "EMAIL"), endpoint("e2", "EMAIL"), endpoint("s1", "SMS"),
        endpoint("gone", "APNS", deleted=True), endpoint("nochannel", None),
        endpoint("outsider", "SMS"),
    ])
    await apply_membership_changes(pool, [
        change(app_id, segment_id, eid, "ENTER")
        for eid in ("e1", "e2", "s1", "gone", "nochannel", "unprojected")
    ])
    # members whose endpoint row is missing, a tombstone or has no channel: size only
    assert await segment_size(pool, app_id, segment_id) == (6, {"EMAIL": 2, "SMS": 1})
    await apply_membership_changes(pool, [change(app_id, segment_id, "e1", "EXIT")])
    assert await segment_size(pool, app_id, segment_id) == (5, {"EMAIL": 1, "SMS": 1})
    other, _ = await AppsRepository(pool).create_app("Other")
    assert await segment_size(pool, other.id, segment_id) == (0, {})


async def test_delete_segment_membership(pool: asyncpg.Pool, app_id: str,
                                         segment_id: str) -> None:
    repo = SegmentsRepository(pool)
    kept = (await repo.create(app_id, "kept", DIMS)).id
    for seg in (segment_id, kept):
        await apply_membership_changes(pool, [change(app_id, seg, "a", "ENTER")])
        await record_backfill_progress(pool, app_id, seg, 1, 0, 1, 1, True)
        await record_backfill_progress(pool, app_id, seg, 2, 0, 0, 1, False)

    await delete_segment_membership(pool, app_id, segment_id)
    assert await segment_size(pool, app_id, segment_id) == (0, {})
    assert (await backfill_status(pool, app_id, segment_id, 1, 1))["State"] == "PENDING"
    assert (await backfill_status(pool, app_id, segment_id, 2, 1))["State"] == "PENDING"
    assert await segment_size(pool, app_id, kept) == (1, {})
    assert (await backfill_status(pool, app_id, kept, 1, 1))["State"] == "COMPLETED"

    async with pool.acquire() as conn:  # inside a caller's transaction: rolled back with it
        tx = conn.transaction()
        await tx.start()
        await delete_segment_membership(conn, app_id, kept)
        await tx.rollback()
    assert await segment_size(pool, app_id, kept) == (1, {})


async def test_delete_segment_removes_members_and_progress(pool: asyncpg.Pool, app_id: str,
                                                           segment_id: str) -> None:
    repo = SegmentsRepository(pool)
    await apply_membership_changes(pool, [change(app_id, segment_id, "a", "ENTER")])
    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 1, 1, True)
    assert await repo.delete(app_id, segment_id) is not None
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0
    assert await pool.fetchval("SELECT count(*) FROM segment_backfill") == 0
    # the engine catching up after the delete cannot bring rows back
    await apply_membership_changes(pool, [change(app_id, segment_id, "b", "ENTER")])
    await record_backfill_progress(pool, app_id, segment_id, 1, 1, 1, 1, True)
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0
    assert await pool.fetchval("SELECT count(*) FROM segment_backfill") == 0


async def test_deleting_the_application_removes_its_rows(pool: asyncpg.Pool, app_id: str,
                                                         segment_id: str) -> None:
    await apply_membership_changes(pool, [change(app_id, segment_id, "a", "ENTER")])
    await record_backfill_progress(pool, app_id, segment_id, 1, 0, 1, 1, True)
    assert await AppsRepository(pool).delete_app(app_id) is not None
    assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0
    assert await pool.fetchval("SELECT count(*) FROM segment_backfill") == 0


async def test_timestamps_may_be_datetimes(pool: asyncpg.Pool, app_id: str,
                                           segment_id: str) -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    record = change(app_id, segment_id, "a", "ENTER")
    record["timestamp"] = at
    await apply_membership_changes(pool, [record])
    assert await members(pool, segment_id) == {"a": (1, ms(at))}


async def test_one_job_records_progress_for_all_its_segments(
    pool: asyncpg.Pool, app_id: str, segment_id: str
) -> None:
    other = (await SegmentsRepository(pool).create(
        app_id, "other", {"Dimensions": {}}, [])).id
    await record_backfills_progress(pool, app_id, [], 0, 1, 1, True)  # nothing to record
    await record_backfills_progress(
        pool, app_id, [(segment_id, 1), (other, 3), ("no-such-segment", 1)], 0, 5, 9, False)
    assert (await backfill_status(pool, app_id, segment_id, 1, 1))["EndpointsEvaluated"] == 5
    assert (await backfill_status(pool, app_id, other, 3, 1))["EndpointsTotal"] == 9
    await record_backfills_progress(pool, app_id, [(segment_id, 1), (other, 3)], 0, 9, 9, True)
    assert await finished_partitions(pool, app_id, segment_id, 1) == {0}
    assert await finished_partitions(pool, app_id, other, 3) == {0}
    assert await pool.fetchval(
        "SELECT count(*) FROM segment_backfill WHERE segment_id = 'no-such-segment'") == 0
