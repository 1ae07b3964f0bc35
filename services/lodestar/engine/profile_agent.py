"""Agent: keep every endpoint's profile from ``events`` and ``endpoint-commands``.

Thin adapter around ``core.profile_inputs``: take a batch from both
(co-partitioned) topics, decode it (what does not decode goes to the DLQ),
group it by partition and by endpoint, fold each endpoint's inputs once, write
its table entry once, dead-letter refused inputs, and publish the resulting
``EndpointChange`` records on ``lodestar.endpoints`` (keyed by endpoint id, so
the changes of one endpoint stay in order).

The ``endpoint-profiles`` table is keyed ``<app id>/<endpoint id>`` and holds
``EndpointState.to_dict()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.types import EventT

from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.profile_inputs import (
    InputKind,
    ProfileInput,
    fold_endpoint,
    input_key,
    remove_attributes_everywhere,
)
from lodestar.core.topics import Topic
from lodestar.core.user_index import attributes_change, membership_changes, user_key
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.engine.event_context import as_current
from lodestar.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN_SECONDS = 0.05


def partition_of(endpoint_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``endpoint_id``."""
    return (murmur2(endpoint_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class PartitionWork:
    """One partition's share of a batch, decoded."""

    last_event: EventT
    per_endpoint: dict[str, list[ProfileInput]] = field(default_factory=dict)
    app_wide: list[ProfileInput] = field(default_factory=list)
    sources: dict[int, EventT] = field(default_factory=dict)  # id(input) -> Faust event


class ProfileAgent:
    """Holds what the agent needs; ``register`` attaches it to the Faust app."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        table: faust.Table,
        codec: AvroCodec,
        dead_letters: DeadLetterPublisher,
    ) -> None:
        self.app = app
        self.table = table
        self.codec = codec
        self.dead_letters = dead_letters
        self.partitions = settings.partitions
        self.events_topic = settings.topic(Topic.EVENTS)
        self.commands_topic = settings.topic(Topic.ENDPOINT_COMMANDS)
        self.changes_topic = settings.topic(Topic.ENDPOINTS)
        self.change_headers = codec.headers(Topic.ENDPOINTS)
        self.user_index_topic = settings.topic(Topic.USER_INDEX)
        self.user_index_headers = codec.headers(Topic.USER_INDEX)

    def register(self) -> Any:
        source = self.app.topic(
            self.events_topic, self.commands_topic, key_serializer="raw", value_serializer="raw"
        )
        return self.app.agent(source, name="endpoint-profiles")(self._run)

    async def _run(self, stream: AsyncIterable[Any]) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
            await self.process(events)

    async def process(self, events: Sequence[EventT]) -> None:
        """Apply one batch: decode, fold per endpoint, write, dead-letter, publish."""
        now_ms = int(time.time() * 1000)
        work = await self._decode(events)
        changes: list[dict[str, Any]] = []
        memberships: list[dict[str, Any]] = []
        refused: list[tuple[EventT, str]] = []
        for partition, part in work.items():
            with as_current(part.last_event):
                for key, inputs in part.per_endpoint.items():
                    changes += self._fold(key, inputs, now_ms, part, refused, memberships)
                for command in part.app_wide:
                    changes += self._remove_attributes(partition, command, now_ms)
        for event, reason in refused:
            letter = DeadLetter(DlqReason.VALIDATION_ERROR, reason)
            topic = _logical(event, self.events_topic)
            await self.dead_letters.publish(topic, SourceRecord.of(event.message), letter)
        await self._publish(changes, memberships)

    async def _decode(self, events: Sequence[EventT]) -> dict[int, PartitionWork]:
        work: dict[int, PartitionWork] = {}
        for event in events:
            topic = _logical(event, self.events_topic)
            try:
                record = self.codec.decode(topic, event.message.value)
            except ContractError as exc:
                letter = DeadLetter(DlqReason.DECODE_ERROR, str(exc))
                await self.dead_letters.publish(topic, SourceRecord.of(event.message), letter)
                continue
            kind = InputKind.EVENT if topic is Topic.EVENTS else InputKind.COMMAND
            item = ProfileInput(kind, record, event.message.offset)
            part = work.setdefault(event.message.partition, PartitionWork(event))
            part.last_event = event
            part.sources[id(item)] = event
            key = input_key(item)
            if key is None:
                part.app_wide.append(item)
            else:
                part.per_endpoint.setdefault(key, []).append(item)
        return work

    def _fold(
        self,
        key: str,
        inputs: list[ProfileInput],
        now_ms: int,
        part: PartitionWork,
        refused: list[tuple[EventT, str]],
        memberships: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        first = inputs[0].record
        app_id, endpoint_id = first["app_id"], first["endpoint_id"]
        raw = self.table.get(key)
        state = EndpointState.from_dict(raw) if raw else None
        result = fold_endpoint(state, app_id, endpoint_id, inputs, now_ms)
        memberships += membership_changes(
            app_id, endpoint_id, _user_id(state), _user_id(result.state), now_ms
        )
        memberships += [
            attributes_change(app_id, user_id, endpoint_id, attributes, now_ms)
            for user_id, attributes in result.user_attribute_changes
        ]
        if result.dirty:
            if result.state is None:
                self.table.pop(key, None)
            else:
                self.table[key] = result.state.to_dict()
        refused += [(part.sources[id(item)], reason) for item, reason in result.refused]
        return result.changes

    def _remove_attributes(
        self, partition: int, command: ProfileInput, now_ms: int
    ) -> list[dict[str, Any]]:
        """RemoveAttributes over this partition's endpoints of the app (a table scan)."""
        mine = [
            (key, EndpointState.from_dict(value))
            for key, value in list(self.table.items())
            if partition_of(key.split("/", 1)[1], self.partitions) == partition
        ]
        out = []
        for key, change in remove_attributes_everywhere(mine, command.record, now_ms):
            assert change.state is not None
            self.table[key] = change.state.to_dict()
            out.append(change.change_record(now_ms, "REMOVE_ATTRIBUTES"))
        return out

    async def _publish(
        self, changes: list[dict[str, Any]], memberships: list[dict[str, Any]]
    ) -> None:
        """Send the batch's endpoint changes and user-index changes; wait for the acks."""
        send = self.app.producer.send
        futures = [
            await send(self.changes_topic, change["endpoint_id"].encode(),
                       self.codec.encode(Topic.ENDPOINTS, change), None, None,
                       self.change_headers)
            for change in changes
        ] + [
            await send(self.user_index_topic,
                       user_key(change["app_id"], change["user_id"]).encode(),
                       self.codec.encode(Topic.USER_INDEX, change), None, None,
                       self.user_index_headers)
            for change in memberships
        ]  # fmt: skip
        if futures:
            await asyncio.gather(*futures)


def _user_id(state: EndpointState | None) -> str | None:
    return None if state is None or state.user is None else state.user.user_id


def _logical(event: EventT, events_topic: str) -> Topic:
    return Topic.EVENTS if event.message.topic == events_topic else Topic.ENDPOINT_COMMANDS
