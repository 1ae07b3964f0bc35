"""The date range of a KPI request, by Pinpoint's rules.

``kpi_date_range(start, end, now_ms)``: ISO-8601 ``start-time``/``end-time``,
inclusive; without ``end-time`` the range ends now, without ``start-time`` it
starts 31 days before its end; start must not be after end and the range is
at most 31 days (``DateRangeError`` says which rule broke).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from lodestar.core.timestamps import EPOCH, TimestampError, parse_timestamp

DEFAULT_RANGE_DAYS = 31
MAX_RANGE_DAYS = 31
DAY_MS = 86_400_000


@dataclass(frozen=True)
class KpiDateRange:
    """The inclusive window a KPI covers, epoch milliseconds UTC."""

    start_ms: int
    end_ms: int

    @property
    def whole_days(self) -> bool:
        """Whether it starts at a UTC midnight and ends the millisecond before one."""
        return self.start_ms % DAY_MS == 0 and (self.end_ms + 1) % DAY_MS == 0


class DateRangeError(ValueError):
    """The dates cannot be used; the message says why."""


def kpi_date_range(start: str | None, end: str | None, now_ms: int) -> KpiDateRange:
    """The range a request's ``start-time`` and ``end-time`` (either may be absent) ask for."""
    try:
        end_ms = now_ms if not end else parse_timestamp(end, "end-time")
        start_ms = (end_ms - DEFAULT_RANGE_DAYS * DAY_MS if not start
                    else parse_timestamp(start, "start-time"))
    except TimestampError as exc:
        raise DateRangeError(str(exc)) from None
    if start_ms > end_ms:
        raise DateRangeError("start-time must not be after end-time.")
    if end_ms - start_ms > MAX_RANGE_DAYS * DAY_MS:
        raise DateRangeError(f"The date range must be {MAX_RANGE_DAYS} days or fewer.")
    return KpiDateRange(start_ms, end_ms)


def day_of(ms: int) -> str:
    """The UTC calendar day of epoch millis, ``YYYY-MM-DD`` (the ``Date`` grouping's value)."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%d")
