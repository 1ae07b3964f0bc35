from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lodestar.core.endpoint_commands import (
    AttributeType,
    deactivate_command,
    delete_command,
    remove_attributes_command,
    upsert_command,
)
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.profile_inputs import (
    InputKind,
    ProfileInput,
    fold_endpoint,
    input_key,
    remove_attributes_everywhere,
    state_key,
)

NOW = 1_777_640_000_000
APP, EP = "app", "ep-1"


def ev(i: int, event_type: str = "pageView", endpoint: dict | None = None) -> ProfileInput:
    return ProfileInput(InputKind.EVENT, {
        "event_id": f"e{i}", "app_id": APP, "endpoint_id": EP, "event_type": event_type,
        "timestamp": NOW - 60_000 + i, "arrival_timestamp": NOW, "attributes": {},
        "metrics": {}, "session": None, "client": None, "user_id": None,
        "endpoint_request": json.dumps(endpoint) if endpoint else None,
    })


def cmd(record: dict[str, Any]) -> ProfileInput:
    return ProfileInput(InputKind.COMMAND, record)


def test_keys() -> None:
    assert state_key("a", "e") == "a/e"
    assert input_key(ev(1)) == "app/ep-1"
    remove = remove_attributes_command(APP, AttributeType.ENDPOINT_CUSTOM_ATTRIBUTES, ["x"], "r", 1)
    assert input_key(cmd(remove)) is None


def test_putevents_endpoint_is_upserted_before_its_events() -> None:
    endpoint = {"ChannelType": "EMAIL", "Address": "ana@example.com", "User": {"UserId": "u1"}}
    result = fold_endpoint(None, APP, EP, [ev(1, "_session.start", endpoint), ev(2)], NOW)
    assert result.dirty and result.refused == []
    assert result.state is not None
    assert result.state.address == "ana@example.com"
    assert [c["kind"] for c in result.changes] == ["UPSERTED"]
    assert result.changes[0]["created"] is True
    assert result.changes[0]["cause"] == "PUT_EVENTS"


def test_update_then_delete_then_events_recreate() -> None:
    inputs = [
        cmd(upsert_command(APP, EP, {"ChannelType": "SMS", "Address": "+351910000000"}, "r1", 1)),
        cmd(delete_command(APP, EP, "r2", 2)),
        ev(3),
    ]
    result = fold_endpoint(None, APP, EP, inputs, NOW)
    kinds = [c["kind"] for c in result.changes]
    assert kinds[:2] == ["UPSERTED", "DELETED"]
    assert result.state is not None and result.state.address is None  # recreated from events


def test_deactivate_and_invalid_upserts_are_reported() -> None:
    created = fold_endpoint(
        None, APP, EP, [cmd(upsert_command(APP, EP, {"ChannelType": "EMAIL"}, "r", 1))], NOW
    ).state
    bad = upsert_command(APP, EP, {"ChannelType": "EMAIL"}, "r2", 2)
    bad["endpoint_request"] = '{"ChannelType": "FAX"}'
    result = fold_endpoint(
        created, APP, EP, [cmd(deactivate_command(APP, EP, "taken", "r3", 3)), cmd(bad)], NOW
    )
    assert [c["kind"] for c in result.changes] == ["DEACTIVATED"]
    assert result.state is not None and result.state.endpoint_status == "INACTIVE"
    assert len(result.refused) == 1 and "FAX" in result.refused[0][1]


def test_remove_attributes_everywhere_only_touches_the_app() -> None:
    def make(app: str, ep: str) -> tuple[str, EndpointState]:
        request = {"ChannelType": "EMAIL", "Attributes": {"plan": ["pro"], "keep": ["1"]}}
        upsert = cmd(upsert_command(app, ep, request, "r", 1))
        state = fold_endpoint(None, app, ep, [upsert], NOW).state
        assert state is not None
        return state_key(app, ep), state

    states = [make(APP, "a"), make(APP, "b"), make("other", "c")]
    custom = AttributeType.ENDPOINT_CUSTOM_ATTRIBUTES
    command = remove_attributes_command(APP, custom, ["plan"], "r", 2)
    changed = remove_attributes_everywhere(states, command, NOW)
    assert [k for k, _ in changed] == ["app/a", "app/b"]
    assert all("plan" not in (c.state.attributes or {}) for _, c in changed if c.state)


@settings(max_examples=60)
@given(st.lists(st.sampled_from(["pageView", "_session.start", "buy"]), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=29))
def test_one_batch_equals_two_batches(types: list[str], cut: int) -> None:
    inputs = [ev(i, t) for i, t in enumerate(types)]
    whole = fold_endpoint(None, APP, EP, inputs, NOW).state
    first = fold_endpoint(None, APP, EP, inputs[:cut], NOW).state
    split = fold_endpoint(first, APP, EP, inputs[cut:], NOW).state
    assert whole is not None and split is not None
    assert whole.to_dict() == split.to_dict()


def test_client_user_attribute_changes_are_noted_and_fan_out_merges_only_them() -> None:
    from lodestar.core.endpoint_commands import set_user_attributes_command

    request = {"ChannelType": "EMAIL", "User": {"UserId": "u1",
               "UserAttributes": {"FirstName": ["Ana"], "Plan": ["free"]}}}
    created = fold_endpoint(None, APP, EP, [cmd(upsert_command(APP, EP, request, "r", 1))], NOW)
    assert created.user_attribute_changes == [
        ("u1", {"FirstName": ["Ana"], "Plan": ["free"]})
    ]
    before = created.state
    assert before is not None
    fanned = set_user_attributes_command(APP, EP, "u1", {"Plan": ["pro"]}, "f", 2)
    result = fold_endpoint(before, APP, EP, [cmd(fanned)], NOW + 1000)
    after = result.state
    assert after is not None and after.user is not None
    assert dict(after.user.user_attributes) == {"FirstName": ("Ana",), "Plan": ("pro",)}
    assert after.effective_date == before.effective_date  # nothing else touched
    assert result.user_attribute_changes == []  # a fan-out never fans out again
    assert [c["cause"] for c in result.changes] == ["USER_ATTRIBUTES"]

    other_user = set_user_attributes_command(APP, EP, "u2", {"Plan": ["x"]}, "g", 3)
    assert not fold_endpoint(after, APP, EP, [cmd(other_user)], NOW).dirty


def with_offset(item: ProfileInput, offset: int) -> ProfileInput:
    return ProfileInput(item.kind, item.record, offset)


@settings(max_examples=60)
@given(st.lists(st.sampled_from(["pageView", "_session.start", "_session.stop", "buy"]),
                min_size=1, max_size=25),
       st.integers(min_value=0, max_value=24))
def test_replayed_inputs_are_applied_once(types: list[str], crash_at: int) -> None:
    """A worker that crashed after writing its table but before committing sees the same
    inputs again; the endpoint's state must equal applying them once."""
    inputs = [with_offset(ev(i, t), 100 + i) for i, t in enumerate(types)]
    once = fold_endpoint(None, APP, EP, inputs, NOW).state
    crash_at = min(crash_at, len(inputs))
    before_crash = fold_endpoint(None, APP, EP, inputs[:crash_at], NOW).state
    replay = fold_endpoint(before_crash, APP, EP, inputs, NOW)  # everything redelivered
    assert replay.replayed == crash_at
    assert once is not None and replay.state is not None
    assert replay.state.to_dict() == once.to_dict()


def test_event_and_command_offsets_are_tracked_separately() -> None:
    upsert = with_offset(cmd(upsert_command(APP, EP, {"ChannelType": "EMAIL"}, "r", 1)), 7)
    first = fold_endpoint(None, APP, EP, [upsert, with_offset(ev(1), 3)], NOW).state
    assert first is not None and dict(first.applied_offsets) == {"command": 7, "event": 3}
    # event offset 5 is new although it is below the command watermark 7
    later = fold_endpoint(first, APP, EP, [with_offset(ev(2), 5), upsert], NOW)
    assert later.replayed == 1
    assert later.state is not None and dict(later.state.applied_offsets) == {
        "command": 7, "event": 5
    }
