"""Dates for the ``dateFormat`` and ``now`` helpers.

Pinpoint's helpers take the styles ``full``, ``long``, ``medium`` (the
default) and ``short``, or a Java ``SimpleDateFormat`` pattern, and an IANA
time zone ``tz`` (User Guide ``message-template-helpers.html``). The styles
are the en-US forms (``Saturday, September 19, 2020`` / ``September 19,
2020`` / ``Sep 19, 2020`` / ``9/19/20``). The patterns support the letters
G y Y u M L d D E a H k K h m s S z Z X and quoted literals; others are refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STYLES = {
    "full": "EEEE, MMMM d, y",
    "long": "MMMM d, y",
    "medium": "MMM d, y",
    "short": "M/d/yy",
}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_LETTERS = set("GyYuMLdDEaHkKhmsSzZX")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DateError(ValueError):
    """A date, pattern or time zone the helpers cannot use."""


def zone(name: object) -> tzinfo:
    """The time zone ``name`` (IANA id, ``UTC``/``Z``, or an offset ``+09:00``); None → UTC."""
    if name is None or name == "":
        return UTC
    text = str(name)
    if text in ("UTC", "Z", "GMT"):
        return UTC
    offset = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?", text)
    if offset:
        minutes = int(offset.group(2)) * 60 + int(offset.group(3) or 0)
        return timezone(timedelta(minutes=minutes if offset.group(1) == "+" else -minutes))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise DateError(f"unknown time zone {text!r}") from None


def _tokens(pattern: str) -> list[tuple[str, int] | str]:
    """A Java date pattern as (letter, count) tokens and literal strings."""
    out: list[tuple[str, int] | str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "'":
            end = i + 1
            literal = []
            while end < n:
                if pattern[end] == "'":
                    if end + 1 < n and pattern[end + 1] == "'":
                        literal.append("'")
                        end += 2
                        continue
                    break
                literal.append(pattern[end])
                end += 1
            out.append("'" if end == i + 1 else "".join(literal))
            i = end + 1
        elif char.isascii() and char.isalpha():
            if char not in _LETTERS:
                raise DateError(f"unsupported pattern letter {char!r} in {pattern!r}")
            end = i
            while end < n and pattern[end] == char:
                end += 1
            out.append((char, end - i))
            i = end
        else:
            out.append(char)
            i += 1
    return out


def format_date(moment: datetime, style_or_pattern: str | None) -> str:
    """``moment`` (aware) in a style name or Java pattern; None means ``medium``."""
    pattern = STYLES.get(style_or_pattern or "medium", style_or_pattern or "")
    parts: list[str] = []
    for token in _tokens(pattern):
        if isinstance(token, str):
            parts.append(token)
        else:
            parts.append(_format_field(moment, *token))
    return "".join(parts)


def _offset(moment: datetime, colon: bool, z_for_zero: bool) -> str:
    delta = moment.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds()) // 60
    if minutes == 0 and z_for_zero:
        return "Z"
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def _format_field(moment: datetime, letter: str, count: int) -> str:
    if letter == "G":
        return "AD"
    if letter in "yY":
        year = moment.year
        return f"{year % 100:02d}" if count == 2 else f"{year:0{count}d}"
    if letter in "ML":
        if count >= 4:
            return MONTHS[moment.month - 1]
        if count == 3:
            return MONTHS[moment.month - 1][:3]
        return f"{moment.month:0{count}d}"
    if letter == "u":
        return f"{moment.isoweekday():0{count}d}"
    if letter == "d":
        return f"{moment.day:0{count}d}"
    if letter == "D":
        return f"{moment.timetuple().tm_yday:0{count}d}"
    if letter == "E":
        name = DAYS[moment.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "H":
        return f"{moment.hour:0{count}d}"
    if letter == "k":
        return f"{moment.hour or 24:0{count}d}"
    if letter == "K":
        return f"{moment.hour % 12:0{count}d}"
    if letter == "h":
        return f"{moment.hour % 12 or 12:0{count}d}"
    if letter == "m":
        return f"{moment.minute:0{count}d}"
    if letter == "s":
        return f"{moment.second:0{count}d}"
    if letter == "S":
        return f"{moment.microsecond // 1000:0{count}d}"
    if letter == "z":
        return moment.tzname() or "UTC"
    if letter == "Z":
        return _offset(moment, colon=False, z_for_zero=False)
    # X: ISO-8601 offset; X → +09, XX → +0900, XXX → +09:00 ("Z" for UTC)
    text = _offset(moment, colon=count >= 3, z_for_zero=True)
    return text[:3] if count == 1 and text != "Z" else text


_NUMERIC = {"y": r"\d{1,4}", "Y": r"\d{1,4}", "u": r"\d", "d": r"\d{1,2}", "D": r"\d{1,3}",
            "H": r"\d{1,2}", "k": r"\d{1,2}", "K": r"\d{1,2}", "h": r"\d{1,2}",
            "m": r"\d{1,2}", "s": r"\d{1,2}", "S": r"\d{1,3}"}


def parse_date(text: str, pattern: str, tz: tzinfo) -> datetime:
    """``text`` read with a Java pattern; a value without an offset is in ``tz``."""
    regex: list[str] = []
    fields: list[tuple[str, int]] = []
    for token in _tokens(pattern):
        if isinstance(token, str):
            regex.append(re.escape(token))
            continue
        letter, count = token
        if letter in "ML" and count >= 3:
            names = MONTHS if count >= 4 else tuple(m[:3] for m in MONTHS)
            regex.append("(" + "|".join(names) + ")")
        elif letter in "yY" and count == 2:
            regex.append(r"(\d{2})")
        elif letter in "ML":
            regex.append(r"(\d{1,2})")
        elif letter == "E":
            names = DAYS if count >= 4 else tuple(d[:3] for d in DAYS)
            regex.append("(" + "|".join(names) + ")")
        elif letter == "a":
            regex.append("(AM|PM)")
        elif letter in "ZX":
            regex.append(r"(Z|[+-]\d{2}(?::?\d{2})?)")
        elif letter == "z":
            regex.append(r"([A-Za-z_/+\-0-9]+)")
        elif letter == "G":
            regex.append("(AD|BC)")
        else:
            regex.append("(" + _NUMERIC[letter] + ")")
        fields.append(token)
    match = re.fullmatch("".join(regex), text.strip(), flags=re.IGNORECASE)
    if not match:
        raise DateError(f"{text!r} does not match the input format {pattern!r}")
    year, month, day, hour, minute, second, milli = 1970, 1, 1, 0, 0, 0, 0
    pm: bool | None = None
    offset: tzinfo | None = None
    for (letter, count), value in zip(fields, match.groups(), strict=True):
        if letter in "yY":
            year = int(value) + (2000 if count == 2 else 0)
        elif letter in "ML":
            if count >= 3:
                month = [m.lower()[: len(value)] for m in MONTHS].index(value.lower()) + 1
            else:
                month = int(value)
        elif letter == "d":
            day = int(value)
        elif letter in "Hk":
            hour = int(value) % 24
        elif letter in "Kh":
            hour = int(value) % 12
        elif letter == "a":
            pm = value.upper() == "PM"
        elif letter == "m":
            minute = int(value)
        elif letter == "s":
            second = int(value)
        elif letter == "S":
            milli = int(value)
        elif letter in "ZX":
            offset = UTC if value.upper() == "Z" else zone(value)
        elif letter == "z":
            offset = zone(value)
    if pm is not None:
        hour = hour % 12 + (12 if pm else 0)
    try:
        naive = datetime(year, month, day, hour, minute, second, milli * 1000)
    except ValueError as exc:
        raise DateError(f"{text!r} is not a valid date: {exc}") from None
    return naive.replace(tzinfo=offset or tz)


def read_date(value: object, input_format: str | None, tz: tzinfo) -> datetime:
    """A helper's date argument: epoch milliseconds (a number), an ISO-8601 string,
    or text in ``input_format``. A value without an offset is a time in ``tz``."""
    if isinstance(value, bool) or value is None or value == "":
        raise DateError("no date given")
    if isinstance(value, (int, float)):
        return from_millis(int(value), tz)
    text = str(value).strip()
    if input_format:
        return parse_date(text, input_format, tz).astimezone(tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DateError(f"{text!r} is not an ISO-8601 date; give inputFormat") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=tz)
    return parsed.astimezone(tz)


def from_millis(ms: int, tz: tzinfo) -> datetime:
    """Epoch milliseconds as an aware datetime in ``tz``."""
    return (_EPOCH + timedelta(milliseconds=ms)).astimezone(tz)
