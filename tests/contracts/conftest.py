"""Shared fixtures of the contract tests: the registry, a codec, the example files."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.registry import SchemaEntry, SchemaRegistry, default_registry
from lodestar.core.topics import Topic

SEND_TOPIC_BY_CHANNEL = {
    "EMAIL": Topic.SEND_EMAIL,
    "SMS": Topic.SEND_SMS,
    "PUSH": Topic.SEND_PUSH,
    "VOICE": Topic.SEND_VOICE,
    "CUSTOM": Topic.SEND_CUSTOM,
}
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def example_files() -> list[Path]:
    """Every ``schemas/examples/<stem>/*.json``, found when the tests are collected."""
    return sorted(default_registry().examples_directory.glob("*/*.json"))


@pytest.fixture(scope="session")
def registry() -> SchemaRegistry:
    return default_registry()


@pytest.fixture(scope="session")
def codec(registry: SchemaRegistry) -> AvroCodec:
    return AvroCodec(registry)


def topic_name_for(entry: SchemaEntry, record: Mapping[str, Any]) -> str:
    """A physical topic name a record of ``entry`` belongs on."""
    if entry.stem == "dlq_envelope":
        return "lodestar.events.dlq"
    if entry.stem == "send_request":
        return f"lodestar.{SEND_TOPIC_BY_CHANNEL[record['channel']].value}"
    topic = next(t for t in Topic if default_registry().for_topic(t) is entry)
    return f"lodestar.{topic.value}"


def with_defaults(entry: SchemaEntry, record: Mapping[str, Any]) -> Any:
    """``record`` as the decoder returns it: every omitted field holds its default."""
    filled = _fill(entry.named, record, entry.parsed)
    for chooser in entry.discriminators:
        value = record.get(chooser.field)
        if isinstance(value, Mapping):
            branch = chooser.branches[record[chooser.by]]
            filled[chooser.field] = _fill(entry.named, value, branch)
    return filled


def _fill(named: Mapping[str, Any], value: Any, schema: Any) -> Any:
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        schema = named[schema]
    if isinstance(schema, list):
        records = [b for b in schema if _kind(named, b) == "record"]
        if isinstance(value, Mapping) and len(records) == 1:
            return _fill(named, value, records[0])
        return value
    kind = schema if isinstance(schema, str) else schema["type"]
    if kind == "record" and isinstance(value, Mapping):
        out = {}
        for field in schema["fields"]:
            name = field["name"]
            if name in value:
                out[name] = _fill(named, value[name], field["type"])
            else:
                out[name] = copy.deepcopy(field["default"])
        return out
    if kind == "array" and isinstance(value, list):
        return [_fill(named, item, schema["items"]) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: _fill(named, v, schema["values"]) for k, v in value.items()}
    return value


def _kind(named: Mapping[str, Any], schema: Any) -> str:
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else str(named[schema]["type"])
    return str(schema["type"])
