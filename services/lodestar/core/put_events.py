"""PutEvents: validate a Pinpoint ``EventsRequest`` body into event records.

``parse_put_events(app_id, body, arrival_ms)`` never raises on bad items: each
endpoint and each event gets its own ``ItemResult`` (202 Accepted or 400 with
the reason), so one bad event never loses the good ones in the same request.
Only a body that is not an ``EventsRequest`` at all raises ``RequestError``.

Accepted events come back as ``EventRecord`` mappings shaped like the
``lodestar.v1.Event`` Avro schema (timestamps as epoch milliseconds).

A non-empty ``Endpoint`` (PublicEndpoint) is validated like UpdateEndpoint's
body; when valid it rides on the batch's first accepted event
(``endpoint_request``, Pinpoint JSON) so the engine upserts the endpoint
before that event applies, and its ``User.UserId`` is copied to every event
(``user_id``). A valid endpoint whose batch has no accepted event is returned
in ``endpoint_upserts`` for the caller to publish as an UPSERT command. An
invalid endpoint gets a 400 ``EndpointItemResponse``; its events still count.
Limits are Pinpoint's (reference §9): 100 events per request, 40 attribute
and metric keys per event, keys ≤ 50 and attribute values ≤ 200 characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lodestar.core.endpoint_request import (
    EndpointRequestError,
    parse_endpoint_id,
    parse_endpoint_request,
)
from lodestar.core.timestamps import TimestampError
from lodestar.core.timestamps import parse_timestamp as _parse_timestamp

MAX_EVENTS_PER_REQUEST = 100
MAX_KEYS_PER_EVENT = 40
MAX_KEY_LENGTH = 50
MAX_ATTRIBUTE_VALUE_LENGTH = 200
MAX_EVENT_TYPE_LENGTH = 50

ACCEPTED = "Accepted"

EventRecord = dict[str, Any]

_CLIENT_FIELDS = {
    "AppPackageName": "app_package_name",
    "AppTitle": "app_title",
    "AppVersionCode": "app_version_code",
    "SdkName": "sdk_name",
    "ClientSdkVersion": "client_sdk_version",
}


class RequestError(ValueError):
    """The body as a whole is not a valid request (answered with HTTP 400)."""


@dataclass(frozen=True)
class ItemResult:
    """Pinpoint's per-item answer: ``{"StatusCode": 202, "Message": "Accepted"}``."""

    status_code: int
    message: str

    def as_pinpoint(self) -> dict[str, Any]:
        return {"StatusCode": self.status_code, "Message": self.message}


ACCEPTED_RESULT = ItemResult(202, ACCEPTED)


@dataclass(frozen=True)
class EndpointEventsResult:
    """The answer for one ``BatchItem`` entry: its endpoint and each of its events."""

    endpoint: ItemResult
    events: dict[str, ItemResult]

    def as_pinpoint(self) -> dict[str, Any]:
        return {
            "EndpointItemResponse": self.endpoint.as_pinpoint(),
            "EventsItemResponse": {k: v.as_pinpoint() for k, v in self.events.items()},
        }


@dataclass(frozen=True)
class PutEventsOutcome:
    """Per-item results in request order, and the records to publish."""

    results: dict[str, EndpointEventsResult]
    accepted: list[EventRecord] = field(default_factory=list)
    endpoint_upserts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_pinpoint(self) -> dict[str, Any]:
        """The ``EventsResponse`` body: ``{"Results": {endpointId: …}}``."""
        return {"Results": {k: v.as_pinpoint() for k, v in self.results.items()}}


class _Invalid(ValueError):
    """One item is invalid; the message is what the client sees."""


def parse_put_events(app_id: str, body: object, arrival_ms: int) -> PutEventsOutcome:
    """Validate ``body`` (decoded JSON) and build the records to publish.

    Raises ``RequestError`` only when ``body`` has no usable ``BatchItem`` map
    or carries more than ``MAX_EVENTS_PER_REQUEST`` events.
    """
    if not isinstance(body, Mapping):
        raise RequestError("The request body must be a JSON object with a BatchItem map.")
    batch = body.get("BatchItem")
    if not isinstance(batch, Mapping):
        raise RequestError("BatchItem is required and must map endpoint ids to EventsBatch.")
    total = sum(
        len(item.get("Events") or {})
        for item in batch.values()
        if isinstance(item, Mapping) and isinstance(item.get("Events"), Mapping)
    )
    if total > MAX_EVENTS_PER_REQUEST:
        raise RequestError(
            f"A PutEvents request holds at most {MAX_EVENTS_PER_REQUEST} events; "
            f"this one holds {total}. Split it into several requests."
        )

    results: dict[str, EndpointEventsResult] = {}
    accepted: list[EventRecord] = []
    upserts: dict[str, dict[str, Any]] = {}
    for endpoint_id, item in batch.items():
        endpoint_result, event_results, records, endpoint = _parse_batch_item(
            app_id, endpoint_id, item, arrival_ms
        )
        results[endpoint_id] = EndpointEventsResult(endpoint_result, event_results)
        accepted.extend(records)
        if endpoint is not None and not records:
            upserts[endpoint_id] = endpoint
    return PutEventsOutcome(results=results, accepted=accepted, endpoint_upserts=upserts)


def _parse_batch_item(
    app_id: str, endpoint_id: str, item: object, arrival_ms: int
) -> tuple[ItemResult, dict[str, ItemResult], list[EventRecord], dict[str, Any] | None]:
    """Results for one BatchItem entry, its event records, and its valid non-empty endpoint."""
    try:
        try:
            parse_endpoint_id(endpoint_id, "The endpoint id (the BatchItem key)")
        except EndpointRequestError as bad:
            raise _Invalid(f"{bad}.") from None
        if not isinstance(item, Mapping):
            raise _Invalid("Each BatchItem value must be an EventsBatch object.")
        if not isinstance(item.get("Endpoint"), Mapping):
            raise _Invalid("EventsBatch.Endpoint is required and must be an object (it may be {}).")
        events = item.get("Events")
        if not isinstance(events, Mapping):
            raise _Invalid("EventsBatch.Events is required and must map event ids to events.")
    except _Invalid as bad:
        return ItemResult(400, str(bad)), {}, [], None

    endpoint_result, endpoint = ACCEPTED_RESULT, None
    if item["Endpoint"]:
        try:
            endpoint = parse_endpoint_request(item["Endpoint"]).to_pinpoint()
        except EndpointRequestError as bad:
            endpoint_result = ItemResult(400, f"Endpoint: {bad}")
    user_id = ((endpoint or {}).get("User") or {}).get("UserId")

    event_results: dict[str, ItemResult] = {}
    records: list[EventRecord] = []
    for event_id, event in events.items():
        try:
            record = parse_event(app_id, endpoint_id, event_id, event, arrival_ms)
        except _Invalid as bad:
            event_results[event_id] = ItemResult(400, str(bad))
            continue
        event_results[event_id] = ACCEPTED_RESULT
        record["user_id"] = user_id
        record["endpoint_request"] = None
        records.append(record)
    if endpoint is not None and records:
        records[0]["endpoint_request"] = json.dumps(endpoint, separators=(",", ":"))
    return endpoint_result, event_results, records, endpoint


def parse_event(
    app_id: str, endpoint_id: str, event_id: str, event: object, arrival_ms: int
) -> EventRecord:
    """Validate one Pinpoint ``Event`` and return its ``lodestar.v1.Event`` record."""
    if not event_id:
        raise _Invalid("The event id (the Events key) must not be empty.")
    if not isinstance(event, Mapping):
        raise _Invalid("An event must be an object.")
    event_type = event.get("EventType")
    if not isinstance(event_type, str) or not event_type.strip():
        raise _Invalid("EventType is required and must be a non-empty string.")
    if len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise _Invalid(f"EventType is longer than {MAX_EVENT_TYPE_LENGTH} characters.")
    timestamp = parse_timestamp(event.get("Timestamp"), "Timestamp")
    attributes = _attributes(event.get("Attributes"))
    metrics = _metrics(event.get("Metrics"))
    if len(attributes) + len(metrics) > MAX_KEYS_PER_EVENT:
        raise _Invalid(
            f"An event holds at most {MAX_KEYS_PER_EVENT} attribute and metric keys together; "
            f"this one holds {len(attributes) + len(metrics)}."
        )
    return {
        "event_id": event_id,
        "app_id": app_id,
        "endpoint_id": endpoint_id,
        "event_type": event_type,
        "timestamp": timestamp,
        "arrival_timestamp": arrival_ms,
        "attributes": attributes,
        "metrics": metrics,
        "session": _session(event.get("Session")),
        "client": _client(event),
    }


def parse_timestamp(value: object, name: str) -> int:
    """``core.timestamps.parse_timestamp`` raising this module's per-item error."""
    try:
        return _parse_timestamp(value, name)
    except TimestampError as bad:
        raise _Invalid(str(bad)) from None


def _check_key(kind: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise _Invalid(f"{kind} keys must be non-empty strings.")
    if len(key) > MAX_KEY_LENGTH:
        raise _Invalid(f"{kind} key {key[:60]!r} is longer than {MAX_KEY_LENGTH} characters.")
    return key


def _attributes(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Invalid("Attributes must be an object of string values.")
    out: dict[str, str] = {}
    for key, item in value.items():
        _check_key("Attribute", key)
        if not isinstance(item, str):
            raise _Invalid(f"Attribute {key!r} must be a string.")
        if len(item) > MAX_ATTRIBUTE_VALUE_LENGTH:
            raise _Invalid(
                f"Attribute {key!r} has a value longer than {MAX_ATTRIBUTE_VALUE_LENGTH} "
                "characters."
            )
        out[key] = item
    return out


def _metrics(value: object) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Invalid("Metrics must be an object of numeric values.")
    out: dict[str, float] = {}
    for key, item in value.items():
        _check_key("Metric", key)
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise _Invalid(f"Metric {key!r} must be a number.")
        if item != item or item in (float("inf"), float("-inf")):
            raise _Invalid(f"Metric {key!r} must be a finite number.")
        out[key] = float(item)
    return out


def _session(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Invalid("Session must be an object.")
    session_id = value.get("Id")
    if not isinstance(session_id, str) or not session_id:
        raise _Invalid("Session.Id is required and must be a non-empty string.")
    start = parse_timestamp(value.get("StartTimestamp"), "Session.StartTimestamp")
    stop_raw = value.get("StopTimestamp")
    stop = None if stop_raw is None else parse_timestamp(stop_raw, "Session.StopTimestamp")
    duration = value.get("Duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        raise _Invalid("Session.Duration must be a whole number of milliseconds.")
    if duration is not None and duration < 0:
        raise _Invalid("Session.Duration must not be negative.")
    return {
        "id": session_id,
        "start_timestamp": start,
        "stop_timestamp": stop,
        "duration_ms": duration,
    }


def _client(event: Mapping[str, Any]) -> dict[str, str | None] | None:
    values: dict[str, str | None] = {}
    for pinpoint_name, name in _CLIENT_FIELDS.items():
        raw = event.get(pinpoint_name)
        if raw is not None and not isinstance(raw, str):
            raise _Invalid(f"{pinpoint_name} must be a string.")
        values[name] = raw or None
    return values if any(v is not None for v in values.values()) else None
