"""Per-endpoint event counts in time buckets, so behavioural segments need no scan.

Layout (per event type):

- ``hours``: ``(hour index, count)`` for the 48 UTC hours ending with the
  current one (hour index = ``ts_ms // 3_600_000``);
- ``days``: ``(day index, count)`` for the 90 UTC days ending with today
  (day index = ``ts_ms // 86_400_000``);
- ``first_seen`` / ``last_seen``: the earliest and latest recorded event
  time, kept for as long as the type is kept (they outlive the buckets).

Every event increments both its hour and its day bucket. 48 hours answer
"in the last 24 h" (and Pinpoint's ``HR_24`` recency) at hour precision with a
day of slack; 90 days cover Pinpoint's longest recency window (``DAY_30``)
and its 90-day analytics horizon. Buckets are sparse, so a type costs at
most 48 + 90 pairs and an idle one only two timestamps.

Retention is relative to ``now_ms``: ``record`` ignores events older than the
first retained day (they change nothing, not even first/last seen), clamps
events from the future to ``now_ms`` (client clocks run ahead), and prunes
buckets that fell out of retention. The value depends only on the multiset of
recorded events and ``now_ms``, never on recording order.

Size cap: at most ``MAX_EVENT_TYPES`` (100) named types per endpoint. Beyond
that the types kept are the first 100 in the order "reserved ``_``-prefixed
types first, then by name" and every other type is merged into ``OTHER``
(``"__other__"``), whose counts are the sum of what it absorbed. The rule is
order-independent; a type merged into ``OTHER`` is never split out again and
queries for it answer 0 / ``None`` (see ``is_tracked``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, TypeVar

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
HOURLY_BUCKETS = 48
DAILY_BUCKETS = 90
MAX_EVENT_TYPES = 100
OTHER = "__other__"

Buckets = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class TypeCounts:
    """One event type: first/last recorded time (ms) and ascending sparse buckets."""

    first_seen: int
    last_seen: int
    hours: Buckets = ()
    days: Buckets = ()
    _stored: dict[str, Any] | None = field(
        default=None, repr=False, compare=False, hash=False)
    """The stored form this value was read from or last written as (never mutated)."""

    def to_dict(self) -> dict[str, Any]:
        """``{"first", "last", "hours": [[index, n] …], "days": …}``, built once per value
        (a type no event touched keeps its value, so it is not built again); callers
        must not mutate it."""
        stored = self._stored
        if stored is None:
            stored = {"first": self.first_seen, "last": self.last_seen,
                      "hours": [[index, n] for index, n in self.hours],
                      "days": [[index, n] for index, n in self.days]}
            object.__setattr__(self, "_stored", stored)
        return stored

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> TypeCounts:
        """Inverse of ``to_dict``."""
        hours, days = item.get("hours", ()), item.get("days", ())
        return cls(int(item["first"]), int(item["last"]),
                   tuple([(int(i), int(n)) for i, n in hours]) if hours else (),
                   tuple([(int(i), int(n)) for i, n in days]) if days else (),
                   item if isinstance(item, dict) else None)


@dataclass(frozen=True)
class BehaviourCounters:
    """All event types of one endpoint. Build it with ``record``; never mutate it."""

    types: Mapping[str, TypeCounts] = field(default_factory=dict)
    _counts: dict[tuple[str, int, int], int] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """``count_since`` answers already computed on this (immutable) value."""
    memo: dict[tuple[str, int, int], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """Other derived values of this (immutable) value, memoised: keyed ``(event type,
    parameter, now_ms)`` (``count_since`` uses parameter -1, ``segment_predicate``
    window lengths)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form: ``{"types": {name: {"first", "last", "hours", "days"}}}``
        (``TypeCounts.to_dict``; callers must not mutate it)."""
        return {"types": {name: counts.to_dict()
                          for name, counts in sorted(self.types.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BehaviourCounters:
        """Inverse of ``to_dict``; ``None`` or ``{}`` is the empty value."""
        if not data:
            return cls()
        return cls({name: TypeCounts.from_dict(item)
                    for name, item in data.get("types", {}).items()})


EMPTY = BehaviourCounters()


def record(
    counters: BehaviourCounters, event_type: str, ts_ms: int, now_ms: int
) -> BehaviourCounters:
    """``counters`` plus one event of ``event_type`` at ``ts_ms``, pruned as of ``now_ms``."""
    return record_many(counters, [(event_type, ts_ms)], now_ms)


def prune(counters: BehaviourCounters, now_ms: int) -> BehaviourCounters:
    """``counters`` without the buckets that are out of retention at ``now_ms``."""
    return record_many(counters, (), now_ms)


def record_many(
    counters: BehaviourCounters, events: Iterable[tuple[str, int]], now_ms: int
) -> BehaviourCounters:
    """Record ``(event_type, ts_ms)`` pairs in one pass; same result as ``record`` one by one."""
    hour_floor, day_floor = _floors(now_ms)
    work: dict[str, _Builder] = {}
    for event_type, ts_ms in events:
        ts = min(ts_ms, now_ms)
        if ts < day_floor * DAY_MS:
            continue
        builder = work.get(event_type)
        if builder is None:
            builder = work[event_type] = _Builder.of(counters.types.get(event_type))
        builder.add(ts, hour_floor)

    types: dict[str, TypeCounts] = {}
    for name, counts in counters.types.items():
        if name in work:
            continue
        stale = (counts.hours and counts.hours[0][0] < hour_floor) or (
            counts.days and counts.days[0][0] < day_floor
        )
        types[name] = _Builder.of(counts).freeze(hour_floor, day_floor) if stale else counts
    for name, builder in work.items():
        types[name] = builder.freeze(hour_floor, day_floor)
    return BehaviourCounters(_cap(types))


def count_since(
    counters: BehaviourCounters, event_type: str, since_ms: int, now_ms: int
) -> int:
    """Events of ``event_type`` with ``since_ms <= time <= now_ms``.

    Exact when ``since_ms`` is an hour boundary within the last 48 hours or a
    day (UTC midnight) boundary within the last 90 days. Otherwise ``since_ms``
    is rounded *up* to the next bucket boundary (hour within 48 hours, else
    day), so the answer never over-counts: "the last 7 days" as
    ``now - 7 days`` counts 7 UTC calendar days including today. A
    ``since_ms`` before the retention start is clamped to it. ``now_ms`` must
    not be earlier than the ``now_ms`` of any ``record`` call.
    """
    memo = counters._counts
    key = (event_type, since_ms, now_ms)
    known = memo.get(key)
    if known is not None:
        return known
    counts = counters.types.get(event_type)
    if counts is None or since_ms > now_ms:
        return 0
    sums = counters.memo.get((event_type, -1, now_ms))
    if sums is None:
        sums = remember(counters.memo, (event_type, -1, now_ms), _Sums.of(counts))
    return remember(memo, key, _count(sums, since_ms, now_ms))


def window_counts(
    counters: BehaviourCounters, event_type: str, windows: Iterable[int], now_ms: int
) -> list[int]:
    """``count_since(counters, event_type, now_ms - w, now_ms)`` for each ``w >= 0`` of
    ``windows``, in order: the running totals are looked up once for all of them."""
    counts = counters.types.get(event_type)
    if counts is None:
        return [0 for _ in windows]
    sums = counters.memo.get((event_type, -1, now_ms))
    if sums is None:
        sums = remember(counters.memo, (event_type, -1, now_ms), _Sums.of(counts))
    spans = _spans(windows, now_ms)
    hours, hour_totals, days, day_totals = sums.hours, sums.hour_totals, sums.days, sums.day_totals
    hour_end = hour_totals[bisect_right(hours, now_ms // HOUR_MS)]
    day_end = day_totals[bisect_right(days, now_ms // DAY_MS)]
    return [0 if first is None else
            hour_end - hour_totals[bisect_left(hours, first)] if hourly else
            day_end - day_totals[bisect_left(days, first)]
            for hourly, first in spans]


_Spans = tuple[tuple[bool, int | None], ...]
_SPANS: dict[tuple[Any, int], _Spans] = {}


def _spans(windows: Iterable[int], now_ms: int) -> _Spans:
    """Per window of ``window_counts``: whether it is counted in hours, and its first
    bucket index (None: empty) — the same for every counter at ``now_ms``, so memoised
    for a tuple of windows."""
    key = (windows, now_ms) if isinstance(windows, tuple) else None
    known = _SPANS.get(key) if key is not None else None
    if known is not None:
        return known
    hour_floor, day_floor = _floors(now_ms)
    hour_start, day_start = hour_floor * HOUR_MS, day_floor * DAY_MS
    last_hour, last_day = now_ms // HOUR_MS, now_ms // DAY_MS
    out: list[tuple[bool, int | None]] = []
    for window in windows:
        since = max(now_ms - window, day_start)
        if since >= hour_start:
            first = -(-since // HOUR_MS)
            out.append((True, first if first <= last_hour else None))
        else:
            first = -(-since // DAY_MS)
            out.append((False, first if first <= last_day else None))
    spans = tuple(out)
    if key is not None:
        remember(_SPANS, key, spans)
    return spans


MEMO_LIMIT = 4096
"""Entries a memo of one counters value holds before it starts afresh (a value kept
for long, e.g. by the engine's entry cache, is asked at ever new times)."""

_M = TypeVar("_M")


def remember(memo: dict[Any, Any], key: Any, value: _M) -> _M:
    """``memo[key] = value`` (emptying ``memo`` first when it is full); ``value``."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


@dataclass(frozen=True)
class _Sums:
    """One type's bucket indexes with running totals, so that a window's count is two
    bisections (``count_since`` asks many windows of the same counts)."""

    hours: tuple[int, ...]
    hour_totals: tuple[int, ...]
    days: tuple[int, ...]
    day_totals: tuple[int, ...]

    @classmethod
    def of(cls, counts: TypeCounts) -> _Sums:
        hours, days = counts.hours, counts.days
        return cls(tuple([i for i, _ in hours]), (0, *accumulate([n for _, n in hours])),
                   tuple([i for i, _ in days]), (0, *accumulate([n for _, n in days])))


def _count(sums: _Sums, since_ms: int, now_ms: int) -> int:
    """Events in the buckets ``first <= index <= last`` (see ``count_since``)."""
    hour_floor, day_floor = _floors(now_ms)
    since = max(since_ms, day_floor * DAY_MS)
    if since >= hour_floor * HOUR_MS:
        first, last = -(-since // HOUR_MS), now_ms // HOUR_MS
        indexes, totals = sums.hours, sums.hour_totals
    else:
        first, last = -(-since // DAY_MS), now_ms // DAY_MS
        indexes, totals = sums.days, sums.day_totals
    if first > last:
        return 0
    return totals[bisect_right(indexes, last)] - totals[bisect_left(indexes, first)]


def first_seen(counters: BehaviourCounters, event_type: str) -> int | None:
    """Earliest recorded time of ``event_type`` (ms), or ``None`` if never recorded."""
    counts = counters.types.get(event_type)
    return None if counts is None else counts.first_seen


def last_seen(counters: BehaviourCounters, event_type: str) -> int | None:
    """Latest recorded time of ``event_type`` (ms), or ``None`` if never recorded."""
    counts = counters.types.get(event_type)
    return None if counts is None else counts.last_seen


def is_tracked(counters: BehaviourCounters, event_type: str) -> bool:
    """Whether ``event_type`` has its own counts (False if never seen or merged into OTHER)."""
    return event_type in counters.types


def _floors(now_ms: int) -> tuple[int, int]:
    """The first retained hour index and day index at ``now_ms``."""
    return now_ms // HOUR_MS - (HOURLY_BUCKETS - 1), now_ms // DAY_MS - (DAILY_BUCKETS - 1)


def _priority(name: str) -> tuple[bool, str]:
    return (not name.startswith("_"), name)


def _cap(types: dict[str, TypeCounts]) -> dict[str, TypeCounts]:
    names = sorted((n for n in types if n != OTHER), key=_priority)
    if len(names) <= MAX_EVENT_TYPES:
        return types
    kept = {name: types[name] for name in names[:MAX_EVENT_TYPES]}
    merged = [types[name] for name in names[MAX_EVENT_TYPES:]]
    if OTHER in types:
        merged.append(types[OTHER])
    kept[OTHER] = _merge(merged)
    return kept


def _merge(all_counts: list[TypeCounts]) -> TypeCounts:
    hours: dict[int, int] = {}
    days: dict[int, int] = {}
    for counts in all_counts:
        for index, n in counts.hours:
            hours[index] = hours.get(index, 0) + n
        for index, n in counts.days:
            days[index] = days.get(index, 0) + n
    return TypeCounts(
        first_seen=min(c.first_seen for c in all_counts),
        last_seen=max(c.last_seen for c in all_counts),
        hours=tuple(sorted(hours.items())),
        days=tuple(sorted(days.items())),
    )


@dataclass
class _Builder:
    """Mutable working copy of one type's counts inside ``record_many``."""

    first_seen: int | None
    last_seen: int | None
    hours: dict[int, int]
    days: dict[int, int]

    @classmethod
    def of(cls, counts: TypeCounts | None) -> _Builder:
        if counts is None:
            return cls(None, None, {}, {})
        return cls(counts.first_seen, counts.last_seen, dict(counts.hours), dict(counts.days))

    def add(self, ts: int, hour_floor: int) -> None:
        self.first_seen = ts if self.first_seen is None else min(self.first_seen, ts)
        self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
        day = ts // DAY_MS
        self.days[day] = self.days.get(day, 0) + 1
        hour = ts // HOUR_MS
        if hour >= hour_floor:
            self.hours[hour] = self.hours.get(hour, 0) + 1

    def freeze(self, hour_floor: int, day_floor: int) -> TypeCounts:
        assert self.first_seen is not None and self.last_seen is not None
        return TypeCounts(
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            hours=tuple(sorted((i, n) for i, n in self.hours.items() if i >= hour_floor)),
            days=tuple(sorted((i, n) for i, n in self.days.items() if i >= day_floor)),
        )
