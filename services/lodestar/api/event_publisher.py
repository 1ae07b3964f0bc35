"""The API's Kafka producer: events, endpoint commands and delivery records (email
tracking hits), in Avro, keyed by endpoint id.

Every ``publish…`` returns only when the broker has acknowledged every record
(``acks=all``, idempotent producer), so a 202 from the API means the records
are durably in Kafka. App-wide endpoint commands (no endpoint id) are written
once to every partition of ``endpoint-commands`` so each worker sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.keys import control_key, record_key
from lodestar.core.topics import Topic
from lodestar.settings import Settings


class EventPublisher:
    """Owns one Kafka producer for the lifetime of the API process."""

    def __init__(self, settings: Settings, codec: AvroCodec) -> None:
        self._settings = settings
        self._topic = settings.topic(Topic.EVENTS)
        self._codec = codec
        self._headers = codec.headers(Topic.EVENTS)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, records: Sequence[dict[str, Any]]) -> None:
        """Encode and send ``records``; raise if any record was not acknowledged.

        The partition is computed once per endpoint of the request with Kafka's
        default rule (murmur2 of the key), the same one the engine's producers
        use, instead of once per event inside the producer.
        """
        if not records:
            return
        partitions = sorted(await self._producer.partitions_for(self._topic))
        partition_of: dict[str, int] = {}
        futures = []
        for record in records:
            endpoint_id = record["endpoint_id"]
            key = endpoint_id.encode()
            partition = partition_of.get(endpoint_id)
            if partition is None:
                partition = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
                partition_of[endpoint_id] = partition
            futures.append(await self._producer.send(
                self._topic, value=self._codec.encode(Topic.EVENTS, record), key=key,
                partition=partition, headers=self._headers,
            ))  # fmt: skip
        await asyncio.gather(*futures)

    async def publish_commands(self, commands: Sequence[dict[str, Any]]) -> None:
        """Send ``lodestar.v1.EndpointCommand`` records: keyed ones to their endpoint's
        partition, app-wide ones (``endpoint_id`` None) to every partition."""
        if not commands:
            return
        topic = self._settings.topic(Topic.ENDPOINT_COMMANDS)
        headers = self._codec.headers(Topic.ENDPOINT_COMMANDS)
        futures = []
        for command in commands:
            value = self._codec.encode(Topic.ENDPOINT_COMMANDS, command)
            endpoint_id = command.get("endpoint_id")
            if endpoint_id is not None:
                futures.append(await self._producer.send(
                    topic, value=value, key=endpoint_id.encode(), headers=headers
                ))
                continue
            partitions = await self._producer.partitions_for(topic)
            for partition in sorted(partitions):
                futures.append(await self._producer.send(
                    topic, value=value, key=None, partition=partition, headers=headers
                ))
        await asyncio.gather(*futures)

    async def publish_deliveries(self, records: Sequence[dict[str, Any]]) -> None:
        """Send ``lodestar.v1.Delivery`` records (e.g. email tracking hits), keyed by
        endpoint id (message id when there is none); return when all are acknowledged."""
        if not records:
            return
        topic = self._settings.topic(Topic.DELIVERIES)
        headers = self._codec.headers(Topic.DELIVERIES)
        futures = []
        for record in records:
            futures.append(await self._producer.send(
                topic, value=self._codec.encode(Topic.DELIVERIES, record),
                key=record_key(Topic.DELIVERIES, record), headers=headers,
            ))  # fmt: skip
        await asyncio.gather(*futures)

    async def publish_sends(self, requests: Sequence[dict[str, Any]]) -> None:
        """Send ``lodestar.v1.SendRequest`` records, each to its channel's send topic
        (``send.<channel>``), keyed by endpoint id or address; return when all are
        acknowledged."""
        futures = []
        for record in requests:
            topic = Topic(f"send.{record['channel'].lower()}")
            futures.append(await self._producer.send(
                self._settings.topic(topic), value=self._codec.encode(topic, record),
                key=record_key(topic, record), headers=self._codec.headers(topic),
            ))  # fmt: skip
        await asyncio.gather(*futures)

    async def publish_control(self, changes: Sequence[dict[str, Any]]) -> None:
        """Send ``lodestar.v1.ControlChange`` records to the compacted control topic,
        keyed ``<entity_type>/<app_id>/<entity_id>``; return when all are acknowledged."""
        if not changes:
            return
        topic = self._settings.topic(Topic.CONTROL)
        headers = self._codec.headers(Topic.CONTROL)
        futures = []
        for change in changes:
            key = control_key(change["entity_type"], change.get("app_id"), change["entity_id"])
            futures.append(await self._producer.send(
                topic, value=self._codec.encode(Topic.CONTROL, change), key=key, headers=headers
            ))
        await asyncio.gather(*futures)
