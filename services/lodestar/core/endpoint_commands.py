"""``lodestar.v1.EndpointCommand`` records, built from validated API input.

One constructor per command kind, so the API handlers and the engine (which
issues DEACTIVATE) build records the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

Command = dict[str, Any]


class CommandKind(StrEnum):
    """The symbols of ``lodestar.v1.EndpointCommandKind``."""

    UPSERT = "UPSERT"
    DELETE = "DELETE"
    REMOVE_ATTRIBUTES = "REMOVE_ATTRIBUTES"
    DEACTIVATE = "DEACTIVATE"
    SET_USER_ATTRIBUTES = "SET_USER_ATTRIBUTES"
    ADD_TO_SEGMENT = "ADD_TO_SEGMENT"
    TICK = "TICK"


class AttributeType(StrEnum):
    """RemoveAttributes' ``attribute-type`` path values, and their Avro symbols."""

    ENDPOINT_CUSTOM_ATTRIBUTES = "endpoint-custom-attributes"
    ENDPOINT_METRIC_ATTRIBUTES = "endpoint-metric-attributes"
    ENDPOINT_USER_ATTRIBUTES = "endpoint-user-attributes"

    @property
    def symbol(self) -> str:
        return self.name


def _command(
    kind: CommandKind, app_id: str, endpoint_id: str | None, command_id: str, now_ms: int
) -> Command:
    return {
        "command_id": command_id,
        "app_id": app_id,
        "endpoint_id": endpoint_id,
        "kind": kind.value,
        "endpoint_request": None,
        "attribute_type": None,
        "attribute_names": [],
        "reason": None,
        "timestamp": now_ms,
        "segment_id": None,
    }


def upsert_command(
    app_id: str, endpoint_id: str, request: Mapping[str, Any], command_id: str, now_ms: int
) -> Command:
    """UPSERT with ``request`` (a validated EndpointRequest in Pinpoint JSON)."""
    command = _command(CommandKind.UPSERT, app_id, endpoint_id, command_id, now_ms)
    command["endpoint_request"] = json.dumps(request, separators=(",", ":"))
    return command


def delete_command(app_id: str, endpoint_id: str, command_id: str, now_ms: int) -> Command:
    return _command(CommandKind.DELETE, app_id, endpoint_id, command_id, now_ms)


def deactivate_command(
    app_id: str, endpoint_id: str, reason: str, command_id: str, now_ms: int
) -> Command:
    command = _command(CommandKind.DEACTIVATE, app_id, endpoint_id, command_id, now_ms)
    command["reason"] = reason
    return command


def remove_attributes_command(
    app_id: str, attribute_type: AttributeType, names: Iterable[str], command_id: str, now_ms: int
) -> Command:
    """App-wide: drop ``names`` of ``attribute_type`` from every endpoint of the app."""
    command = _command(CommandKind.REMOVE_ATTRIBUTES, app_id, None, command_id, now_ms)
    command["attribute_type"] = attribute_type.symbol
    command["attribute_names"] = sorted(set(names))
    return command


def set_user_attributes_command(
    app_id: str,
    endpoint_id: str,
    user_id: str,
    attributes: Mapping[str, Sequence[str]],
    command_id: str,
    now_ms: int,
) -> Command:
    """SET_USER_ATTRIBUTES: copy a user's changed UserAttributes to one of its endpoints."""
    command = _command(CommandKind.SET_USER_ATTRIBUTES, app_id, endpoint_id, command_id, now_ms)
    user = {"UserId": user_id, "UserAttributes": {k: list(v) for k, v in attributes.items()}}
    command["endpoint_request"] = json.dumps({"User": user}, separators=(",", ":"))
    return command


def add_to_segment_command(
    app_id: str, endpoint_id: str, segment_id: str, command_id: str, now_ms: int
) -> Command:
    """ADD_TO_SEGMENT: the endpoint becomes a member of the imported segment ``segment_id``."""
    command = _command(CommandKind.ADD_TO_SEGMENT, app_id, endpoint_id, command_id, now_ms)
    command["segment_id"] = segment_id
    return command


def tick_command(command_id: str, now_ms: int) -> Command:
    """TICK: the engine's clock for one partition (written with an explicit partition)."""
    return _command(CommandKind.TICK, "", None, command_id, now_ms)
