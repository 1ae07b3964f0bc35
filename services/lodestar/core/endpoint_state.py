"""``EndpointState``: everything the engine keeps about one endpoint.

The Pinpoint fields (what GetEndpoint answers and ``lodestar.endpoints``
publishes) plus behaviour: last active time, the open session, session count
and total length, and ``BehaviourCounters``. Three views of it:

- ``to_dict`` / ``from_dict``: the engine table's JSON value (exact round trip);
- ``endpoint_response``: Pinpoint's EndpointResponse, field for field;
- ``endpoint_change_record``: a ``lodestar.v1.EndpointChange`` record.

Invariants the constructors in ``endpoint_profile`` keep: ``demographic``,
``location`` and ``user`` are ``None`` rather than empty; OptOut defaults to
NONE and EndpointStatus to ACTIVE, so both are always present.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from lodestar.core import endpoint_view
from lodestar.core.behaviour_counters import EMPTY, BehaviourCounters
from lodestar.core.cohort import cohort_id
from lodestar.core.endpoint_request import (
    DEMOGRAPHIC_NAMES,
    LOCATION_NAMES,
    AttributeMap,
    ChannelType,
    Demographic,
    EndpointStatus,
    EndpointUser,
    Location,
    MetricMap,
    OptOut,
    attribute_map_to_json,
)

STATE_VERSION = 1


class EndpointChangeKind(StrEnum):
    """The ``kind`` of a ``lodestar.v1.EndpointChange``."""

    UPSERTED = "UPSERTED"
    DEACTIVATED = "DEACTIVATED"
    DELETED = "DELETED"


@dataclass(frozen=True)
class OpenSession:
    """The session the endpoint is in: its client id and start time (ms)."""

    id: str
    start_ms: int


@dataclass(frozen=True)
class EndpointState:
    """One endpoint of one app. Times are epoch milliseconds UTC."""

    application_id: str
    id: str
    cohort_id: int
    creation_date: int
    address: str | None = None
    channel_type: ChannelType | None = None
    attributes: AttributeMap = field(default_factory=dict)
    demographic: Demographic | None = None
    effective_date: int | None = None
    endpoint_status: EndpointStatus = EndpointStatus.ACTIVE
    location: Location | None = None
    metrics: MetricMap = field(default_factory=dict)
    opt_out: OptOut = OptOut.NONE
    request_id: str | None = None
    user: EndpointUser | None = None
    last_active_ms: int | None = None
    open_session: OpenSession | None = None
    last_session_id: str | None = None
    """Id of the most recent session opened (open or closed); a late or repeated
    event of that session does not open it again."""
    session_count: int = 0
    session_total_ms: int = 0
    counters: BehaviourCounters = EMPTY
    applied_offsets: Mapping[str, int] = field(default_factory=dict)
    """Per input kind (``event``, ``command``): the Kafka offset of the last input
    applied. All of an endpoint's inputs of one kind come from one partition in
    offset order, so a replayed input (offset ≤ this) is skipped, not applied twice."""
    imported_segments: tuple[str, ...] = ()
    """Ids of the imported (static) segments the endpoint was added to, sorted."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON-compatible table value; ``from_dict`` restores it exactly."""
        return {
            "version": STATE_VERSION,
            "application_id": self.application_id,
            "id": self.id,
            "cohort_id": self.cohort_id,
            "creation_date": self.creation_date,
            "address": self.address,
            "channel_type": None if self.channel_type is None else self.channel_type.value,
            "attributes": attribute_map_to_json(self.attributes),
            "demographic": _sub_record_dict(self.demographic),
            "effective_date": self.effective_date,
            "endpoint_status": self.endpoint_status.value,
            "location": _sub_record_dict(self.location),
            "metrics": dict(self.metrics),
            "opt_out": self.opt_out.value,
            "request_id": self.request_id,
            "user": None
            if self.user is None
            else {
                "user_id": self.user.user_id,
                "user_attributes": attribute_map_to_json(self.user.user_attributes),
            },
            "last_active_ms": self.last_active_ms,
            "open_session": None
            if self.open_session is None
            else {"id": self.open_session.id, "start_ms": self.open_session.start_ms},
            "last_session_id": self.last_session_id,
            "session_count": self.session_count,
            "session_total_ms": self.session_total_ms,
            "counters": self.counters.to_dict(),
            "applied_offsets": dict(self.applied_offsets),
            "imported_segments": list(self.imported_segments),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointState:
        """Inverse of ``to_dict``; raises ``ValueError`` for another state version."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported endpoint state version {data.get('version')!r}")
        user = data.get("user")
        session = data.get("open_session")
        location = data.get("location")
        return cls(
            application_id=data["application_id"],
            id=data["id"],
            cohort_id=int(data["cohort_id"]),
            creation_date=int(data["creation_date"]),
            address=data.get("address"),
            channel_type=None if data.get("channel_type") is None else ChannelType(
                data["channel_type"]
            ),
            attributes=_attribute_map(data.get("attributes")),
            demographic=None if data.get("demographic") is None else Demographic(
                **data["demographic"]
            ),
            effective_date=data.get("effective_date"),
            endpoint_status=EndpointStatus(data.get("endpoint_status", "ACTIVE")),
            location=None if location is None else _location(location),
            metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
            opt_out=OptOut(data.get("opt_out", "NONE")),
            request_id=data.get("request_id"),
            user=None if user is None else EndpointUser(
                user_id=user.get("user_id"),
                user_attributes=_attribute_map(user.get("user_attributes")),
            ),
            last_active_ms=data.get("last_active_ms"),
            open_session=None if session is None else OpenSession(
                session["id"], int(session["start_ms"])
            ),
            last_session_id=data.get("last_session_id"),
            session_count=int(data.get("session_count", 0)),
            session_total_ms=int(data.get("session_total_ms", 0)),
            counters=BehaviourCounters.from_dict(data.get("counters")),
            applied_offsets={k: int(v) for k, v in (data.get("applied_offsets") or {}).items()},
            imported_segments=tuple(data.get("imported_segments") or ()),
        )


def blank_state(app_id: str, endpoint_id: str, now_ms: int) -> EndpointState:
    """A new endpoint with nothing set: created now, cohort from the id, ACTIVE, OptOut NONE."""
    return EndpointState(
        application_id=app_id,
        id=endpoint_id,
        cohort_id=cohort_id(endpoint_id),
        creation_date=now_ms,
    )


def endpoint_response(state: EndpointState) -> dict[str, Any]:
    """Pinpoint's EndpointResponse for ``state`` (GetEndpoint, GetUserEndpoints).

    Built by ``endpoint_view`` from ``endpoint_record(state)``, so the engine's
    state and the read model fed by ``lodestar.endpoints`` answer alike:
    absent scalars, Demographic, Location and User are omitted; Attributes,
    Metrics, OptOut and EndpointStatus are always present; CohortId is a
    string "0"-"99"; dates are ISO-8601 with milliseconds and ``Z``.
    """
    return endpoint_view.endpoint_response(state.application_id, endpoint_record(state))


def endpoint_record(state: EndpointState) -> dict[str, Any]:
    """The ``lodestar.v1.Endpoint`` record of ``state``, every field present."""
    return {
        "id": state.id,
        "channel_type": None if state.channel_type is None else state.channel_type.value,
        "address": state.address,
        "attributes": attribute_map_to_json(state.attributes),
        "metrics": dict(state.metrics),
        "demographic": None
        if state.demographic is None
        else {f.name: getattr(state.demographic, f.name) for f in fields(Demographic)},
        "location": None
        if state.location is None
        else {f.name: getattr(state.location, f.name) for f in fields(Location)},
        "opt_out": state.opt_out.value,
        "endpoint_status": state.endpoint_status.value,
        "effective_date": state.effective_date,
        "creation_date": state.creation_date,
        "cohort_id": state.cohort_id,
        "request_id": state.request_id,
        "user": None
        if state.user is None
        else {
            "user_id": state.user.user_id,
            "user_attributes": attribute_map_to_json(state.user.user_attributes),
        },
    }


def endpoint_change_record(
    state: EndpointState,
    change_kind: EndpointChangeKind,
    changed_fields: Iterable[str],
    ts_ms: int,
    *,
    created: bool = False,
    cause: str | None = None,
) -> dict[str, Any]:
    """A ``lodestar.v1.EndpointChange`` record, every field present.

    ``state`` is the endpoint after the change (for DELETED: the endpoint that
    was deleted, which supplies the ids; the record carries no endpoint and no
    changed fields). ``changed_fields`` are Pinpoint paths as ``ProfileChange``
    gives them; the record holds them as schema paths (``schema_path``), sorted.
    ``cause`` is one of the schema's documented causes, e.g. UPDATE_ENDPOINT.
    """
    deleted = change_kind is EndpointChangeKind.DELETED
    return {
        "app_id": state.application_id,
        "endpoint_id": state.id,
        "kind": change_kind.value,
        "created": created and not deleted,
        "endpoint": None if deleted else endpoint_record(state),
        "changed_fields": [] if deleted else sorted(schema_path(p) for p in changed_fields),
        "cause": cause,
        "timestamp": ts_ms,
    }


_TOP_LEVEL = {
    "Address": "address",
    "ChannelType": "channel_type",
    "EffectiveDate": "effective_date",
    "EndpointStatus": "endpoint_status",
    "OptOut": "opt_out",
    "RequestId": "request_id",
    "User.UserId": "user.user_id",
}
_MAP_PREFIXES = {
    "Attributes.": "attributes.",
    "Metrics.": "metrics.",
    "User.UserAttributes.": "user.user_attributes.",
}
_SUB_RECORDS = {
    "Demographic.": ("demographic.", {v: k for k, v in DEMOGRAPHIC_NAMES.items()}),
    "Location.": ("location.", {v: k for k, v in LOCATION_NAMES.items()}),
}


def schema_path(path: str) -> str:
    """A Pinpoint field path (``Demographic.Platform``, ``Attributes.plan``) as the
    EndpointChange schema spells it (``demographic.platform``, ``attributes.plan``).

    Map keys are kept verbatim. Raises ``ValueError`` for a path that is not an
    endpoint field.
    """
    if path in _TOP_LEVEL:
        return _TOP_LEVEL[path]
    for prefix, target in _MAP_PREFIXES.items():
        if path.startswith(prefix) and len(path) > len(prefix):
            return target + path[len(prefix) :]
    for prefix, (target, names) in _SUB_RECORDS.items():
        if path.startswith(prefix) and path[len(prefix) :] in names:
            return target + names[path[len(prefix) :]]
    raise ValueError(f"{path!r} is not an endpoint field path")


def changed_fields(old: EndpointState | None, new: EndpointState) -> tuple[str, ...]:
    """Pinpoint paths of the endpoint fields that differ, sorted.

    ``old=None`` compares with ``blank_state`` (a creation lists what it set).
    Paths: Address, ChannelType, EffectiveDate, EndpointStatus, OptOut,
    RequestId, ``Attributes.<name>``, ``Metrics.<name>``,
    ``Demographic.<Field>``, ``Location.<Field>``, User.UserId,
    ``User.UserAttributes.<name>``. Ids, CohortId and CreationDate never change.
    """
    before = old if old is not None else blank_state(new.application_id, new.id, new.creation_date)
    out: list[str] = []
    for name, attr in (
        ("Address", "address"),
        ("ChannelType", "channel_type"),
        ("EffectiveDate", "effective_date"),
        ("EndpointStatus", "endpoint_status"),
        ("OptOut", "opt_out"),
        ("RequestId", "request_id"),
    ):
        if getattr(before, attr) != getattr(new, attr):
            out.append(name)
    out.extend(_map_diff("Attributes", before.attributes, new.attributes))
    out.extend(_map_diff("Metrics", before.metrics, new.metrics))
    out.extend(_sub_record_diff("Demographic", DEMOGRAPHIC_NAMES, before.demographic,
                                new.demographic))
    out.extend(_sub_record_diff("Location", LOCATION_NAMES, before.location, new.location))
    old_user = before.user or EndpointUser()
    new_user = new.user or EndpointUser()
    if old_user.user_id != new_user.user_id:
        out.append("User.UserId")
    out.extend(
        _map_diff("User.UserAttributes", old_user.user_attributes, new_user.user_attributes)
    )
    return tuple(sorted(out))


def _map_diff(prefix: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"{prefix}.{key}" for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def _sub_record_diff(
    prefix: str,
    names: Mapping[str, str],
    old: Demographic | Location | None,
    new: Demographic | Location | None,
) -> list[str]:
    return [
        f"{prefix}.{pinpoint}"
        for attr, pinpoint in names.items()
        if getattr(old, attr, None) != getattr(new, attr, None)
    ]


def _sub_record_dict(record: Demographic | Location | None) -> dict[str, Any] | None:
    if record is None:
        return None
    values = vars(record)  # the fields' values (plain dataclasses, no slots)
    names = _FIELD_NAMES.get(type(record)) or tuple(f.name for f in fields(record))
    return {name: values[name] for name in names if values[name] is not None}


_FIELD_NAMES: Mapping[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in (Demographic, Location)}


def _location(data: Mapping[str, Any]) -> Location:
    values: dict[str, Any] = dict(data)
    for name in ("latitude", "longitude"):
        if values.get(name) is not None:
            values[name] = float(values[name])
    return Location(**values)


def _attribute_map(data: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in (data or {}).items()}
