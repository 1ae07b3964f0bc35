"""Run ``BatchConsumer`` sinks inside the Faust worker as ``mode.Service`` classes.

``hosted_consumer_service(settings, codec, name, open_sink)`` returns a Service
class for ``app.service``: on start it creates the DLQ producer, awaits
``open_sink(dead_letters)`` for the consumer and the function that releases
its destination, and runs the consumer; on stop it lets the consumer flush,
then releases everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from mode import Service

from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0


@dataclass
class OpenSink:
    """A consumer ready to run, and how to release its destination afterwards."""

    consumer: BatchConsumer[Any]
    close: Callable[[], Awaitable[None]]


SinkOpener = Callable[[DeadLetterPublisher], Awaitable[OpenSink]]


def hosted_consumer_service(
    settings: Settings, codec: AvroCodec, name: str, open_sink: SinkOpener
) -> type[Service]:
    """A Service class running the sink ``open_sink`` builds; ``name`` labels logs and DLQ."""

    class HostedConsumerService(Service):
        _producer: AIOKafkaProducer
        _sink: OpenSink
        _task: asyncio.Task[Any]

        async def on_start(self) -> None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
            )
            await self._producer.start()
            producer = self._producer

            async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
                await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))

            self._sink = await open_sink(DeadLetterPublisher(settings, codec, send, name))
            self._task = asyncio.ensure_future(self._sink.consumer.run())
            self._task.add_done_callback(_log_crash(name))

        async def on_stop(self) -> None:
            self._sink.consumer.stop()
            try:
                await asyncio.wait_for(self._task, timeout=STOP_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("%s did not stop in time", name)
            await self._sink.close()
            await self._producer.stop()

    return HostedConsumerService


def postgres_projection_service(
    settings: Settings,
    codec: AvroCodec,
    name: str,
    topic: Topic,
    prepare: Callable[[bytes], Any],
    write: Callable[[Any, list[Any]], Awaitable[None]],
    batch_size: int = 2000,
    flush_seconds: float = 0.2,
) -> type[Service]:
    """A hosted ``BatchConsumer`` of ``topic`` (group ``<worker id>-<name>``) whose
    batches ``write(pool, items)`` puts into PostgreSQL through its own small pool."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        pool: Any = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)

        async def write_batch(items: list[Any]) -> None:
            await write(pool, items)

        consumer: BatchConsumer[Any] = BatchConsumer(
            bootstrap=settings.kafka_bootstrap,
            topic=topic,
            topic_name=settings.topic(topic),
            group_id=f"{settings.worker_id}-{name}",
            prepare=prepare,
            write=write_batch,
            dead_letters=dead_letters,
            batch_size=batch_size,
            flush_seconds=flush_seconds,
        )
        return OpenSink(consumer, pool.close)

    return hosted_consumer_service(settings, codec, name, open_sink)


def _log_crash(name: str) -> Callable[[asyncio.Task[Any]], None]:
    def report(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped with an error", name, exc_info=task.exception())

    return report
