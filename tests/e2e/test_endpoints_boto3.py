"""Endpoints and users through an unmodified boto3 ``pinpoint`` client, on the real stack.

The API and a worker run as subprocesses; writes go API → Kafka → engine →
``lodestar.endpoints`` → PostgreSQL read model, and reads come back through
GetEndpoint / GetUserEndpoints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes

pytestmark = pytest.mark.e2e

T = TypeVar("T")
READ_TIMEOUT = 10.0


def client(url: str, akid: str, secret: str) -> Any:
    return boto3.client(
        "pinpoint", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def eventually(read: Callable[[], T], check: Callable[[T], bool], what: str) -> tuple[T, float]:
    """Poll ``read`` until ``check`` holds; return the value and how long it took."""
    started = time.monotonic()
    last: Any = None
    while time.monotonic() - started < READ_TIMEOUT:
        try:
            last = read()
            if check(last):
                return last, time.monotonic() - started
        except ClientError as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(f"{what}: not true within {READ_TIMEOUT}s; last answer: {last!r}")


def code_of(call: Callable[[], Any]) -> str | None:
    """The error code ``call`` raises, or None when it succeeds."""
    try:
        call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return None


def error_code(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


@pytest.fixture
def pinpoint(lodestar: tuple[Processes, dict], unique: str) -> tuple[Any, str, Processes]:
    procs, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    created = admin.create_app(CreateApplicationRequest={"Name": f"contract-{unique}"})
    app_id = created["ApplicationResponse"]["Id"]
    headers = created["ResponseMetadata"]["HTTPHeaders"]
    app_client = client(
        urls["api"], headers["x-lodestar-access-key-id"], headers["x-lodestar-secret-access-key"]
    )
    return app_client, app_id, procs


def test_endpoint_and_user_lifecycle(pinpoint: tuple[Any, str, Processes]) -> None:
    pp, app, procs = pinpoint
    get = lambda endpoint_id: pp.get_endpoint(  # noqa: E731
        ApplicationId=app, EndpointId=endpoint_id
    )["EndpointResponse"]

    # UpdateEndpoint creates; the write is readable shortly after
    answer = pp.update_endpoint(ApplicationId=app, EndpointId="e1", EndpointRequest={
        "ChannelType": "EMAIL", "Address": "ana@example.com",
        "Attributes": {"plan": ["free"], "interests": ["hiking", "jazz"]},
        "Demographic": {"Platform": "ios", "Timezone": "Europe/Lisbon"},
        "Location": {"Country": "PT", "City": "Lisbon"},
        "User": {"UserId": "u1", "UserAttributes": {"FirstName": ["Ana"]}},
    })
    assert answer["MessageBody"]["Message"] == "Accepted"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    e1, took = eventually(lambda: get("e1"), lambda r: True, "e1 readable")
    print(f"UpdateEndpoint readable after {took:.2f}s")
    assert e1["Address"] == "ana@example.com" and e1["ChannelType"] == "EMAIL"
    assert e1["EndpointStatus"] == "ACTIVE" and 0 <= int(e1["CohortId"]) <= 99
    assert e1["User"] == {"UserId": "u1", "UserAttributes": {"FirstName": ["Ana"]}}
    assert e1["Location"]["Country"] == "PT" and e1["ApplicationId"] == app

    # merge: attributes replaced per key, others kept
    pp.update_endpoint(ApplicationId=app, EndpointId="e1",
                       EndpointRequest={"Attributes": {"plan": ["pro"]}})
    e1, _ = eventually(lambda: get("e1"), lambda r: r["Attributes"]["plan"] == ["pro"], "merge")
    assert e1["Attributes"]["interests"] == ["hiking", "jazz"]

    # a batch: a second endpoint for u1, and e3 taking e1's address (e1 becomes INACTIVE)
    pp.update_endpoints_batch(ApplicationId=app, EndpointBatchRequest={"Item": [
        {"Id": "e2", "ChannelType": "SMS", "Address": "+351910000001", "User": {"UserId": "u1"}},
        {"Id": "e3", "ChannelType": "EMAIL", "Address": "ana@example.com"},
    ]})
    eventually(lambda: get("e1"), lambda r: r["EndpointStatus"] == "INACTIVE", "e1 inactive")
    users = lambda: pp.get_user_endpoints(  # noqa: E731
        ApplicationId=app, UserId="u1"
    )["EndpointsResponse"]["Item"]
    eventually(users, lambda i: {e["Id"] for e in i} == {"e1", "e2"}, "u1's endpoints")

    # a user attribute set through e2 reaches the user's other endpoint e1 (and only that)
    pp.update_endpoint(ApplicationId=app, EndpointId="e2", EndpointRequest={
        "User": {"UserId": "u1", "UserAttributes": {"LastName": ["Silva"]}}})
    e1, took = eventually(
        lambda: get("e1"), lambda r: r["User"]["UserAttributes"].get("LastName") == ["Silva"],
        "user attribute fan-out to e1",
    )
    print(f"user attribute reached the user's other endpoint after {took:.2f}s")
    assert e1["User"]["UserAttributes"]["FirstName"] == ["Ana"]
    assert e1["EndpointStatus"] == "INACTIVE"  # nothing but the user attributes changed

    # PutEvents with an Amplify-shaped body and a PublicEndpoint creates e4
    session = {"Id": "s1", "StartTimestamp": "2026-11-28T10:00:00.000Z"}
    events = pp.put_events(ApplicationId=app, EventsRequest={"BatchItem": {"e4": {
        "Endpoint": {"ChannelType": "APNS", "Address": "device-token-4", "User": {"UserId": "u2"}},
        "Events": {
            "a": {"EventType": "_session.start", "Timestamp": "2026-11-28T10:00:00.000Z",
                  "Session": session},
            "b": {"EventType": "_monetization.purchase", "Timestamp": "2026-11-28T10:01:00.000Z",
                  "Attributes": {"_currency": "EUR"}, "Metrics": {"_item_price": 4.5},
                  "Session": session},
        },
    }}})
    result = events["EventsResponse"]["Results"]["e4"]
    assert result["EndpointItemResponse"] == {"StatusCode": 202, "Message": "Accepted"}
    assert result["EventsItemResponse"]["b"] == {"StatusCode": 202, "Message": "Accepted"}
    e4, _ = eventually(lambda: get("e4"), lambda r: True, "e4 from PutEvents")
    assert e4["ChannelType"] == "APNS" and e4["User"]["UserId"] == "u2"

    # RemoveAttributes drops the key from every endpoint of the app
    removed = pp.remove_attributes(ApplicationId=app, AttributeType="endpoint-custom-attributes",
                                   UpdateAttributesRequest={"Blacklist": ["plan"]})
    assert removed["AttributesResource"]["Attributes"] == ["plan"]
    eventually(lambda: get("e1"), lambda r: "plan" not in r["Attributes"], "plan removed")

    # DeleteEndpoint answers the endpoint and it disappears
    deleted = pp.delete_endpoint(ApplicationId=app, EndpointId="e3")["EndpointResponse"]
    assert deleted["Id"] == "e3"
    eventually(lambda: code_of(lambda: get("e3")), lambda c: c == "NotFoundException",
               "e3 deleted")

    # DeleteUserEndpoints removes all of u1's endpoints, everywhere
    gone = pp.delete_user_endpoints(ApplicationId=app, UserId="u1")["EndpointsResponse"]["Item"]
    assert {e["Id"] for e in gone} == {"e1", "e2"}
    eventually(lambda: code_of(users), lambda c: c == "NotFoundException", "u1 gone")
    assert error_code(lambda: get("e1"))[0] == "NotFoundException"
    procs.assert_alive()


def test_error_paths(pinpoint: tuple[Any, str, Processes]) -> None:
    pp, app, _ = pinpoint
    code, message = error_code(lambda: pp.update_endpoint(
        ApplicationId=app, EndpointId="x", EndpointRequest={"ChannelType": "FAX"}
    ))
    assert code == "BadRequestException" and "ChannelType" in message

    too_many = [{"Id": f"b{i}", "ChannelType": "EMAIL"} for i in range(101)]
    code, message = error_code(lambda: pp.update_endpoints_batch(
        ApplicationId=app, EndpointBatchRequest={"Item": too_many}
    ))
    assert code == "BadRequestException" and "100" in message

    code, _ = error_code(lambda: pp.get_endpoint(ApplicationId=app, EndpointId="nobody"))
    assert code == "NotFoundException"
    code, _ = error_code(lambda: pp.get_user_endpoints(ApplicationId=app, UserId="nobody"))
    assert code == "NotFoundException"
    code, message = error_code(lambda: pp.remove_attributes(
        ApplicationId=app, AttributeType="colors", UpdateAttributesRequest={"Blacklist": ["x"]}
    ))
    assert code == "BadRequestException" and "endpoint-custom-attributes" in message

    # a user holds at most 15 endpoints
    pp.update_endpoints_batch(ApplicationId=app, EndpointBatchRequest={"Item": [
        {"Id": f"u-{i}", "ChannelType": "EMAIL", "User": {"UserId": "busy"}} for i in range(15)
    ]})
    users = lambda: pp.get_user_endpoints(  # noqa: E731
        ApplicationId=app, UserId="busy"
    )["EndpointsResponse"]["Item"]
    eventually(users, lambda items: len(items) == 15, "15 endpoints of user busy")
    code, message = error_code(lambda: pp.update_endpoint(
        ApplicationId=app, EndpointId="u-16", EndpointRequest={"User": {"UserId": "busy"}}
    ))
    assert code == "BadRequestException" and "at most 15 endpoints" in message


def test_a_thousand_endpoints_across_partitions_and_a_deleted_user(
    pinpoint: tuple[Any, str, Processes], lodestar: tuple[Processes, dict]
) -> None:
    """1,000 endpoints of 200 users (5 each, on every partition) via PutEvents; then one
    user is deleted and is gone from the read model, the engine's tables and ClickHouse."""
    pp, app, procs = pinpoint
    worker = lodestar[1]["worker"]
    endpoints = [f"ep-{i:04d}" for i in range(1000)]
    START = "2026-11-28T09:00:00Z"
    user_of = {e: f"user-{i % 200:03d}" for i, e in enumerate(endpoints)}
    for start in range(0, len(endpoints), 50):  # 50 endpoints x 2 events per request
        batch = {
            e: {
                "Endpoint": {"ChannelType": "EMAIL", "Address": f"{e}@example.com",
                             "User": {"UserId": user_of[e]}},
                "Events": {
                    f"{e}-a": {"EventType": "_session.start", "Timestamp": START,
                               "Session": {"Id": f"s-{e}", "StartTimestamp": START}},
                    f"{e}-b": {"EventType": "pageView", "Timestamp": "2026-11-28T09:01:00Z"},
                },
            }
            for e in endpoints[start:start + 50]
        }
        results = pp.put_events(ApplicationId=app, EventsRequest={"BatchItem": batch})
        statuses = {
            r["StatusCode"]
            for item in results["EventsResponse"]["Results"].values()
            for r in item["EventsItemResponse"].values()
        }
        assert statuses == {202}

    def user(u: str) -> list[str]:
        items = pp.get_user_endpoints(ApplicationId=app, UserId=u)["EndpointsResponse"]["Item"]
        return sorted(e["Id"] for e in items)

    expected_7 = sorted(e for e in endpoints if user_of[e] == "user-007")
    eventually(lambda: user("user-007"), lambda ids: ids == expected_7, "user-007's endpoints")
    eventually(lambda: user("user-199"), lambda ids: len(ids) == 5, "user-199's endpoints")
    last = pp.get_endpoint(ApplicationId=app, EndpointId="ep-0999")["EndpointResponse"]
    assert last["Address"] == "ep-0999@example.com" and last["User"]["UserId"] == "user-199"

    # the engine's own user index agrees, although the endpoints live on every partition
    index = lambda: httpx.get(  # noqa: E731
        f"{worker}/v1/apps/{app}/users/user-007/index", timeout=5
    ).json().get("EndpointIds")
    eventually(index, lambda ids: ids == expected_7, "engine user index of user-007")

    def stored() -> int:
        result = procs.cli("events", "count", "--app-id", app, "--json")
        return int(json.loads(result.stdout)["Total"]) if result.returncode == 0 else -1

    eventually(stored, lambda n: n == 2000, "2,000 events in ClickHouse")

    pp.delete_user_endpoints(ApplicationId=app, UserId="user-007")
    eventually(lambda: code_of(lambda: user("user-007")), lambda c: c == "NotFoundException",
               "user-007 gone from GetUserEndpoints")
    for e in expected_7:
        assert code_of(lambda e=e: pp.get_endpoint(ApplicationId=app, EndpointId=e)) == (
            "NotFoundException"
        )
        state = httpx.get(f"{worker}/v1/apps/{app}/endpoints/{e}/state", timeout=5)
        assert state.status_code == 404
    eventually(lambda: httpx.get(f"{worker}/v1/apps/{app}/users/user-007/index",
                                 timeout=5).status_code, lambda s: s == 404, "index entry gone")
    eventually(stored, lambda n: n == 2000 - 2 * len(expected_7), "their events erased")
    assert user("user-008") == sorted(e for e in endpoints if user_of[e] == "user-008")
