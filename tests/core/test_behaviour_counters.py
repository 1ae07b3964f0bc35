from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.behaviour_counters import (
    DAILY_BUCKETS,
    DAY_MS,
    EMPTY,
    HOUR_MS,
    HOURLY_BUCKETS,
    MAX_EVENT_TYPES,
    OTHER,
    BehaviourCounters,
    count_since,
    first_seen,
    is_tracked,
    last_seen,
    prune,
    record,
    record_many,
    window_counts,
)

NOW = int(datetime(2026, 5, 1, 15, 30, 12, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000

nows = st.integers(min_value=1_700_000_000_000, max_value=1_900_000_000_000)
event_types = st.sampled_from(["pageView", "_session.start", "purchase", "_email.open"])
# offsets before now, up to beyond retention, and a little into the future
offsets = st.integers(min_value=-2 * HOUR_MS, max_value=(DAILY_BUCKETS + 5) * DAY_MS)
events = st.lists(st.tuples(event_types, offsets), max_size=60)


def retention_start(now: int) -> int:
    return (now // DAY_MS - (DAILY_BUCKETS - 1)) * DAY_MS


def brute_force(raw: list[tuple[str, int]], event_type: str, since: int, now: int) -> int:
    """Count over raw timestamps: future clamped to now, nothing before retention."""
    start = max(since, retention_start(now))
    return sum(
        1 for t, ts in raw if t == event_type and start <= min(ts, now) <= now
    )


@st.composite
def aligned_since(draw: st.DrawFn, now: int) -> int:
    """An hour boundary within the last 48 h or a day boundary within the last 90 days."""
    if draw(st.booleans()):
        hour = draw(st.integers(now // HOUR_MS - (HOURLY_BUCKETS - 1), now // HOUR_MS))
        return hour * HOUR_MS
    day = draw(st.integers(now // DAY_MS - (DAILY_BUCKETS - 1), now // DAY_MS))
    return day * DAY_MS


def as_raw(now: int, items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [(t, now - offset) for t, offset in items]


@given(nows, events, st.data())
def test_aligned_windows_equal_a_brute_force_count(
    now: int, items: list[tuple[str, int]], data: st.DataObject
) -> None:
    raw = as_raw(now, items)
    counters = record_many(EMPTY, raw, now)
    for event_type in ("pageView", "_session.start", "purchase", "_email.open"):
        since = data.draw(aligned_since(now))
        assert count_since(counters, event_type, since, now) == brute_force(
            raw, event_type, since, now
        )


@given(nows, events, st.integers(min_value=0, max_value=120 * DAY_MS))
def test_unaligned_windows_round_up_and_never_over_count(
    now: int, items: list[tuple[str, int]], back: int
) -> None:
    raw = as_raw(now, items)
    counters = record_many(EMPTY, raw, now)
    since = now - back
    hour_floor = (now // HOUR_MS - (HOURLY_BUCKETS - 1)) * HOUR_MS
    clamped = max(since, retention_start(now))
    unit = HOUR_MS if clamped >= hour_floor else DAY_MS
    rounded_up = -(-clamped // unit) * unit
    got = count_since(counters, "pageView", since, now)
    assert got == brute_force(raw, "pageView", rounded_up, now)
    assert got <= brute_force(raw, "pageView", since, now)


@given(nows, events, st.lists(st.integers(min_value=0, max_value=120 * DAY_MS), max_size=8),
       st.integers(min_value=0, max_value=3 * DAY_MS))
def test_window_counts_equal_count_since_per_window(
    now: int, items: list[tuple[str, int]], windows: list[int], later: int
) -> None:
    windows += [HOUR_MS, 47 * HOUR_MS, 48 * HOUR_MS, 7 * DAY_MS, 90 * DAY_MS]
    counters = record_many(EMPTY, as_raw(now, items), now)
    for at in (now, now + later):
        for event_type in ("pageView", "purchase", "never"):
            expected = [count_since(counters, event_type, at - w, at) for w in windows]
            assert window_counts(counters, event_type, windows, at) == expected
            # a tuple of windows is memoised per instant: asked twice, answered alike
            assert window_counts(counters, event_type, tuple(windows), at) == expected
            assert window_counts(counters, event_type, tuple(windows), at) == expected


many_types = st.sampled_from(
    [f"custom{i:03d}" for i in range(90)] + [f"_sys.{i:02d}" for i in range(40)] + [OTHER]
)


@given(nows, st.lists(st.tuples(many_types, offsets), max_size=300), st.randoms())
@settings(max_examples=50)
def test_recording_order_does_not_matter_even_past_the_type_cap(
    now: int, items: list[tuple[str, int]], rnd: object
) -> None:
    raw = as_raw(now, items)
    shuffled = list(raw)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    one_by_one = EMPTY
    for event_type, ts in shuffled:
        one_by_one = record(one_by_one, event_type, ts, now)
    assert one_by_one == record_many(EMPTY, raw, now)
    assert len([t for t in one_by_one.types if t != OTHER]) <= MAX_EVENT_TYPES


@given(nows, events, st.integers(min_value=0, max_value=100 * DAY_MS), st.data())
def test_pruning_never_changes_answers_inside_retention(
    now1: int, items: list[tuple[str, int]], later: int, data: st.DataObject
) -> None:
    raw = as_raw(now1, items)
    counters = record_many(EMPTY, raw, now1)
    now2 = now1 + later
    pruned = prune(counters, now2)
    for event_type in ("pageView", "purchase"):
        since = data.draw(aligned_since(now2))
        expected = brute_force([(t, min(ts, now1)) for t, ts in raw], event_type, since, now2)
        assert count_since(pruned, event_type, since, now2) == expected
        assert count_since(counters, event_type, since, now2) == expected


@given(
    nows,
    st.lists(st.tuples(event_types, st.integers(0, 3 * DAY_MS), st.integers(0, 2 * DAY_MS)),
             max_size=40),
    st.data(),
)
def test_recording_as_time_passes_equals_counting_at_the_end(
    start: int, steps: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    """Each event is recorded when it arrives (now advancing, events may be late)."""
    now, counters, raw = start, EMPTY, []
    for event_type, advance, lateness in steps:
        now += advance
        ts = now - lateness
        counters = record(counters, event_type, ts, now)
        if ts >= retention_start(now):
            raw.append((event_type, ts))
    since = data.draw(aligned_since(now))
    for event_type in ("pageView", "purchase"):
        assert count_since(counters, event_type, since, now) == brute_force(
            raw, event_type, since, now
        )


@given(nows, events)
def test_dict_round_trip_through_json(now: int, items: list[tuple[str, int]]) -> None:
    counters = record_many(EMPTY, as_raw(now, items), now)
    assert BehaviourCounters.from_dict(json.loads(json.dumps(counters.to_dict()))) == counters
    # the stored form is kept with the value: an unchanged type is not built again
    back = BehaviourCounters.from_dict(json.loads(json.dumps(counters.to_dict())))
    again = record_many(back, [], now)
    assert again.to_dict() == counters.to_dict()
    assert all(again.types[name].to_dict() is back.types[name].to_dict() for name in again.types)


def test_buckets_stay_bounded() -> None:
    counters = EMPTY
    for minute in range(0, 200 * 24 * 60, 37):
        now = NOW + minute * MINUTE
        counters = record(counters, "pageView", now, now)
    counts = counters.types["pageView"]
    assert len(counts.hours) == HOURLY_BUCKETS
    assert len(counts.days) == DAILY_BUCKETS


def test_hour_and_day_boundaries() -> None:
    midnight = NOW // DAY_MS * DAY_MS
    raw = [
        ("pageView", midnight - 1),               # yesterday 23:59:59.999
        ("pageView", midnight),                   # today 00:00
        ("pageView", NOW - 2 * HOUR_MS),
        ("pageView", NOW - 3 * DAY_MS),
    ]
    counters = record_many(EMPTY, raw, NOW)
    assert count_since(counters, "pageView", midnight, NOW) == 2
    assert count_since(counters, "pageView", midnight - HOUR_MS, NOW) == 3
    assert count_since(counters, "pageView", midnight - DAY_MS, NOW) == 3
    assert count_since(counters, "pageView", midnight - 3 * DAY_MS, NOW) == 4
    # "the last 7 days" as now - 7 days counts 7 calendar days including today
    assert count_since(counters, "pageView", NOW - 7 * DAY_MS, NOW) == 4
    assert count_since(counters, "pageView", NOW + 1, NOW) == 0
    assert count_since(counters, "purchase", 0, NOW) == 0


def test_old_events_are_ignored_and_future_ones_clamped() -> None:
    too_old = retention_start(NOW) - 1
    assert record(EMPTY, "pageView", too_old, NOW) == EMPTY
    counters = record(EMPTY, "pageView", NOW + DAY_MS, NOW)
    assert last_seen(counters, "pageView") == NOW
    assert count_since(counters, "pageView", NOW // HOUR_MS * HOUR_MS, NOW) == 1


def test_first_and_last_seen_outlive_the_buckets() -> None:
    counters = record_many(EMPTY, [("purchase", NOW - DAY_MS), ("purchase", NOW - 5)], NOW)
    assert first_seen(counters, "purchase") == NOW - DAY_MS
    assert last_seen(counters, "purchase") == NOW - 5
    assert first_seen(counters, "pageView") is None
    assert last_seen(counters, "pageView") is None
    much_later = prune(counters, NOW + 200 * DAY_MS)
    assert much_later.types["purchase"].hours == ()
    assert much_later.types["purchase"].days == ()
    assert last_seen(much_later, "purchase") == NOW - 5


def test_types_past_the_cap_go_to_other_reserved_types_first() -> None:
    raw = [(f"custom{i:03d}", NOW - i) for i in range(120)]
    raw += [("_session.start", NOW - 1000), ("_email.open", NOW - 2000)]
    counters = record_many(EMPTY, raw, NOW)
    tracked = [t for t in counters.types if t != OTHER]
    assert len(tracked) == MAX_EVENT_TYPES
    assert is_tracked(counters, "_session.start") and is_tracked(counters, "_email.open")
    assert is_tracked(counters, "custom000") and is_tracked(counters, "custom097")
    assert not is_tracked(counters, "custom098")
    # the 22 types past the cap are summed in OTHER; their own queries answer 0 / None
    assert count_since(counters, OTHER, NOW - HOUR_MS, NOW) == 22
    assert count_since(counters, "custom119", NOW - HOUR_MS, NOW) == 0
    assert last_seen(counters, "custom119") is None
    assert first_seen(counters, OTHER) == NOW - 119
    assert last_seen(counters, OTHER) == NOW - 98
    # a later event of an absorbed type is counted in OTHER too
    later = record(counters, "custom119", NOW, NOW)
    assert count_since(later, OTHER, NOW - HOUR_MS, NOW) == 23
    assert not is_tracked(later, "custom119")
