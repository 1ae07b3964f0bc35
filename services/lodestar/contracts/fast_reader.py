"""A reader compiled from one parsed Avro schema: fastavro's answer, in about half the time.

``compile_reader(schema)`` turns a fastavro-parsed schema (``parse_schema`` output,
no logical types: the registry's ``wire`` form) into Python source, one function
per named record, that reads straight from the ``bytes`` of a value: ``reader(data,
offset)`` returns ``(record, end)``. The record is what ``fastavro.schemaless_reader``
returns for the same bytes and schema (dicts in field order, enum symbols, plain
union values, ``bytes`` for bytes and fixed). fastavro's generic reader looks every
field's schema up as it goes; this one has it written into its code.

For well-formed data the two agree (``tests/contracts/test_fast_reader.py`` checks
random records of every Lodestar schema). For anything odd — a negative length,
count or union/enum index out of range, a boolean byte other than 0/1, data that
ends early, invalid UTF-8 — the reader raises (some exception; which one is not part
of the contract): the caller then reads the value with fastavro, whose answer and
error messages stay the reference. Schemas it does not model raise
``UnsupportedSchema`` from ``compile_reader``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from lodestar.contracts.codegen import SourceBuilder, UnsupportedSchema

Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes",
                         "string"})


class _Malformed(ValueError):
    """The bytes do not follow the schema."""


def _varint(buf: bytes, pos: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte ``first`` (continuation bit set) was read."""
    result = first & 0x7F
    shift = 7
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("varint longer than 10 bytes")


class _Source(SourceBuilder):
    def long(self, indent: int, target: str) -> None:
        byte = self.name("b")
        self.emit(indent, f"{byte} = buf[pos]")
        self.emit(indent, "pos += 1")
        self.emit(indent, f"if {byte} & 0x80:")
        self.emit(indent + 1, f"{byte}, pos = _varint(buf, pos, {byte})")
        self.emit(indent, f"{target} = ({byte} >> 1) ^ -({byte} & 1)")

    def length(self, indent: int, target: str) -> None:
        self.long(indent, target)
        self.emit(indent, f"if {target} < 0 or pos + {target} > size:")
        self.emit(indent + 1, "raise _Malformed('length')")

    def read(self, schema: Any, indent: int, target: str) -> None:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                self.primitive(schema, indent, target)
                return
            if schema not in self.named:
                raise UnsupportedSchema(f"unknown named type {schema!r}")
            self.read(self.named[schema], indent, target)
            return
        if isinstance(schema, list):
            self.union(schema, indent, target)
            return
        if not isinstance(schema, Mapping):
            raise UnsupportedSchema(f"schema {schema!r}")
        kind = schema.get("type")
        if "logicalType" in schema:
            raise UnsupportedSchema("logical types (read the wire form)")
        if kind == "record":
            self.emit(indent, f"{target}, pos = {self.record(schema)}(buf, pos, size)")
        elif kind == "enum":
            symbols = self.constant(tuple(schema["symbols"]))
            index = self.name("e")
            self.long(indent, index)
            self.emit(indent, f"if not 0 <= {index} < {len(schema['symbols'])}:")
            self.emit(indent + 1, "raise _Malformed('enum index')")
            self.emit(indent, f"{target} = {symbols}[{index}]")
        elif kind in ("array", "map"):
            self.block(schema, kind, indent, target)
        elif kind == "fixed":
            width = int(schema["size"])
            self.emit(indent, f"if pos + {width} > size:")
            self.emit(indent + 1, "raise _Malformed('fixed')")
            self.emit(indent, f"{target} = buf[pos:pos + {width}]")
            self.emit(indent, f"pos += {width}")
        elif kind in _PRIMITIVES:
            self.primitive(kind, indent, target)
        else:
            raise UnsupportedSchema(f"type {kind!r}")

    def union(self, branches: list[Any], indent: int, target: str) -> None:
        index = self.name("u")
        self.long(indent, index)
        for position, branch in enumerate(branches):
            self.emit(indent, f"{'if' if position == 0 else 'elif'} {index} == {position}:")
            self.read(branch, indent + 1, target)
        self.emit(indent, "else:")
        self.emit(indent + 1, "raise _Malformed('union index')")

    def block(self, schema: Mapping[str, Any], kind: str, indent: int, target: str) -> None:
        out, count, size, item = (self.name("c"), self.name("n"), self.name("s"),
                                  self.name("i"))
        self.emit(indent, f"{out} = {'[]' if kind == 'array' else '{}'}")
        self.emit(indent, "while True:")
        self.long(indent + 1, count)
        self.emit(indent + 1, f"if {count} == 0:")
        self.emit(indent + 2, "break")
        self.emit(indent + 1, f"if {count} < 0:")
        self.emit(indent + 2, f"{count} = -{count}")
        self.long(indent + 2, size)
        self.emit(indent + 1, f"for _ in range({count}):")
        if kind == "map":
            key = self.name("k")
            self.primitive("string", indent + 2, key)
            self.read(schema["values"], indent + 2, item)
            self.emit(indent + 2, f"{out}[{key}] = {item}")
        else:
            self.read(schema["items"], indent + 2, item)
            self.emit(indent + 2, f"{out}.append({item})")
        self.emit(indent, f"{target} = {out}")

    def primitive(self, kind: str, indent: int, target: str) -> None:
        if kind == "null":
            self.emit(indent, f"{target} = None")
        elif kind == "boolean":
            byte = self.name("b")
            self.emit(indent, f"{byte} = buf[pos]")
            self.emit(indent, "pos += 1")
            self.emit(indent, f"if {byte} > 1:")
            self.emit(indent + 1, "raise _Malformed('boolean')")
            self.emit(indent, f"{target} = {byte} == 1")
        elif kind in ("int", "long"):
            self.long(indent, target)
        elif kind in ("string", "bytes"):
            width = self.name("w")
            self.length(indent, width)
            value = f"buf[pos:pos + {width}]"
            self.emit(indent, f"{target} = {value}.decode()" if kind == "string"
                      else f"{target} = {value}")
            self.emit(indent, f"pos += {width}")
        else:  # float, double
            octets = 8 if kind == "double" else 4
            unpack = "_double" if kind == "double" else "_float"
            self.emit(indent, f"if pos + {octets} > size:")
            self.emit(indent + 1, f"raise _Malformed({kind!r})")
            self.emit(indent, f"{target} = {unpack}(buf, pos)[0]")
            self.emit(indent, f"pos += {octets}")

    def function(self, name: str, schema: Mapping[str, Any]) -> None:
        self.emit(0, f"def {name}(buf, pos, size):")
        fields = []
        for spec in schema["fields"]:
            value = self.name("f")
            self.read(spec["type"], 1, value)
            fields.append(f"{spec['name']!r}: {value}")
        self.emit(1, "return {" + ", ".join(fields) + "}, pos")


def compile_reader(schema: Mapping[str, Any]) -> Reader:
    """A reader for values of ``schema`` (a parsed record schema; see the module doc)."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise UnsupportedSchema("the top level must be a record")
    source = _Source(dict(schema.get("__named_schemas") or {}))
    top = source.record(schema)
    done: set[str] = set()
    while source.pending:
        name, record = source.pending.pop()
        if name not in done:
            done.add(name)
            source.function(name, record)
    namespace: dict[str, Any] = {
        "_varint": _varint, "_Malformed": _Malformed,
        "_double": struct.Struct("<d").unpack_from, "_float": struct.Struct("<f").unpack_from,
        **source.constants,
    }
    exec(compile("\n".join(source.lines), "<avro-reader>", "exec"), namespace)
    function = namespace[top]

    def reader(data: bytes, offset: int) -> tuple[dict[str, Any], int]:
        record, end = function(data, offset, len(data))
        if end > len(data):
            raise _Malformed("read past the end")
        return record, end

    return reader
