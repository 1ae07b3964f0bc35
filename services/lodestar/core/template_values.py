"""Values as templates see them: attribute lists, text, numbers, truthiness, variable paths.

Pinpoint keeps every custom attribute as a list of strings. In a template the
list renders as Handlebars.js renders an array (its items joined with ``,``),
so ``{{User.UserAttributes.FirstName}}`` of ``["Sofia"]`` renders ``Sofia``
and ``{{User.UserAttributes.FirstName.[0]}}`` picks one item
(User Guide ``message-templates-personalizing.html``, ``message-template-helpers.html``).
``ValueList`` is that list; ``TemplateData`` is an object node whose missing keys
read as ``None`` (so a template never reaches a Python attribute or method).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast


class ValueList:
    """An attribute's values: renders joined with ``,``; ``.[n]`` and ``.length`` read it.

    Indexing never raises: a missing index or key is ``None`` (renders empty).
    """

    __slots__ = ("items",)

    def __init__(self, items: Iterable[object]) -> None:
        values = tuple(items)
        for item in values:
            if type(item) is not str:  # text items (the usual case) are kept as they are
                values = tuple(to_text(item) for item in values)
                break
        self.items: tuple[str, ...] = cast("tuple[str, ...]", values)

    def __getitem__(self, key: object) -> str | int | None:
        if key == "length":
            return len(self.items)
        if isinstance(key, bool):
            return None
        if isinstance(key, int):
            index = key
        elif isinstance(key, str) and key.isdigit():
            index = int(key)
        else:
            return None
        return self.items[index] if 0 <= index < len(self.items) else None

    def get(self, key: object, default: object = None) -> object:
        value = self[key]
        return default if value is None else value

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ValueList):
            return self.items == other.items
        if isinstance(other, (list, tuple)):
            return self.items == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.items)

    def __str__(self) -> str:
        return ",".join(self.items)

    def __repr__(self) -> str:
        return f"ValueList({list(self.items)!r})"


class TemplateData(dict[str, Any]):
    """An object in the render context; a missing key reads as ``None``."""

    def __missing__(self, key: str) -> None:
        return None


def format_number(value: float) -> str:
    """A number as templates print it: integral values without a fraction,
    others with at most 8 decimals (``{{divide 5 2.3}}`` → ``2.17391304``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def to_text(value: object) -> str:
    """The text a value renders as (before any HTML escaping)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, ValueList):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
    context = getattr(value, "context", None)
    if context is not None and type(value).__name__ == "Scope":
        return to_text(context)
    return str(value)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, ValueList):
        return list(value.items)
    return value


def to_number(value: object) -> float | None:
    """``value`` as a number: ints, floats and numeric text (a one-item list reads
    as its item); anything else is ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = to_text(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def is_truthy(value: object) -> bool:
    """Handlebars truthiness: None, false, "", 0 and empty lists/objects are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0
    if isinstance(value, (str, ValueList, Mapping, list, tuple)):
        return len(value) > 0
    return True


class PathError(ValueError):
    """A variable name that is not a path such as ``User.UserAttributes.[Last Name].[0]``."""


def split_path(path: str) -> tuple[str, ...]:
    """Path segments: ``User.UserAttributes.[Last Name].[0]`` → User, UserAttributes,
    Last Name, 0."""
    segments: list[str] = []
    i, n = 0, len(path)
    while i < n:
        if path[i] == "[":
            end = path.find("]", i + 1)
            if end < 0:
                raise PathError(f"{path!r}: unclosed '['")
            segment = path[i + 1 : end]
            i = end + 1
        else:
            end = i
            while end < n and path[end] not in ".[":
                end += 1
            segment = path[i:end]
            i = end
        if not segment:
            raise PathError(f"{path!r}: empty path segment")
        segments.append(segment)
        if i < n:
            if path[i] == ".":
                i += 1
                if i == n:
                    raise PathError(f"{path!r}: ends with '.'")
            elif path[i] != "[":
                raise PathError(f"{path!r}: expected '.' after ']'")
    if not segments:
        raise PathError("empty variable name")
    return tuple(segments)
