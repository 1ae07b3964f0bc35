"""Properties of compiled segments over random endpoint histories and a moving clock.

(a) a change that names none of ``inputs`` never changes ``matches``;
(b) the answer at any time between now and ``next_flip_ms`` equals the answer now.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lodestar.core.behaviour_counters import DAY_MS, HOUR_MS
from lodestar.core.endpoint_profile import ProfileChange, apply_events, apply_update
from lodestar.core.endpoint_request import (
    ChannelType,
    Demographic,
    EndpointRequest,
    EndpointUser,
    Location,
)
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_definition import SegmentDefinitionError, parse_segment
from lodestar.core.segment_predicate import (
    CompiledSegment,
    compile_segment,
    derived_counter_types,
)

APP, EP = "app", "ep"
START = 1_777_636_811_250  # 2026-05-01T12:00:11.250Z

TIMES = ["2026-04-20T00:00:00Z", "2026-05-01", "2026-05-03T06:00:00Z", "NOW", "NOW-P1D",
         "NOW-PT3H", "NOW+P2D", "NOW-P10D", "NOW-P1DT1M"]
ATTRIBUTE_VALUES = ["pro", "free", "2026-04-30T10:00:00Z", "2026-05-02", "2026-05-04T01:00:00Z",
                    "junk"]
EVENT_TYPES = ["buy", "login", "view"]
some = st.sampled_from


@st.composite
def attribute_dimension(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(some(["INCLUSIVE", "EXCLUSIVE", "CONTAINS", "BEFORE", "AFTER", "BETWEEN", "ON"]))
    if kind in ("INCLUSIVE", "EXCLUSIVE", "CONTAINS"):
        values = draw(st.lists(some(["pro", "free", "r", "2026-05-02"]), min_size=1, max_size=2))
    else:
        n = {"BETWEEN": 2, "ON": draw(st.integers(1, 2))}.get(kind, 1)
        values = draw(st.lists(some(TIMES), min_size=n, max_size=n))
    return {"AttributeType": kind, "Values": values}


def set_dimension(values: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "DimensionType": some(["INCLUSIVE", "EXCLUSIVE"]),
        "Values": st.lists(some(values), min_size=1, max_size=2),
    })


performed = st.fixed_dictionaries(
    {"EventType": some(EVENT_TYPES), "Operator": some(["AT_LEAST", "AT_MOST", "EXACTLY"]),
     "Count": st.integers(0, 3)},
    optional={"Attributes": st.just({"plan": "pro"})},
).flatmap(lambda d: st.one_of(
    st.integers(1, 48).map(lambda h: {**d, "WithinHours": h}),
    st.integers(1, 90).map(lambda days: {**d, "WithinDays": days}),
))
seen = st.fixed_dictionaries({}, optional={
    "EventType": some(EVENT_TYPES), "Before": some(TIMES), "After": some(TIMES),
}).filter(lambda d: "Before" in d or "After" in d)

DIMENSION_KINDS: dict[str, st.SearchStrategy[Any]] = {
    "Attributes": st.dictionaries(some(["plan", "signup"]), attribute_dimension(),
                                  min_size=1, max_size=2),
    "UserAttributes": st.dictionaries(some(["tier"]), attribute_dimension(), min_size=1),
    "Behavior": st.fixed_dictionaries({"Recency": st.fixed_dictionaries({
        "Duration": some(["HR_24", "DAY_7", "DAY_14", "DAY_30"]),
        "RecencyType": some(["ACTIVE", "INACTIVE"])})}),
    "Demographic": st.one_of(*(
        st.builds(lambda v, k=key: {k: v}, set_dimension(vals)) for key, vals in [
            ("AppVersion", ["1.0", "2.0"]), ("Channel", ["APNS", "EMAIL", "SMS"]),
            ("DeviceType", ["MOBILE", "TABLET"]), ("Make", ["Apple", "Google"]),
            ("Model", ["X", "Y"]), ("Platform", ["ios", "android"])])),
    "Location": st.one_of(
        set_dimension(["US", "DE"]).map(lambda d: {"Country": d}),
        st.fixed_dictionaries({
            "Coordinates": st.fixed_dictionaries({"Latitude": some([47.6, 0.0, -33.9]),
                                                  "Longitude": some([-122.3, 0.0, 151.2])}),
            "RangeInKilometers": some([0, 100, 1000, 20000]),
        }).map(lambda d: {"GPSPoint": d}),
    ),
    "Metrics": st.dictionaries(some(["score"]), st.fixed_dictionaries({
        "ComparisonOperator": some(["GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL",
                                    "LESS_THAN_OR_EQUAL", "EQUAL"]),
        "Value": some([-1, 0, 1, 2.5])}), min_size=1),
    "Behavioral": st.one_of(
        st.lists(performed, min_size=1, max_size=2).map(lambda x: {"Performed": x}),
        st.fixed_dictionaries({"EventType": some(EVENT_TYPES), "Since": some(TIMES)}).map(
            lambda x: {"NotPerformedSince": [x]}),
        seen.map(lambda x: {"FirstSeen": [x]}),
        seen.map(lambda x: {"LastSeen": [x]}),
    ),
}


@st.composite
def dimensions_of(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(some(sorted(DIMENSION_KINDS)), min_size=1, max_size=2, unique=True))
    return {kind: draw(DIMENSION_KINDS[kind]) for kind in kinds}


dimensions = dimensions_of()
groups = st.fixed_dictionaries({
    "Include": some(["ALL", "ANY", "NONE"]),
    "Groups": st.fixed_dictionaries({}, optional={
        "Dimensions": st.lists(dimensions, min_size=1, max_size=2),
        "SourceSegments": st.lists(some(["s1", "s2"]), max_size=2, unique=True).map(
            lambda ids: [{"Id": i, "Version": 1} if i == "s2" else {"Id": i} for i in ids]),
        "SourceType": some(["ALL", "ANY", "NONE"]),
        "Type": some(["ALL", "ANY", "NONE"]),
    }).map(lambda g: [g]),
})
bodies = st.one_of(
    dimensions.map(lambda d: {"Name": "p", "Dimensions": d}),
    groups.map(lambda g: {"Name": "p", "SegmentGroups": g}),
)

values = st.lists(some(ATTRIBUTE_VALUES), min_size=1, max_size=2).map(tuple)
REQUEST_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "channel_type": some([ChannelType.APNS, ChannelType.EMAIL, ChannelType.SMS]),
    "attributes": st.dictionaries(some(["plan", "signup", "other"]), values, min_size=1,
                                  max_size=2),
    "demographic": st.builds(
        Demographic, app_version=st.none() | some(["1.0", "2.0"]),
        make=st.none() | some(["Apple", "Google"]), model=st.none() | some(["X", "Y"]),
        platform=st.none() | some(["ios", "android"]), locale=st.none() | some(["en_US"])),
    "location": st.builds(
        Location, country=st.none() | some(["US", "DE"]),
        latitude=st.none() | some([47.6, 47.0, 10.0]),
        longitude=st.none() | some([-122.3, 0.0, 151.2]), city=st.none() | some(["x"])),
    "metrics": st.dictionaries(some(["score", "other"]), some([-1.0, 0.0, 1.0, 2.5]),
                               min_size=1, max_size=2),
    "user": st.builds(EndpointUser, user_id=st.none() | some(["u1"]),
                      user_attributes=st.dictionaries(some(["tier", "x"]), values,
                                                      max_size=1)),
}


@st.composite
def request_of(draw: st.DrawFn) -> EndpointRequest:
    names = draw(st.lists(some(sorted(REQUEST_FIELDS)), min_size=1, max_size=2, unique=True))
    return EndpointRequest(**{name: draw(REQUEST_FIELDS[name]) for name in names})


requests = request_of()
events = st.lists(
    st.tuples(some(EVENT_TYPES),
              st.integers(0, 3 * HOUR_MS) | st.integers(0, 100 * DAY_MS),
              some(["pro", "free"])),
    min_size=1, max_size=4,
)
advances = some([0, 1, HOUR_MS, DAY_MS]) | st.integers(0, 3 * DAY_MS)
steps = st.lists(st.tuples(advances, st.one_of(requests, events)), min_size=2, max_size=8)


def event_records(batch: list[tuple[str, int, str]], now: int,
                  segment: CompiledSegment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, (event_type, back, plan) in enumerate(batch):
        ts = now - back
        attributes = {"plan": plan}
        for name in [event_type, *derived_counter_types(event_type, attributes,
                                                        segment.counter_types)]:
            out.append({"event_id": f"e{now}-{i}", "app_id": APP, "endpoint_id": EP,
                        "event_type": name, "timestamp": ts, "arrival_timestamp": now,
                        "attributes": attributes, "metrics": {}, "session": None,
                        "client": None})
    return out


def check_no_missed_flip(segment: CompiledSegment, state: EndpointState, now: int,
                         memberships: dict[str, bool], data: st.DataObject) -> None:
    flip = segment.next_flip_ms(state, now)
    assert flip is None or flip > now
    horizon = flip if flip is not None else now + 200 * DAY_MS
    expected = segment.matches(state, now, memberships)
    if segment.evaluate is not None:  # the one-call form answers as the two calls
        assert segment.evaluate(state, now, memberships) == (expected, flip)
    probes = {now + 1, horizon - 1, *data.draw(st.lists(st.integers(now, horizon - 1),
                                                        max_size=3))}
    for t in probes:
        if t < horizon:
            assert segment.matches(state, t, memberships) == expected, (now, t, flip)
    if flip is not None:
        # the engine re-checks at ``flip``; the next flip it is given lies beyond
        later = segment.next_flip_ms(state, flip)
        assert later is None or later > flip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies, st.dictionaries(some(["s1", "s2"]), st.booleans()), steps, st.data())
def test_inputs_and_next_flip_are_sound(
    body: dict[str, Any], memberships: dict[str, bool],
    history: list[tuple[int, EndpointRequest | list[tuple[str, int, str]]]],
    data: st.DataObject,
) -> None:
    try:
        segment = compile_segment(parse_segment(body))
    except SegmentDefinitionError:
        assume(False)
        raise
    now = START
    state: EndpointState | None = None
    for advance, action in history:
        now += advance
        if isinstance(action, EndpointRequest):
            outcome = apply_update(state, APP, EP, action, now)
        else:
            outcome = apply_events(state, APP, EP, event_records(action, now, segment), now)
        if isinstance(outcome, ProfileChange) and outcome.state is not None:
            new = outcome.state
            if state is not None:
                changed = set(outcome.changed_fields) | set(outcome.behaviour_changed)
                if not changed & segment.inputs:
                    for t in (now, now + data.draw(st.integers(0, 40 * DAY_MS))):
                        assert segment.matches(state, t, memberships) == segment.matches(
                            new, t, memberships), (changed, t)
            state = new
        if state is not None:
            check_no_missed_flip(segment, state, now, memberships, data)


# --- (a) exhaustively over single-condition segments and single-field changes ------------

SINGLE_CONDITIONS: list[dict[str, Any]] = [
    {"Attributes": {"plan": {"Values": ["pro"]}}},
    {"Attributes": {"signup": {"AttributeType": "BEFORE", "Values": ["2026-05-03"]}}},
    {"UserAttributes": {"tier": {"AttributeType": "EXCLUSIVE", "Values": ["pro"]}}},
    {"Attributes": {"signup": {"AttributeType": "ON", "Values": ["NOW-P1D"]}}},
    {"Attributes": {"signup": {"AttributeType": "AFTER", "Values": ["NOW-PT1H"]}}},
    {"Attributes": {"signup": {"AttributeType": "BETWEEN", "Values": ["NOW-P2D", "NOW"]}}},
    {"Behavior": {"Recency": {"Duration": "HR_24", "RecencyType": "ACTIVE"}}},
    {"Demographic": {"AppVersion": {"Values": ["1.0"]}}},
    {"Demographic": {"Channel": {"Values": ["APNS"]}}},
    {"Demographic": {"DeviceType": {"Values": ["MOBILE"]}}},
    {"Demographic": {"Make": {"Values": ["Apple"]}}},
    {"Demographic": {"Model": {"Values": ["X"]}}},
    {"Demographic": {"Platform": {"Values": ["ios"]}}},
    {"Location": {"Country": {"Values": ["US"]}}},
    {"Location": {"GPSPoint": {"Coordinates": {"Latitude": 47.6, "Longitude": -122.3},
                               "RangeInKilometers": 100}}},
    {"Metrics": {"score": {"ComparisonOperator": "GREATER_THAN", "Value": 0}}},
    {"Behavioral": {"Performed": [{"EventType": "buy", "Count": 1, "WithinDays": 7}]}},
    {"Behavioral": {"Performed": [{"EventType": "buy", "Attributes": {"plan": "pro"},
                                   "Count": 1, "WithinDays": 7}]}},
    {"Behavioral": {"NotPerformedSince": [{"EventType": "buy", "Since": "NOW-P1D"}]}},
    {"Behavioral": {"FirstSeen": [{"EventType": "buy", "After": "NOW-P1D"}]}},
    {"Behavioral": {"LastSeen": [{"Before": "NOW-PT1H"}]}},
]
SINGLE_CHANGES: list[EndpointRequest | list[tuple[str, int, str]]] = [
    EndpointRequest(attributes={"plan": ("pro",)}),
    EndpointRequest(attributes={"signup": ("2026-05-01",)}),
    EndpointRequest(user=EndpointUser(user_attributes={"tier": ("pro",)})),
    EndpointRequest(demographic=Demographic(app_version="1.0")),
    EndpointRequest(demographic=Demographic(make="Apple")),
    EndpointRequest(demographic=Demographic(model="X")),
    EndpointRequest(demographic=Demographic(platform="ios")),
    EndpointRequest(channel_type=ChannelType.APNS),
    EndpointRequest(location=Location(country="US")),
    EndpointRequest(location=Location(latitude=47.6)),
    EndpointRequest(location=Location(longitude=-122.3)),
    EndpointRequest(metrics={"score": 1.0}),
    [("buy", 0, "pro")],
    [("buy", 2 * HOUR_MS, "free")],
    [("login", 0, "pro")],
]
BASES: list[EndpointRequest] = [
    EndpointRequest(metrics={"other": 1.0}),
    EndpointRequest(location=Location(latitude=47.0, longitude=-122.3),
                    demographic=Demographic(platform="android")),
]


def test_changes_outside_inputs_never_change_membership_and_no_flip_is_missed() -> None:
    checked = 0
    for dims in SINGLE_CONDITIONS:
        segment = compile_segment(parse_segment({"Dimensions": dims}))
        for base in BASES:
            created = apply_update(None, APP, EP, base, START - 3 * HOUR_MS)
            assert isinstance(created, ProfileChange) and created.state is not None
            for first in SINGLE_CHANGES:
                for second in SINGLE_CHANGES:
                    state = created.state
                    for now, action in ((START - 2 * HOUR_MS, first), (START, second)):
                        if isinstance(action, EndpointRequest):
                            outcome = apply_update(state, APP, EP, action, now)
                        else:
                            outcome = apply_events(
                                state, APP, EP, event_records(action, now, segment), now)
                        if not isinstance(outcome, ProfileChange) or outcome.state is None:
                            continue
                        changed = set(outcome.changed_fields) | set(outcome.behaviour_changed)
                        if not changed & segment.inputs:
                            checked += 1
                            assert segment.matches(state, now, {}) == segment.matches(
                                outcome.state, now, {}), (dims, changed)
                        state = outcome.state
                        flip = segment.next_flip_ms(state, now)
                        horizon = flip if flip is not None else now + 100 * DAY_MS
                        expected = segment.matches(state, now, {})
                        for t in (now + 1, (now + horizon) // 2, horizon - 1):
                            assert segment.matches(state, t, {}) == expected, (dims, now, t)
    assert checked > 1000
