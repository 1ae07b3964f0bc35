"""What the compiled Avro reader and writer share: building Python source per named record.

``SourceBuilder`` holds the emitted lines, fresh local names, the constants the
generated code refers to and the records still to compile (``record`` names each
record's function once and queues its schema). ``contracts.fast_reader`` and
``contracts.fast_writer`` subclass it with their own code for each construct.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class UnsupportedSchema(ValueError):
    """A schema construct the compiled reader or writer does not model (use fastavro)."""


class SourceBuilder:
    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.counter = 0
        self.functions: dict[str, str] = {}
        """Record name → the name of the generated function for it."""
        self.pending: list[tuple[str, Mapping[str, Any]]] = []
        """(function name, record schema) still to generate."""
        self.constants: dict[str, object] = {}

    def name(self, prefix: str) -> str:
        """A fresh local name."""
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def constant(self, value: object) -> str:
        """The name under which the generated code sees ``value``."""
        name = f"_k{len(self.constants)}"
        self.constants[name] = value
        return name

    def record(self, schema: Mapping[str, Any]) -> str:
        """The function name for record ``schema`` (queued for generation the first time)."""
        name = schema.get("name")
        if not isinstance(name, str):
            raise UnsupportedSchema("a record without a name")
        if name not in self.functions:
            self.functions[name] = f"_record{len(self.functions)}"
            self.pending.append((self.functions[name], schema))
        return self.functions[name]
