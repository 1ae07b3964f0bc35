"""Records as JSON, the way people write them (examples, CLI input and output).

JSON has no bytes, so bytes values are written as strings whose characters
are code points 0-255 (the Avro JSON encoding's convention). Everything else
is already the codec's plain form: timestamps as epoch-millisecond integers,
unions as the bare value or null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lodestar.contracts.registry import SchemaEntry

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def from_json(entry: SchemaEntry, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` (parsed JSON) with bytes fields turned from strings into bytes."""
    converted = _Converter(entry.named).convert(value, entry.parsed)
    return dict(converted)


def to_json(value: Any) -> Any:
    """A decoded record made JSON-serialisable: bytes become code-point strings."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


def load_json_record(entry: SchemaEntry, path: Path) -> dict[str, Any]:
    """Read a JSON record file (an example) ready for the codec."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a record must be a JSON object")
    return from_json(entry, data)


class _Converter:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named

    def convert(self, value: Any, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            schema = self.named[schema]
        if isinstance(schema, list):
            return self.union(value, schema)
        kind = schema if isinstance(schema, str) else schema["type"]
        if kind in ("bytes", "fixed") and isinstance(value, str):
            return value.encode("latin-1")
        if kind == "record" and isinstance(value, Mapping):
            types = {f["name"]: f["type"] for f in schema["fields"]}
            return {
                key: self.convert(item, types[key]) if key in types else item
                for key, item in value.items()
            }
        if kind == "array" and isinstance(value, list):
            return [self.convert(item, schema["items"]) for item in value]
        if kind == "map" and isinstance(value, Mapping):
            return {key: self.convert(item, schema["values"]) for key, item in value.items()}
        return value

    def union(self, value: Any, branches: list[Any]) -> Any:
        if value is None:
            return None
        kinds = [self.kind(b) for b in branches]
        binary = "bytes" in kinds or "fixed" in kinds
        if isinstance(value, str) and binary and "string" not in kinds:
            return value.encode("latin-1")
        if isinstance(value, Mapping) and kinds.count("record") == 1:
            return self.convert(value, branches[kinds.index("record")])
        if isinstance(value, Mapping) and "map" in kinds and "record" not in kinds:
            return self.convert(value, branches[kinds.index("map")])
        if isinstance(value, list) and "array" in kinds:
            return self.convert(value, branches[kinds.index("array")])
        return value

    def kind(self, schema: Any) -> str:
        if isinstance(schema, str):
            return schema if schema in _PRIMITIVES else str(self.named[schema]["type"])
        return str(schema["type"])
