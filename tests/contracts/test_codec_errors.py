"""Malformed records and bytes are refused with messages that name the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.errors import ContractError, DecodeError, EncodeError
from lodestar.contracts.reasons import DlqReason
from lodestar.contracts.registry import SchemaRegistry
from lodestar.contracts.wire import MAGIC
from lodestar.core.topics import Topic

EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "app_id": "app-1",
    "endpoint_id": "ep-1",
    "event_type": "_session.start",
    "timestamp": 1777636800000,
    "arrival_timestamp": 1777636800250,
    "session": {"id": "s-1", "start_timestamp": 1777636800000},
}
SMS: dict[str, Any] = {
    "message_id": "m-1",
    "app_id": "app-1",
    "endpoint_id": "ep-1",
    "channel": "SMS",
    "address": "+14155550199",
    "source": "TRANSACTIONAL",
    "content": {"body": "Your code is 123456"},
    "timestamp": 1777636800000,
}


def change(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base, **fields}


def without(base: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != name}


ENCODE_CASES: list[tuple[str, Topic, dict[str, Any], str]] = [
    (
        "timestamp as ISO string",
        Topic.EVENTS,
        change(EVENT, timestamp="2026-05-01"),
        "event: field 'timestamp': expected long (epoch millis), got str '2026-05-01'",
    ),
    (
        "missing required field",
        Topic.EVENTS,
        without(EVENT, "event_type"),
        "event: field 'event_type': required field is missing",
    ),
    (
        "misspelt field",
        Topic.EVENTS,
        change(without(EVENT, "timestamp"), timestmp=1),
        "event: field 'timestamp': required field is missing (the record has unknown field(s) "
        "'timestmp')",
    ),
    ("unknown field", Topic.EVENTS, change(EVENT, colour="red"), "event: field 'colour': unknown"),
    (
        "null for a non-null field",
        Topic.EVENTS,
        change(EVENT, app_id=None),
        "event: field 'app_id': expected string, got None",
    ),
    (
        "float truncated into a long",
        Topic.EVENTS,
        change(EVENT, arrival_timestamp=1777636800250.5),
        "event: field 'arrival_timestamp': expected long (epoch millis), got float",
    ),
    (
        "long out of range",
        Topic.EVENTS,
        change(EVENT, timestamp=2**64),
        "event: field 'timestamp': 18446744073709551616 is out of range for Avro long",
    ),
    (
        "bool as a double",
        Topic.EVENTS,
        change(EVENT, metrics={"_quantity": True}),
        "event: field 'metrics[\"_quantity\"]': expected double, got bool True",
    ),
    (
        "number as a string attribute",
        Topic.EVENTS,
        change(EVENT, attributes={"plan": 3}),
        "event: field 'attributes[\"plan\"]': expected string, got int 3",
    ),
    (
        "nested field missing inside a union",
        Topic.EVENTS,
        change(EVENT, session={"id": "s-1"}),
        "event: field 'session.start_timestamp': required field is missing",
    ),
    (
        "nested type inside a union",
        Topic.EVENTS,
        change(EVENT, session={"id": "s-1", "start_timestamp": 1, "duration_ms": "5s"}),
        "event: field 'session.duration_ms': expected long, got str '5s'",
    ),
    (
        "bad union value",
        Topic.EVENTS,
        change(EVENT, session="s-1"),
        "event: field 'session': expected record Session, got str 's-1'",
    ),
    (
        "tuple notation is refused",
        Topic.EVENTS,
        change(EVENT, session=("lodestar.v1.Session", {"id": "s", "start_timestamp": 1})),
        "event: field 'session': give the value in plain form",
    ),
    (
        "record is not a mapping",
        Topic.EVENTS,
        ["not", "a", "record"],  # type: ignore[list-item]
        "event: expected record Event, got list",
    ),
    (
        "bad enum symbol",
        Topic.SEND_SMS,
        change(SMS, source="NEWSLETTER"),
        "send_request: field 'source': 'NEWSLETTER' is not a symbol of enum SendSource "
        "(CAMPAIGN, JOURNEY, TRANSACTIONAL)",
    ),
    (
        "enum given as a number",
        Topic.SEND_SMS,
        change(SMS, source=1),
        "send_request: field 'source': expected a symbol of enum SendSource (a string), got int 1",
    ),
    (
        "wrong channel for the topic",
        Topic.SEND_EMAIL,
        SMS,
        "send_request: field 'channel': str 'SMS' does not belong on topic send.email "
        "(expected 'EMAIL')",
    ),
    (
        "content field of another channel",
        Topic.SEND_SMS,
        change(SMS, content={"body": "hi", "subject": "Hello"}),
        "send_request: field 'content.subject': unknown field (not in lodestar.v1.SmsContent",
    ),
    (
        "content value type",
        Topic.SEND_SMS,
        change(SMS, content={"body": 42}),
        "send_request: field 'content.body': expected string, got int 42",
    ),
    (
        "a string where an array is expected",
        Topic.SEND_EMAIL,
        change(SMS, channel="EMAIL", content={"subject": "Hi", "reply_to": "a@example.com"}),
        "send_request: field 'content.reply_to': expected array of string, got str",
    ),
    (
        "a truthy string where a boolean is expected",
        Topic.SEND_PUSH,
        change(SMS, channel="PUSH", content={"title": "Hi", "silent": "yes"}),
        "send_request: field 'content.silent': expected boolean, got str 'yes'",
    ),
    (
        "int out of range",
        Topic.SEND_PUSH,
        change(SMS, channel="PUSH", content={"title": "Hi", "ttl": 2**40}),
        "send_request: field 'content.ttl': 1099511627776 is out of range for Avro int",
    ),
    (
        "array item type",
        Topic.SEND_SMS,
        change(SMS, substitutions={"Code": [123456]}),
        "send_request: field 'substitutions[\"Code\"][0]': expected string, got int 123456",
    ),
]


@pytest.mark.parametrize(
    ("topic", "record", "message"),
    [case[1:] for case in ENCODE_CASES],
    ids=[case[0] for case in ENCODE_CASES],
)
def test_encode_refuses_with_the_field_named(
    codec: AvroCodec, topic: Topic, record: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodeError) as caught:
        codec.encode(topic, record)
    assert str(caught.value).startswith(message), str(caught.value)
    assert isinstance(caught.value, ContractError)
    assert caught.value.reason is DlqReason.VALIDATION_ERROR
    assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, Exception)


def test_error_carries_schema_and_path(codec: AvroCodec) -> None:
    with pytest.raises(EncodeError) as caught:
        codec.encode(Topic.EVENTS, change(EVENT, session={"id": 1, "start_timestamp": 1}))
    assert caught.value.schema == "event"
    assert caught.value.path == "session.id"


def test_encode_many_names_the_bad_record(codec: AvroCodec) -> None:
    with pytest.raises(EncodeError, match=r"^record 1: event: field 'timestamp'"):
        codec.encode_many(Topic.EVENTS, [EVENT, change(EVENT, timestamp="x")])


@pytest.fixture
def event_bytes(codec: AvroCodec) -> bytes:
    return codec.encode(Topic.EVENTS, EVENT)


DECODE_CASES: list[tuple[str, Callable[[bytes], bytes], DlqReason, str]] = [
    (
        "truncated body",
        lambda b: b[:-3],
        DlqReason.DECODE_ERROR,
        "event: truncated: the data ends",
    ),
    (
        "trailing garbage",
        lambda b: b + b"\x00garbage",
        DlqReason.DECODE_ERROR,
        "event: 8 unexpected byte(s) after the record",
    ),
    (
        "wrong magic (JSON)",
        lambda b: b'{"event_id": "e-1"}',
        DlqReason.DECODE_ERROR,
        "event: wrong magic bytes 7b 22 (expected c3 01)",
    ),
    (
        "shorter than the header",
        lambda b: MAGIC + b"\x01",
        DlqReason.DECODE_ERROR,
        "event: 3 bytes is shorter than the 10-byte single-object header",
    ),
    (
        "unknown fingerprint",
        lambda b: MAGIC + bytes(range(8)) + b[10:],
        DlqReason.SCHEMA_MISMATCH,
        "event: unknown schema fingerprint 0001020304050607",
    ),
    (
        "invalid UTF-8 in a string",
        lambda b: b.replace(b"e-1", b"\xff\xfe\xfd"),
        DlqReason.DECODE_ERROR,
        "event: corrupt body",
    ),
]


@pytest.mark.parametrize(
    ("mangle", "reason", "message"),
    [case[1:] for case in DECODE_CASES],
    ids=[case[0] for case in DECODE_CASES],
)
def test_decode_refuses_bad_bytes(
    codec: AvroCodec,
    event_bytes: bytes,
    mangle: Callable[[bytes], bytes],
    reason: DlqReason,
    message: str,
) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(Topic.EVENTS, mangle(event_bytes))
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.reason is reason


def test_decoding_a_delivery_as_an_event_is_a_schema_mismatch(codec: AvroCodec) -> None:
    delivery = codec.encode(
        Topic.DELIVERIES,
        {
            "event_id": "d-1",
            "app_id": "app-1",
            "message_id": "m-1",
            "event_type": "_email.delivered",
            "channel": "EMAIL",
            "timestamp": 1777636800000,
        },
    )
    with pytest.raises(DecodeError) as caught:
        codec.decode(Topic.EVENTS, delivery)
    assert caught.value.reason is DlqReason.SCHEMA_MISMATCH
    assert str(caught.value) == (
        "event: expected lodestar.v1.Event but the bytes were written with "
        "lodestar.v1.Delivery (schema delivery): wrong topic?"
    )


def test_a_send_read_from_another_channels_topic_is_refused(codec: AvroCodec) -> None:
    data = codec.encode(Topic.SEND_SMS, SMS)
    with pytest.raises(DecodeError, match=r"'SMS' does not belong on topic send\.push") as caught:
        codec.decode(Topic.SEND_PUSH, data)
    assert caught.value.reason is DlqReason.VALIDATION_ERROR


def test_decode_many_keeps_good_records_and_returns_errors_in_place(
    codec: AvroCodec, event_bytes: bytes
) -> None:
    results = codec.decode_many(Topic.EVENTS, [event_bytes, b"junk", event_bytes])
    assert isinstance(results[1], DecodeError)
    assert results[0] == results[2]
    assert isinstance(results[0], dict) and results[0]["event_id"] == "e-1"


def test_nothing_is_written_for_a_refused_record(
    codec: AvroCodec, registry: SchemaRegistry
) -> None:
    # fastavro alone would write these silently as something else.
    for bad in (
        change(EVENT, timestamp=1.9),
        change(EVENT, timestamp=True),
        change(EVENT, metrics={"x": "1.5"}),
    ):
        with pytest.raises(EncodeError):
            codec.encode(Topic.EVENTS, bad)
    assert registry.get("event").stem == "event"
