"""The compiled writer writes fastavro's bytes for every record it accepts, and the codec
falls back to fastavro (same bytes, same errors) for everything else."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.utils import generate_many

from lodestar.contracts import codec as codec_module
from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.errors import EncodeError
from lodestar.contracts.fast_writer import UnsupportedSchema, compile_writer
from lodestar.contracts.guard import compile_preparer
from lodestar.contracts.json_form import load_json_record
from lodestar.contracts.registry import SchemaEntry, default_registry
from lodestar.core.topics import Topic
from tests.contracts.conftest import example_files, topic_name_for
from tests.contracts.test_codec_errors import ENCODE_CASES, EVENT, SMS, change, without

REGISTRY = default_registry()
ENTRIES = sorted(REGISTRY, key=lambda e: e.stem)


def _fastavro(schema: dict[str, Any], record: Any) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, schema, record, strict_allow_default=True)
    return out.getvalue()


def _outcome(write: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "bytes", write(*args)
    except Exception as exc:  # the outcome is compared, whatever it is
        return "error", type(exc).__name__


def _random_records(entry: SchemaEntry, count: int, seed: int) -> Iterator[dict[str, Any]]:
    random.seed(seed)  # fastavro's generator draws from the module's generator
    for record in generate_many(entry.wire, count):
        if entry.discriminators:  # make the discriminated branch agree with its field
            content = record.get("content")
            if isinstance(content, dict):
                for choice in entry.discriminators:
                    for symbol, name in choice.branches.items():
                        fields = {f["name"] for f in entry.named[name]["fields"]}
                        if set(content) == fields:
                            record[choice.by] = symbol
        yield record


def _reference_codec() -> AvroCodec:
    reference = AvroCodec(REGISTRY)
    reference._fast_writer = lambda binding: None  # type: ignore[method-assign]
    return reference


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.stem)
def test_random_records_write_as_fastavro_writes_them(entry: SchemaEntry) -> None:
    writer = compile_writer(entry.wire)
    prepare = compile_preparer(entry)
    written = 0
    for record in _random_records(entry, 150, seed=len(entry.stem)):
        prepared = prepare(record)
        expected = _fastavro(entry.wire, prepared)
        assert writer(prepared) == expected
        written += 1
    assert written == 150


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.stem)
def test_omitted_fields_get_fastavro_defaults(entry: SchemaEntry) -> None:
    writer = compile_writer(entry.wire)
    prepare = compile_preparer(entry)
    defaulted = [f["name"] for f in entry.wire["fields"] if "default" in f]
    rng = random.Random(7)
    for record in _random_records(entry, 40, seed=11):
        for name in defaulted:
            if rng.random() < 0.6:
                record.pop(name, None)
        prepared = prepare(record)
        assert writer(prepared) == _fastavro(entry.wire, prepared)


@pytest.mark.parametrize("path", example_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_examples_encode_identically_through_the_codec(path: Path) -> None:
    entry = REGISTRY.get(path.parent.name)
    record = load_json_record(entry, path)
    topic = topic_name_for(entry, record)
    data = AvroCodec(REGISTRY).encode_for_name(topic, record)
    assert data == _reference_codec().encode_for_name(topic, record)
    prepared = compile_preparer(entry)(record)
    assert data == entry.header + _fastavro(entry.wire, prepared)
    assert compile_writer(entry.wire, entry.header)(prepared) == data  # written, not fallen back


def test_the_codec_writes_valid_records_without_fastavro(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = AvroCodec(REGISTRY)
    expected = _reference_codec().encode(Topic.EVENTS, EVENT)

    def no_fastavro(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("fastavro was used")

    monkeypatch.setattr(codec_module, "schemaless_writer", no_fastavro)
    assert codec.encode(Topic.EVENTS, EVENT) == expected
    assert codec.encode(Topic.SEND_SMS, SMS) == _fastavro_codec_value(Topic.SEND_SMS, SMS)


def _fastavro_codec_value(topic: Topic, record: Mapping[str, Any]) -> bytes:
    entry = REGISTRY.for_topic(topic)
    return entry.header + _fastavro(entry.wire, compile_preparer(entry)(record))


class Cause(StrEnum):
    EVENT = "event"


class Change(StrEnum):
    ENTER = "ENTER"


class Channel(StrEnum):
    SMS = "SMS"


ODD_RECORDS: list[tuple[str, Topic, dict[str, Any]]] = [
    *[(label, topic, record) for label, topic, record, _ in ENCODE_CASES],
    ("extra field", Topic.EVENTS, change(EVENT, extra=1)),
    ("missing required", Topic.EVENTS, without(EVENT, "app_id")),
    ("bool as long", Topic.EVENTS, change(EVENT, timestamp=True)),
    ("float as long", Topic.EVENTS, change(EVENT, timestamp=1.0)),
    ("long out of range", Topic.EVENTS, change(EVENT, timestamp=2**63)),
    ("negative long", Topic.EVENTS, change(EVENT, timestamp=-(2**63))),
    ("bytes as string", Topic.EVENTS, change(EVENT, app_id=b"app")),
    ("None as string", Topic.EVENTS, change(EVENT, app_id=None)),
    ("caller's tuple", Topic.EVENTS, change(EVENT, session=("lodestar.v1.Session", {}))),
    ("StrEnum as string", Topic.EVENTS, change(EVENT, app_id=Cause.EVENT)),
    ("long unicode", Topic.EVENTS, change(EVENT, event_type="é\U0001f600" * 90)),
    ("lone surrogate", Topic.EVENTS, change(EVENT, event_type="\ud800")),
    ("int metric", Topic.EVENTS, change(EVENT, metrics={"a": 3, "b": 2**53, "c": -0.0})),
    ("nan metric", Topic.EVENTS, change(EVENT, metrics={"a": math.nan, "b": math.inf})),
    ("bool metric", Topic.EVENTS, change(EVENT, metrics={"a": True})),
    ("non-str key", Topic.EVENTS, change(EVENT, attributes={1: "x"})),
    ("many attributes", Topic.EVENTS, change(EVENT, attributes={str(i): "v" for i in range(70)})),
    ("SMS content as tuple", Topic.SEND_SMS, change(SMS, content=("lodestar.v1.SmsContent", {}))),
    ("no content", Topic.SEND_SMS, change(SMS, content=None)),
    ("content of another channel", Topic.SEND_SMS, change(SMS, content={"subject": "x"})),
    ("StrEnum channel", Topic.SEND_SMS, change(SMS, channel=Channel.SMS)),
    ("not a dict", Topic.EVENTS, [("event_id", "e")]),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("label", "topic", "record"), ODD_RECORDS, ids=lambda v: str(v)[:30])
def test_odd_records_give_fastavros_bytes_or_its_error(
    label: str, topic: Topic, record: dict[str, Any]
) -> None:
    def outcome(codec: AvroCodec) -> Any:
        try:
            return codec.encode(topic, record)
        except EncodeError as exc:
            return ("error", str(exc), exc.schema, exc.path)

    assert outcome(AvroCodec(REGISTRY)) == outcome(_reference_codec())


def test_segment_membership_with_str_enums_is_written_by_the_compiled_writer() -> None:
    entry = REGISTRY.for_topic(Topic.SEGMENT_MEMBERSHIP)
    record = {"app_id": "a", "segment_id": "s", "segment_version": 2, "endpoint_id": "e",
              "change": Change.ENTER, "cause": Cause.EVENT, "event_id": Cause.EVENT,
              "timestamp": 1777640000150}
    assert compile_writer(entry.wire)(record) == _fastavro(entry.wire, record)


def _schema(*fields: tuple[str, Any]) -> dict[str, Any]:
    parsed = parse_schema({"type": "record", "name": "t.R",
                           "fields": [{"name": n, "type": t} for n, t in fields]})
    assert isinstance(parsed, dict)
    return parsed


_E = {"type": "enum", "name": "t.E", "symbols": ["A", "B"]}
_F = {"type": "fixed", "name": "t.F", "size": 2}

# (union, value, whether the compiled writer writes it): where it does not, fastavro
# decides (a later branch, or an error).
UNION_CASES: list[tuple[list[Any], Any, bool]] = [
    (["null", "int", "long"], None, True),
    (["null", "int", "long"], 1, True),
    (["null", "int", "long"], 2**40, False),  # fastavro: long
    (["null", "int", "long"], True, False),  # fastavro: refused
    (["long", "double"], 1, True),
    (["long", "double"], 1.5, True),
    (["double", "long"], 3, True),  # fastavro: double, the first that validates
    (["int", "double"], 2**40, False),  # fastavro: double
    (["int", "boolean"], True, True),
    (["boolean", "int"], 0, True),
    (["string", _E], "A", True),
    ([_E, "string"], "A", True),
    ([_E, "string"], "C", False),  # fastavro: string
    ([_E, "string"], Cause.EVENT, False),
    (["string", _E], Cause.EVENT, True),
    (["bytes", _F], b"ab", True),
    ([_F, "bytes"], b"ab", True),
    ([_F, "bytes"], b"abc", False),  # fastavro: bytes
    (["null", "string", "double"], 3, True),
    (["null", "string", "double"], "x", True),
    (["null", "string"], {"a": 1}, False),  # fastavro: refused
    (["null", "string"], ("string", "x"), False),  # tuple notation of a primitive
]


@pytest.mark.parametrize(("branches", "value", "writes"), UNION_CASES, ids=str)
def test_a_union_picks_fastavros_branch(branches: list[Any], value: Any, writes: bool) -> None:
    schema = _schema(("u", branches))
    expected = _outcome(_fastavro, schema, {"u": value})
    got = _outcome(compile_writer(schema), {"u": value})
    if writes:
        assert expected[0] == "bytes"
        assert got == expected
    else:
        assert got[0] == "error"


def test_every_construct_and_long_lengths() -> None:
    schema = _schema(
        ("n", "null"), ("b", "boolean"), ("i", "int"), ("l", "long"), ("d", "double"),
        ("by", "bytes"), ("s", "string"),
        ("fx", {"type": "fixed", "name": "t.F3", "size": 3}),
        ("e", {"type": "enum", "name": "t.E3", "symbols": ["A", "B"]}),
        ("a", {"type": "array", "items": ["null", "t.E3"]}),
        ("m", {"type": "map", "values": {"type": "array", "items": "long"}}),
        ("r", ["null", {"type": "record", "name": "t.Node", "fields": [
            {"name": "v", "type": "string"}, {"name": "next", "type": ["null", "t.Node"]}]}]),
    )
    writer = compile_writer(schema)
    node = ("t.Node", {"v": "1", "next": ("t.Node", {"v": "2", "next": None})})
    for i, wide, text in [(-(2**31), 2**63 - 1, "x" * 63), (2**31 - 1, -(2**63), "y" * 64),
                          (0, 1777640000150, "z" * 20000), (-65, 8191, "")]:
        record = {"n": None, "b": i % 2 == 0, "i": i, "l": wide, "d": -2.25, "by": text.encode(),
                  "s": text, "fx": b"abc", "e": "B", "a": [None, "A"] * 40,
                  "m": {"x": list(range(-100, 100)), "": []}, "r": node}
        assert writer(record) == _fastavro(schema, record)
    for bad in ({"i": 2**31}, {"l": 2**63}, {"fx": b"ab"}, {"e": "C"}, {"b": 1}, {"a": "A"}):
        record = {"n": None, "b": True, "i": 1, "l": 1, "d": 1.0, "by": b"", "s": "",
                  "fx": b"abc", "e": "A", "a": [], "m": {}, "r": None, **bad}
        with pytest.raises(Exception):  # noqa: B017 - which one is not part of the contract
            writer(record)


def test_defaults_of_every_kind() -> None:
    parsed = parse_schema({"type": "record", "name": "t.D", "fields": [
        {"name": "b", "type": "boolean", "default": True},
        {"name": "i", "type": "int", "default": 300},
        {"name": "s", "type": "string", "default": "hé"},
        {"name": "e", "type": {"type": "enum", "name": "t.E4", "symbols": ["X", "Y"]},
         "default": "Y"},
        {"name": "u", "type": ["null", "string"], "default": None},
        {"name": "a", "type": {"type": "array", "items": "long"}, "default": [1, 2]},
        {"name": "m", "type": {"type": "map", "values": "double"}, "default": {"k": 1.5}},
    ]})
    assert isinstance(parsed, dict)
    writer = compile_writer(parsed)
    assert writer({}) == _fastavro(parsed, {})
    assert writer({"i": 5, "u": "v"}) == _fastavro(parsed, {"i": 5, "u": "v"})


@pytest.mark.parametrize("field_type", [
    "float",
    {"type": "long", "logicalType": "timestamp-millis"},
    ["null", {"type": "array", "items": "long"}],
    ["null", {"type": "map", "values": "long"}],
])
def test_constructs_it_does_not_model_are_left_to_fastavro(field_type: Any) -> None:
    schema = parse_schema({"type": "record", "name": "t.U", "fields": [
        {"name": "x", "type": field_type}]})
    assert isinstance(schema, dict)
    with pytest.raises(UnsupportedSchema):
        compile_writer(schema)
