"""The fast pre-write step: close the gaps of fastavro's writer, and speed it up.

fastavro's ``schemaless_writer`` rejects most bad values by itself (a non-string
for a string, an unknown enum symbol, a missing field, an unknown field with
``strict_allow_default``, a value no union branch validates). It silently
writes a few wrong ones: any truthy object as a boolean, a float truncated
into an int or long, an out-of-range int, a string as an array of its
characters, any empty value as an empty map, a bool or an int too large to be
exact as a double, and — given tuple notation — a union branch without
validating it.

``compile_preparer`` builds, once per schema, a function that rejects exactly
those values and hands the writer a record in which every non-null value of
a ``[null, record]`` union (and of a discriminated union) is in tuple
notation ``(record name, value)``. The writer then skips its costly union
validation, which this step has done; callers' own tuples are refused, so
every tuple the writer sees comes from here. Unions of several non-null
branches other than discriminated ones are left to fastavro's validation.
Together, preparer and writer never write a malformed record; ``explain``
says what was wrong afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from lodestar.contracts.checks import UNCHECKED_BY_WRITER, Check, is_mapping, is_sequence
from lodestar.contracts.registry import SchemaEntry

Prepare = Callable[[Any], Any]
"""The value to write in place of the given one; raises ``Rejected``."""
Preparer = Callable[[Mapping[str, Any]], Mapping[str, Any]]

_MISSING: Final = object()


class Rejected(Exception):
    """Raised by a preparer when the record must not be written (no message: see ``explain``)."""


def compile_preparer(entry: SchemaEntry) -> Preparer:
    """A function returning ``record`` ready for ``schemaless_writer``, or raising ``Rejected``."""
    compiler = _Compiler(entry.named)
    choices = [
        _Choice(
            d.field,
            d.by,
            {sym: compiler.tagged(name) for sym, name in d.branches.items()},
            "null" in next(f["type"] for f in entry.wire["fields"] if f["name"] == d.field),
        )
        for d in entry.discriminators
    ]
    check, prepare = compiler.record(entry.wire, choices)
    if prepare is not None:
        return prepare
    if check is None:  # pragma: no cover - a record always has at least a mapping check
        raise ValueError(f"{entry.stem}: nothing to check")
    only_check: Check = check

    def checked(record: Mapping[str, Any]) -> Mapping[str, Any]:
        if not only_check(record):
            raise Rejected
        return record

    return checked


Node = tuple[Check | None, Prepare | None]
"""A compiled schema node: a check, or a prepare step (which also checks), or neither."""


@dataclass(frozen=True, slots=True)
class _Choice:
    """A discriminated union field: its branch (a tagging step) follows field ``by``."""

    field: str
    by: str
    branches: Mapping[Any, Prepare]
    nullable: bool


class _Compiler:
    """Turns a parsed (wire) schema into checks and prepare steps."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.building: set[str] = set()

    def node(self, schema: Any) -> Node:
        if isinstance(schema, list):
            return self.union(schema)
        if isinstance(schema, str):
            if schema in self.named:
                return self.named_type(schema)
            return UNCHECKED_BY_WRITER.get(schema), None
        kind = schema["type"]
        if kind == "record":
            return self.record(schema, ())
        if kind == "array":
            return _array(*self.node(schema["items"]))
        if kind == "map":
            return _map(*self.node(schema["values"]))
        if isinstance(kind, str) and kind in UNCHECKED_BY_WRITER:
            return UNCHECKED_BY_WRITER[kind], None
        return None, None  # enum, fixed: the writer checks them

    def named_type(self, name: str) -> Node:
        if name in self.building:
            raise ValueError(f"recursive type {name} is not supported by Lodestar contracts")
        self.building.add(name)
        try:
            return self.node(self.named[name])
        finally:
            self.building.discard(name)

    def tagged(self, name: str) -> Prepare:
        """Prepare a value of named record ``name`` as the union branch ``(name, value)``."""
        check, prepare = self.named_type(name)
        if prepare is not None:
            inner = prepare
            return lambda value: (name, inner(value))
        test = check or is_mapping

        def tag(value: Any) -> Any:
            if not test(value):
                raise Rejected
            return (name, value)

        return tag

    def union(self, branches: list[Any]) -> Node:
        """Plain form only (no tuple notation); ``[null, X]`` checks X, tagging records."""
        others = [b for b in branches if b != "null"]
        nullable = len(others) < len(branches)
        if len(others) != 1:
            return _not_tuple, None
        (branch,) = others
        name = branch if isinstance(branch, str) else branch.get("name")
        resolved = self.named.get(name) if isinstance(name, str) else None
        if resolved is not None and resolved["type"] == "record":
            tag = self.tagged(name)

            def prepare_union(value: Any) -> Any:
                if value is None:
                    if nullable:
                        return None
                    raise Rejected
                if type(value) is tuple:
                    raise Rejected
                return tag(value)

            return None, prepare_union
        check, _ = self.node(branch)  # non-record branches never need preparing
        if check is None:
            return (_not_tuple if nullable else _not_none_or_tuple), None
        inner: Check = check

        def check_union(value: Any) -> bool:
            if value is None:
                return nullable
            return type(value) is not tuple and inner(value)

        return check_union, None

    def record(self, schema: Mapping[str, Any], choices: Sequence[_Choice]) -> Node:
        chosen = {choice.field for choice in choices}
        checks: list[tuple[str, Check]] = []
        steps: list[tuple[str, Prepare]] = []
        for field in schema["fields"]:
            name = field["name"]
            if name in chosen:
                continue
            check, prepare = self.node(field["type"])
            if prepare is not None:
                steps.append((name, prepare))
            elif check is not None:
                checks.append((name, check))
        check_fields = _record_check(checks)
        if not steps and not choices:
            return check_fields, None
        return None, _record_prepare(check_fields, steps, choices)


def _record_check(checks: list[tuple[str, Check]]) -> Check:
    if not checks:
        return is_mapping

    def check_record(value: Any) -> bool:
        if type(value) is not dict and not isinstance(value, Mapping):
            return False
        get = value.get
        for name, check in checks:
            item = get(name, _MISSING)
            if item is not _MISSING and not check(item):
                return False
        return True

    return check_record


def _record_prepare(
    check_fields: Check, steps: list[tuple[str, Prepare]], choices: Sequence[_Choice]
) -> Prepare:
    def prepare_record(value: Any) -> Any:
        if not check_fields(value):
            raise Rejected
        prepared: dict[str, Any] | None = None
        get = value.get
        for name, step in steps:
            item = get(name, _MISSING)
            if item is _MISSING:
                continue
            new = step(item)
            if new is not item:
                if prepared is None:
                    prepared = dict(value)
                prepared[name] = new
        for choice in choices:
            item = get(choice.field, _MISSING)
            if item is _MISSING:
                continue
            if item is None:
                if choice.nullable:
                    continue
                raise Rejected
            if type(item) is tuple:
                raise Rejected
            tag = choice.branches.get(_hashable(get(choice.by)))
            if tag is None:
                raise Rejected
            if prepared is None:
                prepared = dict(value)
            prepared[choice.field] = tag(item)
        return value if prepared is None else prepared

    return prepare_record


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return None
    return value


def _not_tuple(value: Any) -> bool:
    return type(value) is not tuple


def _not_none_or_tuple(value: Any) -> bool:
    return value is not None and type(value) is not tuple


def _array(items: Check | None, prepare: Prepare | None) -> Node:
    if prepare is not None:
        step = prepare

        def prepare_array(value: Any) -> Any:
            if not is_sequence(value):
                raise Rejected
            return [step(item) for item in value]

        return None, prepare_array
    if items is None:
        return is_sequence, None
    check = items
    return (lambda value: is_sequence(value) and all(map(check, value))), None


def _map(values: Check | None, prepare: Prepare | None) -> Node:
    if prepare is not None:
        step = prepare

        def prepare_map(value: Any) -> Any:
            if not is_mapping(value):
                raise Rejected
            return {key: step(item) for key, item in value.items()}

        return None, prepare_map
    if values is None:  # the writer takes any empty sized value for an empty map
        return is_mapping, None
    check = values
    return (lambda value: is_mapping(value) and all(map(check, value.values()))), None
