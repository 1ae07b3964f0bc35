"""Say precisely why a record does not match its schema.

This is the slow, careful half of encoding: it runs only after the fast path
refused a record, walks the schema next to the record and returns the first
problem with its field path, in words a producer can act on::

    Problem(path="session.start_timestamp",
            message="expected long (epoch millis), got str '2026-05-01'")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lodestar.contracts.checks import INT_RANGE, LONG_RANGE, PRIMITIVES, is_sequence
from lodestar.contracts.registry import Discriminator, SchemaEntry

_LOGICAL_NAMES: Final = {
    "timestamp-millis": "epoch millis",
    "timestamp-micros": "epoch micros",
    "date": "days since epoch",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """Where a record breaks its schema (dotted path; "" for the record itself) and how."""

    path: str
    message: str


def explain(entry: SchemaEntry, record: Any) -> Problem | None:
    """The first problem of ``record`` against ``entry``'s schema, or None if it matches."""
    return _Explainer(entry.named).record(record, entry.parsed, "", entry.discriminators)


def describe_value(value: Any) -> str:
    """``str '2026-05-01'``: the Python type and a shortened repr of ``value``."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return "None" if value is None else f"{type(value).__name__} {text}"


class _Explainer:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            return self.named[schema]
        return schema

    def describe(self, schema: Any) -> str:
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return " | ".join(self.describe(branch) for branch in schema)
        kind = schema["type"]
        if kind in ("record", "enum", "fixed"):
            return f"{kind} {schema['name'].rsplit('.', 1)[-1]}"
        if kind == "array":
            return f"array of {self.describe(schema['items'])}"
        if kind == "map":
            return f"map of {self.describe(schema['values'])}"
        logical = schema.get("logicalType")
        if logical in _LOGICAL_NAMES:
            return f"{kind} ({_LOGICAL_NAMES[logical]})"
        return str(kind)

    def check(self, value: Any, schema: Any, path: str) -> Problem | None:
        schema = self.resolve(schema)
        if isinstance(schema, list):
            return self.union(value, schema, path)
        kind = schema if isinstance(schema, str) else schema["type"]
        if kind == "record":
            return self.record(value, schema, path, ())
        if kind == "enum":
            return self.enum(value, schema, path)
        if kind == "array":
            return self.array(value, schema, path)
        if kind == "map":
            return self.map(value, schema, path)
        if kind == "fixed":
            if isinstance(value, bytes) and len(value) == schema["size"]:
                return None
            return self.mismatch(value, schema, path)
        check = PRIMITIVES.get(kind)
        if check is None or check(value):
            return None
        return self.primitive_problem(value, schema, path)

    def mismatch(self, value: Any, schema: Any, path: str) -> Problem:
        return Problem(path, f"expected {self.describe(schema)}, got {describe_value(value)}")

    def primitive_problem(self, value: Any, schema: Any, path: str) -> Problem:
        kind = schema if isinstance(schema, str) else schema["type"]
        bounds = {"int": INT_RANGE, "long": LONG_RANGE}.get(kind)
        if bounds and type(value) is int:
            low, high = bounds
            return Problem(path, f"{value} is out of range for Avro {kind} ({low}..{high})")
        if kind in ("float", "double") and type(value) is int:
            return Problem(path, f"int {value} cannot be stored exactly as an Avro {kind}")
        return self.mismatch(value, schema, path)

    def record(
        self,
        value: Any,
        schema: Mapping[str, Any],
        path: str,
        discriminators: Sequence[Discriminator],
    ) -> Problem | None:
        if not isinstance(value, Mapping):
            return self.mismatch(value, schema, path)
        fields = schema["fields"]
        known = {f["name"] for f in fields}
        unknown = sorted(str(k) for k in value if k not in known)
        chooser = {d.field: d for d in discriminators}
        for field in fields:
            name = field["name"]
            where = f"{path}.{name}" if path else name
            if name not in value:
                if "default" in field:
                    continue
                hint = ""
                if unknown:
                    hint = f" (the record has unknown field(s) {', '.join(map(repr, unknown))})"
                return Problem(where, f"required field is missing{hint}")
            if name in chooser:
                problem = self.discriminated(value, chooser[name], field["type"], where)
            else:
                problem = self.check(value[name], field["type"], where)
            if problem:
                return problem
        if unknown:
            first = f"{path}.{unknown[0]}" if path else unknown[0]
            return Problem(
                first,
                f"unknown field (not in {schema['name']}; "
                f"its fields are {', '.join(sorted(known))})",
            )
        return None

    def discriminated(
        self, record: Mapping[str, Any], chooser: Discriminator, union: Any, path: str
    ) -> Problem | None:
        value = record[chooser.field]
        if value is None:
            return None
        if isinstance(value, tuple):
            return Problem(path, "give the value as a plain object; tuple notation is not accepted")
        branch = chooser.branches.get(str(record.get(chooser.by)))
        if branch is None:
            return self.union(value, union, path)
        return self.check(value, branch, path)

    def union(self, value: Any, branches: list[Any], path: str) -> Problem | None:
        if isinstance(value, tuple):
            return Problem(path, "give the value in plain form; tuple notation is not accepted")
        if value is None:
            if "null" in branches:
                return None
            return Problem(path, f"null is not allowed, expected {self.describe(branches)}")
        candidates = [b for b in branches if b != "null"]
        if len(candidates) == 1:
            return self.check(value, candidates[0], path)
        problems = [self.check(value, branch, path) for branch in candidates]
        if any(p is None for p in problems):
            return None
        record_problems = [
            problem
            for branch, problem in zip(candidates, problems, strict=True)
            if self.is_record(branch)
        ]
        if isinstance(value, Mapping) and len(record_problems) == 1:
            return record_problems[0]
        return self.mismatch(value, branches, path)

    def is_record(self, schema: Any) -> bool:
        resolved = self.resolve(schema)
        return isinstance(resolved, dict) and resolved["type"] == "record"

    def enum(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        symbols = schema["symbols"]
        if isinstance(value, str) and value in symbols:
            return None
        name = schema["name"].rsplit(".", 1)[-1]
        if isinstance(value, str):
            return Problem(path, f"{value!r} is not a symbol of enum {name} ({', '.join(symbols)})")
        return Problem(
            path, f"expected a symbol of enum {name} (a string), got {describe_value(value)}"
        )

    def array(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        if not is_sequence(value):
            return self.mismatch(value, schema, path)
        for index, item in enumerate(value):
            problem = self.check(item, schema["items"], f"{path}[{index}]")
            if problem:
                return problem
        return None

    def map(self, value: Any, schema: Mapping[str, Any], path: str) -> Problem | None:
        if not isinstance(value, Mapping):
            return self.mismatch(value, schema, path)
        for key, item in value.items():
            if not isinstance(key, str):
                return Problem(path, f"map keys must be strings, got {describe_value(key)}")
            problem = self.check(item, schema["values"], f"{path}[{json.dumps(key)}]")
            if problem:
                return problem
        return None
