"""The compiled reader gives fastavro's answer for every schema, and the codec falls back
to fastavro for anything malformed."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.errors import DecodeError
from lodestar.contracts.fast_reader import UnsupportedSchema, compile_reader
from lodestar.contracts.registry import default_registry
from lodestar.contracts.wire import HEADER_SIZE
from lodestar.core.topics import Topic

REGISTRY = default_registry()
ENTRIES = sorted(REGISTRY, key=lambda e: e.stem)


def _write(schema: dict[str, Any], record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, record)
    return out.getvalue()


def _fastavro(schema: dict[str, Any], data: bytes, offset: int = 0) -> tuple[Any, int]:
    stream = io.BytesIO(data)
    stream.seek(offset)
    record = schemaless_reader(stream, schema, None)
    return record, stream.tell()


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.stem)
def test_random_records_read_as_fastavro_reads_them(entry: Any) -> None:
    reader = compile_reader(entry.wire)
    for record in generate_many(entry.wire, 60):
        data = b"\x00" * 3 + _write(entry.wire, record)
        assert reader(data, 3) == _fastavro(entry.wire, data, 3)


def test_every_primitive_and_block_encoding() -> None:
    schema = parse_schema({
        "type": "record", "name": "t.All", "fields": [
            {"name": "n", "type": "null"}, {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"}, {"name": "l", "type": "long"},
            {"name": "f", "type": "float"}, {"name": "d", "type": "double"},
            {"name": "by", "type": "bytes"}, {"name": "s", "type": "string"},
            {"name": "fx", "type": {"type": "fixed", "name": "t.F", "size": 3}},
            {"name": "e", "type": {"type": "enum", "name": "t.E", "symbols": ["A", "B"]}},
            {"name": "a", "type": {"type": "array", "items": ["null", "t.E"]}},
            {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
            {"name": "r", "type": ["null", {"type": "record", "name": "t.Node", "fields": [
                {"name": "v", "type": "string"}, {"name": "next", "type": ["null", "t.Node"]}]}]},
        ]})
    record = {"n": None, "b": True, "i": -(2**31), "l": 2**63 - 1, "f": 1.5, "d": -2.25,
              "by": b"\x00\xff", "s": "h\u00e9llo \U0001f600", "fx": b"abc", "e": "B",
              "a": [None, "A", "B"], "m": {"x": [1, -1, 300], "": []},
              "r": {"v": "1", "next": {"v": "2", "next": None}}}
    data = _write(schema, record)
    assert compile_reader(schema)(data, 0) == (record, len(data))
    # blocks written with a negative count and a byte size (what other writers may do)
    blocked = parse_schema({"type": "record", "name": "t.B", "fields": [
        {"name": "a", "type": {"type": "array", "items": "long"}}]})
    data = bytes([3, 4, 2, 4, 0])  # count -2 (zigzag 3), size 2, items 1 and 2, end
    assert compile_reader(blocked)(data, 0) == ({"a": [1, 2]}, len(data))
    assert _fastavro(blocked, data)[0] == {"a": [1, 2]}


@pytest.mark.parametrize("bad", [
    bytes([1]),            # union index -1
    bytes([6]),            # union index 3 of 2 branches
    bytes([2, 0x81]),      # a string length that never ends
    bytes([2, 10, 0x61]),  # a string longer than the data
    bytes([2, 3, 0x61]),   # a negative string length
    bytes([2, 4, 0xC3, 0x28]),  # invalid UTF-8
])
def test_malformed_bytes_raise(bad: bytes) -> None:
    schema = parse_schema({"type": "record", "name": "t.U", "fields": [
        {"name": "u", "type": ["null", "string"]}]})
    with pytest.raises(Exception):  # noqa: B017 - which one is not part of the contract
        compile_reader(schema)(bad, 0)


def test_out_of_range_enum_and_boolean_raise() -> None:
    schema = parse_schema({"type": "record", "name": "t.EB", "fields": [
        {"name": "e", "type": {"type": "enum", "name": "t.E2", "symbols": ["A"]}},
        {"name": "b", "type": "boolean"}]})
    reader = compile_reader(schema)
    assert reader(bytes([0, 1]), 0) == ({"e": "A", "b": True}, 2)
    for bad in (bytes([1, 1]), bytes([2, 1]), bytes([0, 2])):
        with pytest.raises(Exception):  # noqa: B017
            reader(bad, 0)


def test_logical_types_are_left_to_fastavro() -> None:
    schema = parse_schema({"type": "record", "name": "t.L", "fields": [
        {"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}]})
    with pytest.raises(UnsupportedSchema):
        compile_reader(schema)


def test_the_codec_reads_corrupt_values_with_fastavro_errors() -> None:
    codec = AvroCodec(REGISTRY)
    reference = AvroCodec(REGISTRY)
    reference._fast_reader = lambda writer: None  # type: ignore[method-assign]
    example = generate_many(REGISTRY.for_topic(Topic.SEND_PUSH).wire, 1)
    record = next(iter(example))
    record["channel"] = "PUSH"
    record["content"] = None
    value = codec.encode(Topic.SEND_PUSH, record)
    assert codec.decode(Topic.SEND_PUSH, value) == reference.decode(Topic.SEND_PUSH, value)
    rng = random.Random(5)
    variants = [value[:cut] for cut in range(HEADER_SIZE, len(value))] + [value + b"\x00"]
    for _ in range(300):
        flipped = bytearray(value)
        flipped[rng.randrange(HEADER_SIZE, len(value))] = rng.randrange(256)
        variants.append(bytes(flipped))
    for data in variants:
        try:
            expected: Any = reference.decode(Topic.SEND_PUSH, data)
        except DecodeError as exc:
            expected = ("error", str(exc), exc.reason)
        try:
            got: Any = codec.decode(Topic.SEND_PUSH, data)
        except DecodeError as exc:
            got = ("error", str(exc), exc.reason)
        assert got == expected
