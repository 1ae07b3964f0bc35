"""Consume a topic in batches, write each batch somewhere, commit offsets only afterwards.

The shape of every Lodestar sink (ClickHouse, the PostgreSQL read model):

- records are turned into items by ``prepare(value) -> item`` (raise
  ``ContractError`` for a record that does not decode: it goes to the DLQ with
  ``DECODE_ERROR`` and its offset is committed with the batch);
- a batch is flushed when it holds ``batch_size`` records or its oldest record
  has waited ``flush_seconds``, and before partitions are revoked;
- ``write(items)`` is retried with exponential backoff and jitter; when it
  keeps failing for reasons other than connectivity, the batch is split in
  halves until the items the destination rejects are isolated; each of those
  goes to the DLQ with ``SINK_REJECTED``. The consumer never crashes on data;
- offsets are committed only after every item of the batch was written or
  parked (at-least-once: writers must be idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from lodestar.contracts.errors import ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS_BEFORE_SPLIT = 3
MAX_RETRY_DELAY = 30.0


@dataclass
class PendingBatch(Generic[T]):
    """Items waiting for one write, their sources, and the offsets to commit after it."""

    items: list[T] = field(default_factory=list)
    sources: list[SourceRecord] = field(default_factory=list)
    rejected: list[tuple[SourceRecord, DeadLetter]] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    started_at: float | None = None

    def __len__(self) -> int:
        return len(self.items) + len(self.rejected)


def add_records(
    batch: PendingBatch[T], prepare: Callable[[bytes], T], records: Sequence[Any], now: float
) -> None:
    """Prepare ``records`` (aiokafka ConsumerRecords) into ``batch``: items, or rejections."""
    if records and batch.started_at is None:
        batch.started_at = now
    for rec in records:
        source = SourceRecord.of(rec)
        try:
            batch.items.append(prepare(rec.value))
            batch.sources.append(source)
        except ContractError as exc:
            batch.rejected.append((source, DeadLetter(DlqReason.DECODE_ERROR, str(exc))))
        tp = TopicPartition(rec.topic, rec.partition)
        batch.next_offsets[tp] = max(batch.next_offsets.get(tp, 0), rec.offset + 1)


def is_connection_error(exc: BaseException) -> bool:
    """Errors worth retrying forever: the destination is unreachable, not the data bad."""
    from clickhouse_connect.driver.exceptions import OperationalError

    return isinstance(exc, OperationalError | ConnectionError | TimeoutError | OSError)


class BatchConsumer(Generic[T]):
    """One topic, one consumer group, batches written by ``write``; see the module doc."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: Topic,
        topic_name: str,
        group_id: str,
        prepare: Callable[[bytes], T],
        write: Callable[[list[T]], Awaitable[None]],
        dead_letters: DeadLetterPublisher,
        batch_size: int,
        flush_seconds: float,
        retry_delay: float = 0.2,
    ) -> None:
        self._topic = topic
        self._topic_name = topic_name
        self._prepare = prepare
        self._write = write
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
        self._batch: PendingBatch[T] = PendingBatch()
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self.items_written = 0

    async def run(self) -> None:
        """Consume until ``stop()``; flushes what is pending before returning."""
        owner = self

        class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await owner._flush()

            async def on_partitions_assigned(self, assigned: Any) -> None:
                return None

        await self._consumer.start()
        self._consumer.subscribe([self._topic_name], listener=_FlushOnRevoke())
        try:
            while not self._stopping.is_set():
                polled = await self._consumer.getmany(
                    timeout_ms=self._poll_timeout_ms(), max_records=self._batch_size
                )
                async with self._lock:
                    for records in polled.values():
                        add_records(self._batch, self._prepare, records, time.monotonic())
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
        if batch.started_at is None:
            return False
        return (
            len(batch) >= self._batch_size
            or time.monotonic() - batch.started_at >= self._flush_seconds
        )

    async def _flush(self) -> None:
        async with self._lock:
            batch, self._batch = self._batch, PendingBatch()
            if not batch.next_offsets:
                return
            await self.write_isolating_rejects(batch.items, batch.sources)
            for source, letter in batch.rejected:
                await self._dead_letters.publish(self._topic, source, letter)
            await self._consumer.commit(batch.next_offsets)
            self.items_written += len(batch.items)

    async def write_isolating_rejects(self, items: list[T], sources: list[SourceRecord]) -> None:
        """Write ``items``; retry, then bisect down to the items the destination rejects."""
        if not items:
            return
        delay = self._retry_delay
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._write(items)
                return
            except Exception as exc:  # drivers raise many unrelated types
                if is_connection_error(exc) or attempt < MAX_ATTEMPTS_BEFORE_SPLIT:
                    log.warning(
                        "%s: writing %d items failed (attempt %d): %s",
                        self._topic_name, len(items), attempt, exc,
                    )
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, MAX_RETRY_DELAY)
                    continue
                error = exc
                break
        if len(items) == 1:
            letter = DeadLetter(DlqReason.SINK_REJECTED, f"the destination rejected it: {error}")
            await self._dead_letters.publish(self._topic, sources[0], letter)
            return
        half = len(items) // 2
        await self.write_isolating_rejects(items[:half], sources[:half])
        await self.write_isolating_rejects(items[half:], sources[half:])
