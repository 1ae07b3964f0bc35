"""Analytics sink: ``lodestar.events`` → ClickHouse, in batches, offsets committed after insert.

Contract:
- a batch is flushed when it holds ``batch_size`` rows or its oldest row has
  waited ``flush_seconds``; offsets of a batch are committed only after
  ClickHouse accepted every row of it (at-least-once; the table's
  ReplacingMergeTree collapses a replayed batch);
- records that do not decode go to ``lodestar.events.dlq`` (DECODE_ERROR) and
  their offsets are committed with the batch;
- an insert that fails is retried with exponential backoff; a batch that keeps
  failing is split in halves until the rows ClickHouse rejects are isolated,
  and those go to the DLQ (SINK_REJECTED) — the worker never crashes on data;
- before partitions are revoked the pending batch is flushed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from clickhouse_connect.driver.client import Client

from lodestar.analytics.rows import EVENT_COLUMNS, event_row
from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord

log = logging.getLogger(__name__)

MAX_ATTEMPTS_BEFORE_SPLIT = 3


@dataclass
class PendingBatch:
    """Rows waiting for one insert, their sources, and the offsets to commit after it."""

    rows: list[list[Any]] = field(default_factory=list)
    sources: list[SourceRecord] = field(default_factory=list)
    rejected: list[tuple[SourceRecord, DeadLetter]] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    started_at: float | None = None

    def __len__(self) -> int:
        return len(self.rows) + len(self.rejected)


def add_records(batch: PendingBatch, codec: AvroCodec, records: Sequence[Any], now: float) -> None:
    """Decode ``records`` (aiokafka ConsumerRecords) into ``batch``: rows, or rejections."""
    if records and batch.started_at is None:
        batch.started_at = now
    for rec in records:
        source = SourceRecord(
            rec.topic, rec.partition, rec.offset, rec.key, rec.value, tuple(rec.headers or ())
        )
        try:
            batch.rows.append(event_row(codec.decode(Topic.EVENTS, rec.value)))
            batch.sources.append(source)
        except ContractError as exc:
            batch.rejected.append((source, DeadLetter(DlqReason.DECODE_ERROR, str(exc))))
        tp = TopicPartition(rec.topic, rec.partition)
        batch.next_offsets[tp] = max(batch.next_offsets.get(tp, 0), rec.offset + 1)


class ClickHouseWriter:
    """Runs inserts on one dedicated thread (the client is synchronous and not thread-safe)."""

    def __init__(self, client: Client, table: str = "events") -> None:
        self._client = client
        self._table = table
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    async def insert(self, rows: list[list[Any]]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._insert, rows)

    def _insert(self, rows: list[list[Any]]) -> None:
        self._client.insert(self._table, rows, column_names=list(EVENT_COLUMNS))

    async def call(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread (reads share the one client)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class EventSink:
    """Consumes ``lodestar.events`` in its own consumer group and fills ClickHouse."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        group_id: str,
        codec: AvroCodec,
        writer: ClickHouseWriter,
        dead_letters: DeadLetterPublisher,
        batch_size: int,
        flush_seconds: float,
        retry_delay: float = 0.2,
    ) -> None:
        self._topic = topic
        self._codec = codec
        self._writer = writer
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._retry_delay = retry_delay
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=batch_size,
        )
        self._batch = PendingBatch()
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.rows_inserted = 0

    async def run(self) -> None:
        """Consume until ``stop()``; flushes what is pending before returning."""
        sink = self

        class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await sink._flush()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                return None

        await self._consumer.start()
        self._consumer.subscribe([self._topic], listener=_FlushOnRevoke())
        try:
            while not self._stopping.is_set():
                timeout_ms = self._poll_timeout_ms()
                polled = await self._consumer.getmany(
                    timeout_ms=timeout_ms, max_records=self._batch_size
                )
                async with self._lock:
                    for records in polled.values():
                        add_records(self._batch, self._codec, records, time.monotonic())
                if self._due():
                    await self._flush()
            await self._flush()
        finally:
            await self._consumer.stop()

    def stop(self) -> None:
        self._stopping.set()

    def _poll_timeout_ms(self) -> int:
        if self._batch.started_at is None:
            return int(self._flush_seconds * 1000)
        left = self._batch.started_at + self._flush_seconds - time.monotonic()
        return max(0, int(left * 1000))

    def _due(self) -> bool:
        batch = self._batch
        if not len(batch):
            return bool(batch.next_offsets)
        assert batch.started_at is not None
        return (
            len(batch) >= self._batch_size
            or time.monotonic() - batch.started_at >= self._flush_seconds
        )

    async def _flush(self) -> None:
        async with self._lock:
            batch, self._batch = self._batch, PendingBatch()
            if not batch.next_offsets:
                return
            await self._insert_isolating_rejects(batch.rows, batch.sources)
            for source, letter in batch.rejected:
                await self._dead_letters.publish(Topic.EVENTS, source, letter)
            await self._consumer.commit(batch.next_offsets)
            self.rows_inserted += len(batch.rows)

    async def _insert_isolating_rejects(
        self, rows: list[list[Any]], sources: list[SourceRecord]
    ) -> None:
        if not rows:
            return
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._writer.insert(rows)
                return
            except Exception as exc:  # the driver raises several unrelated types
                if _is_connection_error(exc) or attempt < MAX_ATTEMPTS_BEFORE_SPLIT:
                    log.warning(
                        "insert of %d rows failed (attempt %d): %s", len(rows), attempt, exc
                    )
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 30.0)
                    continue
                error = exc
                break
        if len(rows) == 1:
            letter = DeadLetter(DlqReason.SINK_REJECTED, f"ClickHouse rejected the row: {error}")
            await self._dead_letters.publish(Topic.EVENTS, sources[0], letter)
            return
        half = len(rows) // 2
        await self._insert_isolating_rejects(rows[:half], sources[:half])
        await self._insert_isolating_rejects(rows[half:], sources[half:])


def _is_connection_error(exc: Exception) -> bool:
    from clickhouse_connect.driver.exceptions import OperationalError

    return isinstance(exc, OperationalError | ConnectionError | TimeoutError)
