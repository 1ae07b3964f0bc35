from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.core.test_endpoint_request import (
    attribute_maps,
    demographics,
    locations,
    metric_maps,
    short_text,
    timestamps_ms,
    users,
)

from lodestar.core.behaviour_counters import EMPTY, record_many
from lodestar.core.cohort import cohort_id
from lodestar.core.endpoint_request import (
    ChannelType,
    Demographic,
    EndpointStatus,
    EndpointUser,
    Location,
    OptOut,
)
from lodestar.core.endpoint_state import (
    EndpointChangeKind,
    EndpointState,
    OpenSession,
    blank_state,
    changed_fields,
    endpoint_change_record,
    endpoint_record,
    endpoint_response,
    schema_path,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "schemas" / "examples" / "endpoint_change"


def _none_if_empty(record: Any) -> Any:
    return None if record is None or all(v is None for v in vars(record).values()) else record


def _user_or_none(user: EndpointUser | None) -> EndpointUser | None:
    if user is None or (user.user_id is None and not user.user_attributes):
        return None
    return user


@st.composite
def states(draw: st.DrawFn) -> EndpointState:
    """Any state the profile steps can produce (normalized: no empty sub-records)."""
    endpoint_id = draw(st.sampled_from(["e-1", "email-jane", "2f4c9b1e"]) | short_text)
    now = draw(st.integers(1_700_000_000_000, 1_900_000_000_000))
    events = draw(st.lists(st.tuples(st.sampled_from(["a", "_session.start"]),
                                     st.integers(0, 100 * 86_400_000)), max_size=10))
    session = draw(st.none() | st.builds(OpenSession, short_text, timestamps_ms))
    return EndpointState(
        application_id=draw(st.sampled_from(["app-1", "7a8e3c1f"])),
        id=endpoint_id,
        cohort_id=cohort_id(endpoint_id),
        creation_date=draw(timestamps_ms),
        address=draw(st.none() | short_text),
        channel_type=draw(st.none() | st.sampled_from(ChannelType)),
        attributes=draw(attribute_maps),
        demographic=_none_if_empty(draw(st.none() | demographics)),
        effective_date=draw(st.none() | timestamps_ms),
        endpoint_status=draw(st.sampled_from(EndpointStatus)),
        location=_none_if_empty(draw(st.none() | locations)),
        metrics=draw(metric_maps),
        opt_out=draw(st.sampled_from(OptOut)),
        request_id=draw(st.none() | short_text),
        user=_user_or_none(draw(st.none() | users)),
        last_active_ms=draw(st.none() | timestamps_ms),
        open_session=session,
        last_session_id=session.id if session else draw(st.none() | short_text),
        session_count=draw(st.integers(0, 10_000)),
        session_total_ms=draw(st.integers(0, 10**12)),
        counters=record_many(EMPTY, [(t, now - off) for t, off in events], now),
    )


@given(states())
def test_dict_round_trip_is_exact_through_json(state: EndpointState) -> None:
    data = json.loads(json.dumps(state.to_dict()))
    assert EndpointState.from_dict(data) == state
    assert EndpointState.from_dict(data).to_dict() == state.to_dict()


def test_from_dict_rejects_another_version() -> None:
    data = blank_state("a", "e", 1).to_dict() | {"version": 2}
    with pytest.raises(ValueError, match="unsupported endpoint state version 2"):
        EndpointState.from_dict(data)


FULL = EndpointState(
    application_id="app-1",
    id="email-jane",
    cohort_id=7,
    creation_date=1770000000000,
    address="jane@example.com",
    channel_type=ChannelType.EMAIL,
    attributes={"plan": ("pro",), "interests": ("running", "cycling")},
    demographic=Demographic(platform="ios", timezone="Europe/Berlin"),
    effective_date=1777640000000,
    endpoint_status=EndpointStatus.ACTIVE,
    location=Location(country="DE", latitude=52.5, longitude=13.4),
    metrics={"orders": 7.0},
    opt_out=OptOut.ALL,
    request_id="r-1",
    user=EndpointUser("user-1842", {"FirstName": ("Jane",)}),
    last_active_ms=1777640000000,
    session_count=3,
)


def test_endpoint_response_is_pinpoints_shape() -> None:
    assert endpoint_response(FULL) == {
        "Address": "jane@example.com",
        "ApplicationId": "app-1",
        "Attributes": {"plan": ["pro"], "interests": ["running", "cycling"]},
        "ChannelType": "EMAIL",
        "CohortId": "7",
        "CreationDate": "2026-02-02T02:40:00.000Z",
        "Demographic": {"Platform": "ios", "Timezone": "Europe/Berlin"},
        "EffectiveDate": "2026-05-01T12:53:20.000Z",
        "EndpointStatus": "ACTIVE",
        "Id": "email-jane",
        "Location": {"Country": "DE", "Latitude": 52.5, "Longitude": 13.4},
        "Metrics": {"orders": 7.0},
        "OptOut": "ALL",
        "RequestId": "r-1",
        "User": {"UserId": "user-1842", "UserAttributes": {"FirstName": ["Jane"]}},
    }


def test_endpoint_response_of_a_bare_endpoint_omits_absent_fields() -> None:
    assert endpoint_response(blank_state("app-1", "e-1", 1777636800250)) == {
        "ApplicationId": "app-1",
        "Attributes": {},
        "CohortId": str(cohort_id("e-1")),
        "CreationDate": "2026-05-01T12:00:00.250Z",
        "EndpointStatus": "ACTIVE",
        "Id": "e-1",
        "Metrics": {},
        "OptOut": "NONE",
    }


# --- lodestar.v1.EndpointChange -----------------------------------------------------------


def _plain(schema: Any) -> Any:
    """The schema without logical types, so timestamps stay epoch millis when read back."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


SCHEMA = fastavro.parse_schema(_plain(json.loads((ROOT / "schemas" / "endpoint_change.avsc")
                                                 .read_text())))


def avro_round_trip(record: dict[str, Any]) -> Any:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, SCHEMA)


def _state_from_example(change: dict[str, Any]) -> EndpointState:
    """Inverse of ``endpoint_record`` for a decoded example (test helper)."""
    e = change["endpoint"]
    user = e["user"]
    return EndpointState(
        application_id=change["app_id"],
        id=e["id"],
        cohort_id=e["cohort_id"],
        creation_date=e["creation_date"],
        address=e["address"],
        channel_type=None if e["channel_type"] is None else ChannelType(e["channel_type"]),
        attributes={k: tuple(v) for k, v in e["attributes"].items()},
        demographic=None if e["demographic"] is None else Demographic(**e["demographic"]),
        effective_date=e["effective_date"],
        endpoint_status=EndpointStatus(e["endpoint_status"]),
        location=None if e["location"] is None else Location(**e["location"]),
        metrics=e["metrics"],
        opt_out=OptOut(e["opt_out"]),
        request_id=e["request_id"],
        user=None if user is None else EndpointUser(
            user["user_id"], {k: tuple(v) for k, v in user["user_attributes"].items()}
        ),
    )


_TO_PINPOINT = {
    "attributes.": "Attributes.", "metrics.": "Metrics.",
    "user.user_attributes.": "User.UserAttributes.",
}


@pytest.mark.parametrize(
    "name", ["amplify-js-created", "email-endpoint-updated-full", "deactivated-address-taken"]
)
def test_change_record_reproduces_the_schema_examples(name: str) -> None:
    example = avro_round_trip(json.loads((EXAMPLES / f"{name}.json").read_text()))
    state = _state_from_example(example)
    pinpoint_paths = [_pinpoint_path(p) for p in example["changed_fields"]]
    record = endpoint_change_record(
        state, EndpointChangeKind(example["kind"]), pinpoint_paths, example["timestamp"],
        created=example["created"], cause=example["cause"],
    )
    assert record == example
    assert avro_round_trip(record) == record


def _pinpoint_path(path: str) -> str:
    """Schema path back to a Pinpoint path, by searching schema_path's image."""
    for prefix, pinpoint in _TO_PINPOINT.items():
        if path.startswith(prefix):
            return pinpoint + path[len(prefix):]
    candidates = [
        "Address", "ChannelType", "EffectiveDate", "EndpointStatus", "OptOut", "RequestId",
        "User.UserId",
        *(f"Demographic.{n}" for n in ("AppVersion", "Locale", "Make", "Model", "ModelVersion",
                                         "Platform", "PlatformVersion", "Timezone")),
        *(f"Location.{n}" for n in ("City", "Country", "Latitude", "Longitude", "PostalCode",
                                      "Region")),
    ]
    return next(c for c in candidates if schema_path(c) == path)


def test_creation_lists_what_the_amplify_example_lists() -> None:
    example = avro_round_trip(json.loads((EXAMPLES / "amplify-js-created.json").read_text()))
    state = _state_from_example(example)
    assert sorted(schema_path(p) for p in changed_fields(None, state)) == \
        example["changed_fields"]


def test_deleted_record_carries_ids_only() -> None:
    record = endpoint_change_record(FULL, EndpointChangeKind.DELETED, ["Address"], 1777700000000,
                                    created=True, cause="DELETE_ENDPOINT")
    assert record == {
        "app_id": "app-1", "endpoint_id": "email-jane", "kind": "DELETED", "created": False,
        "endpoint": None, "changed_fields": [], "cause": "DELETE_ENDPOINT",
        "timestamp": 1777700000000,
    }
    assert avro_round_trip(record) == record


@given(states())
def test_every_state_makes_a_valid_change_record(state: EndpointState) -> None:
    record = endpoint_change_record(
        state, EndpointChangeKind.UPSERTED, changed_fields(None, state), 1, created=True
    )
    assert avro_round_trip(record) == record
    assert record["endpoint"] == endpoint_record(state)


@pytest.mark.parametrize(
    ("pinpoint", "schema"),
    [
        ("Address", "address"),
        ("OptOut", "opt_out"),
        ("EndpointStatus", "endpoint_status"),
        ("Attributes.plan", "attributes.plan"),
        ("Attributes.a.b", "attributes.a.b"),
        ("Metrics.score", "metrics.score"),
        ("Demographic.Platform", "demographic.platform"),
        ("Demographic.ModelVersion", "demographic.model_version"),
        ("Location.PostalCode", "location.postal_code"),
        ("User.UserId", "user.user_id"),
        ("User.UserAttributes.FirstName", "user.user_attributes.FirstName"),
    ],
)
def test_schema_paths(pinpoint: str, schema: str) -> None:
    assert schema_path(pinpoint) == schema


@pytest.mark.parametrize("bad", ["Attributes.", "Demographic.Shoe", "CohortId", "Sessions"])
def test_schema_path_rejects_non_fields(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an endpoint field path"):
        schema_path(bad)


def test_changed_fields_compares_keywise() -> None:
    old = FULL
    new = EndpointState(**{
        **vars(FULL),
        "attributes": {"plan": ("free",), "interests": ("running", "cycling"), "new": ()},
        "demographic": Demographic(platform="android", timezone="Europe/Berlin"),
        "location": None,
        "user": EndpointUser("user-1842", {}),
    })
    assert changed_fields(old, new) == (
        "Attributes.new", "Attributes.plan", "Demographic.Platform", "Location.Country",
        "Location.Latitude", "Location.Longitude", "User.UserAttributes.FirstName",
    )
    assert changed_fields(old, old) == ()


# --- CohortId -----------------------------------------------------------------------------


def test_cohort_is_the_documented_hash() -> None:
    digest = hashlib.sha256(b"2f4c9b1e-8d7a-4e36-b5c2-6a1d0e9f8b7c").digest()
    assert cohort_id("2f4c9b1e-8d7a-4e36-b5c2-6a1d0e9f8b7c") == \
        int.from_bytes(digest[:8], "big") % 100 == 44
    assert cohort_id("e-1") == 88
    assert blank_state("any-app", "e-1", 0).cohort_id == 88


@given(st.text())
def test_cohort_is_in_range(endpoint_id: str) -> None:
    assert 0 <= cohort_id(endpoint_id) <= 99


def test_cohorts_are_roughly_uniform_over_10k_ids() -> None:
    counts = Counter(cohort_id(str(uuid.UUID(int=i * 7919 + 1))) for i in range(10_000))
    assert len(counts) == 100
    assert all(60 <= n <= 140 for n in counts.values())  # expected 100, sd ~10
    chi_square = sum((n - 100) ** 2 / 100 for n in counts.values())
    assert chi_square < 148  # the 99.9th percentile of chi-square with 99 degrees of freedom
