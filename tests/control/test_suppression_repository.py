"""The suppression repository against a real PostgreSQL."""

from __future__ import annotations

import asyncpg
import pytest

from lodestar.control.apps import AppsRepository
from lodestar.control.suppression import SuppressionRepository
from lodestar.core.delivery_events import Channel
from lodestar.core.email_feedback import SuppressionReason

pytestmark = pytest.mark.postgres

BOUNCE, COMPLAINT, MANUAL = (SuppressionReason.BOUNCE, SuppressionReason.COMPLAINT,
                             SuppressionReason.MANUAL)


async def test_add_is_idempotent_keeps_the_first_reason_and_complaints_upgrade(
    pool: asyncpg.Pool, app_id: str,
) -> None:
    repo = SuppressionRepository(pool)
    first = await repo.add(app_id, "EMAIL", "  Jane@Example.COM ", BOUNCE,
                           source_message_id="m-1", feedback_id="f-1")
    assert first.created
    row = first.suppression
    assert (row.app_id, row.channel, row.address, row.reason) == (
        app_id, Channel.EMAIL, "jane@example.com", BOUNCE)
    assert (row.source_message_id, row.feedback_id) == ("m-1", "f-1")

    again = await repo.add(app_id, Channel.EMAIL, "jane@example.com", MANUAL,
                           source_message_id="m-2")
    assert not again.created
    kept = again.suppression
    assert (kept.reason, kept.source_message_id, kept.feedback_id) == (BOUNCE, "m-1", "f-1")
    assert kept.created_at == row.created_at and kept.updated_at >= row.updated_at

    upgraded = (await repo.add(app_id, "EMAIL", "JANE@example.com", COMPLAINT,
                               source_message_id="m-3", feedback_id="f-3")).suppression
    assert (upgraded.reason, upgraded.source_message_id, upgraded.feedback_id) == (
        COMPLAINT, "m-3", "f-3")
    # a later bounce does not downgrade a complaint
    later = (await repo.add(app_id, "EMAIL", "jane@example.com", BOUNCE,
                            source_message_id="m-4")).suppression
    assert (later.reason, later.source_message_id) == (COMPLAINT, "m-3")
    assert await pool.fetchval("SELECT count(*) FROM suppressed_destinations") == 1


async def test_get_remove_and_channels_are_separate(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SuppressionRepository(pool)
    await repo.add(app_id, "SMS", "+15550100", MANUAL)
    await repo.add(app_id, "EMAIL", "a@example.com", BOUNCE)
    got = await repo.get(app_id, "SMS", " +15550100")
    assert got is not None and got.address == "+15550100" and got.reason is MANUAL
    assert await repo.get(app_id, "VOICE", "+15550100") is None
    assert await repo.get(app_id, "EMAIL", "A@Example.com") is not None

    removed = await repo.remove(app_id, "EMAIL", "A@EXAMPLE.COM")
    assert removed is not None and removed.address == "a@example.com"
    assert await repo.remove(app_id, "EMAIL", "a@example.com") is None
    assert await repo.get(app_id, "EMAIL", "a@example.com") is None
    assert await repo.get(app_id, "SMS", "+15550100") is not None


async def test_suppressed_answers_a_batch_as_the_caller_spelled_it(
    pool: asyncpg.Pool, app_id: str,
) -> None:
    repo = SuppressionRepository(pool)
    other, _ = await AppsRepository(pool).create_app("Other")
    await repo.add(app_id, "EMAIL", "bounced@example.com", BOUNCE)
    await repo.add(app_id, "EMAIL", "complained@example.com", COMPLAINT)
    await repo.add(other.id, "EMAIL", "fine@example.com", MANUAL)
    await repo.add(app_id, "SMS", "fine@example.com", MANUAL)  # another channel

    batch = ["Bounced@Example.com", "fine@example.com", "complained@example.com",
             "bounced@example.com", "new@example.com"]
    assert await repo.suppressed(app_id, "EMAIL", batch) == {
        "Bounced@Example.com", "bounced@example.com", "complained@example.com"}
    assert await repo.suppressed(app_id, Channel.EMAIL, []) == set()
    assert await repo.suppressed(other.id, "EMAIL", batch) == {"fine@example.com"}
    assert await repo.suppressed(app_id, "SMS", ["+1555", "fine@example.com"]) == {
        "fine@example.com"}


async def test_list_pages_and_filters(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SuppressionRepository(pool)
    for i in range(5):
        await repo.add(app_id, "EMAIL", f"user{i}@example.com", BOUNCE if i % 2 else COMPLAINT)
    await repo.add(app_id, "SMS", "+15550100", MANUAL)

    everything = await repo.list_destinations(app_id, 100)
    assert [(s.channel.value, s.address) for s in everything] == [
        *(("EMAIL", f"user{i}@example.com") for i in range(5)), ("SMS", "+15550100")]

    seen: list[str] = []
    after = None
    while True:
        page = await repo.list_destinations(app_id, 2, after)
        seen += [s.address for s in page]
        if len(page) < 2:
            break
        after = (page[-1].channel.value, page[-1].address)
    assert seen == [s.address for s in everything]

    bounces = await repo.list_destinations(app_id, 100, reason="BOUNCE")
    assert [s.address for s in bounces] == ["user1@example.com", "user3@example.com"]
    sms = await repo.list_destinations(app_id, 100, channel=Channel.SMS)
    assert [s.address for s in sms] == ["+15550100"]


async def test_is_the_senders_suppression_list(pool: asyncpg.Pool, app_id: str) -> None:
    from lodestar.channels.channel_sender import SuppressionList

    repo: SuppressionList = SuppressionRepository(pool)  # mypy checks the protocol
    await repo.add_bounce(app_id, "EMAIL", "Hard@Example.com", "msg-9")
    assert await repo.suppressed(app_id, "EMAIL", ["hard@example.com"]) == {"hard@example.com"}
    row = await SuppressionRepository(pool).get(app_id, "EMAIL", "hard@example.com")
    assert row is not None and (row.reason, row.source_message_id) == (BOUNCE, "msg-9")


async def test_deleting_the_app_removes_its_destinations(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SuppressionRepository(pool)
    await repo.add(app_id, "EMAIL", "a@example.com", BOUNCE)
    await AppsRepository(pool).delete_app(app_id)
    assert await pool.fetchval("SELECT count(*) FROM suppressed_destinations") == 0
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await repo.add("no-such-app", "EMAIL", "a@example.com", BOUNCE)
