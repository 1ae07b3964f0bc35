"""Agent: keep the ``endpoint-activity`` table (events counted, last seen) per endpoint.

Thin adapter: decode a batch, park what does not decode on the DLQ, then per
partition fold each endpoint's events with ``core.endpoint_activity`` and
write its table entry once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable
from typing import Any

import faust
from faust.types import EventT

from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.endpoint_activity import EndpointActivity, coalesce_by_endpoint, fold_events
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.engine.event_context import as_current, by_partition

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN_SECONDS = 0.05


def source_of(event: EventT) -> SourceRecord:
    msg = event.message
    headers = tuple((k, v) for k, v in (msg.headers or ()))
    return SourceRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value, headers)


def register(
    app: faust.App,
    events_topic: faust.TopicT,
    table: faust.Table,
    codec: AvroCodec,
    dead_letters: DeadLetterPublisher,
) -> Any:
    """Attach the agent to ``app``; returns the agent."""

    async def endpoint_activity(stream: AsyncIterable[Any]) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
            for group in by_partition(events).values():
                records = []
                for event in group:
                    try:
                        records.append(codec.decode(Topic.EVENTS, event.message.value))
                    except ContractError as exc:
                        letter = DeadLetter(DlqReason.DECODE_ERROR, str(exc))
                        await dead_letters.publish(Topic.EVENTS, source_of(event), letter)
                with as_current(group[-1]):
                    for endpoint_id, timestamps in coalesce_by_endpoint(records).items():
                        state = EndpointActivity.from_dict(table.get(endpoint_id))
                        table[endpoint_id] = fold_events(state, timestamps).as_dict()

    return app.agent(events_topic, name="endpoint-activity")(endpoint_activity)
