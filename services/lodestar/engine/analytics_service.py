"""Host the analytics sink inside the worker as a ``mode.Service``.

With the embedded engine (``chdb:``) this worker is the one process that owns
ClickHouse, so the same ``ClickHouseWriter`` also serves the worker's
analytics reads (``engine.web``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.sink import ClickHouseWriter, event_sink
from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
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


def analytics_sink_service(settings: Settings, codec: AvroCodec, runtime: AnalyticsRuntime) -> type:
    """A Service class (Faust instantiates it) running ``EventSink`` in its own group."""

    class AnalyticsSinkService(Service):
        _producer: AIOKafkaProducer
        _sink: BatchConsumer[Any]
        _task: asyncio.Task[Any]

        async def on_start(self) -> None:
            writer = await asyncio.to_thread(runtime.open)
            self._producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
            )
            await self._producer.start()
            producer = self._producer

            async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
                await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))

            self._sink = event_sink(
                bootstrap=settings.kafka_bootstrap,
                topic_name=settings.topic(Topic.EVENTS),
                group_id=f"{settings.worker_id}-analytics",
                codec=codec,
                writer=writer,
                dead_letters=DeadLetterPublisher(settings, codec, send, "analytics-sink"),
                batch_size=settings.sink_batch_size,
                flush_seconds=settings.sink_flush_seconds,
            )
            self._task = asyncio.ensure_future(self._sink.run())
            self._task.add_done_callback(_log_crash)

        async def on_stop(self) -> None:
            self._sink.stop()
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("analytics sink did not stop in time")
            await self._producer.stop()
            if runtime.writer is not None:
                runtime.writer.close()

    return AnalyticsSinkService


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("analytics sink stopped with an error", exc_info=task.exception())
