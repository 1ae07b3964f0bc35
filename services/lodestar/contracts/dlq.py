"""The dead-letter envelope as a Python value.

Every ``<topic>.dlq`` carries ``lodestar.v1.DeadLetter`` records
(``schemas/dlq_envelope.avsc``) keyed like the original record. A
``DeadLetterEnvelope`` keeps the original bytes untouched so the record can
be inspected and replayed; ``to_record``/``from_record`` convert to and from
the Avro record the codec writes. (``lodestar.core.dead_letters.DeadLetter``
is the pure outcome — reason and message — that a step returns.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lodestar.contracts.errors import ContractError, reason_of
from lodestar.contracts.reasons import DlqReason

KafkaHeaders = Sequence[tuple[str, bytes | None]]


@dataclass(frozen=True, slots=True)
class DeadLetterEnvelope:
    """A record a consumer gave up on, with where it came from and why.

    ``original_topic`` is the physical name of the topic it came from; timestamps are
    epoch milliseconds; ``headers`` are the original Kafka headers in order.
    """

    original_topic: str
    partition: int
    offset: int
    value: bytes | None
    reason: DlqReason
    error_message: str
    service: str
    failed_at: int
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    record_timestamp: int | None = None
    expected_schema: str | None = None
    attempts: int = 1

    @classmethod
    def from_exception(
        cls,
        error: BaseException,
        *,
        original_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        service: str,
        failed_at: int,
        headers: KafkaHeaders = (),
        record_timestamp: int | None = None,
        expected_schema: str | None = None,
        attempts: int = 1,
    ) -> DeadLetterEnvelope:
        """The dead letter for ``error``: its ``DlqReason`` and message, the original record."""
        schema = expected_schema
        if schema is None and isinstance(error, ContractError):
            schema = error.schema
        return cls(
            original_topic=original_topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=tuple(headers),
            reason=reason_of(error),
            error_message=str(error) or type(error).__name__,
            service=service,
            failed_at=failed_at,
            record_timestamp=record_timestamp,
            expected_schema=schema,
            attempts=attempts,
        )

    def to_record(self) -> dict[str, Any]:
        """The ``lodestar.v1.DeadLetter`` record for the codec."""
        return {
            "original_topic": self.original_topic,
            "partition": self.partition,
            "offset": self.offset,
            "record_timestamp": self.record_timestamp,
            "key": self.key,
            "value": self.value,
            "headers": [{"key": k, "value": v} for k, v in self.headers],
            "reason": self.reason.value,
            "error_message": self.error_message,
            "expected_schema": self.expected_schema,
            "failed_at": self.failed_at,
            "service": self.service,
            "attempts": self.attempts,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DeadLetterEnvelope:
        """The ``DeadLetter`` of a decoded ``lodestar.v1.DeadLetter`` record."""
        return cls(
            original_topic=record["original_topic"],
            partition=record["partition"],
            offset=record["offset"],
            record_timestamp=record.get("record_timestamp"),
            key=record.get("key"),
            value=record.get("value"),
            headers=tuple((h["key"], h.get("value")) for h in record.get("headers", ())),
            reason=DlqReason(record["reason"]),
            error_message=record["error_message"],
            expected_schema=record.get("expected_schema"),
            failed_at=record["failed_at"],
            service=record["service"],
            attempts=record.get("attempts", 1),
        )


def envelope_record(envelope: DeadLetterEnvelope | Mapping[str, Any]) -> Mapping[str, Any]:
    """The Avro record of ``envelope``, given as a ``DeadLetterEnvelope`` or as a record.

    In the record form ``headers`` may also be given the way Kafka clients
    hold them: a mapping ``{name: value}`` or a sequence of ``(name, value)``
    pairs; they become the schema's list of ``{"key", "value"}`` records.
    """
    if isinstance(envelope, DeadLetterEnvelope):
        return envelope.to_record()
    headers = envelope.get("headers")
    if headers is None or _is_header_records(headers):
        return envelope
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    try:
        converted = [{"key": key, "value": value} for key, value in pairs]
    except (TypeError, ValueError):
        return envelope  # leave it to the codec to say what is wrong
    return {**envelope, "headers": converted}


def _is_header_records(headers: Any) -> bool:
    return isinstance(headers, list | tuple) and all(isinstance(h, Mapping) for h in headers)
