"""Checking the fields of a JSON request body, with errors that name the offending path.

``FieldError(field, message)`` is the base of the request errors that point at one
field (``SegmentDefinitionError``, ``TemplateDefinitionError``). The checks take the
error class to raise first, so each parser keeps its own error type::

    data = as_object(SegmentDefinitionError, body, "Dimensions")
    known_keys(SegmentDefinitionError, data, "Dimensions", {"Attributes", ...})
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

_E = TypeVar("_E", bound=StrEnum)


class FieldError(ValueError):
    """An invalid request; ``field`` is the offending path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def as_object(error: type[FieldError], value: object, path: str) -> Mapping[str, Any]:
    """``value`` when it is a JSON object."""
    if not isinstance(value, Mapping):
        raise error(path, "must be an object")
    return value


def known_keys(
    error: type[FieldError], data: Mapping[str, Any], path: str, allowed: set[str]
) -> None:
    """Refuse a key of ``data`` that is not in ``allowed``, naming the ones that are."""
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise error(where, f"unknown field; expected {', '.join(sorted(allowed))}")


def as_enum(error: type[FieldError], kind: type[_E], value: object, path: str) -> _E:
    """``value`` as a member of ``kind``, or an error listing the members."""
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return kind(value)
    except ValueError:
        raise error(
            path, f"{value!r} is not one of {', '.join(e.value for e in kind)}"
        ) from None
