"""The sink's batching and reject isolation (lodestar.batch_consumer), with fakes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from lodestar.analytics.rows import event_row
from lodestar.analytics.sink import event_sink
from lodestar.batch_consumer import PendingBatch, add_records
from lodestar.contracts.codec import AvroCodec
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import SourceRecord

CODEC = AvroCodec.default()


def event(i: int) -> dict[str, Any]:
    return {
        "event_id": f"e{i}", "app_id": "a", "endpoint_id": f"ep{i % 3}",
        "event_type": "pageView", "timestamp": 1_777_636_800_000 + i,
        "arrival_timestamp": 1_777_636_800_000, "attributes": {}, "metrics": {},
        "session": None, "client": None,
    }


def consumer_record(partition: int, offset: int, value: bytes) -> SimpleNamespace:
    return SimpleNamespace(
        topic="x.events", partition=partition, offset=offset, key=b"k", value=value, headers=[]
    )


def test_add_records_decodes_rejects_and_tracks_next_offsets() -> None:
    batch = PendingBatch()
    records = [
        consumer_record(0, 10, CODEC.encode(Topic.EVENTS, event(1))),
        consumer_record(0, 11, b"garbage"),
        consumer_record(2, 5, CODEC.encode(Topic.EVENTS, event(2))),
    ]
    add_records(batch, lambda v: CODEC.decode(Topic.EVENTS, v), records, now=100.0)
    assert len(batch.items) == 2 and len(batch) == 3
    assert batch.rejected[0][1].reason is DlqReason.DECODE_ERROR
    assert batch.rejected[0][0].offset == 11
    assert batch.next_offsets == {
        TopicPartition("x.events", 0): 12, TopicPartition("x.events", 2): 6
    }
    assert batch.started_at == 100.0


class FlakyWriter:
    """Rejects any insert holding a row whose event id is in ``bad``; fails once first."""

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad
        self.stored: list[str] = []
        self.calls = 0

    async def insert(self, rows: list[list[Any]], *table_and_columns: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("transient")
        ids = [row[5] for row in rows]
        if self.bad & set(ids):
            raise ValueError(f"Cannot parse row {ids}")
        self.stored += ids


class RecordingDlq:
    def __init__(self) -> None:
        self.parked: list[tuple[Topic, SourceRecord, DeadLetter]] = []

    async def publish(self, topic: Topic, record: SourceRecord, letter: DeadLetter) -> None:
        self.parked.append((topic, record, letter))


async def test_rejected_rows_are_isolated_and_parked_the_rest_inserted() -> None:
    writer, dlq = FlakyWriter(bad={"e5"}), RecordingDlq()
    sink = event_sink(
        bootstrap="127.0.0.1:1", topic_name="x.events", group_id="g", codec=CODEC,
        writer=writer, dead_letters=dlq, batch_size=100, flush_seconds=1,  # type: ignore[arg-type]
        retry_delay=0.001,
    )
    batch = PendingBatch()
    add_records(
        batch, lambda v: event_row(CODEC.decode(Topic.EVENTS, v)),
        [consumer_record(0, i, CODEC.encode(Topic.EVENTS, event(i))) for i in range(8)],
        now=0.0,
    )
    await sink.write_isolating_rejects(batch.items, batch.sources)
    assert sorted(writer.stored) == sorted(f"e{i}" for i in range(8) if i != 5)
    assert len(dlq.parked) == 1
    topic, source, letter = dlq.parked[0]
    assert topic is Topic.EVENTS and source.offset == 5
    assert letter.reason is DlqReason.SINK_REJECTED and "Cannot parse row" in letter.error
