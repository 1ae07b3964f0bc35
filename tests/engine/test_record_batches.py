"""Records published as whole producer batches arrive complete and in order per partition."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from lodestar.engine.record_batches import RecordBatches
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

pytestmark = pytest.mark.kafka


def test_many_records_in_small_batches_arrive_in_order(settings: Settings) -> None:
    topic = f"{settings.worker_id}-record-batches"

    async def scenario() -> list[list[tuple[bytes | None, bytes | None, int]]]:
        await ensure_topics(settings.with_changes(partitions=2), [topic])
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=True, max_batch_size=4096)
        await producer.start()
        try:
            batches = RecordBatches(producer, 1_700_000_000_000)
            for i in range(500):  # ≈ 40 records fill a 4 KB batch
                await batches.add(topic, i % 2, f"k{i}".encode(), b"x" * 80,
                                  [("h", b"1")])
            await batches.add(topic, 0, b"big", b"y" * 6000)  # larger than a batch
            futures = await batches.send()
            assert len(futures) > 10
            for future in futures:
                await future
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            out: list[list[tuple[bytes | None, bytes | None, int]]] = []
            for partition in (0, 1):
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                await consumer.seek_to_beginning(tp)
                got: list[tuple[bytes | None, bytes | None, int]] = []
                while len(got) < (251 if partition == 0 else 250):
                    for records in (await consumer.getmany(tp, timeout_ms=2000)).values():
                        got += [(r.key, r.value, r.timestamp) for r in records]
                out.append(got)
            return out
        finally:
            await consumer.stop()

    zero, one = asyncio.run(scenario())
    assert [k for k, _, _ in zero] == [f"k{i}".encode() for i in range(0, 500, 2)] + [b"big"]
    assert [k for k, _, _ in one] == [f"k{i}".encode() for i in range(1, 500, 2)]
    assert zero[-1][1] == b"y" * 6000
    assert {t for _, _, t in zero + one} == {1_700_000_000_000}
