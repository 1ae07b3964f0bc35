"""The segment membership projection hosted in the worker.

Consumes ``<prefix>.segment-membership`` in its own consumer group and writes
each batch into PostgreSQL's ``segment_members``
(``control.segment_membership.apply_membership_changes``), which the segment
status API (``GET /v1/apps/{app}/segments/{segment}/membership``) and
``lodestar segments status`` read. The topic is keyed by endpoint id, so the
changes of one endpoint arrive in the order the engine made them; writes are
idempotent, so the at-least-once replays of ``BatchConsumer`` are harmless.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from mode import Service

from lodestar.batch_consumer import BatchConsumer
from lodestar.contracts.codec import AvroCodec, Record
from lodestar.control.segment_membership import apply_membership_changes
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine.hosted_consumers import OpenSink, hosted_consumer_service
from lodestar.settings import Settings

MEMBERSHIP_BATCH_SIZE = 2000
MEMBERSHIP_FLUSH_SECONDS = 0.2


def segment_membership_projection_service(settings: Settings, codec: AvroCodec) -> type[Service]:
    """The Service keeping the PostgreSQL segment membership read model up to date."""

    async def open_sink(dead_letters: DeadLetterPublisher) -> OpenSink:
        pool: Any = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=2)

        async def write(records: list[Record]) -> None:
            await apply_membership_changes(pool, records)

        consumer: BatchConsumer[Record] = BatchConsumer(
            bootstrap=settings.kafka_bootstrap,
            topic=Topic.SEGMENT_MEMBERSHIP,
            topic_name=settings.topic(Topic.SEGMENT_MEMBERSHIP),
            group_id=f"{settings.worker_id}-membership-projection",
            prepare=lambda value: codec.decode(Topic.SEGMENT_MEMBERSHIP, value),
            write=write,
            dead_letters=dead_letters,
            batch_size=MEMBERSHIP_BATCH_SIZE,
            flush_seconds=MEMBERSHIP_FLUSH_SECONDS,
        )
        return OpenSink(consumer, pool.close)

    return hosted_consumer_service(settings, codec, "membership-projection", open_sink)
