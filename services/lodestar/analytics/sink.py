"""Analytics sinks: one topic → one ClickHouse table, each in its own consumer group.

``TABLES`` lists what lands in ClickHouse: ``lodestar.events`` → ``events``,
``lodestar.deliveries`` → ``deliveries``, ``lodestar.activity`` → ``activity``,
``lodestar.segment-membership`` → ``segment_membership``. ``table_sink`` builds
the ``BatchConsumer`` for one of them (see ``lodestar.batch_consumer`` for
batching, retries, reject isolation to the DLQ and commit-after-write); every
sink of a process writes through one ``ClickHouseWriter`` thread.

A batch replayed after a crash (written, offsets not yet committed) is
written again: every table is a ReplacingMergeTree whose sort key ends in the
record's deterministic id, so the copies collapse on merge, and every KPI
counts distinct ids, so they are never counted twice before that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.rows import (
    ACTIVITY_COLUMNS,
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    MEMBERSHIP_COLUMNS,
    activity_row,
    delivery_row,
    event_row,
    membership_row,
)
from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher


@dataclass(frozen=True)
class TableSpec:
    """Where one topic's records go: the table, its columns, the row mapper."""

    topic: Topic
    table: str
    columns: tuple[str, ...]
    row: Callable[[Mapping[str, Any]], list[Any]]
    group_suffix: str

    def group_id(self, worker_id: str) -> str:
        """The sink's consumer group (events keep the group they always had)."""
        return f"{worker_id}-{self.group_suffix}"


EVENTS_TABLE = TableSpec(Topic.EVENTS, "events", EVENT_COLUMNS, event_row, "analytics")
DELIVERIES_TABLE = TableSpec(Topic.DELIVERIES, "deliveries", DELIVERY_COLUMNS, delivery_row,
                             "analytics-deliveries")
ACTIVITY_TABLE = TableSpec(Topic.ACTIVITY, "activity", ACTIVITY_COLUMNS, activity_row,
                           "analytics-activity")
MEMBERSHIP_TABLE = TableSpec(Topic.SEGMENT_MEMBERSHIP, "segment_membership",
                             MEMBERSHIP_COLUMNS, membership_row,
                             "analytics-segment-membership")
TABLES: tuple[TableSpec, ...] = (EVENTS_TABLE, DELIVERIES_TABLE, ACTIVITY_TABLE,
                                 MEMBERSHIP_TABLE)


class ClickHouseWriter:
    """Runs inserts on one dedicated thread (the client is synchronous and not thread-safe)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    async def insert(
        self, rows: list[list[Any]], table: str = "events",
        columns: Sequence[str] = EVENT_COLUMNS,
    ) -> None:
        """Insert ``rows`` (in ``columns`` order) into ``table``."""
        await self.call(lambda c: c.insert(table, rows, column_names=list(columns)))

    async def call(self, fn: Callable[[Client], Any]) -> Any:
        """Run ``fn(client)`` on the ClickHouse thread (reads share the one client)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def table_sink(
    spec: TableSpec,
    *,
    bootstrap: str,
    topic_name: str,
    group_id: str,
    codec: AvroCodec,
    writer: ClickHouseWriter,
    dead_letters: DeadLetterPublisher,
    batch_size: int,
    flush_seconds: float,
    retry_delay: float = 0.2,
) -> BatchConsumer[list[Any]]:
    """The consumer that fills ``spec.table`` from ``topic_name``."""

    async def write(rows: list[list[Any]]) -> None:
        await writer.insert(rows, spec.table, spec.columns)

    return BatchConsumer(
        bootstrap=bootstrap,
        topic=spec.topic,
        topic_name=topic_name,
        group_id=group_id,
        prepare=lambda value: spec.row(codec.decode(spec.topic, value)),
        write=write,
        dead_letters=dead_letters,
        batch_size=batch_size,
        flush_seconds=flush_seconds,
        retry_delay=retry_delay,
    )


def event_sink(**kwargs: Any) -> BatchConsumer[list[Any]]:
    """The consumer that fills the ``events`` table (``table_sink`` of ``EVENTS_TABLE``)."""
    return table_sink(EVENTS_TABLE, **kwargs)
