"""The profile store: per-partition RocksDB with its changelog offset, restored from Kafka."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lodestar.engine.profile_store import (
    ProfileStore,
    decode_value,
    encode_value,
    restore,
)
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

PARTITIONS = 2


def _partition_of(endpoint_id: str) -> int:
    return int(endpoint_id.rsplit("-", 1)[1]) % PARTITIONS


def _store(path: Path) -> ProfileStore:
    return ProfileStore(path, _partition_of)


def test_a_write_batch_and_its_offset_survive_a_clean_close(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.open(0) == -1
    store.apply(0, {"app/e-0": encode_value({"n": 1}), "app/e-2": encode_value({"n": 2})}, 41)
    store.apply(0, {"app/e-2": None}, 42)
    assert _wal_bytes(tmp_path) == 0  # written without RocksDB's write-ahead log
    store.close_all()

    reopened = _store(tmp_path)
    assert reopened.open(0) == 42
    assert dict(reopened) == {"app/e-0": {"n": 1}}
    assert list(reopened.items_of(0)) == [("app/e-0", {"n": 1})]
    assert reopened.get("app/e-2") is None
    assert reopened.get("app/e-1") is None  # partition 1 is not open here
    assert len(reopened) == 1


def test_wipe_empties_a_partition(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.open(1)
    store.apply(1, {"app/e-1": encode_value({"n": 1})}, 7)
    store.wipe(1)
    assert store.open(1) == -1
    assert list(store.keys_of(1)) == []


def test_values_round_trip_as_compact_json() -> None:
    value = {"state": {"Id": "e-1", "Attributes": {"a": ["é"]}}, "memberships": None}
    assert decode_value(encode_value(value)) == value
    assert b" " not in encode_value({"a": [1, 2]})


@pytest.mark.kafka
def test_restore_replays_the_changelog_after_the_stored_offset(
    settings: Settings, tmp_path: Path
) -> None:
    topic = f"{settings.worker_id}-restore-changelog"

    async def scenario() -> None:
        await ensure_topics(settings.with_changes(partitions=PARTITIONS), [topic],
                            compacted={topic})
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(10):  # partition 0: e-0 updated ten times; e-2 written, deleted
                await producer.send_and_wait(topic, encode_value({"n": i}), b"app/e-0",
                                             partition=0)
            await producer.send_and_wait(topic, encode_value({"n": 0}), b"app/e-2", partition=0)
            await producer.send_and_wait(topic, None, b"app/e-2", partition=0)
            await producer.send_and_wait(topic, encode_value({"n": 5}), b"app/e-1", partition=1)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            store = _store(tmp_path / "a")
            assert await restore(store, consumer, topic, {0, 1}) == 13
            assert dict(store) == {"app/e-0": {"n": 9}, "app/e-1": {"n": 5}}
            assert store.open(0) == 11 and store.open(1) == 0
            assert await restore(store, consumer, topic, {0, 1}) == 0  # nothing new

            behind = _store(tmp_path / "b")  # a database that had reached offset 4
            behind.open(0)
            behind.apply(0, {"app/e-0": encode_value({"n": 4})}, 4)
            assert await restore(behind, consumer, topic, {0}) == 7
            assert dict(behind) == {"app/e-0": {"n": 9}}

            ahead = _store(tmp_path / "c")  # its changelog was recreated: rebuilt
            ahead.open(1)
            ahead.apply(1, {"app/e-3": encode_value({"stale": True})}, 99)
            assert await restore(ahead, consumer, topic, {1}) == 1
            assert dict(ahead) == {"app/e-1": {"n": 5}}
        finally:
            await consumer.stop()

    asyncio.run(scenario())


def _wal_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.log"))
