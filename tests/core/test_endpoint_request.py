from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.endpoint_request import (
    MAX_BATCH_ITEMS,
    ChannelType,
    Demographic,
    EndpointRequest,
    EndpointRequestError,
    EndpointStatus,
    EndpointUser,
    Location,
    OptOut,
    merge_requests,
    parse_endpoint_batch,
    parse_endpoint_id,
    parse_endpoint_request,
)

# --- strategies shared with the state and profile tests -------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
short_text = st.text(max_size=12)
attribute_maps = st.dictionaries(
    st.sampled_from(["plan", "email", "name", "interests", "tier", "x.y"]) | names,
    st.lists(short_text, max_size=3).map(tuple),
    max_size=4,
)
metric_maps = st.dictionaries(
    st.sampled_from(["score", "orders", "ltv"]) | names,
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    max_size=3,
)
timestamps_ms = st.integers(min_value=0, max_value=4_102_444_800_000)  # up to 2100
demographics = st.builds(
    Demographic,
    **{
        f: st.none() | short_text
        for f in ("app_version", "locale", "make", "model", "model_version", "platform",
                  "platform_version", "timezone")
    },
)
locations = st.builds(
    Location,
    city=st.none() | short_text,
    country=st.none() | st.sampled_from(["US", "DE", "FR", "JP"]),
    latitude=st.none() | st.integers(-900, 900).map(lambda n: round(n / 10, 1)),
    longitude=st.none() | st.integers(-1800, 1800).map(lambda n: round(n / 10, 1)),
    postal_code=st.none() | short_text,
    region=st.none() | short_text,
)
users = st.builds(
    EndpointUser, user_id=st.none() | short_text, user_attributes=attribute_maps
)
requests = st.builds(
    EndpointRequest,
    address=st.none() | st.sampled_from(["jane@example.com", "+14155550123", "tok-1"]),
    channel_type=st.none() | st.sampled_from(ChannelType),
    attributes=st.none() | attribute_maps,
    demographic=st.none() | demographics,
    effective_date=st.none() | timestamps_ms,
    endpoint_status=st.none() | st.sampled_from(EndpointStatus),
    location=st.none() | locations,
    metrics=st.none() | metric_maps,
    opt_out=st.none() | st.sampled_from(OptOut),
    request_id=st.none() | short_text,
    user=st.none() | users,
)

# --- parsing ----------------------------------------------------------------------------

FULL = {
    "Address": "jane@example.com",
    "ChannelType": "EMAIL",
    "Attributes": {"plan": ["pro"], "interests": ["running", "cycling"]},
    "Demographic": {"Platform": "ios", "Timezone": "Europe/Berlin", "Locale": "de_DE"},
    "EffectiveDate": "2026-05-01T12:00:00.250Z",
    "EndpointStatus": "ACTIVE",
    "Location": {"City": "Berlin", "Country": "de", "Latitude": 52.52, "Longitude": 13.405,
                 "PostalCode": "10115", "Region": "BE"},
    "Metrics": {"orders": 7, "lifetime_value": 312.5},
    "OptOut": "NONE",
    "RequestId": "r-1",
    "User": {"UserId": "user-1842", "UserAttributes": {"FirstName": ["Jane"]}},
}


def test_full_request_is_normalized() -> None:
    request = parse_endpoint_request(FULL)
    assert request == EndpointRequest(
        address="jane@example.com",
        channel_type=ChannelType.EMAIL,
        attributes={"plan": ("pro",), "interests": ("running", "cycling")},
        demographic=Demographic(platform="ios", timezone="Europe/Berlin", locale="de_DE"),
        effective_date=1777636800250,
        endpoint_status=EndpointStatus.ACTIVE,
        location=Location(city="Berlin", country="DE", latitude=52.5, longitude=13.4,
                          postal_code="10115", region="BE"),
        metrics={"orders": 7.0, "lifetime_value": 312.5},
        opt_out=OptOut.NONE,
        request_id="r-1",
        user=EndpointUser("user-1842", {"FirstName": ("Jane",)}),
    )
    assert request.to_pinpoint()["EffectiveDate"] == "2026-05-01T12:00:00.250Z"
    assert request.to_pinpoint()["Location"]["Country"] == "DE"


def test_empty_public_endpoint_sets_nothing() -> None:
    assert parse_endpoint_request({}) == EndpointRequest()
    assert EndpointRequest().to_pinpoint() == {}


def test_nulls_and_unknown_fields_are_ignored() -> None:
    body = {"Address": None, "CohortId": "42", "CreationDate": "2026-01-01T00:00:00Z",
            "Id": "e-1", "ApplicationId": "a", "ChannelType": "SMS"}
    assert parse_endpoint_request(body) == EndpointRequest(channel_type=ChannelType.SMS)


@given(requests)
def test_to_pinpoint_parses_back_to_the_same_request(request: EndpointRequest) -> None:
    assert parse_endpoint_request(request.to_pinpoint()) == request


def _error(body: object) -> EndpointRequestError:
    with pytest.raises(EndpointRequestError) as caught:
        parse_endpoint_request(body)
    return caught.value


def test_unknown_channel_type_lists_the_valid_ones() -> None:
    error = _error({"ChannelType": "FAX"})
    assert error.field == "ChannelType"
    assert str(error) == (
        "unknown ChannelType 'FAX'; expected one of PUSH, GCM, APNS, APNS_SANDBOX, APNS_VOIP, "
        "APNS_VOIP_SANDBOX, ADM, SMS, VOICE, EMAIL, BAIDU, CUSTOM, IN_APP"
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "", "the endpoint must be a JSON object"),
        ({"Address": 5}, "Address", "Address must be a string"),
        ({"ChannelType": "email"}, "ChannelType", "unknown ChannelType 'email'"),
        ({"ChannelType": 3}, "ChannelType", "unknown ChannelType of type int"),
        ({"OptOut": "YES"}, "OptOut", "unknown OptOut 'YES'; expected one of NONE, ALL"),
        ({"EndpointStatus": "GONE"}, "EndpointStatus",
         "unknown EndpointStatus 'GONE'; expected one of ACTIVE, INACTIVE"),
        ({"EffectiveDate": "yesterday"}, "EffectiveDate",
         "EffectiveDate 'yesterday' is not an ISO-8601 timestamp"),
        ({"Attributes": ["plan"]}, "Attributes", "Attributes must be an object"),
        ({"Attributes": {"plan": "pro"}}, "Attributes.plan",
         "Attributes.plan must be a list of strings"),
        ({"Attributes": {"plan": [1]}}, "Attributes.plan",
         "Attributes.plan must be a list of strings"),
        ({"Attributes": {"n" * 51: ["x"]}}, "Attributes",
         "Attributes name 'nnnnn"),
        ({"Attributes": {"": ["x"]}}, "Attributes", "Attributes names must be non-empty"),
        ({"Attributes": {"plan": ["x"] * 51}}, "Attributes.plan",
         "Attributes.plan has 51 values; at most 50 are allowed"),
        ({"Attributes": {"plan": ["v" * 101]}}, "Attributes.plan",
         "Attributes.plan has a value longer than 100 characters"),
        ({"User": {"UserAttributes": {"FirstName": ["v" * 101]}}}, "User.UserAttributes.FirstName",
         "User.UserAttributes.FirstName has a value longer than 100 characters"),
        ({"User": {"UserId": 7}}, "User.UserId", "User.UserId must be a string"),
        ({"User": "u-1"}, "User", "User must be an object"),
        ({"Metrics": {"score": "high"}}, "Metrics.score", "Metrics.score must be a number"),
        ({"Metrics": {"score": True}}, "Metrics.score", "Metrics.score must be a number"),
        ({"Metrics": {"score": float("nan")}}, "Metrics.score",
         "Metrics.score must be a finite number"),
        ({"Location": {"Country": "DEU"}}, "Location.Country",
         "Location.Country 'DEU' must be a two-letter ISO 3166-1 alpha-2 code"),
        ({"Location": {"Latitude": 91}}, "Location.Latitude",
         "Location.Latitude 91.0 is outside -90..90"),
        ({"Location": {"Longitude": -180.5}}, "Location.Longitude",
         "Location.Longitude -180.5 is outside -180..180"),
        ({"Demographic": {"Platform": ["ios"]}}, "Demographic.Platform",
         "Demographic.Platform must be a string"),
        ({"RequestId": {}}, "RequestId", "RequestId must be a string"),
    ],
)
def test_invalid_fields_are_named(body: object, field: str, message: str) -> None:
    error = _error(body)
    assert error.field == field
    assert str(error).startswith(message)


def test_at_most_250_keys_across_attributes_metrics_and_user_attributes() -> None:
    body: dict[str, Any] = {
        "Attributes": {f"a{i}": ["x"] for i in range(100)},
        "Metrics": {f"m{i}": 1 for i in range(100)},
        "User": {"UserAttributes": {f"u{i}": ["x"] for i in range(50)}},
    }
    assert parse_endpoint_request(body).metrics is not None
    body["User"]["UserAttributes"]["one-too-many"] = ["x"]
    assert "at most 250 Attributes, Metrics and User.UserAttributes keys together; " \
        "this one has 251" in str(_error(body))


def test_at_most_15_kb_of_json() -> None:
    # 40 attributes x 5 values x 90 characters is about 19 KB
    body = {"Attributes": {f"a{i}": ["v" * 90] * 5 for i in range(40)}}
    error = _error(body)
    assert error.field == ""
    assert "at most 15360 (15 KB) are allowed" in str(error)


# --- batch ------------------------------------------------------------------------------


def test_batch_items_carry_their_id() -> None:
    items = parse_endpoint_batch(
        {"Item": [{"Id": "e-1", "ChannelType": "EMAIL", "Address": "a@example.com"},
                  {"Id": "e-2", "Attributes": {"plan": ["pro"]}}]}
    )
    assert [i.id for i in items] == ["e-1", "e-2"]
    assert items[0].request.channel_type is ChannelType.EMAIL
    assert items[1].request.attributes == {"plan": ("pro",)}
    assert parse_endpoint_batch({"Item": []}) == []


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("x", "", "the request body must be a JSON object"),
        ({}, "Item", "Item is required and must be a list"),
        ({"Item": [{"Id": "e-1"}, {"ChannelType": "SMS"}]}, "Item[1].Id",
         "Item[1]: Id is required and must be a non-empty string"),
        ({"Item": [{"Id": "e-1"}, {"Id": "e-2"}, {"Id": "e-3", "ChannelType": "FAX"}]},
         "Item[2].ChannelType", "Item[2]: unknown ChannelType 'FAX'"),
        ({"Item": [{"Id": "a{b}"}]}, "Item[0].Id", "Item[0]: Id 'a{b}' must not contain '{', '}'"),
        ({"Item": ["e-1"]}, "Item[0]", "Item[0]: each item must be a JSON object"),
        ({"Item": [{"Id": f"e-{i}"} for i in range(MAX_BATCH_ITEMS + 1)]}, "Item",
         "UpdateEndpointsBatch takes at most 100 items; this request has 101"),
    ],
)
def test_batch_errors_name_the_item(body: object, field: str, message: str) -> None:
    with pytest.raises(EndpointRequestError) as caught:
        parse_endpoint_batch(body)
    assert caught.value.field == field
    assert str(caught.value).startswith(message)


def test_endpoint_ids() -> None:
    assert parse_endpoint_id("2f4c9b1e-8d7a") == "2f4c9b1e-8d7a"
    with pytest.raises(EndpointRequestError, match=r"endpoint-id 'a\$b' must not contain '\$'"):
        parse_endpoint_id("a$b", "endpoint-id")
    with pytest.raises(EndpointRequestError, match="Id is required"):
        parse_endpoint_id(" ")


# --- merging requests -------------------------------------------------------------------


def test_merge_requests_is_keywise_and_resets_status_and_date() -> None:
    first = parse_endpoint_request({
        "Address": "a@example.com", "Attributes": {"plan": ["free"], "team": ["x"]},
        "Demographic": {"Platform": "ios"}, "EndpointStatus": "INACTIVE",
        "EffectiveDate": "2026-05-01T00:00:00Z", "User": {"UserId": "u-1"},
    })
    second = parse_endpoint_request({
        "Attributes": {"plan": ["pro"]}, "Demographic": {"Timezone": "UTC"},
        "User": {"UserAttributes": {"FirstName": ["Jane"]}},
    })
    assert merge_requests(first, second) == EndpointRequest(
        address="a@example.com",
        attributes={"plan": ("pro",), "team": ("x",)},
        demographic=Demographic(platform="ios", timezone="UTC"),
        user=EndpointUser("u-1", {"FirstName": ("Jane",)}),
    )
