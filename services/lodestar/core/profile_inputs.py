"""Fold one endpoint's inputs of a batch — events and endpoint commands, in arrival order.

``fold_endpoint(state, app_id, endpoint_id, inputs, now_ms)`` applies, in order:

- an event carrying ``endpoint_request`` (a PutEvents PublicEndpoint): the
  upsert first, then the event;
- runs of consecutive events: one ``apply_events`` call per run;
- commands: UPSERT (``apply_update``), DELETE, DEACTIVATE,
  SET_USER_ATTRIBUTES (``merge_user_attributes``). REMOVE_ATTRIBUTES is
  app-wide and applied by ``remove_attributes_everywhere`` instead.

It returns the final state, whether it must be written, the
``lodestar.v1.EndpointChange`` records to publish (one per published change,
in order) and the inputs that were refused, with the reason (the adapter
dead-letters them), how many inputs were skipped as replays (their Kafka
offset is not past the endpoint's ``applied_offsets``: exactly-once state
after a worker crash or rebalance), and the user-attribute changes a client made through this
endpoint (``user_attribute_changes``: user id → changed keys with their new
values) for the user index to copy to the user's other endpoints. Pure: no
I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from lodestar.core.endpoint_commands import CommandKind
from lodestar.core.endpoint_profile import (
    ProfileChange,
    ProfileOutcome,
    Rejected,
    add_to_segment,
    apply_events,
    apply_update,
    deactivate,
    delete,
    merge_user_attributes,
    remove_attributes,
)
from lodestar.core.endpoint_request import EndpointRequestError, parse_endpoint_request
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_definition import PerformedCondition


class InputKind(StrEnum):
    EVENT = "event"
    COMMAND = "command"


@dataclass(frozen=True)
class ProfileInput:
    """A decoded record of ``events`` (an Event) or ``endpoint-commands`` (an EndpointCommand).

    ``offset`` is its Kafka offset (None when unknown: always applied).
    """

    kind: InputKind
    record: Mapping[str, Any]
    offset: int | None = None


@dataclass
class FoldResult:
    state: EndpointState | None
    dirty: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[ProfileInput, str]] = field(default_factory=list)
    replayed: int = 0
    user_attribute_changes: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    """Every ``changed_fields`` and ``behaviour_changed`` name of the applied changes:
    what segment membership must re-evaluate."""
    triggers: set[str] = field(default_factory=set)
    """The causes (``PUT_EVENTS``, ``UPDATE_ENDPOINT`` …) of the applied changes."""


def state_key(app_id: str, endpoint_id: str) -> str:
    """The engine table's key: endpoint ids are unique only within an application."""
    return f"{app_id}/{endpoint_id}"


def input_key(item: ProfileInput) -> str | None:
    """``state_key`` of the endpoint an input is for; None for app-wide commands."""
    endpoint_id = item.record.get("endpoint_id")
    return None if endpoint_id is None else state_key(item.record["app_id"], endpoint_id)


_CAUSES = {
    CommandKind.UPSERT.value: "UPDATE_ENDPOINT",
    CommandKind.DELETE.value: "DELETE_ENDPOINT",
    CommandKind.DEACTIVATE.value: "ADDRESS_TAKEN",
    CommandKind.SET_USER_ATTRIBUTES.value: "USER_ATTRIBUTES",
    CommandKind.ADD_TO_SEGMENT.value: "IMPORT",
}
USER_ATTRIBUTES_PREFIX = "User.UserAttributes."


def _cause(item: ProfileInput) -> str:
    if item.kind is InputKind.EVENT:
        return "PUT_EVENTS"
    kind = str(item.record["kind"])
    return _CAUSES.get(kind, kind)


def fold_endpoint(
    state: EndpointState | None,
    app_id: str,
    endpoint_id: str,
    inputs: Sequence[ProfileInput],
    now_ms: int,
    filters: Sequence[PerformedCondition] = (),
) -> FoldResult:
    """Apply ``inputs`` (all for this endpoint, in arrival order) to ``state``;
    ``filters`` are passed to ``apply_events`` (derived counter types)."""
    result = FoldResult(state)
    pending_events: list[Mapping[str, Any]] = []
    marks = dict(state.applied_offsets) if state is not None else {}
    fresh: list[ProfileInput] = []
    for item in inputs:
        if item.offset is not None and item.offset <= marks.get(item.kind.value, -1):
            result.replayed += 1
            continue
        if item.offset is not None:
            marks[item.kind.value] = item.offset
        fresh.append(item)

    def take(outcome: ProfileOutcome, item: ProfileInput) -> None:
        if isinstance(outcome, Rejected):
            result.refused.append((item, outcome.reason))
            return
        result.state = outcome.state
        if isinstance(outcome, ProfileChange):
            result.dirty = True
            result.touched.update(outcome.changed_fields)
            result.touched.update(outcome.behaviour_changed)
            result.triggers.add(_cause(item))
            if outcome.publishes:
                result.changes.append(outcome.change_record(now_ms, _cause(item)))

    def flush_events(last: ProfileInput | None) -> None:
        if pending_events and last is not None:
            take(apply_events(result.state, app_id, endpoint_id, pending_events, now_ms, filters),
                 last)
            pending_events.clear()

    last_event: ProfileInput | None = None
    for item in fresh:
        record = item.record
        if item.kind is InputKind.EVENT:
            if record.get("endpoint_request"):
                flush_events(last_event)
                _upsert(result, take, app_id, endpoint_id, record["endpoint_request"], item, now_ms)
            pending_events.append(record)
            last_event = item
            continue
        flush_events(last_event)
        kind = record["kind"]
        if kind == CommandKind.UPSERT.value:
            _upsert(result, take, app_id, endpoint_id, record["endpoint_request"], item, now_ms)
        elif kind == CommandKind.DELETE.value:
            take(delete(result.state, now_ms), item)
        elif kind == CommandKind.DEACTIVATE.value:
            take(deactivate(result.state, now_ms), item)
        elif kind == CommandKind.ADD_TO_SEGMENT.value:
            if record.get("segment_id"):
                take(add_to_segment(result.state, record["segment_id"], now_ms), item)
            else:
                result.refused.append((item, "ADD_TO_SEGMENT needs segment_id"))
        elif kind == CommandKind.SET_USER_ATTRIBUTES.value:
            _set_user_attributes(result, take, record["endpoint_request"], item, now_ms)
        else:
            result.refused.append((item, f"{kind} is not a per-endpoint command"))
    flush_events(last_event)
    if result.state is not None and marks != dict(result.state.applied_offsets):
        result.state = replace(result.state, applied_offsets=marks)
        result.dirty = True
    return result


def _parse(result: FoldResult, item: ProfileInput, request_json: str | None) -> Any:
    """The EndpointRequest in ``request_json``, or None after noting the input as refused."""
    try:
        return parse_endpoint_request(json.loads(request_json or "null"))
    except (EndpointRequestError, ValueError) as bad:
        result.refused.append((item, f"endpoint_request is not a valid EndpointRequest: {bad}"))
        return None


def _upsert(
    result: FoldResult,
    take: Any,
    app_id: str,
    endpoint_id: str,
    request_json: str | None,
    item: ProfileInput,
    now_ms: int,
) -> None:
    request = _parse(result, item, request_json)
    if request is None:
        return
    outcome = apply_update(result.state, app_id, endpoint_id, request, now_ms)
    take(outcome, item)
    if isinstance(outcome, ProfileChange):
        _note_user_attribute_change(result, outcome)


def _note_user_attribute_change(result: FoldResult, change: ProfileChange) -> None:
    state = change.state
    keys = [f.removeprefix(USER_ATTRIBUTES_PREFIX) for f in change.changed_fields
            if f.startswith(USER_ATTRIBUTES_PREFIX)]  # fmt: skip
    if not keys or state is None or state.user is None or not state.user.user_id:
        return
    values = {k: list(state.user.user_attributes[k]) for k in keys
              if k in state.user.user_attributes}  # fmt: skip
    if values:
        result.user_attribute_changes.append((state.user.user_id, values))


def _set_user_attributes(
    result: FoldResult, take: Any, request_json: str | None, item: ProfileInput, now_ms: int
) -> None:
    request = _parse(result, item, request_json)
    if request is None:
        return
    user = request.user
    if user is None or not user.user_id:
        result.refused.append((item, "SET_USER_ATTRIBUTES needs User.UserId"))
        return
    take(merge_user_attributes(result.state, user.user_id, user.user_attributes, now_ms), item)


def remove_attributes_everywhere(
    states: Iterable[tuple[str, EndpointState]], command: Mapping[str, Any], now_ms: int
) -> list[tuple[str, ProfileChange]]:
    """RemoveAttributes on every given state of the command's app: ``(key, change)`` pairs."""
    attribute_type = command["attribute_type"].lower().replace("_", "-")
    names = command["attribute_names"]
    out: list[tuple[str, ProfileChange]] = []
    for key, state in states:
        if state.application_id != command["app_id"]:
            continue
        outcome = remove_attributes(state, attribute_type, names, now_ms)
        if isinstance(outcome, ProfileChange):
            out.append((key, outcome))
    return out
