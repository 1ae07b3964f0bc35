"""The analytics sinks hosted in the worker, and the ClickHouse runtime they share.

One hosted Service per table of ``analytics.sink.TABLES`` (events,
deliveries, activity, segment membership), each with its own consumer group
(``TableSpec.group_id``), plus the erasure consumer. They share one
``AnalyticsRuntime``: the first to start connects and migrates, the last to
stop closes it. With the embedded engine (``chdb:``) this worker is the one
process that owns ClickHouse, so the same ``ClickHouseWriter`` also serves
the worker's analytics reads (``engine.web``).
"""

from __future__ import annotations

import asyncio
import logging

from mode import Service

from lodestar.analytics.clickhouse import apply_ttl, connect, migrate
from lodestar.analytics.erasure import EndpointKey, erase_endpoints, erasure_key
from lodestar.analytics.sink import (
    EVENTS_TABLE,
    TABLES,
    ClickHouseWriter,
    TableSpec,
    table_sink,
)
from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine.hosted_consumers import OpenSink, hosted_consumer_service
from lodestar.settings import Settings

log = logging.getLogger(__name__)


class AnalyticsRuntime:
    """The worker's ClickHouse writer: opened by the first sink, closed after the last."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        self.settings = settings
        self.database = database
        self.writer: ClickHouseWriter | None = None
        self.ready = asyncio.Event()
        self._users = 0
        self._lock: asyncio.Lock | None = None

    def open(self) -> ClickHouseWriter:
        """Connect and migrate (blocking); the writer is kept until ``close``."""
        client = connect(self.settings.clickhouse_dsn, self.database)
        applied = migrate(client)
        if applied:
            log.info("ClickHouse migrations applied: %s", ", ".join(applied))
        apply_ttl(client, self.settings.clickhouse_ttl_days)
        self.writer = ClickHouseWriter(client)
        self.ready.set()
        return self.writer

    async def acquire(self) -> ClickHouseWriter:
        """The shared writer, opening it on first use."""
        async with self._guard():
            self._users += 1
            if self.writer is None:
                await asyncio.to_thread(self.open)
            assert self.writer is not None
            return self.writer

    async def release(self) -> None:
        """One user is done; the last one closes the writer."""
        async with self._guard():
            self._users -= 1
            if self._users <= 0:
                await self.close()

    async def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            self.ready.clear()
            await asyncio.to_thread(writer.close)

    def _guard(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock


def table_sink_service(
    settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime, spec: TableSpec
) -> type[Service]:
    """The Service filling ``spec.table`` from its topic in its own consumer group."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        writer = await runtime.acquire()
        consumer = table_sink(
            spec,
            bootstrap=settings.kafka_bootstrap,
            topic_name=settings.topic(spec.topic),
            group_id=spec.group_id(settings.worker_id),
            codec=codec,
            writer=writer,
            dead_letters=dead_letters,
            batch_size=settings.sink_batch_size,
            flush_seconds=settings.sink_flush_seconds,
        )
        return OpenSink(consumer, runtime.release)

    # the name labels logs and DLQ records; the events sink keeps the name it always had
    name = "analytics-sink" if spec is EVENTS_TABLE else f"analytics-sink-{spec.table}"
    return hosted_consumer_service(settings, codec, name, open_sink)


def analytics_sink_services(
    settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime
) -> list[type[Service]]:
    """One sink Service per analytics table (``analytics.sink.TABLES``)."""
    return [table_sink_service(settings, codec, runtime, spec) for spec in TABLES]


def erasure_service(
    settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime
) -> type[Service]:
    """The Service deleting deleted endpoints' rows from ClickHouse (``analytics.erasure``)."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        writer = await runtime.acquire()

        async def write(keys: list[EndpointKey | None]) -> None:
            await writer.call(lambda client: erase_endpoints(client, keys))

        consumer: BatchConsumer[EndpointKey | None] = BatchConsumer(
            bootstrap=settings.kafka_bootstrap,
            topic=Topic.ENDPOINTS,
            topic_name=settings.topic(Topic.ENDPOINTS),
            group_id=f"{settings.worker_id}-analytics-erasure",
            prepare=lambda value: erasure_key(codec.decode(Topic.ENDPOINTS, value)),
            write=write,
            dead_letters=dead_letters,
            batch_size=settings.sink_batch_size,
            flush_seconds=settings.sink_flush_seconds,
        )
        return OpenSink(consumer, runtime.release)

    return hosted_consumer_service(settings, codec, "analytics-erasure", open_sink)
