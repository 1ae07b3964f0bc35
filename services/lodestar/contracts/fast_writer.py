"""A writer compiled from one parsed Avro schema: fastavro's bytes, in a fraction of the time.

``compile_writer(schema)`` turns a fastavro-parsed record schema (``parse_schema``
output, no logical types: the registry's ``wire`` form) into Python source, one
function per named record, and returns ``writer(record) -> bytes``. For every record
it accepts, the bytes are those of ``fastavro.schemaless_writer(out, schema, record,
strict_allow_default=True)`` (``tests/contracts/test_fast_writer.py`` checks random
records of every Lodestar schema, defaults and ambiguous unions).

It accepts less than fastavro, never more; for anything else it raises (some
exception; which one is not part of the contract) and the caller writes the record
with fastavro, whose bytes and error messages stay the reference. Accepted values:
records as ``dict`` (missing fields with a default get the default, unknown fields
are refused), ``str`` (or a ``str`` subclass that keeps ``str``'s ``encode`` and
``__eq__``, e.g. a ``StrEnum``) for string and enum, ``bytes`` for bytes and fixed,
``True``/``False`` for boolean, ``int`` in range for int/long, ``float`` or ``int``
for double, ``list``/``tuple`` for arrays, ``dict`` with ``str`` keys for maps.
Union branches are chosen as fastavro chooses them: ``None`` the null branch,
``(name, value)`` tuple notation the first record branch of that name, any other
value the first branch whose type can hold a value of its Python type (fastavro's
validation order); when that branch does not take the value (an ``int`` out of
range, a symbol not in an enum) it raises, even if a later branch would, and plain
``dict``/``list`` values in unions are always refused (fastavro compares records by
matching fields). Schemas it does not model
(float, logical types, unions holding arrays or maps) raise ``UnsupportedSchema``
from ``compile_writer``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from lodestar.contracts.codegen import SourceBuilder, UnsupportedSchema

Writer = Callable[[Mapping[str, Any]], bytes]

__all__ = ["UnsupportedSchema", "Writer", "compile_writer"]

_PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "double", "bytes", "string"})
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_MISSING: Final = object()
_STR_ENCODE: Final[object] = str.encode
_STR_EQ: Final[object] = str.__eq__

_ZIGZAG_SMALL: Final = tuple(bytes([(n << 1) ^ (n >> 63)]) for n in range(-64, 64))
"""The one-byte varint of each long in -64..63, at index ``n + 64``."""
_LENGTHS: Final = tuple(bytes([n << 1]) for n in range(64))
"""The one-byte varint of each length 0..63."""

# Which branch kinds fastavro's union validation can accept a value of each Python
# type for (its ``_validate_*`` functions); used to pick a union branch by type.
_CANDIDATES: Final[Mapping[type, frozenset[str]]] = {
    type(None): frozenset({"null"}),
    bool: frozenset({"boolean"}),
    int: frozenset({"int", "long", "double", "float"}),
    float: frozenset({"double", "float"}),
    str: frozenset({"string", "enum"}),
    bytes: frozenset({"bytes", "fixed", "array"}),
}


class _Refused(ValueError):
    """The value is not one this writer writes (fastavro decides)."""


def _varint(n: int) -> bytes:
    """The varint of non-negative ``n`` (already zig-zagged)."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _long(value: int) -> bytes:
    """The zig-zag varint of long ``value`` (an exact ``int``); refuses one out of range.
    (Generated code writes int and long values inline.)"""
    if -64 <= value < 64:
        return _ZIGZAG_SMALL[value + 64]
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise _Refused("long out of range")
    return _varint((value << 1) ^ (value >> 63))


def _length(n: int) -> bytes:
    return _LENGTHS[n] if n < 64 else _varint(n << 1)


def _text(value: Any) -> str:
    """A plain ``str`` with the characters of ``value``, a ``str`` that encodes and compares
    as one (``StrEnum``); refuses anything else."""
    kind = type(value)
    if isinstance(value, str) and kind.encode is _STR_ENCODE and kind.__eq__ is _STR_EQ:
        return str.__str__(value)
    raise _Refused("not a string")


def _refuse(value: Any) -> None:
    raise _Refused(f"cannot write {type(value).__name__}")


class _Source(SourceBuilder):
    def __init__(self, named: Mapping[str, Any]) -> None:
        super().__init__(named)
        self.defaults: list[tuple[str, str, Any]] = []
        """(constant name, default-writer function name, default value)."""
        self.tables: list[str] = []
        """Constants mapping record name to (branch index bytes, function name): the names
        become the functions once compiled."""
        self.extra: list[str] = []
        """Source of the default writers."""

    def resolve(self, schema: Any) -> Any:
        """``schema`` with a named-type reference replaced by its definition."""
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.named:
                raise UnsupportedSchema(f"unknown named type {schema!r}")
            return self.named[schema]
        return schema

    def kind(self, schema: Any) -> str:
        schema = self.resolve(schema)
        if isinstance(schema, str):
            return schema
        if isinstance(schema, list):
            return "union"
        if not isinstance(schema, Mapping) or not isinstance(schema.get("type"), str):
            raise UnsupportedSchema(f"schema {schema!r}")
        if "logicalType" in schema:
            raise UnsupportedSchema("logical types (write the wire form)")
        return str(schema["type"])

    def write(self, schema: Any, indent: int, value: str, plain: bool = False) -> None:
        """Emit code writing local ``value`` of ``schema`` to ``out`` (a bytearray); ``plain``:
        ``value`` is known to be a plain ``str`` when the schema is a string or enum."""
        kind = self.kind(schema)
        schema = self.resolve(schema)
        if kind == "union":
            self.union(schema, indent, value)
        elif kind == "record":
            self.emit(indent, f"{self.record(schema)}({value}, out)")
        elif kind == "enum":
            symbols = schema["symbols"]
            table = self.constant({s: _long(i) for i, s in enumerate(symbols)})
            if not plain:
                self.emit(indent, f"if type({value}) is not str:")
                self.emit(indent + 1, f"{value} = _text({value})")
            self.emit(indent, f"out += {table}[{value}]")
        elif kind in ("array", "map"):
            self.block(schema, kind, indent, value)
        elif kind == "fixed":
            self.emit(indent, f"if type({value}) is not bytes or len({value}) != "
                      f"{int(schema['size'])}:")
            self.emit(indent + 1, f"_refuse({value})")
            self.emit(indent, f"out += {value}")
        elif kind in _PRIMITIVES:
            self.primitive(kind, indent, value, plain)
        else:
            raise UnsupportedSchema(f"type {kind!r}")

    def primitive(self, kind: str, indent: int, value: str, plain: bool = False) -> None:
        if kind == "null":
            self.emit(indent, f"if {value} is not None:")
            self.emit(indent + 1, f"_refuse({value})")
        elif kind == "boolean":
            self.emit(indent, f"if {value} is True:")
            self.emit(indent + 1, "out += b'\\x01'")
            self.emit(indent, f"elif {value} is False:")
            self.emit(indent + 1, "out += b'\\x00'")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"_refuse({value})")
        elif kind in ("int", "long"):
            low, high = (_INT_MIN, _INT_MAX) if kind == "int" else (_LONG_MIN, _LONG_MAX)
            zigzag = self.name("z")
            self.emit(indent, f"if type({value}) is not int or not {low} <= {value} <= {high}:")
            self.emit(indent + 1, f"_refuse({value})")
            self.emit(indent, f"{zigzag} = ({value} << 1) ^ ({value} >> 63)")
            self.emit(indent, f"while {zigzag} > 127:")
            self.emit(indent + 1, f"out.append({zigzag} & 127 | 128)")
            self.emit(indent + 1, f"{zigzag} >>= 7")
            self.emit(indent, f"out.append({zigzag})")
        elif kind == "double":
            self.emit(indent, f"if type({value}) is float:")
            self.emit(indent + 1, f"out += _double({value})")
            self.emit(indent, f"elif type({value}) is int:")
            self.emit(indent + 1, f"out += _double(float({value}))")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"_refuse({value})")
        else:  # string, bytes
            octets, size = self.name("o"), self.name("n")
            if kind == "string":
                if not plain:
                    self.emit(indent, f"if type({value}) is not str:")
                    self.emit(indent + 1, f"{value} = _text({value})")
                self.emit(indent, f"{octets} = {value}.encode()")
            else:
                self.emit(indent, f"if type({value}) is not bytes:")
                self.emit(indent + 1, f"_refuse({value})")
                self.emit(indent, f"{octets} = {value}")
            self.emit(indent, f"{size} = len({octets})")
            self.emit(indent, f"out += _LENGTHS[{size}] if {size} < 64 else _length({size})")
            self.emit(indent, f"out += {octets}")

    def block(self, schema: Mapping[str, Any], kind: str, indent: int, value: str) -> None:
        item = self.name("i")
        if kind == "array":
            self.emit(indent, f"if type({value}) is not list and type({value}) is not tuple:")
        else:
            self.emit(indent, f"if type({value}) is not dict:")
        self.emit(indent + 1, f"_refuse({value})")
        self.emit(indent, f"if {value}:")
        self.emit(indent + 1, f"out += _long(len({value}))")
        if kind == "array":
            self.emit(indent + 1, f"for {item} in {value}:")
            self.write(schema["items"], indent + 2, item)
        else:
            key = self.name("k")
            self.emit(indent + 1, f"for {key}, {item} in {value}.items():")
            self.primitive("string", indent + 2, key)
            self.write(schema["values"], indent + 2, item)
        self.emit(indent, "out += b'\\x00'")

    def union(self, branches: list[Any], indent: int, value: str) -> None:
        kinds = [self.kind(branch) for branch in branches]
        if any(kind in ("union", "array", "map", "float") for kind in kinds):
            raise UnsupportedSchema(f"union {kinds}")
        records: dict[str, tuple[bytes, str]] = {}
        for index, branch in enumerate(branches):
            if kinds[index] == "record":
                name = self.resolve(branch)["name"]
                records.setdefault(name, (_long(index), self.record(self.resolve(branch))))
        first = "if"
        for python_type, accepting in _CANDIDATES.items():
            chosen = [i for i, kind in enumerate(kinds) if kind in accepting]
            if not chosen or kinds[chosen[0]] == "array":
                continue  # no branch (fastavro refuses) or an array: fastavro decides
            # fastavro takes the first branch that validates the value. Branches before
            # ``chosen[0]`` never validate a value of this type, and the branch writer
            # accepts only values that branch validates (refusing the rest, e.g. a symbol
            # not in an enum, for fastavro to choose a later branch or refuse).
            index = chosen[0]
            if python_type is type(None):
                self.emit(indent, f"{first} {value} is None:")
                self.emit(indent + 1, f"out += {_long(index)!r}")
            else:
                self.emit(indent, f"{first} type({value}) is {python_type.__name__}:")
                self.emit(indent + 1, f"out += {_long(index)!r}")
                self.write(branches[index], indent + 1, value, plain=python_type is str)
            first = "elif"
        if records:
            table = self.constant(records)
            self.tables.append(table)
            name, inner = self.name("t"), self.name("v")
            self.emit(indent, f"{first} type({value}) is tuple:")
            self.emit(indent + 1, f"{name}, {inner} = {value}")
            self.emit(indent + 1, f"{name} = {table}[{name}]")
            self.emit(indent + 1, f"out += {name}[0]")
            self.emit(indent + 1, f"{name}[1]({inner}, out)")
            first = "elif"
        if first == "if":
            self.emit(indent, f"_refuse({value})")
            return
        self.emit(indent, "else:")
        strings = [i for i, kind in enumerate(kinds) if kind in _CANDIDATES[str]]
        if strings:  # a str subclass (StrEnum): as its plain str
            self.emit(indent + 1, f"if not isinstance({value}, str):")
            self.emit(indent + 2, f"_refuse({value})")
            self.emit(indent + 1, f"{value} = _text({value})")
            self.emit(indent + 1, f"out += {_long(strings[0])!r}")
            self.write(branches[strings[0]], indent + 1, value, plain=True)
        else:
            self.emit(indent + 1, f"_refuse({value})")

    def function(self, name: str, schema: Mapping[str, Any]) -> None:
        self.emit(0, f"def {name}(d, out):")
        self.emit(1, "if type(d) is not dict:")
        self.emit(2, "_refuse(d)")
        required = sum(1 for spec in schema["fields"] if "default" not in spec)
        optional = len(schema["fields"]) > required
        if optional:
            self.emit(1, f"present = {required}")
        for spec in schema["fields"]:
            field = str(spec["name"])
            value = self.name("f")
            if "default" not in spec:
                self.emit(1, f"{value} = d[{field!r}]")
                self.write(spec["type"], 1, value)
                continue
            default = self.name("_default")
            self.defaults.append((self.constant(None), default, spec["default"]))
            self.emit(1, f"{value} = d.get({field!r}, _MISSING)")
            self.emit(1, f"if {value} is _MISSING:")
            self.emit(2, f"out += {self.defaults[-1][0]}")
            self.emit(1, "else:")
            self.emit(2, "present += 1")
            self.write(spec["type"], 2, value)
            self.extra.extend(self.default_writer(default, spec["type"]))
        self.emit(1, f"if len(d) != {'present' if optional else required}:")
        self.emit(2, "raise _Refused('fields the schema does not have')")

    def default_writer(self, name: str, schema: Any) -> list[str]:
        """Source of ``name(value, out)``, writing a field default (run at compile time)."""
        outer = self.lines
        self.lines = []
        try:
            self.emit(0, f"def {name}(value, out):")
            self.write(schema, 1, "value")
            return self.lines
        finally:
            self.lines = outer


def compile_writer(schema: Mapping[str, Any], prefix: bytes = b"") -> Writer:
    """A writer for records of ``schema`` (a parsed record schema; see the module doc);
    its output starts with ``prefix`` (e.g. a single-object header)."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise UnsupportedSchema("the top level must be a record")
    source = _Source(dict(schema.get("__named_schemas") or {}))
    top = source.record(schema)
    done: set[str] = set()
    body: list[str] = []
    while source.pending:
        name, record = source.pending.pop()
        if name not in done:
            done.add(name)
            source.lines = []
            source.function(name, record)
            body.extend(source.lines)
    namespace: dict[str, Any] = {
        "_MISSING": _MISSING, "_Refused": _Refused, "_refuse": _refuse, "_text": _text,
        "_long": _long, "_length": _length, "_LENGTHS": _LENGTHS,
        "_double": struct.Struct("<d").pack, **source.constants,
    }
    body.extend(source.extra)
    exec(compile("\n".join(body), "<avro-writer>", "exec"), namespace)
    for table in source.tables:
        namespace[table] = {
            name: (index, namespace[function])
            for name, (index, function) in source.constants[table].items()  # type: ignore[attr-defined]
        }
    for constant, writer_name, value in source.defaults:
        out = bytearray()
        try:
            namespace[writer_name](value, out)
        except Exception as exc:
            raise UnsupportedSchema(f"default {value!r}: {exc}") from None
        namespace[constant] = bytes(out)
    function = namespace[top]
    start = bytes(prefix)

    def writer(record: Mapping[str, Any]) -> bytes:
        out = bytearray(start)
        function(record, out)
        return bytes(out)

    return writer

