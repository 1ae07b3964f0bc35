"""The endpoint profile's pure steps: ``(state | None, input, now_ms) -> outcome``.

Each step returns one of

- ``ProfileChange``: the new state (``None`` once deleted), the previous one,
  the ``EndpointChangeKind`` and what changed — ``changed_fields`` (Pinpoint
  paths of endpoint fields, e.g. ``Attributes.plan``,
  ``User.UserAttributes.FirstName``, ``Demographic.Platform``, ``OptOut``) and
  ``behaviour_changed`` (``LastActive``, ``Sessions``, ``Events.<type>``), so
  segments re-evaluate only what depends on them;
- ``Unchanged``: nothing to write or publish;
- ``Rejected``: the update would break an endpoint limit; the state stays.

The adapter writes ``state`` to the table and, when ``publishes`` is true,
emits ``change_record(...)`` on ``lodestar.endpoints``. Behaviour-only
changes (events of a known endpoint) update the table but are not published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from lodestar.core.behaviour_counters import OTHER, record_many
from lodestar.core.endpoint_commands import AttributeType
from lodestar.core.endpoint_request import (
    MAX_ENDPOINT_BYTES,
    MAX_KEYS_PER_ENDPOINT,
    Demographic,
    EndpointRequest,
    EndpointRequestError,
    EndpointStatus,
    EndpointUser,
    Location,
    json_size,
    merge_sub_record,
)
from lodestar.core.endpoint_state import (
    EndpointChangeKind,
    EndpointState,
    OpenSession,
    blank_state,
    changed_fields,
    endpoint_change_record,
    endpoint_response,
)
from lodestar.core.segment_definition import PerformedCondition
from lodestar.core.segment_predicate import IMPORTED_SEGMENTS, derived_counter_types

SESSION_START = "_session.start"
SESSION_STOP = "_session.stop"

_T = TypeVar("_T")
_V = TypeVar("_V")
_R = TypeVar("_R", Demographic, Location)

LAST_ACTIVE = "LastActive"
SESSIONS = "Sessions"
EVENTS_PREFIX = "Events."


@dataclass(frozen=True)
class ProfileChange:
    """The endpoint changed. ``state`` is ``None`` after DELETED; ``previous`` is
    ``None`` when this change created the endpoint."""

    state: EndpointState | None
    previous: EndpointState | None
    kind: EndpointChangeKind
    changed_fields: tuple[str, ...] = ()
    behaviour_changed: tuple[str, ...] = ()

    @property
    def created(self) -> bool:
        return self.previous is None and self.kind is EndpointChangeKind.UPSERTED

    @property
    def publishes(self) -> bool:
        """Whether ``lodestar.endpoints`` gets a record (any endpoint-field change)."""
        return self.kind is not EndpointChangeKind.UPSERTED or self.created or bool(
            self.changed_fields
        )

    def change_record(self, ts_ms: int, cause: str | None = None) -> dict[str, Any]:
        """The ``lodestar.v1.EndpointChange`` record for this change."""
        subject = self.state if self.state is not None else self.previous
        assert subject is not None
        return endpoint_change_record(
            subject, self.kind, self.changed_fields, ts_ms, created=self.created, cause=cause
        )


@dataclass(frozen=True)
class Unchanged:
    """Nothing to write or publish; ``state`` is the input state."""

    state: EndpointState | None
    reason: str


@dataclass(frozen=True)
class Rejected:
    """The input was not applied (the reason names the limit); ``state`` is unchanged."""

    state: EndpointState | None
    reason: str


ProfileOutcome = ProfileChange | Unchanged | Rejected


def apply_update(
    state: EndpointState | None,
    app_id: str,
    endpoint_id: str,
    request: EndpointRequest,
    now_ms: int,
) -> ProfileOutcome:
    """Pinpoint's UpdateEndpoint merge (also UpdateEndpointsBatch items, PutEvents endpoints).

    Creates the endpoint when ``state`` is ``None`` (CreationDate now, CohortId
    from the id). Address, ChannelType, OptOut, RequestId and User.UserId are
    replaced when sent; Attributes, Metrics and User.UserAttributes are
    replaced per key (keys not sent stay); Demographic and Location merge per
    sub-field. EndpointStatus becomes the request's, else ACTIVE;
    EffectiveDate the request's, else ``now_ms``. ``Rejected`` if the result
    would exceed 250 attribute+metric+user-attribute keys or 15 KB of JSON.
    ``Unchanged`` if an existing endpoint would not change at all.
    """
    _check_identity(state, app_id, endpoint_id)
    base = state if state is not None else blank_state(app_id, endpoint_id, now_ms)
    new = replace(
        base,
        address=_sent_or(request.address, base.address),
        channel_type=_sent_or(request.channel_type, base.channel_type),
        attributes=_merge_map(base.attributes, request.attributes),
        demographic=_none_if_empty(merge_sub_record(base.demographic, request.demographic)),
        effective_date=_sent_or(request.effective_date, now_ms),
        endpoint_status=request.endpoint_status or EndpointStatus.ACTIVE,
        location=_none_if_empty(merge_sub_record(base.location, request.location)),
        metrics=_merge_map(base.metrics, request.metrics),
        opt_out=_sent_or(request.opt_out, base.opt_out),
        request_id=_sent_or(request.request_id, base.request_id),
        user=_merge_user(base.user, request.user),
    )
    user_keys = len(new.user.user_attributes) if new.user else 0
    keys = len(new.attributes) + len(new.metrics) + user_keys
    if keys > MAX_KEYS_PER_ENDPOINT:
        return Rejected(
            state,
            f"the endpoint would hold {keys} Attributes, Metrics and User.UserAttributes keys; "
            f"at most {MAX_KEYS_PER_ENDPOINT} are allowed",
        )
    size = json_size(endpoint_response(new))
    if size > MAX_ENDPOINT_BYTES:
        return Rejected(
            state, f"the endpoint would be {size} bytes of JSON; at most {MAX_ENDPOINT_BYTES}"
        )
    changed = changed_fields(state, new)
    if state is not None and not changed:
        return Unchanged(state, "the update changes nothing")
    return ProfileChange(new, state, EndpointChangeKind.UPSERTED, changed)


def merge_user_attributes(
    state: EndpointState | None,
    user_id: str,
    attributes: Mapping[str, tuple[str, ...]],
    now_ms: int,
) -> ProfileOutcome:
    """Merge ``attributes`` into User.UserAttributes (per key), nothing else.

    For a user-attribute change made through another endpoint of the same user:
    EffectiveDate and EndpointStatus stay as they are. ``Unchanged`` when the
    endpoint is gone or no longer belongs to ``user_id``; ``Rejected`` past the
    250-key limit. ``now_ms`` is unused (kept for the common step signature).
    """
    if state is None or state.user is None or state.user.user_id != user_id:
        return Unchanged(state, f"the endpoint does not belong to user {user_id!r} any more")
    user = replace(state.user, user_attributes=_merge_map(state.user.user_attributes, attributes))
    new = replace(state, user=user)
    keys = len(new.attributes) + len(new.metrics) + len(user.user_attributes)
    if keys > MAX_KEYS_PER_ENDPOINT:
        return Rejected(
            state,
            f"the endpoint would hold {keys} Attributes, Metrics and User.UserAttributes keys; "
            f"at most {MAX_KEYS_PER_ENDPOINT} are allowed",
        )
    changed = changed_fields(state, new)
    if not changed:
        return Unchanged(state, "the user attributes are already set")
    return ProfileChange(new, state, EndpointChangeKind.UPSERTED, changed)


def apply_events(
    state: EndpointState | None,
    app_id: str,
    endpoint_id: str,
    events: Iterable[Mapping[str, Any]],
    now_ms: int,
    filters: Sequence[PerformedCondition] = (),
) -> ProfileChange | Unchanged:
    """Fold ``lodestar.v1.Event`` records, in the given (arrival) order, into ``state``.

    - Counters: each event counted by type at its timestamp (``record_many``),
      and also under every derived type ``type[k=v,…]`` of ``filters`` (the
      segments' attribute-filtered Performed conditions) its attributes match.
    - LastActive: the latest event time, clamped to ``now_ms``.
    - Sessions: an event whose session id differs from the most recent
      session's opens a session (count +1); ``_session.stop`` closes the open
      one and adds its Duration, else StopTimestamp - StartTimestamp, else
      event time - start. A stop for a session never seen counts it and its
      length at once; a repeated stop, or a late event of the most recent
      session, changes nothing. Without a Session object, ``_session.start``
      opens a session named by its event id and ``_session.stop`` closes the
      open one.
    - An unknown endpoint is created (EffectiveDate now, no ChannelType).

    Folding two batches one after the other equals folding them concatenated.
    Events do not touch EffectiveDate or any field of the request; the
    adapter applies a batch's PublicEndpoint with ``apply_update`` first.
    """
    _check_identity(state, app_id, endpoint_id)
    items = list(events)
    if state is None and not items:
        return Unchanged(None, "no events")
    base = (
        state
        if state is not None
        else replace(blank_state(app_id, endpoint_id, now_ms), effective_date=now_ms)
    )
    last_active = base.last_active_ms
    sessions = _Sessions(
        base.open_session, base.last_session_id, base.session_count, base.session_total_ms
    )
    for event in items:
        ts = min(int(event["timestamp"]), now_ms)
        last_active = ts if last_active is None else max(last_active, ts)
        sessions = sessions.step(event, ts)
    counted = _counted(items, filters)
    counters = record_many(base.counters, counted, now_ms)
    new = replace(
        base,
        last_active_ms=last_active,
        open_session=sessions.open,
        last_session_id=sessions.last_id,
        session_count=sessions.count,
        session_total_ms=sessions.total_ms,
        counters=counters,
    )
    behaviour: list[str] = []
    if new.last_active_ms != base.last_active_ms:
        behaviour.append(LAST_ACTIVE)
    if sessions != _Sessions(
        base.open_session, base.last_session_id, base.session_count, base.session_total_ms
    ):
        behaviour.append(SESSIONS)
    touched = {t for t, _ in counted}
    touched.add(OTHER)
    behaviour.extend(
        EVENTS_PREFIX + t
        for t in sorted(touched)
        if counters.types.get(t) != base.counters.types.get(t)
    )
    if state is not None and not behaviour:
        return Unchanged(state, "the events change nothing")
    # only behaviour differs from ``state``: endpoint fields change only on creation
    fields = changed_fields(state, new) if state is None else ()
    return ProfileChange(new, state, EndpointChangeKind.UPSERTED, fields, tuple(behaviour))


def _counted(
    items: Sequence[Mapping[str, Any]], filters: Sequence[PerformedCondition]
) -> list[tuple[str, int]]:
    """``(counter type, ts)`` for each event: its own type and the derived ones."""
    out = [(e["event_type"], int(e["timestamp"])) for e in items]
    if filters:
        for e in items:
            for derived in derived_counter_types(e["event_type"], e.get("attributes") or {},
                                                 filters):
                out.append((derived, int(e["timestamp"])))
    return out


def remove_attributes(
    state: EndpointState | None,
    attribute_type: AttributeType | str,
    names: Iterable[str],
    now_ms: int,
) -> ProfileChange | Unchanged:
    """RemoveAttributes for one endpoint: drop ``names`` from Attributes, Metrics or
    User.UserAttributes. EffectiveDate is not touched (``now_ms`` is unused; the
    signature matches the other steps). Raises ``EndpointRequestError`` for an
    unknown ``attribute_type``.
    """
    kind = parse_attribute_type(attribute_type)
    if state is None:
        return Unchanged(None, "no such endpoint")
    drop = set(names)
    if kind is AttributeType.ENDPOINT_CUSTOM_ATTRIBUTES:
        new = replace(state, attributes=_without(state.attributes, drop))
    elif kind is AttributeType.ENDPOINT_METRIC_ATTRIBUTES:
        new = replace(state, metrics=_without(state.metrics, drop))
    else:
        user = state.user or EndpointUser()
        new = replace(
            state,
            user=_none_if_empty_user(
                EndpointUser(user.user_id, _without(user.user_attributes, drop))
            ),
        )
    changed = changed_fields(state, new)
    if not changed:
        return Unchanged(state, "none of the attributes is set")
    return ProfileChange(new, state, EndpointChangeKind.UPSERTED, changed)


def deactivate(state: EndpointState | None, now_ms: int) -> ProfileChange | Unchanged:
    """EndpointStatus INACTIVE because another endpoint took this Address (kind DEACTIVATED)."""
    if state is None:
        return Unchanged(None, "no such endpoint")
    if state.endpoint_status is EndpointStatus.INACTIVE:
        return Unchanged(state, "already inactive")
    new = replace(state, endpoint_status=EndpointStatus.INACTIVE)
    return ProfileChange(new, state, EndpointChangeKind.DEACTIVATED, ("EndpointStatus",))


def add_to_segment(
    state: EndpointState | None, segment_id: str, now_ms: int
) -> ProfileChange | Unchanged:
    """An import job made the endpoint a member of the imported segment ``segment_id``
    (behaviour change ``ImportedSegments``; not published on ``lodestar.endpoints``)."""
    if state is None:
        return Unchanged(None, "no such endpoint")
    if segment_id in state.imported_segments:
        return Unchanged(state, "already in the imported segment")
    new = replace(state, imported_segments=tuple(sorted({*state.imported_segments, segment_id})))
    return ProfileChange(new, state, EndpointChangeKind.UPSERTED, (), (IMPORTED_SEGMENTS,))


def delete(state: EndpointState | None, now_ms: int) -> ProfileChange | Unchanged:
    """DeleteEndpoint / DeleteUserEndpoints: the new state is ``None`` (kind DELETED)."""
    if state is None:
        return Unchanged(None, "no such endpoint")
    return ProfileChange(None, state, EndpointChangeKind.DELETED)


def parse_attribute_type(value: AttributeType | str) -> AttributeType:
    """The RemoveAttributes type; ``EndpointRequestError`` names the valid ones."""
    try:
        return AttributeType(value)
    except ValueError:
        expected = ", ".join(t.value for t in AttributeType)
        raise EndpointRequestError(
            "attribute-type", f"unknown attribute type {value!r}; expected one of {expected}"
        ) from None


@dataclass(frozen=True)
class _Sessions:
    open: OpenSession | None
    last_id: str | None
    count: int
    total_ms: int

    def step(self, event: Mapping[str, Any], ts: int) -> _Sessions:
        event_type = event["event_type"]
        session = event.get("session")
        if session is None:
            if event_type == SESSION_START:
                session_id = str(event.get("event_id", ""))
                if session_id == self.last_id:
                    return self
                return _Sessions(OpenSession(session_id, ts), session_id, self.count + 1,
                                 self.total_ms)
            if event_type == SESSION_STOP and self.open is not None:
                length = max(0, ts - self.open.start_ms)
                return replace(self, open=None, total_ms=self.total_ms + length)
            return self
        session_id = str(session["id"])
        start = session.get("start_timestamp")
        start_ms = int(start) if start is not None else ts
        if event_type == SESSION_STOP:
            if self.open is not None and self.open.id == session_id:
                length = _length(session, self.open.start_ms, ts)
                return replace(self, open=None, total_ms=self.total_ms + length)
            if session_id == self.last_id:
                return self
            length = _length(session, start_ms, ts)
            return _Sessions(None, session_id, self.count + 1, self.total_ms + length)
        if session_id == self.last_id:
            return self
        return _Sessions(OpenSession(session_id, start_ms), session_id, self.count + 1,
                         self.total_ms)


def _length(session: Mapping[str, Any], open_start_ms: int, ts: int) -> int:
    """Duration, else StopTimestamp - StartTimestamp, else event time - start (≥ 0)."""
    if session.get("duration_ms") is not None:
        return max(0, int(session["duration_ms"]))
    start = session.get("start_timestamp")
    start_ms = int(start) if start is not None else open_start_ms
    stop = session.get("stop_timestamp")
    return max(0, (int(stop) if stop is not None else ts) - start_ms)


def _check_identity(state: EndpointState | None, app_id: str, endpoint_id: str) -> None:
    if state is not None and (state.application_id, state.id) != (app_id, endpoint_id):
        raise ValueError(
            f"state of {state.application_id}/{state.id} given for {app_id}/{endpoint_id}"
        )


def _sent_or(sent: _T | None, current: _T) -> _T:
    return sent if sent is not None else current


def _merge_map(current: Mapping[str, _V], sent: Mapping[str, _V] | None) -> Mapping[str, _V]:
    return current if not sent else {**current, **sent}


def _without(values: Mapping[str, _V], drop: set[str]) -> Mapping[str, _V]:
    return values if not drop & values.keys() else {
        k: v for k, v in values.items() if k not in drop
    }


def _none_if_empty(record: _R | None) -> _R | None:
    if record is None or all(v is None for v in vars(record).values()):
        return None
    return record


def _none_if_empty_user(user: EndpointUser | None) -> EndpointUser | None:
    if user is None or (user.user_id is None and not user.user_attributes):
        return None
    return user


def _merge_user(current: EndpointUser | None, sent: EndpointUser | None) -> EndpointUser | None:
    if sent is None:
        return current
    base = current or EndpointUser()
    return _none_if_empty_user(
        EndpointUser(
            user_id=_sent_or(sent.user_id, base.user_id),
            user_attributes=_merge_map(base.user_attributes, sent.user_attributes),
        )
    )
