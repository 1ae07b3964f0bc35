"""Template helpers: Pinpoint's documented set, plus a few Lodestar extras.

Pinpoint (User Guide ``message-template-helpers.html``) documents:

- built in: ``each``, ``if`` (pybars also gives ``with``, ``lookup``; ``unless``
  is replaced here so that its ``{{else}}`` works);
- conditional: ``and``, ``eq``, ``gt``, ``gte``, ``lt``, ``lte``, ``neq``,
  ``not``, ``or`` — as a block (``{{#eq a b}}…{{else}}…{{/eq}}``), inline with
  ``yes=``/``no=`` strings, or as a subexpression returning a boolean;
- string: ``abbreviate``, ``capitalize``, ``capitalizeFirst``, ``center``,
  ``cut``, ``dateFormat``, ``inflect``, ``join``, ``ljust``, ``lower``, ``now``,
  ``ordinalize``, ``replace``, ``rjust``, ``slugify``, ``stripTags``,
  ``substring``, ``upper``, ``yesno``;
- math and encoding: ``add``, ``ceiling``, ``decode64``, ``divide``,
  ``encode64``, ``floor``, ``md5``, ``modulo``, ``multiply``, ``round``,
  ``sha256``, ``sha512``, ``subtract``, ``uuid``.

Lodestar extras: ``ne`` (= ``neq``), ``lowercase``/``uppercase`` (= ``lower``/
``upper``), ``trim``, ``truncate``, ``urlEncode``, ``math`` (``{{math a "+" b}}``
with + - * / %), ``inArray``, ``length``, ``default``.

Comparisons are numeric when both sides are numbers or numeric text (Pinpoint's
examples compare ``User.UserAttributes.UserAge.[0]`` with ``"17"``), textual
otherwise. A helper given bad input raises ``HelperError``; the render turns it
into a ``RenderFailure``. ``now`` and ``uuid`` are pure: ``helpers_for`` binds
them to the render's ``now_ms`` and seed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import uuid as uuid_lib
from collections.abc import Callable, Iterator, Mapping
from functools import wraps
from typing import Any

from lodestar.core.template_dates import DateError, format_date, from_millis, read_date, zone
from lodestar.core.template_values import (
    TemplateData,
    ValueList,
    is_truthy,
    to_number,
    to_text,
)

Helper = Callable[..., Any]


class HelperError(ValueError):
    """A helper could not produce a value; ``helper`` names it."""

    def __init__(self, helper: str, message: str) -> None:
        super().__init__(f"{helper}: {message}")
        self.helper = helper
        self.message = message


def _is_options(value: object) -> bool:
    return isinstance(value, dict) and not isinstance(value, TemplateData) and callable(
        value.get("fn")
    ) and "inverse" in value and "root" in value


def _split(args: tuple[Any, ...]) -> tuple[dict[str, Any] | None, tuple[Any, ...]]:
    """(block options or None, the helper's own arguments)."""
    if args and _is_options(args[0]):
        return args[0], args[1:]
    return None, args


def _guard(name: str, fn: Helper) -> Helper:
    """``fn`` with unexpected errors (bad argument count, bad values) as HelperError."""
    return wraps(fn)(_guard_fast(name, fn))


def _guard_fast(name: str, fn: Helper) -> Helper:
    """``_guard`` without copying ``fn``'s metadata (``helpers_for`` builds two per render)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HelperError:
            raise
        except DateError as exc:
            raise HelperError(name, str(exc)) from None
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError) as exc:
            raise HelperError(name, str(exc) or type(exc).__name__) from None

    call.__name__ = name
    return call


def _need(name: str, args: tuple[Any, ...], low: int, high: int | None = None) -> None:
    top = low if high is None else high
    if not low <= len(args) <= top:
        want = str(low) if low == top else f"{low} to {top}"
        raise HelperError(name, f"takes {want} argument(s), got {len(args)}")


def _number(name: str, value: object) -> float:
    number = to_number(value)
    if number is None:
        raise HelperError(name, f"{to_text(value)!r} is not a number")
    return number


def _int(name: str, value: object, what: str) -> int:
    number = _number(name, value)
    if number != int(number) or number < 0:
        raise HelperError(name, f"{what} must be a non-negative whole number")
    return int(number)


# ---------------------------------------------------------------- conditionals


def _decide(this: Any, options: dict[str, Any] | None, kwargs: Mapping[str, Any],
            result: bool) -> Any:
    if options is not None:
        return options["fn"](this) if result else options["inverse"](this)
    if "yes" in kwargs or "no" in kwargs:
        return kwargs.get("yes", "") if result else kwargs.get("no", "")
    return result


def compare(left: object, right: object) -> int:
    """-1, 0 or 1: numerically when both are numbers, else as text."""
    a, b = to_number(left), to_number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = to_text(left), to_text(right)
    return (x > y) - (x < y)


def _comparison(name: str, test: Callable[[int], bool]) -> Helper:
    def helper(this: Any, *args: Any, **kwargs: Any) -> Any:
        options, values = _split(args)
        _need(name, values, 2)
        return _decide(this, options, kwargs, test(compare(values[0], values[1])))

    return helper


def _and(this: Any, *args: Any, **kwargs: Any) -> Any:
    options, values = _split(args)
    _need("and", values, 1, 64)
    return _decide(this, options, kwargs, all(is_truthy(v) for v in values))


def _or(this: Any, *args: Any, **kwargs: Any) -> Any:
    options, values = _split(args)
    _need("or", values, 1, 64)
    return _decide(this, options, kwargs, any(is_truthy(v) for v in values))


def _not(this: Any, *args: Any, **kwargs: Any) -> Any:
    options, values = _split(args)
    _need("not", values, 1)
    return _decide(this, options, kwargs, not is_truthy(values[0]))


def _unless(this: Any, options: dict[str, Any], *values: Any) -> Any:
    _need("unless", values, 1)
    return options["inverse"](this) if is_truthy(values[0]) else options["fn"](this)


def _in_array(this: Any, *args: Any, **kwargs: Any) -> Any:
    options, values = _split(args)
    _need("inArray", values, 2)
    haystack, needle = values
    items = _items(haystack)
    found = any(compare(item, needle) == 0 for item in items)
    return _decide(this, options, kwargs, found)


# --------------------------------------------------------------------- strings


def _text1(name: str, args: tuple[Any, ...], extra: int = 0) -> str:
    _need(name, args, 1, 1 + extra)
    return to_text(args[0])


def _items(value: object) -> list[object]:
    if isinstance(value, (ValueList, list, tuple)):
        return list(value)
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.values())
    return [value]


def _abbreviate(this: Any, *args: Any) -> str:
    _need("abbreviate", args, 2)
    text, width = to_text(args[0]), _int("abbreviate", args[1], "the length")
    if len(text) <= width:
        return text
    if width < 4:
        raise HelperError("abbreviate", "the length must be at least 4")
    return text[: width - 3] + "..."


def _capitalize(this: Any, *args: Any, fully: object = False) -> str:
    text = _text1("capitalize", args)
    lower = is_truthy(fully) and to_text(fully) != "false"
    return re.sub(r"\S+", lambda m: _cap(m.group(0).lower() if lower else m.group(0)), text)


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


def _capitalize_first(this: Any, *args: Any) -> str:
    return _cap(_text1("capitalizeFirst", args))


def _pad_char(name: str, pad: object) -> str:
    text = " " if pad is None else to_text(pad)
    if len(text) != 1:
        raise HelperError(name, "pad must be one character")
    return text


def _center(this: Any, *args: Any, size: object = None, pad: object = None) -> str:
    _need("center", args, 1, 2)
    width = _int("center", args[1] if len(args) > 1 else size, "size")
    text, fill = to_text(args[0]), _pad_char("center", pad)
    missing = width - len(text)
    if missing <= 0:
        return text
    left = missing // 2
    return fill * left + text + fill * (missing - left)


def _ljust(this: Any, *args: Any, size: object = None, pad: object = None) -> str:
    _need("ljust", args, 1, 2)
    width = _int("ljust", args[1] if len(args) > 1 else size, "size")
    return to_text(args[0]).ljust(width, _pad_char("ljust", pad))


def _rjust(this: Any, *args: Any, size: object = None, pad: object = None) -> str:
    _need("rjust", args, 1, 2)
    width = _int("rjust", args[1] if len(args) > 1 else size, "size")
    return to_text(args[0]).rjust(width, _pad_char("rjust", pad))


def _cut(this: Any, *args: Any) -> str:
    _need("cut", args, 1, 2)
    target = to_text(args[1]) if len(args) > 1 else " "
    return to_text(args[0]).replace(target, "") if target else to_text(args[0])


def _inflect(this: Any, *args: Any, includeCount: object = False) -> str:
    _need("inflect", args, 3)
    count = _number("inflect", args[0])
    word = to_text(args[1] if count == 1 else args[2])
    include = includeCount is True or to_text(includeCount).lower() == "true"
    return f"{to_text(count)} {word}" if include else word


def _join(this: Any, *args: Any, prefix: object = "", suffix: object = "") -> str:
    if len(args) < 2:
        raise HelperError("join", "takes a list (or values) and a separator")
    separator = to_text(args[-1])
    items: list[object] = []
    for value in args[:-1]:
        items.extend(_items(value))
    return to_text(prefix) + separator.join(to_text(i) for i in items) + to_text(suffix)


def _lower(this: Any, *args: Any) -> str:
    return _text1("lower", args).lower()


def _upper(this: Any, *args: Any) -> str:
    return _text1("upper", args).upper()


def _trim(this: Any, *args: Any) -> str:
    return _text1("trim", args).strip()


def _ordinalize(this: Any, *args: Any) -> str:
    _need("ordinalize", args, 1)
    number = _number("ordinalize", args[0])
    if number != int(number):
        raise HelperError("ordinalize", "needs a whole number")
    value = int(number)
    last_two = abs(value) % 100
    suffix = "th" if 11 <= last_two <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(last_two % 10, "th")
    return f"{value}{suffix}"


def _replace(this: Any, *args: Any) -> str:
    _need("replace", args, 3)
    target = to_text(args[1])
    text = to_text(args[0])
    return text.replace(target, to_text(args[2])) if target else text


def _slugify(this: Any, *args: Any) -> str:
    text = re.sub(r"[^\w\s-]", "", _text1("slugify", args).lower()).strip()
    return re.sub(r"[-\s]+", "-", text)


def _strip_tags(this: Any, *args: Any) -> str:
    return re.sub(r"<[^>]*>", "", _text1("stripTags", args))


def _substring(this: Any, *args: Any) -> str:
    _need("substring", args, 2, 3)
    text = to_text(args[0])
    start = _int("substring", args[1], "startOffset")
    end = _int("substring", args[2], "endOffset") if len(args) > 2 else len(text)
    if end < start:
        raise HelperError("substring", "endOffset is before startOffset")
    return text[start:end]


def _truncate(this: Any, *args: Any) -> str:
    _need("truncate", args, 2, 3)
    text, width = to_text(args[0]), _int("truncate", args[1], "the length")
    if len(text) <= width:
        return text
    tail = to_text(args[2]) if len(args) > 2 else ""
    if len(tail) > width:
        raise HelperError("truncate", "the suffix is longer than the length")
    return text[: width - len(tail)] + tail


def _yesno(this: Any, *args: Any, yes: object = "yes", no: object = "no",
           maybe: object = "maybe") -> str:
    _need("yesno", args, 1)
    value = args[0]
    text = to_text(value).strip().lower()
    if value is True or text == "true":
        return to_text(yes)
    if value is False or text == "false":
        return to_text(no)
    return to_text(maybe)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _url_encode(this: Any, *args: Any) -> str:
    data = _text1("urlEncode", args).encode("utf-8")
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in data)


def _length(this: Any, *args: Any) -> int:
    _need("length", args, 1)
    value = args[0]
    if isinstance(value, (ValueList, list, tuple, Mapping)):
        return len(value)
    return len(to_text(value))


def _default(this: Any, *args: Any) -> Any:
    if len(args) < 2:
        raise HelperError("default", "takes a value and at least one fallback")
    for value in args:
        if is_truthy(value):
            return value
    return args[-1]


# ---------------------------------------------------------------- dates, clock


def _date_format(this: Any, *args: Any, inputFormat: object = None,
                 outputFormat: object = None, format: object = None,
                 tz: object = None) -> str:
    _need("dateFormat", args, 1, 2)
    where = zone(tz)
    moment = read_date(args[0], None if inputFormat is None else to_text(inputFormat), where)
    style = outputFormat if outputFormat is not None else format
    if style is None and len(args) > 1:
        style = args[1]
    return format_date(moment, None if style is None else to_text(style))


def _now_helper(now_ms: int) -> Helper:
    def now(this: Any, *args: Any, tz: object = None, format: object = None) -> str:
        _need("now", args, 0, 1)
        style = args[0] if args else format
        return format_date(from_millis(now_ms, zone(tz)),
                           None if style is None else to_text(style))

    return now


def _uuid_helper(seed: str) -> Helper:
    counter: Iterator[int] = iter(range(1 << 30))

    def uuid(this: Any, *args: Any) -> str:
        _need("uuid", args, 0)
        digest = hashlib.sha256(f"{seed}\x00{next(counter)}".encode()).digest()
        return str(uuid_lib.UUID(bytes=digest[:16], version=4))

    return uuid


# ------------------------------------------------------------ math, encodings


def _arith(name: str, op: Callable[[float, float], float]) -> Helper:
    def helper(this: Any, *args: Any) -> float:
        _need(name, args, 2)
        return op(_number(name, args[0]), _number(name, args[1]))

    return helper


def _divide(a: float, b: float) -> float:
    if b == 0:
        raise HelperError("divide", "division by zero")
    return a / b


def _modulo(a: float, b: float) -> float:
    if b == 0:
        raise HelperError("modulo", "division by zero")
    return math.fmod(a, b)


_OPERATORS: Mapping[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _modulo,
}


def _math(this: Any, *args: Any) -> float:
    _need("math", args, 3)
    operator = to_text(args[1])
    if operator not in _OPERATORS:
        raise HelperError("math", f"unknown operator {operator!r}; use + - * / %")
    return _OPERATORS[operator](_number("math", args[0]), _number("math", args[2]))


def _unary(name: str, op: Callable[[float], float]) -> Helper:
    def helper(this: Any, *args: Any) -> float:
        _need(name, args, 1)
        return op(_number(name, args[0]))

    return helper


def _round_half_up(value: float) -> float:
    return float(math.floor(value + 0.5))


def _encode64(this: Any, *args: Any) -> str:
    return base64.b64encode(_text1("encode64", args).encode("utf-8")).decode("ascii")


def _decode64(this: Any, *args: Any) -> str:
    text = _text1("decode64", args)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError):
        raise HelperError("decode64", f"{text!r} is not Base64 of UTF-8 text") from None


def _digest(name: str) -> Helper:
    def helper(this: Any, *args: Any) -> str:
        return hashlib.new(name, _text1(name, args).encode("utf-8")).hexdigest()

    return helper


_STATIC: Mapping[str, Helper] = {
    "and": _and,
    "eq": _comparison("eq", lambda c: c == 0),
    "neq": _comparison("neq", lambda c: c != 0),
    "ne": _comparison("ne", lambda c: c != 0),
    "gt": _comparison("gt", lambda c: c > 0),
    "gte": _comparison("gte", lambda c: c >= 0),
    "lt": _comparison("lt", lambda c: c < 0),
    "lte": _comparison("lte", lambda c: c <= 0),
    "not": _not,
    "or": _or,
    "unless": _unless,
    "inArray": _in_array,
    "abbreviate": _abbreviate,
    "capitalize": _capitalize,
    "capitalizeFirst": _capitalize_first,
    "center": _center,
    "cut": _cut,
    "dateFormat": _date_format,
    "inflect": _inflect,
    "join": _join,
    "ljust": _ljust,
    "lower": _lower,
    "lowercase": _lower,
    "ordinalize": _ordinalize,
    "replace": _replace,
    "rjust": _rjust,
    "slugify": _slugify,
    "stripTags": _strip_tags,
    "substring": _substring,
    "upper": _upper,
    "uppercase": _upper,
    "yesno": _yesno,
    "trim": _trim,
    "truncate": _truncate,
    "urlEncode": _url_encode,
    "length": _length,
    "default": _default,
    "add": _arith("add", lambda a, b: a + b),
    "subtract": _arith("subtract", lambda a, b: a - b),
    "multiply": _arith("multiply", lambda a, b: a * b),
    "divide": _arith("divide", _divide),
    "modulo": _arith("modulo", _modulo),
    "math": _math,
    "ceiling": _unary("ceiling", lambda x: float(math.ceil(x))),
    "floor": _unary("floor", lambda x: float(math.floor(x))),
    "round": _unary("round", _round_half_up),
    "encode64": _encode64,
    "decode64": _decode64,
    "md5": _digest("md5"),
    "sha256": _digest("sha256"),
    "sha512": _digest("sha512"),
}
STATIC_HELPERS: Mapping[str, Helper] = {name: _guard(name, fn) for name, fn in _STATIC.items()}
HELPER_NAMES: frozenset[str] = frozenset(
    {*STATIC_HELPERS, "now", "uuid", "each", "if", "with", "lookup"}
)
"""Every helper a template may call."""


def helpers_for(now_ms: int, seed: str = "") -> dict[str, Helper]:
    """The helpers of one render: ``now`` reads ``now_ms``; ``uuid`` yields ids derived
    from ``seed`` (the same seed renders the same ids, so a retried message is identical)."""
    helpers = dict(STATIC_HELPERS)
    helpers["now"] = _guard_fast("now", _now_helper(now_ms))
    helpers["uuid"] = _guard_fast("uuid", _uuid_helper(seed))
    return helpers
