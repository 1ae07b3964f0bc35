from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.core.test_endpoint_request import requests
from tests.core.test_endpoint_state import states

from lodestar.core.behaviour_counters import DAY_MS, HOUR_MS, count_since
from lodestar.core.cohort import cohort_id
from lodestar.core.endpoint_commands import AttributeType
from lodestar.core.endpoint_profile import (
    ProfileChange,
    ProfileOutcome,
    Rejected,
    Unchanged,
    apply_events,
    apply_update,
    deactivate,
    delete,
    remove_attributes,
)
from lodestar.core.endpoint_request import (
    ChannelType,
    Demographic,
    EndpointRequest,
    EndpointRequestError,
    EndpointStatus,
    EndpointUser,
    OptOut,
    merge_requests,
    parse_endpoint_request,
)
from lodestar.core.endpoint_state import EndpointChangeKind, EndpointState, OpenSession

APP = "app-1"
EP = "ep-1"
NOW = 1_777_636_811_250  # 2026-05-01T12:00:11.250Z
MINUTE = 60_000


def state_of(outcome: ProfileOutcome) -> EndpointState | None:
    return outcome.state


def change(outcome: ProfileOutcome) -> ProfileChange:
    assert isinstance(outcome, ProfileChange), outcome
    return outcome


def created(body: dict[str, Any], now: int = NOW) -> EndpointState:
    state = change(apply_update(None, APP, EP, parse_endpoint_request(body), now)).state
    assert state is not None
    return state


def event(
    event_type: str, ts: int, session: dict[str, Any] | None = None, event_id: str = "ev"
) -> dict[str, Any]:
    """A ``lodestar.v1.Event`` record as ``put_events.parse_event`` builds it."""
    return {
        "event_id": event_id, "app_id": APP, "endpoint_id": EP, "event_type": event_type,
        "timestamp": ts, "arrival_timestamp": NOW, "attributes": {}, "metrics": {},
        "session": session, "client": None,
    }


def session(sid: str, start: int, stop: int | None = None,
            duration: int | None = None) -> dict[str, Any]:
    return {"id": sid, "start_timestamp": start, "stop_timestamp": stop, "duration_ms": duration}


# --- UpdateEndpoint ---------------------------------------------------------------------

AMPLIFY_FIRST_UPDATE = {
    "RequestId": "e7b1c6d2", "EffectiveDate": "2026-05-01T12:00:11.000Z",
    "Attributes": {"email": ["jane@example.com"], "name": ["Jane Doe"], "plan": ["pro"]},
    "Demographic": {"AppVersion": "1.0.0", "Make": "Google Inc.", "Model": "Chrome",
                    "ModelVersion": "126.0.0.0", "Platform": "MacIntel"},
    "User": {"UserId": "us-east-1:5c2f"},
}


def test_update_creates_the_endpoint() -> None:
    result = change(
        apply_update(None, APP, EP, parse_endpoint_request(AMPLIFY_FIRST_UPDATE), NOW)
    )
    assert result.created and result.publishes and result.previous is None
    state = result.state
    assert state is not None
    assert (state.application_id, state.id, state.creation_date) == (APP, EP, NOW)
    assert state.cohort_id == cohort_id(EP)
    assert state.endpoint_status is EndpointStatus.ACTIVE
    assert state.opt_out is OptOut.NONE
    assert state.channel_type is None and state.address is None
    assert state.effective_date == NOW - 250
    assert result.changed_fields == (
        "Attributes.email", "Attributes.name", "Attributes.plan", "Demographic.AppVersion",
        "Demographic.Make", "Demographic.Model", "Demographic.ModelVersion",
        "Demographic.Platform", "EffectiveDate", "RequestId", "User.UserId",
    )
    record = result.change_record(NOW + 50, cause="UPDATE_ENDPOINT")
    assert record["kind"] == "UPSERTED" and record["created"] is True
    assert record["changed_fields"][:3] == ["attributes.email", "attributes.name",
                                            "attributes.plan"]


def test_update_merges_per_key_and_per_sub_field() -> None:
    state = created({
        "ChannelType": "EMAIL", "Address": "jane@example.com", "OptOut": "NONE",
        "Attributes": {"plan": ["free"], "team": ["a"]}, "Metrics": {"orders": 1},
        "Demographic": {"Platform": "ios", "Timezone": "Europe/Berlin"},
        "Location": {"Country": "DE", "City": "Berlin"},
        "User": {"UserId": "u-1", "UserAttributes": {"FirstName": ["Jane"]}},
    })
    later = NOW + MINUTE
    result = change(apply_update(state, APP, EP, parse_endpoint_request({
        "Attributes": {"plan": ["pro"]}, "Metrics": {"ltv": 9.5},
        "Demographic": {"Timezone": "America/New_York"}, "Location": {"City": "Hamburg"},
        "User": {"UserAttributes": {"LastName": ["Doe"]}}, "OptOut": "ALL",
    }), later))
    new = result.state
    assert new is not None
    assert new.attributes == {"plan": ("pro",), "team": ("a",)}
    assert new.metrics == {"orders": 1.0, "ltv": 9.5}
    assert new.demographic == Demographic(platform="ios", timezone="America/New_York")
    assert new.location is not None
    assert (new.location.country, new.location.city) == ("DE", "Hamburg")
    assert new.user == EndpointUser("u-1", {"FirstName": ("Jane",), "LastName": ("Doe",)})
    assert (new.address, new.channel_type) == ("jane@example.com", ChannelType.EMAIL)
    assert new.effective_date == later and new.creation_date == NOW
    assert not result.created
    assert result.changed_fields == (
        "Attributes.plan", "Demographic.Timezone", "EffectiveDate", "Location.City",
        "Metrics.ltv", "OptOut", "User.UserAttributes.LastName",
    )


def test_update_reactivates_unless_it_says_inactive() -> None:
    inactive = created({"EndpointStatus": "INACTIVE", "Address": "+1555"})
    assert inactive.endpoint_status is EndpointStatus.INACTIVE
    result = change(apply_update(inactive, APP, EP, EndpointRequest(), NOW + 1))
    assert result.state is not None and result.state.endpoint_status is EndpointStatus.ACTIVE
    assert result.changed_fields == ("EffectiveDate", "EndpointStatus")


def test_an_update_that_changes_nothing_is_unchanged() -> None:
    body = {"Address": "a@example.com", "EffectiveDate": "2026-05-01T00:00:00Z"}
    state = created(body)
    outcome = apply_update(state, APP, EP, parse_endpoint_request(body), NOW + MINUTE)
    assert outcome == Unchanged(state, "the update changes nothing")


def test_an_update_past_250_keys_is_rejected() -> None:
    state = created({"Attributes": {f"a{i}": ["x"] for i in range(200)}})
    outcome = apply_update(state, APP, EP, parse_endpoint_request(
        {"Metrics": {f"m{i}": 1 for i in range(51)}}), NOW)
    assert isinstance(outcome, Rejected) and outcome.state is state
    assert "251 Attributes, Metrics and User.UserAttributes keys" in outcome.reason


def test_an_update_past_15_kb_is_rejected() -> None:
    state = created({"Attributes": {f"a{i}": ["v" * 90] * 4 for i in range(30)}})
    outcome = apply_update(state, APP, EP, parse_endpoint_request(
        {"Attributes": {f"b{i}": ["v" * 90] * 4 for i in range(30)}}), NOW)
    assert isinstance(outcome, Rejected)
    assert "at most 15360" in outcome.reason


def test_a_state_of_another_endpoint_is_a_bug() -> None:
    state = created({})
    with pytest.raises(ValueError, match="state of app-1/ep-1 given for app-1/ep-2"):
        apply_update(state, APP, "ep-2", EndpointRequest(), NOW)


maybe_states = st.none() | states()


def _ids(state: EndpointState | None) -> tuple[str, str]:
    return (APP, EP) if state is None else (state.application_id, state.id)


@given(maybe_states, requests, requests, st.integers(NOW, NOW + DAY_MS))
def test_update_a_then_b_equals_the_keywise_merge(
    state: EndpointState | None, a: EndpointRequest, b: EndpointRequest, now: int
) -> None:
    app, ep = _ids(state)
    after_a = state_of(apply_update(state, app, ep, a, now))
    sequential = state_of(apply_update(after_a, app, ep, b, now))
    merged = state_of(apply_update(state, app, ep, merge_requests(a, b), now))
    assert sequential == merged


@given(maybe_states, requests, st.integers(NOW, NOW + DAY_MS))
def test_nothing_not_mentioned_is_lost(
    state: EndpointState | None, request: EndpointRequest, now: int
) -> None:
    app, ep = _ids(state)
    new = state_of(apply_update(state, app, ep, request, now))
    assert new is not None
    if state is None:
        return
    for key, values in state.attributes.items():
        if key not in (request.attributes or {}):
            assert new.attributes[key] == values
    for key, number in state.metrics.items():
        if key not in (request.metrics or {}):
            assert new.metrics[key] == number
    old_user_attributes = state.user.user_attributes if state.user else {}
    sent_user_attributes = request.user.user_attributes if request.user else {}
    for key, values in old_user_attributes.items():
        if key not in sent_user_attributes:
            assert new.user is not None and new.user.user_attributes[key] == values
    for name in ("demographic", "location"):
        old_sub, sent_sub, new_sub = (getattr(s, name) for s in (state, request, new))
        for field in vars(old_sub) if old_sub is not None else {}:
            if getattr(sent_sub, field, None) is None:
                assert getattr(new_sub, field) == getattr(old_sub, field)
    for name in ("address", "channel_type", "opt_out", "request_id"):
        if getattr(request, name) is None:
            assert getattr(new, name) == getattr(state, name)
    if state.user and state.user.user_id is not None and (
        request.user is None or request.user.user_id is None
    ):
        assert new.user is not None and new.user.user_id == state.user.user_id
    behaviour = ("creation_date", "cohort_id", "last_active_ms", "open_session",
                 "session_count", "session_total_ms", "counters")
    assert all(getattr(new, f) == getattr(state, f) for f in behaviour)


@given(maybe_states, requests, st.integers(NOW, NOW + DAY_MS), st.integers(1, DAY_MS))
def test_the_same_update_twice_is_idempotent_apart_from_effective_date(
    state: EndpointState | None, request: EndpointRequest, now: int, later: int
) -> None:
    app, ep = _ids(state)
    once = state_of(apply_update(state, app, ep, request, now))
    twice = state_of(apply_update(once, app, ep, request, now + later))
    assert once is not None and twice is not None
    assert replace(twice, effective_date=once.effective_date) == once
    if request.effective_date is not None:
        assert twice == once


# --- events -----------------------------------------------------------------------------


def test_amplify_session_flow() -> None:
    start = NOW - 10 * MINUTE
    s = session("s-1", start)
    result = change(apply_events(None, APP, EP, [
        event("_session.start", start, s),
        event("pageView", start + MINUTE, s),
        event("pageView", start + 2 * MINUTE, s),
        event("_session.stop", start + 10 * MINUTE,
              session("s-1", start, start + 10 * MINUTE, 600_000)),
    ], NOW))
    state = result.state
    assert state is not None
    assert result.created and result.publishes
    assert result.changed_fields == ("EffectiveDate",)
    assert result.behaviour_changed == (
        "LastActive", "Sessions", "Events._session.start", "Events._session.stop",
        "Events.pageView",
    )
    assert state.channel_type is None and state.effective_date == NOW
    assert (state.session_count, state.session_total_ms, state.open_session) == (1, 600_000, None)
    assert state.last_active_ms == start + 10 * MINUTE
    assert count_since(state.counters, "pageView", NOW // HOUR_MS * HOUR_MS - HOUR_MS, NOW) == 2


def test_events_of_a_known_endpoint_are_not_published() -> None:
    state = created({"ChannelType": "EMAIL", "Address": "a@example.com"})
    result = change(apply_events(state, APP, EP, [event("pageView", NOW - 5)], NOW))
    assert not result.publishes and result.changed_fields == ()
    assert result.state is not None and result.state.effective_date == state.effective_date
    assert apply_events(state, APP, EP, [], NOW) == Unchanged(state, "the events change nothing")
    assert apply_events(None, APP, EP, [], NOW) == Unchanged(None, "no events")
    too_old = apply_events(state, APP, EP, [event("pageView", NOW - 200 * DAY_MS)], NOW)
    assert isinstance(too_old, ProfileChange)  # last active still moves
    assert too_old.behaviour_changed == ("LastActive",)


def test_last_active_is_the_latest_event_clamped_to_now() -> None:
    state = change(apply_events(None, APP, EP, [event("a", NOW - 5), event("a", NOW - 9)],
                                NOW)).state
    assert state is not None and state.last_active_ms == NOW - 5
    future = change(apply_events(state, APP, EP, [event("a", NOW + DAY_MS)], NOW)).state
    assert future is not None and future.last_active_ms == NOW


def test_session_rules() -> None:
    t = NOW - HOUR_MS
    state = change(apply_events(None, APP, EP, [
        event("pageView", t, session("s-1", t)),                      # opens s-1
        event("_session.start", t + 1, session("s-1", t)),            # already open
        event("pageView", t + 2, session("s-2", t + 2)),              # opens s-2 (s-1 dropped)
        event("_session.stop", t + 9, session("s-2", t + 2, t + 9)),  # closes s-2: 7 ms
        event("_session.stop", t + 9, session("s-2", t + 2, t + 9)),  # repeated: nothing
        event("pageView", t + 10, session("s-2", t + 2)),             # late event: nothing
        event("_session.stop", t + 20, session("s-3", t + 15, None, 4)),  # unseen: counted
        event("_session.start", t + 30, None, event_id="ev-9"),       # no Session object
        event("_session.start", t + 30, None, event_id="ev-9"),       # redelivered: nothing
        event("_session.stop", t + 35),                               # closes it: 5 ms
    ], NOW)).state
    assert state is not None
    assert (state.session_count, state.session_total_ms) == (4, 7 + 4 + 5)
    assert state.open_session is None and state.last_session_id == "ev-9"
    reopened = change(apply_events(state, APP, EP, [event("a", t + 40, session("s-4", t + 40))],
                                   NOW)).state
    assert reopened is not None and reopened.open_session == OpenSession("s-4", t + 40)


@st.composite
def session_histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], int, int, str | None]:
    """Contiguous sessions with optional start/stop events and repeated (retried) events.

    Returns the events, the number of sessions, the sum of the stopped sessions'
    lengths, and the id of the session left open (if the last one has no stop).
    """
    events: list[dict[str, Any]] = []
    total = 0
    t = NOW - 40 * DAY_MS
    n = draw(st.integers(0, 6))
    open_id: str | None = None
    for i in range(n):
        sid, start = f"s-{i}", t
        chunk: list[dict[str, Any]] = []
        if draw(st.booleans()):
            chunk.append(event("_session.start", t, session(sid, start)))
        for _ in range(draw(st.integers(0 if chunk else 1, 3))):
            t += draw(st.integers(0, HOUR_MS))
            chunk.append(event(draw(st.sampled_from(["pageView", "purchase"])), t,
                               session(sid, start)))
        stopped = draw(st.booleans())
        if stopped:
            t += draw(st.integers(0, HOUR_MS))
            duration = draw(st.none() | st.integers(0, 2 * HOUR_MS))
            chunk.append(event("_session.stop", t, session(sid, start, t, duration)))
            total += duration if duration is not None else t - start
        # at-least-once delivery: some events arrive twice, right after themselves
        for item in chunk:
            events.append(item)
            if draw(st.integers(0, 4)) == 0:
                events.append(item)
        open_id = None if stopped else sid
        t += draw(st.integers(1, DAY_MS))
    return events, n, total, open_id


@given(session_histories(), st.data())
def test_session_count_and_length_invariants(
    history: tuple[list[dict[str, Any]], int, int, str | None], data: st.DataObject
) -> None:
    events, sessions, total, open_id = history
    outcome = apply_events(None, APP, EP, events, NOW)
    state = outcome.state
    if not events:
        assert state is None
        return
    assert state is not None
    assert state.session_count == sessions
    assert state.session_total_ms == total
    assert (state.open_session.id if state.open_session else None) == open_id
    cut = data.draw(st.integers(0, len(events)))
    first = state_of(apply_events(None, APP, EP, events[:cut], NOW))
    assert state_of(apply_events(first, APP, EP, events[cut:], NOW)) == state


any_events = st.lists(
    st.builds(
        event,
        st.sampled_from(["pageView", "_session.start", "_session.stop", "purchase"]),
        st.integers(NOW - 100 * DAY_MS, NOW + HOUR_MS),
        st.none() | st.builds(session, st.sampled_from(["s-1", "s-2", "s-3"]),
                              st.integers(NOW - 100 * DAY_MS, NOW),
                              st.none() | st.integers(NOW - 100 * DAY_MS, NOW),
                              st.none() | st.integers(0, DAY_MS)),
        event_id=st.sampled_from(["ev-1", "ev-2"]),
    ),
    max_size=30,
)


@given(maybe_states, any_events, st.data())
def test_two_batches_equal_one_batch(
    state: EndpointState | None, events: list[dict[str, Any]], data: st.DataObject
) -> None:
    app, ep = _ids(state)
    for e in events:
        e["app_id"], e["endpoint_id"] = app, ep
    cut = data.draw(st.integers(0, len(events)))
    first = state_of(apply_events(state, app, ep, events[:cut], NOW))
    two = state_of(apply_events(first, app, ep, events[cut:], NOW))
    assert two == state_of(apply_events(state, app, ep, events, NOW))


# --- RemoveAttributes, deactivate, delete -----------------------------------------------


def test_remove_attributes_per_type() -> None:
    state = created({
        "Attributes": {"plan": ["pro"], "team": ["a"]}, "Metrics": {"orders": 1, "ltv": 2},
        "User": {"UserAttributes": {"FirstName": ["Jane"]}},
    })
    custom = change(remove_attributes(state, "endpoint-custom-attributes", ["plan", "x"], NOW))
    assert custom.state is not None and custom.state.attributes == {"team": ("a",)}
    assert custom.changed_fields == ("Attributes.plan",) and custom.publishes
    assert custom.state.effective_date == state.effective_date
    metric = change(remove_attributes(state, AttributeType.ENDPOINT_METRIC_ATTRIBUTES,
                                      ["orders"], NOW))
    assert metric.state is not None and metric.state.metrics == {"ltv": 2.0}
    user = change(remove_attributes(state, "endpoint-user-attributes", ["FirstName"], NOW))
    assert user.state is not None and user.state.user is None
    assert user.changed_fields == ("User.UserAttributes.FirstName",)
    assert remove_attributes(state, "endpoint-custom-attributes", ["nope"], NOW) == Unchanged(
        state, "none of the attributes is set"
    )
    assert isinstance(remove_attributes(None, "endpoint-custom-attributes", ["a"], NOW),
                      Unchanged)
    with pytest.raises(EndpointRequestError, match="unknown attribute type 'endpoint-tags'"):
        remove_attributes(state, "endpoint-tags", ["a"], NOW)


def test_deactivate_when_another_endpoint_takes_the_address() -> None:
    state = created({"ChannelType": "SMS", "Address": "+14155550123"})
    result = change(deactivate(state, NOW))
    assert result.kind is EndpointChangeKind.DEACTIVATED and result.publishes
    assert result.state is not None
    assert result.state.endpoint_status is EndpointStatus.INACTIVE
    assert result.changed_fields == ("EndpointStatus",)
    record = result.change_record(NOW, cause="ADDRESS_TAKEN")
    assert record["kind"] == "DEACTIVATED" and record["created"] is False
    assert record["changed_fields"] == ["endpoint_status"]
    assert deactivate(result.state, NOW) == Unchanged(result.state, "already inactive")
    assert deactivate(None, NOW) == Unchanged(None, "no such endpoint")


def test_delete() -> None:
    state = created({"Address": "a@example.com"})
    result = change(delete(state, NOW))
    assert result.state is None and result.previous is state and result.publishes
    record = result.change_record(NOW, cause="DELETE_ENDPOINT")
    assert (record["kind"], record["endpoint"], record["endpoint_id"]) == ("DELETED", None, EP)
    assert delete(None, NOW) == Unchanged(None, "no such endpoint")
