"""Lodestar's public Avro contracts: schemas per topic, the wire format, the codec.

    codec = AvroCodec()                       # loads schemas/ once
    value = codec.encode(Topic.EVENTS, record)
    record = codec.decode(Topic.EVENTS, value)
    headers = codec.headers(Topic.EVENTS)     # [("lodestar-schema", b"lodestar.v1.Event")]
    key = record_key(Topic.EVENTS, record)    # b"<endpoint id>"

See docs/wire-format.md and docs/topics.md.
"""

from __future__ import annotations

from lodestar.contracts.codec import AvroCodec, Record
from lodestar.contracts.dlq import DeadLetterEnvelope
from lodestar.contracts.errors import ContractError, DecodeError, EncodeError, reason_of
from lodestar.contracts.headers import DLQ_REASON_HEADER, SCHEMA_HEADER
from lodestar.contracts.json_form import from_json, load_json_record, to_json
from lodestar.contracts.keys import control_key, endpoint_key, record_key
from lodestar.contracts.reasons import DlqReason
from lodestar.contracts.registry import (
    TOPIC_SCHEMAS,
    SchemaEntry,
    SchemaRegistry,
    default_registry,
    load_registry,
)

__all__ = [
    "DLQ_REASON_HEADER",
    "SCHEMA_HEADER",
    "TOPIC_SCHEMAS",
    "AvroCodec",
    "ContractError",
    "DeadLetterEnvelope",
    "DecodeError",
    "DlqReason",
    "EncodeError",
    "Record",
    "SchemaEntry",
    "SchemaRegistry",
    "control_key",
    "default_registry",
    "endpoint_key",
    "from_json",
    "load_json_record",
    "load_registry",
    "reason_of",
    "record_key",
    "to_json",
]
