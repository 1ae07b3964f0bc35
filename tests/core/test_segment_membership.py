"""Incremental segment membership equals a from-scratch evaluation (issue 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.core.test_segment_properties import (
    APP,
    EP,
    START,
    advances,
    dimensions,
    events,
    requests,
)

from lodestar.core.behaviour_counters import DAY_MS, HOUR_MS
from lodestar.core.endpoint_profile import ProfileChange, apply_events, apply_update, delete
from lodestar.core.endpoint_request import EndpointRequest, Location
from lodestar.core.endpoint_state import EndpointState, blank_state
from lodestar.core.segment_definition import (
    SegmentDefinition,
    SegmentDefinitionError,
    parse_segment,
)
from lodestar.core.segment_membership import (
    EndpointMemberships,
    MembershipAction,
    MembershipChange,
    SegmentCatalog,
    SegmentCycleError,
    ThresholdGroup,
    backfill,
    blank_memberships,
    build_catalog,
    due,
    full_recompute,
    reevaluate,
)
from lodestar.core.segment_membership import created as created_from_blank
from lodestar.core.segment_predicate import compile_segment

some = st.sampled_from


def seg(body: dict[str, Any]) -> SegmentDefinition:
    return parse_segment(body)


def sources(*ids: str, how: str = "ANY") -> dict[str, Any]:
    return {"SegmentGroups": {"Include": "ALL", "Groups": [
        {"SourceSegments": [{"Id": i} for i in ids], "SourceType": how}]}}


PRO = {"Dimensions": {"Attributes": {"plan": {"Values": ["pro"]}}}}
US = {"Dimensions": {"Location": {"Country": {"Values": ["US"]}}}}
ACTIVE = {"Dimensions": {"Behavior": {"Recency": {"Duration": "HR_24",
                                                  "RecencyType": "ACTIVE"}}}}


def catalog_of(bodies: dict[str, dict[str, Any]]) -> SegmentCatalog:
    return build_catalog({sid: (1, seg(b)) for sid, b in bodies.items()})


def created(request: EndpointRequest, now: int) -> ProfileChange:
    out = apply_update(None, APP, EP, request, now)
    assert isinstance(out, ProfileChange) and out.state is not None
    return out


def names(change: ProfileChange) -> tuple[str, ...]:
    return change.changed_fields + change.behaviour_changed


def replay(changes: list[MembershipChange]) -> frozenset[str]:
    inside: set[str] = set()
    for c in changes:
        if c.action is MembershipAction.ENTER:
            assert c.segment_id not in inside
            inside.add(c.segment_id)
        else:
            assert c.segment_id in inside
            inside.remove(c.segment_id)
    return frozenset(inside)


# --- catalog ---------------------------------------------------------------------------

def test_catalog_indexes_inputs_and_orders_sources_first() -> None:
    catalog = catalog_of({"z_both": sources("a_pro", "m_us", how="ALL"), "a_pro": PRO,
                          "m_us": US, "b_top": sources("z_both")})
    assert catalog.by_input["Attributes.plan"] == {"a_pro"}
    assert catalog.by_input["Location.Country"] == {"m_us"}
    assert "Segment.a_pro" not in catalog.by_input
    order = catalog.order
    assert order.index("z_both") > max(order.index("a_pro"), order.index("m_us"))
    assert order.index("b_top") > order.index("z_both")
    assert catalog.dependents["a_pro"] == {"z_both"}
    assert catalog.entries["a_pro"].version == 1


def test_catalog_rejects_cycles_naming_them() -> None:
    with pytest.raises(SegmentCycleError) as err:
        catalog_of({"a": sources("b"), "b": sources("c"), "c": sources("a"), "d": PRO})
    assert err.value.segment_ids == ("a", "b", "c")
    assert "a, b, c" in str(err.value)
    with pytest.raises(SegmentCycleError):
        catalog_of({"self": sources("self")})


def test_unknown_source_is_never_a_member() -> None:
    catalog = catalog_of({"x": sources("gone")})
    state = created(EndpointRequest(attributes={"plan": ("pro",)}), START).state
    assert full_recompute(catalog, state, START) == frozenset()


# --- reevaluate / due / backfill ---------------------------------------------------------

def test_created_endpoint_is_evaluated_against_every_segment() -> None:
    catalog = catalog_of({"pro": PRO, "not_us": {"Dimensions": {"Location": {"Country": {
        "DimensionType": "EXCLUSIVE", "Values": ["US"]}}}}})
    change = created(EndpointRequest(attributes={"plan": ("pro",)}), START)
    mem, changes = reevaluate(catalog, None, change.state, names(change), START)
    assert mem.segment_ids == {"pro", "not_us"}
    assert {(c.segment_id, c.action, c.cause) for c in changes} == {
        ("pro", MembershipAction.ENTER, ("Attributes.plan",)),
        ("not_us", MembershipAction.ENTER, ("CREATED",)),
    }


def test_only_segments_reading_a_changed_input_are_evaluated_and_sources_cascade() -> None:
    catalog = catalog_of({"pro": PRO, "us": US, "both": sources("pro", "us", how="ALL"),
                          "top": sources("both")})
    first = created(EndpointRequest(location=Location(country="US")), START)
    mem, _ = reevaluate(catalog, None, first.state, names(first), START)
    assert mem.segment_ids == {"us"}
    second = apply_update(first.state, APP, EP,
                          EndpointRequest(attributes={"plan": ("pro",)}), START + 1)
    assert isinstance(second, ProfileChange)
    mem, changes = reevaluate(catalog, mem, second.state, names(second), START + 1)
    assert [(c.segment_id, c.cause) for c in changes] == [
        ("pro", ("Attributes.plan",)), ("both", ("Segment.pro",)), ("top", ("Segment.both",)),
    ]
    assert mem.segment_ids == {"pro", "us", "both", "top"}
    # an unrelated change evaluates nothing, even if a segment would (wrongly) flip
    same, nothing = reevaluate(catalog, mem, second.state, ["Metrics.score"], START + 2)
    assert nothing == [] and same == mem


def test_time_conditions_fire_from_due_and_deletion_exits_everything() -> None:
    catalog = catalog_of({"active": ACTIVE, "still": sources("active")})
    out = apply_events(None, APP, EP, [_event("view", START)], START)
    assert isinstance(out, ProfileChange) and out.state is not None
    mem, changes = reevaluate(catalog, None, out.state, names(out), START)
    assert mem.segment_ids == {"active", "still"}
    assert mem.next_due_ms == START + DAY_MS + 1
    not_yet, none = due(catalog, mem, out.state, START + DAY_MS)
    assert none == [] and not_yet == mem
    later, changes = due(catalog, mem, out.state, START + DAY_MS + 1)
    assert [(c.segment_id, c.action, c.cause) for c in changes] == [
        ("active", MembershipAction.EXIT, ("TIME",)),
        ("still", MembershipAction.EXIT, ("Segment.active",)),
    ]
    assert later.segment_ids == frozenset() and later.next_due_ms is None
    gone, exits = reevaluate(catalog, mem, None, (), START + 5)
    assert gone.segment_ids == frozenset()
    assert [(c.segment_id, c.cause) for c in exits] == [("still", ("DELETED",)),
                                                        ("active", ("DELETED",))]


def test_backfill_evaluates_new_segments_and_exits_removed_ones() -> None:
    state = created(EndpointRequest(attributes={"plan": ("pro",)}), START).state
    old = catalog_of({"pro": PRO})
    mem, _ = reevaluate(old, None, state, (), START)
    new = build_catalog({"pro2": (3, seg(PRO)), "top": (1, seg(sources("pro2")))})
    mem, changes = backfill(new, mem, state, START, ["pro", "pro2"])
    assert [(c.segment_id, c.version, c.action, c.cause) for c in changes] == [
        ("pro", 1, MembershipAction.EXIT, ("REMOVED",)),
        ("pro2", 3, MembershipAction.ENTER, ("BACKFILL",)),
        ("top", 1, MembershipAction.ENTER, ("Segment.pro2",)),
    ]
    assert dict(mem.segments) == {"pro2": 3, "top": 1}


def test_memberships_round_trip_through_json() -> None:
    mem = EndpointMemberships({"b": 2, "a": 1, "c": 1}, {"a": START, "c": START, "d": START + 1})
    data = json.loads(json.dumps(mem.to_dict()))
    assert data == {"in": {"1": "a c", "2": "b"},
                    "at": {str(START): "a c", str(START + 1): "d"}}
    back = EndpointMemberships.from_dict(data)
    assert back == mem and back.next_due_ms == START
    assert EndpointMemberships.next_due_of(data) == START
    assert EndpointMemberships.from_dict({}) == EndpointMemberships()
    assert EndpointMemberships.from_dict(EndpointMemberships().to_dict()) == EndpointMemberships()
    assert EndpointMemberships.next_due_of(EndpointMemberships().to_dict()) is None


def test_memberships_read_the_first_stored_form_and_keep_ids_with_spaces() -> None:
    """Values written before the grouped form still read; an id with a space (not one the
    API makes) is written in the first form, which keeps it."""
    first = {"segments": {"a": 1, "b": 2}, "due": {"a": START}}
    mem = EndpointMemberships.from_dict(first)
    assert mem == EndpointMemberships({"a": 1, "b": 2}, {"a": START})
    assert EndpointMemberships.next_due_of(first) == START
    assert "in" in mem.to_dict()  # rewritten in the grouped form
    spaced = EndpointMemberships({"a b": 1, "c": 1}, {"a b": START})
    data = json.loads(json.dumps(spaced.to_dict()))
    assert data == {"segments": {"a b": 1, "c": 1}, "due": {"a b": START}}
    assert EndpointMemberships.from_dict(data) == spaced


def _event(event_type: str, ts: int, attributes: dict[str, str] | None = None,
           now: int | None = None, eid: str = "e") -> dict[str, Any]:
    return {"event_id": eid, "app_id": APP, "endpoint_id": EP, "event_type": event_type,
            "timestamp": ts, "arrival_timestamp": now if now is not None else ts,
            "attributes": attributes or {}, "metrics": {}, "session": None, "client": None}


# --- the key invariant ---------------------------------------------------------------------

IDS = ["s1", "s2", "s3", "s4"]


@st.composite
def catalogs(draw: st.DrawFn) -> SegmentCatalog:
    """2-4 dimension segments, then 1-2 segments of segments over earlier ones."""
    n = draw(st.integers(2, 4))
    bodies: dict[str, dict[str, Any]] = {}
    for sid in IDS[:n]:
        bodies[sid] = {"Dimensions": draw(dimensions)}
    for k in range(draw(st.integers(1, 2))):
        earlier = sorted(bodies)
        group: dict[str, Any] = {
            "SourceSegments": [{"Id": i} for i in draw(
                st.lists(some(earlier), min_size=1, max_size=3, unique=True))],
            "SourceType": draw(some(["ALL", "ANY", "NONE"])),
        }
        if draw(st.booleans()):
            group["Dimensions"] = [draw(dimensions)]
            group["Type"] = draw(some(["ALL", "ANY", "NONE"]))
        bodies[f"g{k}"] = {"SegmentGroups": {"Include": draw(some(["ALL", "ANY", "NONE"])),
                                             "Groups": [group]}}
    try:
        return build_catalog({sid: (1, parse_segment(b)) for sid, b in bodies.items()})
    except SegmentDefinitionError:
        assume(False)
        raise


def event_records(batch: list[tuple[str, int, str]], now: int) -> list[dict[str, Any]]:
    """Plain events: ``apply_events`` counts the derived types the filters ask for."""
    return [_event(event_type, now - back, {"plan": plan}, now, f"e{now}-{i}")
            for i, (event_type, back, plan) in enumerate(batch)]


actions = st.one_of(requests, events, st.just("DELETE"))
histories = st.lists(st.tuples(advances, actions), min_size=2, max_size=10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogs(), histories, st.booleans())
def test_incremental_membership_equals_full_recompute_and_replays(
    catalog: SegmentCatalog,
    history: list[tuple[int, EndpointRequest | list[tuple[str, int, str]] | str]],
    from_blank: bool,
) -> None:
    """``from_blank``: a created endpoint starts from the blank endpoint's membership
    (``created``), else every segment is evaluated."""
    filters = tuple(sorted({f for e in catalog.entries.values() for f in e.segment.counter_types},
                           key=lambda f: f.counter_type))
    now = START
    state: EndpointState | None = None
    mem: EndpointMemberships | None = None
    log: list[MembershipChange] = []

    def check() -> None:
        have = mem.segment_ids if mem is not None else frozenset()
        assert have == full_recompute(catalog, state, now), now
        assert replay(log) == have

    for advance, action in history:
        target = now + advance
        while mem is not None and mem.next_due_ms is not None and mem.next_due_ms <= target:
            assert mem.next_due_ms > now
            now = mem.next_due_ms
            mem, changes = due(catalog, mem, state, now)
            log.extend(changes)
            check()
        now = target
        if action == "DELETE":
            outcome: Any = delete(state, now)
        elif isinstance(action, EndpointRequest):
            outcome = apply_update(state, APP, EP, action, now)
        else:
            assert isinstance(action, list)
            outcome = apply_events(state, APP, EP, event_records(action, now), now, filters)
        if isinstance(outcome, ProfileChange):
            state = outcome.state
            if outcome.created and from_blank:
                assert state is not None
                blank = blank_state(APP, EP, state.creation_date)
                baseline = blank_memberships(catalog, blank, now)
                mem, changes = created_from_blank(catalog, state, names(outcome), now, blank,
                                                  baseline)
            else:
                known = None if outcome.created or mem is None else mem
                mem, changes = reevaluate(catalog, known, state, names(outcome), now,
                                          outcome.previous)
            log.extend(changes)
        check()
    # and nothing is missed until the next due time
    if mem is not None and state is not None:
        horizon = mem.next_due_ms or now + 100 * DAY_MS
        for t in (now + 1, (now + horizon) // 2, horizon - 1):
            if now < t < horizon:
                assert full_recompute(catalog, state, t) == mem.segment_ids, t


def test_skipping_is_limited_to_leaves_whose_flip_can_only_move_later() -> None:
    """Back-dated events raise the count at every instant: AT_LEAST keeps its answer and
    flips no earlier, so it may be skipped; EXACTLY can newly hit its target as buckets
    leave the window (3 → never 2, but 5 → 2), so it must be re-evaluated."""
    now = START + 10 * HOUR_MS
    old_events = [_event("buy", now - 3 * HOUR_MS, eid=f"o{i}") for i in range(3)]
    before = apply_events(None, APP, EP, old_events, now)
    assert isinstance(before, ProfileChange) and before.state is not None
    late = [_event("buy", now - HOUR_MS, now=now, eid=f"n{i}") for i in range(2)]
    after = apply_events(before.state, APP, EP, late, now)
    assert isinstance(after, ProfileChange) and after.state is not None
    changed = frozenset(names(after))

    def body(operator: str, count: int) -> SegmentDefinition:
        return seg({"Dimensions": {"Behavioral": {"Performed": [{
            "EventType": "buy", "Operator": operator, "Count": count, "WithinHours": 5}]}}})

    exactly = compile_segment(body("EXACTLY", 2))
    assert not exactly.matches(before.state, now, {})
    assert not exactly.matches(after.state, now, {})
    assert exactly.next_flip_ms(before.state, now) is None
    assert exactly.next_flip_ms(after.state, now) is not None
    assert not exactly.unchanged_by(before.state, after.state, now, changed)

    at_least = compile_segment(body("AT_LEAST", 2))
    assert at_least.unchanged_by(before.state, after.state, now, changed)
    old_flip = at_least.next_flip_ms(before.state, now)
    new_flip = at_least.next_flip_ms(after.state, now)
    assert old_flip is not None and new_flip is not None and new_flip >= old_flip


def test_exactly_targets_the_counts_cannot_reach_earlier_are_not_evaluated() -> None:
    """An EXACTLY target that is neither count is false for both; it is evaluated only
    when the new count falls through it and the old one did not (or may not have)."""
    group = ThresholdGroup((), (), ((0, "zero"), (1, "one"), (2, "two"), (3, "old"),
                                    (4, "four"), (5, "new"), (6, "above")))
    old_falls, new_falls = {3, 1, 0}, {5, 4, 1, 0}
    assert group.crossed(3, 5, lambda: old_falls, lambda: new_falls) == {"old", "four", "new"}
    # unknown falls: every target up to the higher count but 0, which both reach last
    assert group.crossed(3, 5) == {"one", "two", "old", "four", "new"}
    # a count that dropped (a type merged away): the old falls say nothing
    assert group.crossed(5, 3, lambda: new_falls, lambda: old_falls) == {
        "zero", "one", "old", "new"}


def test_an_exactly_segment_is_left_alone_when_the_new_count_never_falls_to_it() -> None:
    body = {"Dimensions": {"Behavioral": {"Performed": [{
        "EventType": "buy", "Operator": "EXACTLY", "Count": 2, "WithinHours": 5}]}}}
    catalog = catalog_of({"two": body})
    now = START + 10 * HOUR_MS
    first = apply_events(None, APP, EP, [_event("buy", now - HOUR_MS, eid=f"a{i}")
                                         for i in range(3)], now)
    assert isinstance(first, ProfileChange) and first.state is not None
    mem, _ = reevaluate(catalog, None, first.state, names(first), now)
    more = apply_events(first.state, APP, EP, [_event("buy", now, eid="b")], now)
    assert isinstance(more, ProfileChange) and more.state is not None
    # 3 → 4: the old count falls 3 → 0, the new one 4 → 1 → 0, never to 2
    assert not catalog.crossed(first.state, more.state, names(more), now)
    again, changes = reevaluate(catalog, mem, more.state, names(more), now, first.state)
    assert again is mem and changes == []
    assert full_recompute(catalog, more.state, now) == mem.segment_ids == frozenset()
    assert compile_segment(seg(body)).next_flip_ms(more.state, now) is None
    # 3 → 5 falls 5 → 2 → 0: it reaches 2 when the older bucket leaves, so it is evaluated
    two = apply_events(first.state, APP, EP, [_event("buy", now, eid=f"c{i}") for i in range(2)],
                       now)
    assert isinstance(two, ProfileChange) and two.state is not None
    assert catalog.crossed(first.state, two.state, names(two), now) == {"two"}
    mem, _ = reevaluate(catalog, mem, two.state, names(two), now, first.state)
    assert mem.next_due_ms == compile_segment(seg(body)).next_flip_ms(two.state, now)
    assert mem.next_due_ms is not None


def test_equal_conditions_are_tested_once_for_every_segment_holding_them() -> None:
    catalog = catalog_of({"a": PRO, "b": {"Dimensions": {
        "Attributes": {"plan": {"Values": ["pro"]}}, "Location": {"Country": {
            "Values": ["US"]}}}}, "c": US})
    plan = catalog.generic_leaves["Attributes.plan"]
    assert len(plan) == 1 and plan[0][2] == {"a", "b"}
    assert {sids for _, _, sids in catalog.generic_leaves["Location.Country"]} == {
        frozenset({"b", "c"})}


def test_a_segment_settled_off_the_clock_has_no_due_time() -> None:
    """ALL of a false condition off the clock and a timed one cannot change until the
    condition's input changes (which re-evaluates it): nothing to store in "at"."""
    timed = {"Behavioral": {"Performed": [{"EventType": "buy", "Count": 1, "WithinHours": 2}]}}
    catalog = catalog_of({"pro_buyer": {"Dimensions": {
        "Attributes": {"plan": {"Values": ["pro"]}}, **timed}},
        "buyer": {"Dimensions": timed}})
    free = created(EndpointRequest(attributes={"plan": ("free",)}), START)
    bought = apply_events(free.state, APP, EP, [_event("buy", START)], START)
    assert isinstance(bought, ProfileChange) and bought.state is not None
    mem, _ = reevaluate(catalog, None, bought.state, names(bought), START)
    assert mem.segment_ids == {"buyer"} and set(mem.due) == {"buyer"}
    pro = apply_update(bought.state, APP, EP, EndpointRequest(attributes={"plan": ("pro",)}),
                       START + 1)
    assert isinstance(pro, ProfileChange) and pro.state is not None
    mem, changes = reevaluate(catalog, mem, pro.state, names(pro), START + 1, bought.state)
    assert [c.segment_id for c in changes] == ["pro_buyer"]
    assert mem.due["pro_buyer"] == mem.due["buyer"] > START + 1
