"""The analytics sink hosted in the worker, and the ClickHouse runtime it opens.

With the embedded engine (``chdb:``) this worker is the one process that owns
ClickHouse, so the same ``ClickHouseWriter`` also serves the worker's
analytics reads (``engine.web``).
"""

from __future__ import annotations

import asyncio
import logging

from mode import Service

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.erasure import EndpointKey, erase_endpoints, erasure_key
from lodestar.analytics.sink import ClickHouseWriter, event_sink
from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine.hosted_consumers import OpenSink, hosted_consumer_service
from lodestar.settings import Settings

log = logging.getLogger(__name__)


class AnalyticsRuntime:
    """The worker's ClickHouse writer, created once the service starts."""

    def __init__(self, settings: Settings, database: str | None = None) -> None:
        self.settings = settings
        self.database = database
        self.writer: ClickHouseWriter | None = None
        self.ready = asyncio.Event()

    def open(self) -> ClickHouseWriter:
        client = connect(self.settings.clickhouse_dsn, self.database)
        applied = migrate(client)
        if applied:
            log.info("ClickHouse migrations applied: %s", ", ".join(applied))
        self.writer = ClickHouseWriter(client)
        self.ready.set()
        return self.writer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def analytics_sink_service(
    settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime
) -> type[Service]:
    """The Service running the ClickHouse sink in its own consumer group."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        writer = await asyncio.to_thread(runtime.open)
        consumer = event_sink(
            bootstrap=settings.kafka_bootstrap,
            topic_name=settings.topic(Topic.EVENTS),
            group_id=f"{settings.worker_id}-analytics",
            codec=codec,
            writer=writer,
            dead_letters=dead_letters,
            batch_size=settings.sink_batch_size,
            flush_seconds=settings.sink_flush_seconds,
        )
        return OpenSink(consumer, runtime.close)

    return hosted_consumer_service(settings, codec, "analytics-sink", open_sink)


def erasure_service(
    settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime
) -> type[Service]:
    """The Service deleting deleted endpoints' rows from ClickHouse (``analytics.erasure``)."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        await runtime.ready.wait()
        writer = runtime.writer
        assert writer is not None

        async def write(keys: list[EndpointKey | None]) -> None:
            await writer.call(lambda client: erase_endpoints(client, keys))

        async def nothing_to_close() -> None:
            return None  # the ClickHouse runtime belongs to the analytics sink

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
        return OpenSink(consumer, nothing_to_close)

    return hosted_consumer_service(settings, codec, "analytics-erasure", open_sink)
