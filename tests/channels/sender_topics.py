"""Put send requests on a test's topic and read a topic back, for the sender tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.settings import Settings

CODEC = AvroCodec.default()


async def produce(settings: Settings, topic: Topic, requests: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for req in requests:
            await producer.send_and_wait(settings.topic(topic), CODEC.encode(topic, req),
                                         key=req["endpoint_id"].encode())
    finally:
        await producer.stop()


async def read(settings: Settings, topic: Topic, check: Callable[[list[dict[str, Any]]], bool],
               wait_s: float = 30.0) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(settings.topic(topic), bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    got: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                got += [CODEC.decode(topic, m.value) for m in batch]
            if check(got):
                return got
        raise AssertionError(f"{topic} never satisfied the check; got {got}")
    finally:
        await consumer.stop()
