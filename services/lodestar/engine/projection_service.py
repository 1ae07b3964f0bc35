"""The endpoint read-model projection hosted in the worker.

Consumes ``lodestar.endpoints`` in its own consumer group and writes each
batch into PostgreSQL's ``endpoint_read_model`` (``control.endpoint_read_model``),
which every API process reads for GetEndpoint and GetUserEndpoints.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from mode import Service

from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec
from lodestar.control.endpoint_read_model import ReadModelRow, apply_changes, row_from_change
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine.hosted_consumers import OpenSink, hosted_consumer_service
from lodestar.settings import Settings

PROJECTION_BATCH_SIZE = 2000
PROJECTION_FLUSH_SECONDS = 0.2


def endpoint_projection_service(settings: Settings, codec: AvroCodec) -> type[Service]:
    """The Service keeping the PostgreSQL endpoint read model up to date."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        pool: Any = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)

        async def write(rows: list[ReadModelRow]) -> None:
            await apply_changes(pool, rows)

        consumer: BatchConsumer[ReadModelRow] = BatchConsumer(
            bootstrap=settings.kafka_bootstrap,
            topic=Topic.ENDPOINTS,
            topic_name=settings.topic(Topic.ENDPOINTS),
            group_id=f"{settings.worker_id}-endpoint-projection",
            prepare=lambda value: row_from_change(codec.decode(Topic.ENDPOINTS, value)),
            write=write,
            dead_letters=dead_letters,
            batch_size=PROJECTION_BATCH_SIZE,
            flush_seconds=PROJECTION_FLUSH_SECONDS,
        )
        return OpenSink(consumer, pool.close)

    return hosted_consumer_service(settings, codec, "endpoint-projection", open_sink)
