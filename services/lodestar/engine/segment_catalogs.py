"""Every worker's view of the segments: ``lodestar.control`` read from the beginning.

``SegmentCatalogs`` holds ``core.segment_control.AppSegments`` per application.
``segment_catalog_service(settings, codec, catalogs)`` is the Service that fills
it: an aiokafka consumer without a group, assigned every partition of the
compacted control topic, reads from the beginning and sets ``catalogs.ready``
once it has reached the end offsets it saw at start, then keeps following the
topic. After ``ready``, each segment change calls the listeners with
``(app_id, changed segment ids)`` — the profile agent starts backfills there.
A definition that does not parse, or would make a cycle, is logged and
skipped: the worker keeps the previous version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.segment_control import (
    SEGMENT_ENTITY,
    AppSegments,
    segment_from_control,
)
from lodestar.core.segment_definition import SegmentDefinitionError
from lodestar.core.segment_membership import SegmentCycleError
from lodestar.core.topics import Topic
from lodestar.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[str, frozenset[str]], None]
EMPTY_APP = AppSegments()


class SegmentCatalogs:
    """Per application, the segments as the control topic defines them."""

    def __init__(self) -> None:
        self.apps: dict[str, AppSegments] = {}
        self.ready = asyncio.Event()
        self.listeners: list[Listener] = []

    def get(self, app_id: str) -> AppSegments:
        return self.apps.get(app_id, EMPTY_APP)

    def apply(self, record: dict[str, Any]) -> frozenset[str]:
        """Apply one decoded ControlChange; the changed segment ids (empty: none)."""
        if record["entity_type"] != SEGMENT_ENTITY:
            return frozenset()
        try:
            update = segment_from_control(record)
            current = self.get(update.app_id)
            updated, changed = current.apply_update(update)
        except (SegmentDefinitionError, SegmentCycleError, ValueError, KeyError) as exc:
            log.error("segment %s/%s version %s skipped: %s", record.get("app_id"),
                      record.get("entity_id"), record.get("version"), exc)
            return frozenset()
        if changed:
            self.apps[update.app_id] = updated
            if self.ready.is_set():
                for listener in self.listeners:
                    listener(update.app_id, changed)
        return changed

    def segment_count(self) -> int:
        return sum(len(a.definitions) for a in self.apps.values())


def segment_catalog_service(
    settings: Settings, codec: AvroCodec, catalogs: SegmentCatalogs
) -> type[Service]:
    """The Service keeping ``catalogs`` equal to the control topic."""
    topic = settings.topic(Topic.CONTROL)

    class SegmentCatalogService(Service):
        _consumer: AIOKafkaConsumer

        async def on_start(self) -> None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                group_id=None,
            )
            await self._consumer.start()
            partitions = await _partitions(self._consumer, topic)
            tps = [TopicPartition(topic, p) for p in partitions]
            self._consumer.assign(tps)
            await self._consumer.seek_to_beginning(*tps)
            self._end = await self._consumer.end_offsets(tps)
            self.add_future(self._follow())

        async def _follow(self) -> None:
            await self._check_ready()
            while not self.should_stop:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batches.values():
                    for message in records:
                        if message.value is None:
                            continue
                        try:
                            record = codec.decode(Topic.CONTROL, message.value)
                        except ContractError as exc:
                            log.error("control record at offset %s skipped: %s",
                                      message.offset, exc)
                            continue
                        catalogs.apply(record)
                await self._check_ready()

        async def _check_ready(self) -> None:
            if catalogs.ready.is_set():
                return
            for tp, end in self._end.items():
                if await self._consumer.position(tp) < end:
                    return
            log.info("segment catalog loaded: %d segment(s)", catalogs.segment_count())
            catalogs.ready.set()

        async def on_stop(self) -> None:
            await self._consumer.stop()

    return SegmentCatalogService


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist; run `lodestar topics create`")
