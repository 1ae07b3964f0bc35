"""Dead-letter envelopes, Kafka headers and record keys."""

from __future__ import annotations

from typing import Any

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.dlq import DeadLetterEnvelope
from lodestar.contracts.errors import DecodeError, EncodeError, reason_of
from lodestar.contracts.headers import DLQ_REASON_HEADER, SCHEMA_HEADER
from lodestar.contracts.keys import control_key, record_key
from lodestar.contracts.reasons import DlqReason
from lodestar.core.topics import Topic


def test_envelope_round_trips(codec: AvroCodec) -> None:
    letter = DeadLetterEnvelope(
        original_topic="lodestar.events",
        partition=2,
        offset=41,
        key=b"ep-1",
        value=b"\xc3\x01garbage",
        headers=(("lodestar-schema", b"lodestar.v1.Event"), ("dup", b"1"), ("dup", None)),
        reason=DlqReason.DECODE_ERROR,
        error_message="event: truncated",
        service="engine/profile",
        failed_at=1777636800000,
        record_timestamp=1777636799000,
        expected_schema="lodestar.v1.Event",
        attempts=3,
    )
    assert codec.decode_dlq(codec.encode_dlq(letter)) == letter


def test_envelope_from_a_decode_error(codec: AvroCodec) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(Topic.EVENTS, b"not avro at all")
    letter = DeadLetterEnvelope.from_exception(
        caught.value,
        original_topic="lodestar.events",
        partition=0,
        offset=7,
        key=b"ep-1",
        value=b"not avro at all",
        service="analytics-sink",
        failed_at=1777636800000,
    )
    assert letter.reason is DlqReason.DECODE_ERROR
    assert letter.expected_schema == "event"
    assert "wrong magic bytes" in letter.error_message
    assert reason_of(RuntimeError("boom")) is DlqReason.PROCESSING_ERROR


def test_envelope_record_form_with_headers_as_a_mapping(codec: AvroCodec) -> None:
    # The shape DeadLetterPublisher builds: Kafka headers as a {name: value} mapping.
    envelope: dict[str, Any] = {
        "original_topic": "lodestar.events",
        "partition": 1,
        "offset": 5,
        "key": None,
        "value": b"\x00",
        "headers": {"lodestar-schema": b"lodestar.v1.Event"},
        "reason": "DECODE_ERROR",
        "error_message": "event: wrong magic bytes",
        "failed_at": 1777636800000,
        "service": "engine",
    }
    letter = codec.decode_dlq(codec.encode_dlq(envelope))
    assert letter.headers == (("lodestar-schema", b"lodestar.v1.Event"),)
    assert letter.attempts == 1 and letter.record_timestamp is None


def test_envelope_with_a_bad_reason_is_refused(codec: AvroCodec) -> None:
    with pytest.raises(EncodeError, match="field 'reason': 'OOPS' is not a symbol of enum"):
        codec.encode_dlq(
            {
                "original_topic": "lodestar.events",
                "partition": 1,
                "offset": 5,
                "value": b"",
                "reason": "OOPS",
                "error_message": "x",
                "failed_at": 1,
                "service": "engine",
            }
        )


def test_headers(codec: AvroCodec) -> None:
    assert codec.headers(Topic.EVENTS) == [(SCHEMA_HEADER, b"lodestar.v1.Event")]
    assert codec.headers(Topic.SEND_VOICE) == [(SCHEMA_HEADER, b"lodestar.v1.SendRequest")]
    assert codec.dlq_headers() == [(SCHEMA_HEADER, b"lodestar.v1.DeadLetter")]
    assert codec.dlq_headers(DlqReason.SCHEMA_MISMATCH) == [
        (SCHEMA_HEADER, b"lodestar.v1.DeadLetter"),
        (DLQ_REASON_HEADER, b"SCHEMA_MISMATCH"),
    ]
    for topic in Topic:
        (_, value), *_ = codec.headers(topic)
        assert value.decode() == codec.registry.for_topic(topic).full_name


def test_decode_any_names_the_schema(codec: AvroCodec) -> None:
    data = codec.encode(
        Topic.SEGMENT_MEMBERSHIP,
        {
            "app_id": "a",
            "segment_id": "s",
            "segment_version": 1,
            "endpoint_id": "ep",
            "change": "ENTER",
            "cause": "endpoint",
            "timestamp": 1,
        },
    )
    entry, record = codec.decode_any(data)
    assert entry.full_name == "lodestar.v1.SegmentMembershipChange"
    assert record["change"] == "ENTER"


@pytest.mark.parametrize(
    ("topic", "record", "key"),
    [
        (Topic.EVENTS, {"endpoint_id": "ep-1"}, b"ep-1"),
        (Topic.ACTIVITY, {"endpoint_id": "ep-1"}, b"ep-1"),
        (Topic.SEND_SMS, {"endpoint_id": "ep-1", "address": "+1415"}, b"ep-1"),
        (Topic.SEND_SMS, {"endpoint_id": None, "address": "+1415"}, b"+1415"),
        (Topic.DELIVERIES, {"endpoint_id": None, "message_id": "m-1"}, b"m-1"),
        (
            Topic.CONTROL,
            {"entity_type": "SEGMENT", "app_id": "app", "entity_id": "seg"},
            b"SEGMENT/app/seg",
        ),
        (
            Topic.CONTROL,
            {"entity_type": "TEMPLATE", "app_id": None, "entity_id": "EMAIL/welcome"},
            b"TEMPLATE//EMAIL/welcome",
        ),
    ],
)
def test_record_keys(topic: Topic, record: dict[str, Any], key: bytes) -> None:
    assert record_key(topic, record) == key


def test_record_key_needs_its_field() -> None:
    with pytest.raises(EncodeError, match="event: field 'endpoint_id': needed for the key"):
        record_key(Topic.EVENTS, {"event_id": "e"})
    assert control_key("APP", "app", "app") == b"APP/app/app"
