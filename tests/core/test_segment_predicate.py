from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.behaviour_counters import DAY_MS, EMPTY, HOUR_MS, count_since, record_many
from lodestar.core.endpoint_request import ChannelType, Demographic, EndpointUser, Location
from lodestar.core.endpoint_state import EndpointState, blank_state
from lodestar.core.segment_definition import parse_segment
from lodestar.core.segment_predicate import (
    CompiledSegment,
    compile_segment,
    derived_counter_types,
    falling_counts,
    haversine_km,
    window_buckets,
)

MAY_1 = 1_777_593_600_000  # 2026-05-01T00:00:00Z
NOW = MAY_1 + 12 * HOUR_MS
BASE = blank_state("app", "ep", MAY_1 - 10 * DAY_MS)


def seg(dimensions: dict[str, Any]) -> CompiledSegment:
    return compile_segment(parse_segment({"Name": "s", "Dimensions": dimensions}))


def ok(segment: CompiledSegment, state: EndpointState, now: int = NOW,
       memberships: dict[str, bool] | None = None) -> bool:
    return segment.matches(state, now, memberships or {})


def attrs(**values: list[str]) -> EndpointState:
    return replace(BASE, attributes={k: tuple(v) for k, v in values.items()})


def attr_seg(kind: str, *values: str, name: str = "a") -> CompiledSegment:
    return seg({"Attributes": {name: {"AttributeType": kind, "Values": list(values)}}})


def test_inclusive_exclusive_contains() -> None:
    inc, exc, con = attr_seg("INCLUSIVE", "pro", "team"), attr_seg("EXCLUSIVE", "pro"), \
        attr_seg("CONTAINS", "ro")
    assert ok(inc, attrs(a=["free", "team"])) and not ok(inc, attrs(a=["free"]))
    assert not ok(inc, BASE)
    assert ok(exc, attrs(a=["free"])) and ok(exc, BASE) and not ok(exc, attrs(a=["x", "pro"]))
    assert ok(con, attrs(a=["pro"])) and not ok(con, attrs(a=["free"]))
    assert inc.inputs == frozenset({"Attributes.a"})


def test_user_attributes_read_the_user() -> None:
    segment = seg({"UserAttributes": {"tier": {"Values": ["gold"]}}})
    state = replace(BASE, user=EndpointUser("u", {"tier": ("gold",)}))
    assert ok(segment, state) and not ok(segment, BASE)
    assert not ok(segment, attrs(tier=["gold"]))
    assert segment.inputs == frozenset({"User.UserAttributes.tier"})


def test_date_attributes() -> None:
    state = attrs(a=["not a date", "2026-04-30T10:00:00Z"])
    assert ok(attr_seg("BEFORE", "2026-05-01T00:00:00Z"), state)
    assert not ok(attr_seg("BEFORE", "2026-04-30T10:00:00Z"), state)  # strictly before
    assert ok(attr_seg("AFTER", "2026-04-30"), state)
    assert ok(attr_seg("BETWEEN", "2026-04-30T10:00:00Z", "2026-04-30T10:00:00Z"), state)
    assert ok(attr_seg("ON", "2026-04-30"), state)
    assert ok(attr_seg("ON", "2026-05-02", "2026-04-30T23:59:59Z"), state)
    assert not ok(attr_seg("ON", "2026-05-01"), state)
    assert not ok(attr_seg("BEFORE", "2027-01-01"), attrs(a=["junk"]))


def test_relative_date_attributes_flip_when_the_clock_passes_them() -> None:
    trial_end = MAY_1 - 2 * DAY_MS
    state = attrs(a=["2026-04-29T00:00:00Z"])
    ended_a_week_ago = attr_seg("BEFORE", "NOW-P7D")
    assert not ok(ended_a_week_ago, state)
    flip = ended_a_week_ago.next_flip_ms(state, NOW)
    assert flip is not None and flip == trial_end + 7 * DAY_MS + 1
    assert not ok(ended_a_week_ago, state, flip - 1) and ok(ended_a_week_ago, state, flip)
    today = attr_seg("ON", "NOW-P2D")
    assert ok(today, state) and today.next_flip_ms(state, NOW) == MAY_1 + DAY_MS
    assert not ok(today, state, MAY_1 + DAY_MS)
    assert attr_seg("BEFORE", "2026-05-10").next_flip_ms(state, NOW) is None


def test_recency() -> None:
    active = seg({"Behavior": {"Recency": {"Duration": "HR_24", "RecencyType": "ACTIVE"}}})
    inactive = seg({"Behavior": {"Recency": {"Duration": "HR_24", "RecencyType": "INACTIVE"}}})
    state = replace(BASE, last_active_ms=NOW - HOUR_MS)
    assert ok(active, state) and not ok(inactive, state)
    assert not ok(active, BASE) and ok(inactive, BASE)
    flip = NOW + 23 * HOUR_MS + 1
    assert active.next_flip_ms(state, NOW) == flip == inactive.next_flip_ms(state, NOW)
    assert ok(active, state, flip - 1) and not ok(active, state, flip)
    assert active.next_flip_ms(BASE, NOW) is None
    assert active.inputs == frozenset({"LastActive"})


def test_demographic_and_country() -> None:
    state = replace(BASE, channel_type=ChannelType.APNS,
                    demographic=Demographic(platform="ios", make="Apple", app_version="2.1"),
                    location=Location(country="US"))
    assert ok(seg({"Demographic": {"Platform": {"Values": ["ios", "android"]}}}), state)
    assert not ok(seg({"Demographic": {"Make": {"DimensionType": "EXCLUSIVE",
                                                "Values": ["Apple"]}}}), state)
    assert ok(seg({"Demographic": {"Model": {"DimensionType": "EXCLUSIVE",
                                             "Values": ["x"]}}}), state)
    assert not ok(seg({"Demographic": {"Model": {"Values": ["x"]}}}), state)
    assert ok(seg({"Demographic": {"AppVersion": {"Values": ["2.1"]}}}), state)
    channel = seg({"Demographic": {"Channel": {"Values": ["APNS", "GCM"]}}})
    assert ok(channel, state) and not ok(channel, replace(state, channel_type=ChannelType.SMS))
    assert channel.inputs == frozenset({"ChannelType"})
    device = seg({"Demographic": {"DeviceType": {"Values": ["Mobile"]}}})
    assert ok(device, state) and not ok(device, replace(state, channel_type=ChannelType.EMAIL))
    country = seg({"Location": {"Country": {"DimensionType": "EXCLUSIVE", "Values": ["US"]}}})
    assert not ok(country, state) and ok(country, BASE)
    assert country.inputs == frozenset({"Location.Country"})


def test_gps_point() -> None:
    seattle, portland = (47.6, -122.3), (45.5, -122.7)
    assert 230 < haversine_km(*seattle, *portland) < 236
    near = seg({"Location": {"GPSPoint": {"Coordinates": {"Latitude": 47.6, "Longitude": -122.3},
                                          "RangeInKilometers": 240}}})
    far = seg({"Location": {"GPSPoint": {"Coordinates": {"Latitude": 47.6, "Longitude": -122.3},
                                         "RangeInKilometers": 200}}})
    state = replace(BASE, location=Location(latitude=45.5, longitude=-122.7))
    assert ok(near, state) and not ok(far, state)
    assert not ok(near, replace(BASE, location=Location(latitude=45.5)))
    assert near.inputs == frozenset({"Location.Latitude", "Location.Longitude"})


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [("GREATER_THAN", 3, False), ("GREATER_THAN_OR_EQUAL", 3, True), ("LESS_THAN", 3.5, True),
     ("LESS_THAN_OR_EQUAL", 2, False), ("EQUAL", 3, True)],
)
def test_metrics(op: str, value: float, expected: bool) -> None:
    segment = seg({"Metrics": {"orders": {"ComparisonOperator": op, "Value": value}}})
    assert ok(segment, replace(BASE, metrics={"orders": 3.0})) is expected
    assert not ok(segment, BASE)


def with_events(*events: tuple[str, int], now: int = NOW) -> EndpointState:
    return replace(BASE, counters=record_many(BASE.counters, events, now),
                   last_active_ms=max(t for _, t in events))


def performed(op: str, count: int, **window: int) -> CompiledSegment:
    return seg({"Behavioral": {"Performed": [
        {"EventType": "buy", "Operator": op, "Count": count, **window}]}})


def test_performed_counts_and_slides_out() -> None:
    state = with_events(("buy", NOW - 5 * HOUR_MS), ("buy", NOW - 2 * HOUR_MS))
    twice = performed("AT_LEAST", 2, WithinHours=6)
    assert ok(twice, state) and twice.inputs == frozenset({"Events.buy"})
    flip = twice.next_flip_ms(state, NOW)
    assert flip is not None and ok(twice, state, flip - 1) and not ok(twice, state, flip)
    assert flip == (NOW - 5 * HOUR_MS) // HOUR_MS * HOUR_MS + 6 * HOUR_MS + 1
    assert ok(performed("EXACTLY", 2, WithinDays=1), state)
    assert not ok(performed("AT_MOST", 1, WithinDays=7), state)
    at_most = performed("AT_MOST", 1, WithinHours=6)
    assert at_most.next_flip_ms(state, NOW) == flip
    assert ok(performed("AT_MOST", 0, WithinDays=3), BASE)
    assert performed("AT_MOST", 0, WithinDays=3).next_flip_ms(BASE, NOW) is None
    old = with_events(("buy", NOW - 20 * DAY_MS))
    assert ok(performed("AT_LEAST", 1, WithinDays=30), old)
    assert not ok(performed("AT_LEAST", 1, WithinDays=14), old)


def test_performed_with_an_attribute_filter_reads_the_derived_counter() -> None:
    segment = seg({"Behavioral": {"Performed": [{
        "EventType": "buy", "Attributes": {"plan": "pro"}, "Count": 1, "WithinDays": 7}]}})
    (condition,) = segment.counter_types
    assert condition.counter_type == "buy[plan=pro]"
    assert segment.inputs == frozenset({"Events.buy[plan=pro]"})
    assert derived_counter_types("buy", {"plan": "pro", "x": "1"}, segment.counter_types) == [
        "buy[plan=pro]"]
    assert derived_counter_types("buy", {"plan": "free"}, segment.counter_types) == []
    assert not ok(segment, with_events(("buy", NOW - HOUR_MS)))
    assert ok(segment, with_events(("buy[plan=pro]", NOW - HOUR_MS)))


def test_not_performed_since() -> None:
    segment = seg({"Behavioral": {"NotPerformedSince": [{"EventType": "login",
                                                          "Since": "NOW-P3D"}]}})
    state = with_events(("login", NOW - DAY_MS))
    assert ok(segment, BASE) and not ok(segment, state)
    flip = segment.next_flip_ms(state, NOW)
    assert flip == NOW + 2 * DAY_MS + 1
    assert not ok(segment, state, flip - 1) and ok(segment, state, flip)
    fixed = seg({"Behavioral": {"NotPerformedSince": [{"EventType": "login",
                                                        "Since": "2026-04-01"}]}})
    assert not ok(fixed, state) and fixed.next_flip_ms(state, NOW) is None


def test_first_and_last_seen() -> None:
    state = with_events(("buy", NOW - 3 * DAY_MS), ("buy", NOW - DAY_MS))
    first = seg({"Behavioral": {"FirstSeen": [{"EventType": "buy", "Before": "NOW-P2D"}]}})
    last = seg({"Behavioral": {"LastSeen": [{"EventType": "buy", "After": "NOW-P2D"}]}})
    assert ok(first, state) and ok(last, state) and not ok(first, BASE)
    assert last.next_flip_ms(state, NOW) == NOW + DAY_MS  # After is strict
    assert not ok(last, state, NOW + DAY_MS)
    created = seg({"Behavioral": {"FirstSeen": [{"After": "2026-04-01"}]}})
    assert ok(created, BASE) and created.inputs == frozenset()
    endpoint_last = seg({"Behavioral": {"LastSeen": [{"Before": "NOW-PT12H"}]}})
    assert ok(endpoint_last, state) and endpoint_last.inputs == frozenset({"LastActive"})


def test_segment_groups_and_sources() -> None:
    dims = [{"Metrics": {"m": {"ComparisonOperator": "EQUAL", "Value": 1}}},
            {"Attributes": {"a": {"Values": ["x"]}}}]
    state = replace(BASE, metrics={"m": 1.0})

    def group(include: str = "ALL", **kw: Any) -> CompiledSegment:
        return compile_segment(parse_segment({"SegmentGroups": {"Include": include,
                                                               "Groups": [kw]}}))

    assert not ok(group(Dimensions=dims), state)
    assert ok(group(Dimensions=dims, Type="ANY"), state)
    assert not ok(group(Dimensions=dims, Type="NONE"), state)
    assert ok(group(Dimensions=dims, Type="NONE"), BASE)
    assert ok(group("NONE", Dimensions=dims), state)
    sources = [{"Id": "s1"}, {"Id": "s2", "Version": 2}]
    any_of = group(SourceSegments=sources, Dimensions=dims[:1])
    assert any_of.inputs == frozenset({"Segment.s1", "Segment.s2", "Metrics.m"})
    assert ok(any_of, state, memberships={"s2": True})
    assert not ok(any_of, state) and not ok(any_of, BASE, memberships={"s1": True})
    all_of = group(SourceSegments=sources, SourceType="ALL")
    assert not ok(all_of, state, memberships={"s1": True})
    assert ok(all_of, state, memberships={"s1": True, "s2": True})
    none_of = group(SourceSegments=sources, SourceType="NONE")
    assert ok(none_of, state) and not ok(none_of, state, memberships={"s1": True})


def test_empty_dimensions_match_everything() -> None:
    segment = seg({})
    assert ok(segment, BASE) and segment.inputs == frozenset()
    assert segment.next_flip_ms(BASE, NOW) is None


def test_a_condition_off_the_clock_settles_the_next_flip() -> None:
    """ALL with a false condition off the clock, or ANY with a true one, cannot change
    with time: no flip; otherwise the timed conditions' earliest flip."""
    bought = replace(BASE, counters=record_many(BASE.counters, [("buy", NOW - HOUR_MS)], NOW))
    timed = {"Behavioral": {"Performed": [{"EventType": "buy", "Count": 1, "WithinHours": 2}]}}
    both = seg({"Attributes": {"plan": {"Values": ["pro"]}}, **timed})
    leaves_window = NOW - HOUR_MS - (NOW - HOUR_MS) % HOUR_MS + 2 * HOUR_MS + 1
    assert both.next_flip_ms(bought, NOW) is None
    pro = replace(bought, attributes={"plan": ("pro",)})
    assert ok(both, pro) and both.next_flip_ms(pro, NOW) == leaves_window
    assert not ok(both, pro, leaves_window) and ok(both, pro, leaves_window - 1)
    either = compile_segment(parse_segment({"SegmentGroups": {"Include": "ALL", "Groups": [{
        "Type": "ANY", "Dimensions": [{"Attributes": {"plan": {"Values": ["pro"]}}}, timed]}]}}))
    assert either.next_flip_ms(pro, NOW) is None
    assert either.next_flip_ms(bought, NOW) == leaves_window


def test_segments_compiled_from_equal_conditions_share_their_leaves() -> None:
    first = seg({"Attributes": {"plan": {"Values": ["pro"]}},
                 "Location": {"Country": {"Values": ["US"]}}})
    second = seg({"Attributes": {"plan": {"Values": ["pro"]}}})
    other = seg({"Attributes": {"plan": {"Values": ["free"]}}})
    plan = [leaf for leaf, inputs, _ in first.generic_checks if "Attributes.plan" in inputs]
    assert [leaf for leaf, _, _ in second.generic_checks] == plan
    assert [leaf for leaf, _, _ in other.generic_checks] != plan


def test_derived_counter_types_are_distinct_and_sorted() -> None:
    filters = tuple(seg({"Behavioral": {"Performed": [
        {"EventType": "buy", "Attributes": attributes, "Count": count, "WithinDays": 1}
        for attributes, count in (({"plan": "pro"}, 1), ({"plan": "pro"}, 2),
                                  ({"a": "1", "plan": "pro"}, 1), ({"plan": "free"}, 1))]}}
    ).counter_types)
    assert derived_counter_types("buy", {"plan": "pro", "a": "1"}, filters) == [
        "buy[a=1,plan=pro]", "buy[plan=pro]"]
    assert derived_counter_types("buy", {"plan": "pro"}, list(filters)) == ["buy[plan=pro]"]
    assert derived_counter_types("view", {"plan": "pro"}, filters) == []


@given(st.lists(st.integers(0, 100 * DAY_MS), max_size=30),
       st.sampled_from([HOUR_MS, 6 * HOUR_MS, 47 * HOUR_MS, 2 * DAY_MS, 7 * DAY_MS, 30 * DAY_MS,
                        89 * DAY_MS]))
def test_falling_counts_step_down_as_count_since_does(backs: list[int], window: int) -> None:
    counters = record_many(EMPTY, [("buy", NOW - b) for b in backs], NOW)
    falling = falling_counts(counters, "buy", window, NOW)
    held = window_buckets(counters, "buy", window, NOW)
    assert falling is not None and held is not None
    count, steps = falling
    assert count == held[0] == count_since(counters, "buy", NOW - window, NOW)
    assert [k for _, k in steps] == [k for _, k in held[1]]
    last = NOW
    for leaves, k in steps:
        assert leaves > last and k > 0
        assert count_since(counters, "buy", leaves - 1 - window, leaves - 1) == count
        count -= k
        assert count_since(counters, "buy", leaves - window, leaves) == count
        last = leaves
    assert count == 0


def test_window_buckets_is_none_off_a_fixed_resolution() -> None:
    assert window_buckets(EMPTY, "buy", 47 * HOUR_MS + 1, NOW) is None
    assert falling_counts(EMPTY, "buy", 47 * HOUR_MS + 1, NOW) is None
    assert window_buckets(EMPTY, "buy", HOUR_MS, NOW) == (0, (), 0, 0)
