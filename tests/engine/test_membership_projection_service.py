"""The segment membership projection: Avro records on a real Kafka topic (this test's own
prefix) into ``segment_members`` on a real PostgreSQL; an undecodable record is parked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lodestar.contracts.codec import AvroCodec
from lodestar.control.apps import AppsRepository
from lodestar.control.migrate import migrate
from lodestar.control.segments import SegmentsRepository
from lodestar.core.topics import Topic
from lodestar.engine.membership_projection_service import segment_membership_projection_service
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CODEC = AvroCodec.default()
DIMS = {"Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def record(app_id: str, segment_id: str, endpoint_id: str, change: str, at: int) -> dict[str, Any]:
    return {"app_id": app_id, "segment_id": segment_id, "segment_version": 1,
            "endpoint_id": endpoint_id, "user_id": "u1", "change": change, "cause": "event",
            "event_id": "ev1", "timestamp": at}


async def test_projection_writes_members_and_parks_bad_records(
    settings: Settings, postgres_dsn: str, pool: asyncpg.Pool
) -> None:
    settings = settings.with_changes(postgres_dsn=postgres_dsn)
    app, _ = await AppsRepository(pool).create_app("Shop")
    segment_id = (await SegmentsRepository(pool).create(app.id, "iOS", DIMS)).id
    await ensure_topics(settings)
    topic = settings.topic(Topic.SEGMENT_MEMBERSHIP)
    values = [
        ("e1", CODEC.encode(Topic.SEGMENT_MEMBERSHIP, record(app.id, segment_id, "e1", "ENTER",
                                                             1_780_000_000_000))),
        ("e2", CODEC.encode(Topic.SEGMENT_MEMBERSHIP, record(app.id, segment_id, "e2", "ENTER",
                                                             1_780_000_000_001))),
        ("e9", b"not avro"),
        ("e2", CODEC.encode(Topic.SEGMENT_MEMBERSHIP, record(app.id, segment_id, "e2", "EXIT",
                                                             1_780_000_000_002))),
        ("e3", CODEC.encode(Topic.SEGMENT_MEMBERSHIP, record(app.id, segment_id, "e3", "ENTER",
                                                             1_780_000_000_003))),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()

    service = segment_membership_projection_service(settings, CODEC)()
    await service.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = await pool.fetch("SELECT endpoint_id FROM segment_members ORDER BY 1")
            if [r["endpoint_id"] for r in rows] == ["e1", "e3"]:
                break
            assert time.monotonic() < deadline, f"members never became e1, e3: {rows}"
            await asyncio.sleep(0.1)
    finally:
        await service.stop()

    dlq = AIOKafkaConsumer(
        settings.dlq(Topic.SEGMENT_MEMBERSHIP), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", group_id=None,
    )
    await dlq.start()
    try:
        parked = await dlq.getmany(timeout_ms=10_000)
    finally:
        await dlq.stop()
    letters = [CODEC.decode_dlq(m.value) for batch in parked.values() for m in batch]
    assert [(letter.value, letter.key, letter.reason.value, letter.service)
            for letter in letters] == [(b"not avro", b"e9", "DECODE_ERROR",
                                        "membership-projection")]
