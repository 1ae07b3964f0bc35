"""Segment definitions from control records, membership records and the engine's table entry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lodestar.core.endpoint_commands import add_to_segment_command, upsert_command
from lodestar.core.endpoint_entry import after_change, entry, next_due_ms, read_entry
from lodestar.core.profile_inputs import InputKind, ProfileInput, fold_endpoint
from lodestar.core.segment_control import (
    AppSegments,
    cause_label,
    membership_record,
    segment_from_control,
)
from lodestar.core.segment_definition import SegmentDefinitionError
from lodestar.core.segment_membership import (
    MembershipAction,
    MembershipChange,
    SegmentCycleError,
)

APP, NOW = "app", 1_777_640_000_000
PLAN_PRO = {"Dimensions": {"Attributes": {"plan": {"AttributeType": "INCLUSIVE",
                                                    "Values": ["pro"]}}}}


def control(sid: str, version: int, body: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    response = None if body is None else json.dumps(
        {"Id": sid, "ApplicationId": APP, "Version": version, "SegmentType": "DIMENSIONAL",
         "Name": sid, **body, **extra})
    return {"entity_type": "SEGMENT", "entity_id": sid, "app_id": APP, "version": version,
            "operation": "DELETE" if body is None else "UPSERT", "definition": response,
            "actor": None, "timestamp": NOW}


def sources(*ids: str) -> dict[str, Any]:
    return {"SegmentGroups": {"Include": "ALL", "Groups": [
        {"SourceType": "ANY", "SourceSegments": [{"Id": i} for i in ids]}]}}


def test_control_records_become_versioned_definitions() -> None:
    update = segment_from_control(control("s1", 2, PLAN_PRO))
    assert (update.app_id, update.segment_id, update.version) == (APP, "s1", 2)
    assert update.definition is not None and update.definition.dimensions is not None
    imported = segment_from_control(control("s2", 1, {}, SegmentType="IMPORT"))
    assert imported.definition is not None and imported.definition.import_id == "s2"
    assert segment_from_control(control("s1", 3, None)).definition is None
    with pytest.raises(SegmentDefinitionError):
        segment_from_control(control("bad", 1, {"Dimensions": {"Attributes": {
            "x": {"AttributeType": "NEVER", "Values": ["y"]}}}}))
    with pytest.raises(ValueError, match="not a segment"):
        segment_from_control({**control("s1", 1, PLAN_PRO), "entity_type": "APP"})


def test_app_segments_keep_the_newest_version_and_ignore_late_records() -> None:
    app = AppSegments()
    app, changed = app.apply_update(segment_from_control(control("s1", 1, PLAN_PRO)))
    assert changed == {"s1"} and app.definitions["s1"][0] == 1
    same, changed = app.apply_update(segment_from_control(control("s1", 1, PLAN_PRO)))
    assert same is app and not changed, "a redelivered version changes nothing"
    app, changed = app.apply_update(segment_from_control(control("s1", 3, PLAN_PRO)))
    assert changed == {"s1"} and app.definitions["s1"][0] == 3
    late, changed = app.apply_update(segment_from_control(control("s1", 2, PLAN_PRO)))
    assert late is app and not changed
    app, changed = app.apply_update(segment_from_control(control("s1", 3, None)))
    assert changed == {"s1"} and "s1" not in app.definitions and not app.catalog.entries
    revived, changed = app.apply_update(segment_from_control(control("s1", 3, PLAN_PRO)))
    assert revived is app and not changed, "an upsert older than the delete is ignored"


def test_a_cycle_is_refused_and_filters_follow_the_catalog() -> None:
    app = AppSegments()
    app, _ = app.apply_update(segment_from_control(control("a", 1, PLAN_PRO)))
    app, _ = app.apply_update(segment_from_control(control("b", 1, sources("a"))))
    with pytest.raises(SegmentCycleError):
        app.apply_update(segment_from_control(control("a", 2, sources("b"))))
    performed = {"Dimensions": {"Behavioral": {"Performed": [{
        "EventType": "buy", "Attributes": {"plan": "pro"}, "Operator": "AT_LEAST",
        "Count": 1, "WithinDays": 7}]}}}
    app, _ = app.apply_update(segment_from_control(control("c", 1, performed)))
    assert [f.counter_type for f in app.filters] == ["buy[plan=pro]"]


@pytest.mark.parametrize(("cause", "triggers", "label"), [
    (("TIME",), (), "time"),
    (("DELETED",), (), "deleted"),
    (("REMOVED",), (), "deleted"),
    (("BACKFILL",), (), "segment"),
    (("ImportedSegments",), (), "import"),
    (("Events.buy", "LastActive"), (), "event"),
    (("Attributes.plan",), (), "endpoint"),
    (("Segment.a",), ("PUT_EVENTS",), "event"),
    (("Segment.a",), ("UPDATE_ENDPOINT", "PUT_EVENTS"), "endpoint"),
    (("CREATED",), ("IMPORT",), "import"),
])
def test_cause_labels(cause: tuple[str, ...], triggers: tuple[str, ...], label: str) -> None:
    assert cause_label(cause, triggers) == label


def test_membership_record_carries_the_event_id_only_for_event_causes() -> None:
    change = MembershipChange("s1", 4, MembershipAction.ENTER, ("Events.buy",))
    record = membership_record(APP, "e1", "u1", change, NOW, ("PUT_EVENTS",), "ev-9")
    assert record == {"app_id": APP, "segment_id": "s1", "segment_version": 4,
                      "endpoint_id": "e1", "user_id": "u1", "change": "ENTER",
                      "cause": "event", "event_id": "ev-9", "timestamp": NOW}
    update = MembershipChange("s1", 4, MembershipAction.EXIT, ("Attributes.plan",))
    assert membership_record(APP, "e1", None, update, NOW, (), "ev-9")["event_id"] is None


def _segments(*bodies: tuple[str, dict[str, Any]]) -> AppSegments:
    app = AppSegments()
    for sid, body in bodies:
        app, _ = app.apply_update(segment_from_control(control(sid, 1, body)))
    return app


def test_imported_membership_and_derived_counters_flow_through_the_fold() -> None:
    performed = {"Dimensions": {"Behavioral": {"Performed": [{
        "EventType": "buy", "Attributes": {"plan": "pro"}, "Operator": "AT_LEAST",
        "Count": 2, "WithinHours": 24}]}}}
    app = _segments(("buyers", performed))
    app, _ = app.apply_update(segment_from_control(control("imp", 2, {}, SegmentType="IMPORT")))
    upsert = ProfileInput(InputKind.COMMAND, upsert_command(
        APP, "e1", {"ChannelType": "EMAIL", "Address": "a@example.com"}, "c1", NOW))
    add = ProfileInput(InputKind.COMMAND, add_to_segment_command(APP, "e1", "imp", "c2", NOW))
    folded = fold_endpoint(None, APP, "e1", [upsert, add], NOW, app.filters)
    assert folded.state is not None and folded.state.imported_segments == ("imp",)
    assert "ImportedSegments" in folded.touched and "IMPORT" in folded.triggers
    outcome = after_change(app, None, folded.state, folded.touched, NOW)
    assert outcome is not None
    memberships, changes = outcome
    assert set(memberships.segments) == {"imp"}
    assert [(c.segment_id, c.action) for c in changes] == [("imp", MembershipAction.ENTER)]

    def buy(i: int, plan: str) -> ProfileInput:
        return ProfileInput(InputKind.EVENT, {
            "event_id": f"b{i}", "app_id": APP, "endpoint_id": "e1", "event_type": "buy",
            "timestamp": NOW - i, "arrival_timestamp": NOW, "attributes": {"plan": plan},
            "metrics": {}, "session": None, "client": None, "user_id": None,
            "endpoint_request": None})

    state = folded.state
    again = fold_endpoint(state, APP, "e1", [buy(1, "pro"), buy(2, "free")], NOW, app.filters)
    assert again.state is not None
    assert again.state.counters.types["buy"].hours[-1][1] == 2
    assert again.state.counters.types["buy[plan=pro]"].hours[-1][1] == 1
    assert "Events.buy[plan=pro]" in again.touched
    outcome = after_change(app, memberships, again.state, again.touched, NOW)
    assert outcome is not None and "buyers" not in outcome[0].segments
    third = fold_endpoint(again.state, APP, "e1", [buy(3, "pro")], NOW, app.filters)
    outcome = after_change(app, outcome[0], third.state, third.touched, NOW)
    assert outcome is not None and "buyers" in outcome[0].segments
    assert outcome[0].due["buyers"] > NOW, "a window condition is due for a re-check"

    stored = entry(third.state, outcome[0])
    assert read_entry(stored) == (third.state, outcome[0])
    assert next_due_ms(stored) == outcome[0].next_due_ms
    assert read_entry(None) == (None, None)
    assert read_entry(third.state.to_dict())[1] is None


def test_after_change_does_nothing_without_segments_or_inputs() -> None:
    app = _segments(("s1", PLAN_PRO))
    upsert = ProfileInput(InputKind.COMMAND, upsert_command(
        APP, "e1", {"Attributes": {"plan": ["pro"]}}, "c1", NOW))
    folded = fold_endpoint(None, APP, "e1", [upsert], NOW)
    assert after_change(AppSegments(), None, folded.state, folded.touched, NOW) is None
    outcome = after_change(app, None, folded.state, folded.touched, NOW)
    assert outcome is not None and set(outcome[0].segments) == {"s1"}
    assert after_change(app, outcome[0], folded.state, (), NOW) is None
    assert after_change(app, None, None, ("Attributes.plan",), NOW) is None
    deleted = after_change(app, outcome[0], None, (), NOW)
    assert deleted is not None and not deleted[0].segments
    assert [c.action for c in deleted[1]] == [MembershipAction.EXIT]


def test_an_imported_segment_entered_by_backfill_is_caused_by_the_import() -> None:
    app = _segments(("dyn", PLAN_PRO))
    app, _ = app.apply_update(segment_from_control(control("imp", 1, {}, SegmentType="IMPORT")))
    assert app.imported == {"imp"}
    enter = MembershipChange("imp", 1, MembershipAction.ENTER, ("BACKFILL",))
    assert membership_record(APP, "e1", None, enter, NOW, (), None, True)["cause"] == "import"
    dynamic = MembershipChange("dyn", 1, MembershipAction.ENTER, ("BACKFILL",))
    assert membership_record(APP, "e1", None, dynamic, NOW)["cause"] == "segment"
