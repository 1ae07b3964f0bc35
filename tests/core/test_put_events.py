from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.put_events import (
    MAX_EVENTS_PER_REQUEST,
    RequestError,
    parse_put_events,
    parse_timestamp,
)

ARRIVAL = 1_780_000_000_000


def event(event_type: str = "pageView", ts: str = "2026-05-01T12:00:00.000Z", **extra: Any) -> dict:
    return {"EventType": event_type, "Timestamp": ts, **extra}


def body(events: dict[str, Any], endpoint: Any = None, endpoint_id: str = "ep-1") -> dict:
    return {"BatchItem": {endpoint_id: {"Endpoint": endpoint or {}, "Events": events}}}


def test_amplify_shaped_body_is_accepted() -> None:
    session = {"Id": "s-1", "StartTimestamp": "2026-05-01T12:00:00.000Z"}
    outcome = parse_put_events(
        "app-1",
        body({
            "e1": event("_session.start", Session=session),
            "e2": event("pageView", Attributes={"url": "/a"}, Session=session),
            "e3": event("_monetization.purchase", Attributes={"_currency": "USD"},
                        Metrics={"_item_price": 9.99, "_quantity": 1}, Session=session),
            "e4": event("_session.stop", Session={**session, "StopTimestamp":
                        "2026-05-01T12:10:00.000Z", "Duration": 600000}),
        }),
        ARRIVAL,
    )
    assert outcome.as_pinpoint() == {
        "Results": {
            "ep-1": {
                "EndpointItemResponse": {"StatusCode": 202, "Message": "Accepted"},
                "EventsItemResponse": {
                    k: {"StatusCode": 202, "Message": "Accepted"} for k in ("e1", "e2", "e3", "e4")
                },
            }
        }
    }
    records = {r["event_id"]: r for r in outcome.accepted}
    assert records["e3"]["metrics"] == {"_item_price": 9.99, "_quantity": 1.0}
    assert records["e4"]["session"] == {
        "id": "s-1",
        "start_timestamp": 1777636800000,
        "stop_timestamp": 1777637400000,
        "duration_ms": 600000,
    }
    assert records["e1"]["app_id"] == "app-1"
    assert records["e1"]["endpoint_id"] == "ep-1"
    assert records["e1"]["arrival_timestamp"] == ARRIVAL
    assert records["e1"]["client"] is None


def test_one_bad_event_does_not_lose_the_good_ones() -> None:
    outcome = parse_put_events(
        "app", body({"good": event(), "bad": event(ts="yesterday")}), ARRIVAL
    )
    results = outcome.results["ep-1"].events
    assert results["good"].status_code == 202
    assert results["bad"].status_code == 400
    assert "Timestamp 'yesterday' is not an ISO-8601 timestamp" in results["bad"].message
    assert [r["event_id"] for r in outcome.accepted] == ["good"]


@pytest.mark.parametrize(
    ("bad_event", "message"),
    [
        ({"Timestamp": "2026-05-01T12:00:00Z"}, "EventType is required"),
        (event(event_type=""), "EventType is required"),
        ({"EventType": "x"}, "Timestamp is required"),
        (event(Attributes={"k": 1}), "Attribute 'k' must be a string"),
        (event(Attributes={"k" * 51: "v"}), "longer than 50 characters"),
        (event(Attributes={"k": "v" * 201}), "longer than 200 characters"),
        (event(Metrics={"m": "1"}), "Metric 'm' must be a number"),
        (event(Metrics={"m": True}), "Metric 'm' must be a number"),
        (event(Attributes={f"a{i}": "v" for i in range(21)},
               Metrics={f"m{i}": 1 for i in range(20)}), "at most 40 attribute and metric keys"),
        (event(Session={"Id": "s"}), "Session.StartTimestamp is required"),
        (event(Session={"StartTimestamp": "2026-05-01T12:00:00Z"}), "Session.Id is required"),
        (event(Session={"Id": "s", "StartTimestamp": "2026-05-01T12:00:00Z", "Duration": -1}),
         "must not be negative"),
        (event(AppVersionCode=3), "AppVersionCode must be a string"),
        ("not an object", "An event must be an object"),
    ],
)
def test_invalid_events_get_a_400_naming_the_problem(bad_event: Any, message: str) -> None:
    outcome = parse_put_events("app", body({"e": bad_event}), ARRIVAL)
    result = outcome.results["ep-1"].events["e"]
    assert result.status_code == 400
    assert message in result.message
    assert outcome.accepted == []


def test_forty_keys_are_allowed() -> None:
    ok = event(
        Attributes={f"a{i}": "v" for i in range(20)}, Metrics={f"m{i}": 1 for i in range(20)}
    )
    assert parse_put_events("app", body({"e": ok}), ARRIVAL).accepted


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"Events": {"e": event()}}, "EventsBatch.Endpoint is required"),
        ({"Endpoint": {}}, "EventsBatch.Events is required"),
        ("x", "must be an EventsBatch object"),
    ],
)
def test_invalid_batch_items_fail_alone(item: Any, message: str) -> None:
    outcome = parse_put_events(
        "app", {"BatchItem": {"bad": item, "good": {"Endpoint": {}, "Events": {"e": event()}}}},
        ARRIVAL,
    )
    assert outcome.results["bad"].endpoint.status_code == 400
    assert message in outcome.results["bad"].endpoint.message
    assert outcome.results["good"].events["e"].status_code == 202
    assert len(outcome.accepted) == 1


@pytest.mark.parametrize("bad_body", [None, [], {"BatchItem": []}, {"Other": {}}])
def test_a_body_without_batch_item_is_a_request_error(bad_body: Any) -> None:
    with pytest.raises(RequestError, match="BatchItem"):
        parse_put_events("app", bad_body, ARRIVAL)


def test_more_than_100_events_is_a_request_error() -> None:
    many = {f"e{i}": event() for i in range(MAX_EVENTS_PER_REQUEST + 1)}
    with pytest.raises(RequestError, match="at most 100 events"):
        parse_put_events("app", body(many), ARRIVAL)


def test_client_fields_are_kept() -> None:
    outcome = parse_put_events(
        "app", body({"e": event(AppPackageName="com.x", SdkName="aws-amplify-swift")}), ARRIVAL
    )
    assert outcome.accepted[0]["client"] == {
        "app_package_name": "com.x",
        "app_title": None,
        "app_version_code": None,
        "sdk_name": "aws-amplify-swift",
        "client_sdk_version": None,
    }


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2026-05-01T12:00:00.000Z", 1777636800000),
        ("2026-05-01T12:00:00Z", 1777636800000),
        ("2026-05-01T14:00:00.250+02:00", 1777636800250),
        ("2026-05-01T12:00:00", 1777636800000),
    ],
)
def test_timestamps(text: str, millis: int) -> None:
    assert parse_timestamp(text, "Timestamp") == millis


@given(st.datetimes(timezones=st.just(UTC)))
def test_any_iso_timestamp_parses_to_its_millisecond(dt: datetime) -> None:
    millis = parse_timestamp(dt.isoformat(), "T")
    assert datetime.fromtimestamp(millis // 1000, UTC).replace(
        microsecond=(millis % 1000) * 1000
    ) == dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def test_endpoint_payload_rides_on_the_first_accepted_event() -> None:
    endpoint = {"ChannelType": "EMAIL", "Address": "ana@example.com",
                "User": {"UserId": "u-1"}, "Attributes": {"plan": ["pro"]}}
    outcome = parse_put_events(
        "app", body({"bad": event(ts="x"), "e1": event(), "e2": event()}, endpoint=endpoint),
        ARRIVAL,
    )
    assert outcome.results["ep-1"].endpoint.status_code == 202
    first, second = outcome.accepted
    assert json.loads(first["endpoint_request"]) == endpoint
    assert second["endpoint_request"] is None
    assert first["user_id"] == second["user_id"] == "u-1"
    assert outcome.endpoint_upserts == {}


def test_endpoint_without_accepted_events_is_returned_as_an_upsert() -> None:
    endpoint = {"ChannelType": "SMS", "Address": "+351910000000"}
    outcome = parse_put_events("app", body({}, endpoint=endpoint), ARRIVAL)
    assert outcome.accepted == []
    assert outcome.endpoint_upserts == {"ep-1": endpoint}


def test_invalid_endpoint_is_a_400_but_its_events_still_count() -> None:
    outcome = parse_put_events(
        "app", body({"e1": event()}, endpoint={"ChannelType": "FAX"}), ARRIVAL
    )
    result = outcome.results["ep-1"]
    assert result.endpoint.status_code == 400
    assert "ChannelType" in result.endpoint.message and "FAX" in result.endpoint.message
    assert result.events["e1"].status_code == 202
    assert outcome.accepted[0]["endpoint_request"] is None
    assert outcome.endpoint_upserts == {}


def test_endpoint_ids_with_reserved_characters_are_refused() -> None:
    outcome = parse_put_events("app", body({"e": event()}, endpoint_id="a{b}"), ARRIVAL)
    assert outcome.results["a{b}"].endpoint.status_code == 400
    assert outcome.accepted == []
