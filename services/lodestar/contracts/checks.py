"""Is this Python value an acceptable Avro primitive? One answer for the whole codec.

The fast pre-write step (``guard``) and the error explainer (``explain``)
use the same predicates, so a value the explainer accepts is never one the
codec refuses, and the reverse. Accepted forms: ``bool`` for boolean (not
0/1), ``int`` within range for int/long (not ``bool``, not ``float``), ``float``
or an ``int`` a double holds exactly for float/double, ``str`` for string,
``bytes``/``bytearray`` for bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

Check = Callable[[Any], bool]
"""True when a value may be written as it is."""

INT_RANGE: Final = (-(2**31), 2**31 - 1)
LONG_RANGE: Final = (-(2**63), 2**63 - 1)


def exact_as_double(value: int) -> bool:
    """Whether an int survives the trip through an Avro double unchanged."""
    if -(2**53) <= value <= 2**53:
        return True
    try:
        return float(value) == value
    except OverflowError:
        return False


def is_null(value: Any) -> bool:
    return value is None


def is_boolean(value: Any) -> bool:
    return value is True or value is False


def is_int(value: Any) -> bool:
    return _integer(value) and INT_RANGE[0] <= value <= INT_RANGE[1]


def is_long(value: Any) -> bool:
    return _integer(value) and LONG_RANGE[0] <= value <= LONG_RANGE[1]


def is_real(value: Any) -> bool:
    if type(value) is float:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, float) or exact_as_double(value)


def is_string(value: Any) -> bool:
    return isinstance(value, str)


def is_bytes(value: Any) -> bool:
    return isinstance(value, bytes | bytearray)


def is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def is_sequence(value: Any) -> bool:
    """An Avro array value: a list or tuple (not a string, a dict or a set)."""
    return type(value) is list or isinstance(value, list | tuple)


def _integer(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


PRIMITIVES: Final[Mapping[str, Check]] = {
    "null": is_null,
    "boolean": is_boolean,
    "int": is_int,
    "long": is_long,
    "float": is_real,
    "double": is_real,
    "string": is_string,
    "bytes": is_bytes,
}
"""Every Avro primitive type name and its check."""

UNCHECKED_BY_WRITER: Final[Mapping[str, Check]] = {
    name: PRIMITIVES[name] for name in ("boolean", "int", "long", "float", "double")
}
"""The primitives fastavro's writer would write wrongly instead of refusing."""
