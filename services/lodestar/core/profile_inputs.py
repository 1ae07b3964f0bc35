"""Fold one endpoint's inputs of a batch — events and endpoint commands, in arrival order.

``fold_endpoint(state, app_id, endpoint_id, inputs, now_ms)`` applies, in order:

- an event carrying ``endpoint_request`` (a PutEvents PublicEndpoint): the
  upsert first, then the event;
- runs of consecutive events: one ``apply_events`` call per run;
- commands: UPSERT (``apply_update``), DELETE, DEACTIVATE. REMOVE_ATTRIBUTES
  is app-wide and applied by ``remove_attributes_everywhere`` instead.

It returns the final state, whether it must be written, the
``lodestar.v1.EndpointChange`` records to publish (one per published change,
in order) and the inputs that were refused, with the reason (the adapter
dead-letters them). Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lodestar.core.endpoint_commands import CommandKind
from lodestar.core.endpoint_profile import (
    ProfileChange,
    ProfileOutcome,
    Rejected,
    apply_events,
    apply_update,
    deactivate,
    delete,
    remove_attributes,
)
from lodestar.core.endpoint_request import EndpointRequestError, parse_endpoint_request
from lodestar.core.endpoint_state import EndpointState


class InputKind(StrEnum):
    EVENT = "event"
    COMMAND = "command"


@dataclass(frozen=True)
class ProfileInput:
    """A decoded record of ``events`` (an Event) or ``endpoint-commands`` (an EndpointCommand)."""

    kind: InputKind
    record: Mapping[str, Any]


@dataclass
class FoldResult:
    state: EndpointState | None
    dirty: bool = False
    changes: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[ProfileInput, str]] = field(default_factory=list)


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
}


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
) -> FoldResult:
    """Apply ``inputs`` (all for this endpoint, in arrival order) to ``state``."""
    result = FoldResult(state)
    pending_events: list[Mapping[str, Any]] = []

    def take(outcome: ProfileOutcome, item: ProfileInput) -> None:
        if isinstance(outcome, Rejected):
            result.refused.append((item, outcome.reason))
            return
        result.state = outcome.state
        if isinstance(outcome, ProfileChange):
            result.dirty = True
            if outcome.publishes:
                result.changes.append(outcome.change_record(now_ms, _cause(item)))

    def flush_events(last: ProfileInput | None) -> None:
        if pending_events and last is not None:
            take(apply_events(result.state, app_id, endpoint_id, pending_events, now_ms), last)
            pending_events.clear()

    last_event: ProfileInput | None = None
    for item in inputs:
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
        else:
            result.refused.append((item, f"{kind} is not a per-endpoint command"))
    flush_events(last_event)
    return result


def _upsert(
    result: FoldResult,
    take: Any,
    app_id: str,
    endpoint_id: str,
    request_json: str | None,
    item: ProfileInput,
    now_ms: int,
) -> None:
    try:
        request = parse_endpoint_request(json.loads(request_json or "null"))
    except (EndpointRequestError, ValueError) as bad:
        result.refused.append((item, f"endpoint_request is not a valid EndpointRequest: {bad}"))
        return
    take(apply_update(result.state, app_id, endpoint_id, request, now_ms), item)


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
