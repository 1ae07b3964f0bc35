"""The .avsc files themselves: naming, documentation, shared types, fingerprints."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from lodestar.contracts.reasons import DlqReason
from lodestar.contracts.registry import SEND_CHANNELS, SchemaRegistry
from lodestar.contracts.wire import fingerprint64
from lodestar.core.topics import Topic

STEMS = [
    "activity",
    "control",
    "delivery",
    "dlq_envelope",
    "endpoint_change",
    "event",
    "segment_membership",
    "send_request",
]
TIMESTAMP_NAMES = ("timestamp", "_date", "failed_at")


def walk(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type and field definition in raw schema JSON, with its path."""
    if isinstance(schema, list):
        for branch in schema:
            yield from walk(branch, path)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            yield path or schema["name"], schema
        for field in schema.get("fields", []):
            where = f"{path}.{field['name']}" if path else field["name"]
            yield where, field
            yield from walk(field["type"], where)
        for key in ("items", "values"):
            if key in schema:
                yield from walk(schema[key], path)


@pytest.mark.parametrize("stem", STEMS)
def test_schema_is_documented_and_namespaced(stem: str, registry: SchemaRegistry) -> None:
    entry = registry.get(stem)
    assert entry.definition["namespace"] == "lodestar.v1"
    assert entry.full_name.startswith("lodestar.v1.")
    undocumented = [path for path, node in walk(dict(entry.definition)) if not node.get("doc")]
    assert not undocumented, f"{stem}: no doc on {undocumented}"


@pytest.mark.parametrize("stem", STEMS)
def test_time_fields_are_timestamp_millis(stem: str, registry: SchemaRegistry) -> None:
    for path, node in walk(dict(registry.get(stem).definition)):
        if "fields" in node or "symbols" in node or not path.endswith(TIMESTAMP_NAMES):
            continue
        branches = node["type"] if isinstance(node["type"], list) else [node["type"]]
        logical = [b.get("logicalType") for b in branches if isinstance(b, dict)]
        assert logical == ["timestamp-millis"], f"{stem}.{path} is not timestamp-millis"


def test_event_fields_are_the_ones_the_pipeline_codes_against(registry: SchemaRegistry) -> None:
    fields = [f["name"] for f in registry.get("event").definition["fields"]]
    assert fields[:10] == [
        "event_id", "app_id", "endpoint_id", "event_type", "timestamp", "arrival_timestamp",
        "attributes", "metrics", "session", "client",
    ]  # fmt: skip
    for field in registry.get("event").definition["fields"][6:]:
        assert "default" in field, f"event.{field['name']} must be optional"


@pytest.mark.parametrize("stem", STEMS)
def test_fingerprint_is_crc64_avro_of_the_canonical_form(
    stem: str, registry: SchemaRegistry
) -> None:
    entry = registry.get(stem)
    canonical = to_parsing_canonical_form(entry.parsed)
    expected = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    assert entry.fingerprint == expected
    assert entry.fingerprint == _crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert entry.header == b"\xc3\x01" + expected


def test_crc64_avro_matches_the_specification_value() -> None:
    # The Avro specification's fingerprint of the schema "null".
    assert _crc64_avro(b'"null"') == 0x63DD24E7CC258F8A
    assert fingerprint64('"null"') == bytes.fromhex("8a8f25cce724dd63")


def test_fingerprints_are_unique(registry: SchemaRegistry) -> None:
    prints = [e.fingerprint for e in registry]
    assert len(set(prints)) == len(prints)


def test_shared_named_types_are_identical_in_every_file(registry: SchemaRegistry) -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for entry in registry:
        for name, definition in entry.named.items():
            expanded = _expand(definition, entry.named, set())
            if name in seen:
                stem, other = seen[name]
                assert expanded == other, f"{name} differs between {stem} and {entry.stem}"
            else:
                seen[name] = (entry.stem, expanded)
    assert "lodestar.v1.Endpoint" in seen


def test_dlq_reasons_match_the_schema(registry: SchemaRegistry) -> None:
    reason = registry.dead_letter.named["lodestar.v1.DlqReason"]
    assert reason["symbols"] == [r.value for r in DlqReason]


def test_send_channels_match_the_channel_enum_and_the_content_branches(
    registry: SchemaRegistry,
) -> None:
    entry = registry.get("send_request")
    symbols = entry.named["lodestar.v1.Channel"]["symbols"]
    assert sorted(SEND_CHANNELS.values()) == sorted(symbols)
    assert set(SEND_CHANNELS) == {t for t in Topic if t.value.startswith("send.")}
    (chooser,) = entry.discriminators
    assert (chooser.field, chooser.by) == ("content", "channel")
    assert sorted(chooser.branches) == sorted(symbols)


def test_removing_logical_types_keeps_the_canonical_form(registry: SchemaRegistry) -> None:
    for entry in registry:
        assert to_parsing_canonical_form(entry.wire) == entry.canonical_form
        assert "logicalType" not in str(entry.wire)


def _expand(schema: Any, named: Mapping[str, Any], stack: set[str]) -> Any:
    """Schema JSON with name references replaced by definitions, docs and props dropped."""
    if isinstance(schema, str):
        if schema in named and schema not in stack:
            return _expand(named[schema], named, stack | {schema})
        return schema
    if isinstance(schema, list):
        return [_expand(s, named, stack) for s in schema]
    if isinstance(schema, dict):
        return {
            k: _expand(v, named, stack | ({schema["name"]} if "name" in schema else set()))
            for k, v in schema.items()
            if k not in ("doc", "__fastavro_parsed", "__named_schemas")
        }
    return schema


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it ("Schema Fingerprints")."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp
