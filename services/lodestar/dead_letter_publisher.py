"""Park records that cannot be processed on ``<topic>.dlq``, with the reason.

One adapter for every consumer (engine agents, the analytics sink, senders):
it wraps the original bytes in a ``lodestar.v1.DeadLetter`` envelope so
nothing is lost and an operator can replay it after a fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.dlq import DeadLetterEnvelope
from lodestar.core.dead_letters import DeadLetter
from lodestar.core.topics import Topic
from lodestar.settings import Settings

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]
Send = Callable[[str, bytes | None, bytes, Headers], Awaitable[None]]


@dataclass(frozen=True)
class SourceRecord:
    """Where a parked record came from, and its original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()

    @classmethod
    def of(cls, message: Any) -> SourceRecord:
        """From an aiokafka ``ConsumerRecord`` or a Faust event's ``message``."""
        return cls(
            message.topic, message.partition, message.offset, message.key, message.value,
            tuple((k, v) for k, v in (message.headers or ())),
        )


class DeadLetterPublisher:
    """Encodes envelopes and hands them to ``send`` (an aiokafka or Faust producer)."""

    def __init__(self, settings: Settings, codec: AvroCodec, send: Send, service: str) -> None:
        self._settings = settings
        self._codec = codec
        self._send = send
        self._service = service

    async def publish(self, topic: Topic, record: SourceRecord, letter: DeadLetter) -> None:
        """Send one envelope to the DLQ guarding ``topic``; returns once acknowledged."""
        envelope = DeadLetterEnvelope(
            original_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers),
            reason=letter.reason,
            error_message=letter.error,
            failed_at=int(time.time() * 1000),
            service=self._service,
        )
        log.warning(
            "dead-lettering %s[%d]@%d: %s: %s",
            record.topic, record.partition, record.offset, letter.reason.value, letter.error,
        )
        await self._send(
            self._settings.dlq(topic),
            record.key,
            self._codec.encode_dlq(envelope),
            self._codec.dlq_headers(letter.reason),
        )
