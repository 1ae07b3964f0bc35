"""Analytics sink: ``lodestar.events`` → ClickHouse ``events`` table.

A ``BatchConsumer`` (see ``lodestar.batch_consumer`` for batching, retries,
reject isolation and commit-after-write) whose items are ``events`` rows and
whose writer inserts them on the ClickHouse thread. A batch replayed after a
crash is collapsed by the table's ReplacingMergeTree key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.rows import EVENT_COLUMNS, event_row
from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher


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


def event_sink(
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
    """The consumer that fills the ``events`` table from ``topic_name``."""
    return BatchConsumer(
        bootstrap=bootstrap,
        topic=Topic.EVENTS,
        topic_name=topic_name,
        group_id=group_id,
        prepare=lambda value: event_row(codec.decode(Topic.EVENTS, value)),
        write=writer.insert,
        dead_letters=dead_letters,
        batch_size=batch_size,
        flush_seconds=flush_seconds,
        retry_delay=retry_delay,
    )
