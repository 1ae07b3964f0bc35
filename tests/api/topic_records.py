"""Read back what an API test published: the raw records of one of its topics."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

from lodestar.core.topics import Topic
from lodestar.settings import Settings


async def topic_records(
    settings: Settings, topic: Topic, expected: int, within: float = 20.0
) -> list[Any]:
    """Up to ``expected`` records of the test's ``topic`` from the start (waits up to
    ``within`` seconds when there are fewer)."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", group_id=None,
    )
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out
