"""Why a record went to a dead-letter topic, as values.

Pure steps return a ``DeadLetter`` instead of raising; one adapter turns it
into a ``lodestar.v1.DeadLetter`` record on ``<topic>.dlq``. The enum's
symbols are those of ``schemas/dlq_envelope.avsc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DlqReason(StrEnum):
    """Why a record could not be processed."""

    DECODE_ERROR = "DECODE_ERROR"
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    PROCESSING_ERROR = "PROCESSING_ERROR"
    SINK_REJECTED = "SINK_REJECTED"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


@dataclass(frozen=True)
class DeadLetter:
    """A record that must be parked, with the reason and a human-readable error."""

    reason: DlqReason
    error: str
