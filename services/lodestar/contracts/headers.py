"""Kafka headers Lodestar attaches to the records it writes.

- ``lodestar-schema``: full name of the value's schema (``lodestar.v1.Event``),
  so tools can route or filter without parsing the value. The value's own
  fingerprint stays authoritative.
- ``lodestar-dlq-reason``: on dead-letter records, the ``DlqReason`` symbol.
"""

from __future__ import annotations

from typing import Final

from lodestar.contracts.reasons import DlqReason
from lodestar.contracts.registry import SchemaEntry

SCHEMA_HEADER: Final = "lodestar-schema"
DLQ_REASON_HEADER: Final = "lodestar-dlq-reason"

Headers = list[tuple[str, bytes]]


def schema_headers(entry: SchemaEntry) -> Headers:
    """Headers for a record of ``entry``: ``[("lodestar-schema", b"lodestar.v1.Event")]``."""
    return [(SCHEMA_HEADER, entry.full_name.encode())]


def dead_letter_headers(entry: SchemaEntry, reason: DlqReason) -> Headers:
    """Headers for a dead-letter record: the envelope schema and the reason."""
    return [*schema_headers(entry), (DLQ_REASON_HEADER, reason.value.encode())]
