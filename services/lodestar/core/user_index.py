"""The user index: which endpoints belong to a user, kept across partitions.

Endpoints live on the partition of their id; users span partitions. The
profile agent turns each change of an endpoint's ``User.UserId`` into
``UserIndexChange`` records (``membership_changes``) keyed by user, so they
all meet on the user's partition, where the user-index agent folds them
(``apply_membership``) into ``<app id>/<user id>`` → endpoint ids.

A user-attribute change a client makes through one endpoint travels the same
way (op ``ATTRIBUTES``, ``attributes_change``); the user-index agent turns it
into SET_USER_ATTRIBUTES commands for the user's other endpoints
(``fan_out_commands``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lodestar.core.endpoint_commands import Command, set_user_attributes_command


def user_key(app_id: str, user_id: str) -> str:
    """The user-index table's key, and the Kafka key of ``user-index`` records."""
    return f"{app_id}/{user_id}"


def membership_changes(
    app_id: str, endpoint_id: str, user_before: str | None, user_after: str | None, ts_ms: int
) -> list[dict[str, Any]]:
    """``lodestar.v1.UserIndexChange`` records for an endpoint whose UserId went from
    ``user_before`` to ``user_after`` (None: no user, or the endpoint is gone)."""
    if user_before == user_after:
        return []
    out: list[dict[str, Any]] = []
    for user_id, op in ((user_before, "REMOVE"), (user_after, "ADD")):
        if user_id:
            out.append({"app_id": app_id, "user_id": user_id, "endpoint_id": endpoint_id,
                        "op": op, "user_attributes": {}, "timestamp": ts_ms})  # fmt: skip
    return out


def apply_membership(
    endpoint_ids: Iterable[str], changes: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The user's endpoint ids after ``changes`` (in order), sorted; idempotent."""
    members = set(endpoint_ids)
    for change in changes:
        if change["op"] == "ADD":
            members.add(change["endpoint_id"])
        elif change["op"] == "REMOVE":
            members.discard(change["endpoint_id"])
    return sorted(members)


def attributes_change(
    app_id: str, user_id: str, endpoint_id: str, attributes: Mapping[str, list[str]], ts_ms: int
) -> dict[str, Any]:
    """The ``ATTRIBUTES`` record: ``endpoint_id`` changed the user's ``attributes``."""
    return {
        "app_id": app_id,
        "user_id": user_id,
        "endpoint_id": endpoint_id,
        "op": "ATTRIBUTES",
        "user_attributes": {k: list(v) for k, v in attributes.items()},
        "timestamp": ts_ms,
    }


def fan_out_commands(
    members: Iterable[str], change: Mapping[str, Any], now_ms: int
) -> list[Command]:
    """SET_USER_ATTRIBUTES for every member but the endpoint the change came through."""
    source = change["endpoint_id"]
    return [
        set_user_attributes_command(
            change["app_id"], endpoint_id, change["user_id"], change["user_attributes"],
            f"user-attributes:{change['app_id']}/{change['user_id']}:{source}:"
            f"{change['timestamp']}:{endpoint_id}",
            now_ms,
        )
        for endpoint_id in sorted(set(members))
        if endpoint_id != source
    ]
