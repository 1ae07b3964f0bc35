"""SendMessages / SendUsersMessages planning: statuses, content mapping, merging, ids."""

from __future__ import annotations

from typing import Any

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.core.message_ids import transactional_message_id
from lodestar.core.provider_outcome import DeliveryStatus
from lodestar.core.send_messages import (
    SendRequestError,
    parse_message_request,
    parse_users_request,
    plan_message_request,
    plan_users_request,
)
from lodestar.core.topics import Topic

APP = "a" * 32
NOW = 1_780_000_000_000


def endpoint(eid: str, channel_type: str, address: str, **extra: Any) -> dict[str, Any]:
    out = {"ApplicationId": APP, "Id": eid, "ChannelType": channel_type, "Address": address,
           "Attributes": {"plan": ["gold"]}, "CohortId": "42",
           "CreationDate": "2026-05-01T12:00:00.000Z", "EndpointStatus": "ACTIVE",
           "OptOut": "NONE", "Metrics": {"score": 3}, "Demographic": {"Locale": "en_US"},
           "User": {"UserId": "u-1", "UserAttributes": {"FirstName": ["Ana"]}}}
    out.update(extra)
    return out


BODY = {
    "Addresses": {
        "+4915112345678": {"ChannelType": "SMS", "Substitutions": {"code": ["9"]}},
        "ana@example.com": {"ChannelType": "EMAIL", "TitleOverride": "Hello Ana"},
    },
    "Endpoints": {"ep-push": {"Context": {"k": "v2"}, "BodyOverride": "override"},
                  "ep-out": {}, "ep-missing": {}, "ep-dup": {}},
    "Context": {"k": "v1", "trace": "t"},
    "MessageConfiguration": {
        "SMSMessage": {"Body": "Your code is {{code}}", "MessageType": "TRANSACTIONAL",
                       "Substitutions": {"code": ["1"], "other": ["x"]}},
        "EmailMessage": {"FromAddress": "shop@example.com", "SimpleEmail": {
            "Subject": {"Data": "Hi"}, "HtmlPart": {"Data": "<p>Hi</p>"},
            "TextPart": {"Data": "Hi"}, "Headers": [{"Name": "X-A", "Value": "1"}]}},
        "GCMMessage": {"Title": "T", "Body": "B", "Action": "URL", "Url": "https://x.test",
                       "Data": {"a": "1"}, "TimeToLive": 60},
    },
    "TemplateConfiguration": {"SMSTemplate": {"Name": "otp", "Version": "3"}},
    "TraceId": "trace-1",
}


def test_each_recipient_gets_pinpoints_status_and_queued_ones_a_send_request() -> None:
    request = parse_message_request(BODY)
    found = {"ep-push": endpoint("ep-push", "GCM", "token-1"),
             "ep-out": endpoint("ep-out", "GCM", "token-2", OptOut="ALL"),
             "ep-dup": endpoint("ep-dup", "EMAIL", "ana@example.com")}
    by_address, by_endpoint = plan_message_request(request, found, app_id=APP,
                                                   request_id="req-1", now_ms=NOW)
    statuses = {k: p.result.status for k, p in {**by_address, **by_endpoint}.items()}
    assert statuses == {
        "+4915112345678": DeliveryStatus.SUCCESSFUL,
        "ana@example.com": DeliveryStatus.SUCCESSFUL,
        "ep-push": DeliveryStatus.SUCCESSFUL,
        "ep-out": DeliveryStatus.OPT_OUT,
        "ep-missing": DeliveryStatus.PERMANENT_FAILURE,
        "ep-dup": DeliveryStatus.DUPLICATE,
    }
    assert by_endpoint["ep-missing"].result.status_code == 404
    assert all(p.send is None for k, p in by_endpoint.items() if k != "ep-push")

    sms = by_address["+4915112345678"].send
    assert sms is not None
    assert sms["message_id"] == transactional_message_id("req-1", "SMS",
                                                         address="+4915112345678")
    assert sms["content"]["body"] == "Your code is {{code}}"
    assert sms["substitutions"] == {"code": ["9"], "other": ["x"]}
    assert sms["template"] == {"name": "otp", "version": "3"}
    assert sms["endpoint"] is None and sms["endpoint_id"] is None
    assert sms["trace_id"] == "trace-1" and sms["source"] == "TRANSACTIONAL"

    email = by_address["ana@example.com"].send
    assert email is not None
    assert email["content"]["subject"] == "Hello Ana"
    assert email["content"]["html_body"] == "<p>Hi</p>"
    assert email["content"]["headers"] == [{"name": "X-A", "value": "1"}]

    push = by_endpoint["ep-push"].send
    assert push is not None
    assert push["channel"] == "PUSH" and push["channel_type"] == "GCM"
    assert push["content"]["body"] == "override" and push["content"]["ttl"] == 60
    assert push["context"] == {"k": "v2", "trace": "t"}
    assert push["user_id"] == "u-1"
    assert push["endpoint"]["attributes"] == {"plan": ["gold"]}
    assert push["endpoint"]["creation_date"] == 1777636800000
    assert push["endpoint"]["user"]["user_attributes"] == {"FirstName": ["Ana"]}

    codec = AvroCodec.default()  # every planned record is a valid SendRequest
    for planned in [*by_address.values(), *by_endpoint.values()]:
        if planned.send is not None:
            topic = Topic(f"send.{planned.send['channel'].lower()}")
            assert codec.decode(topic, codec.encode(topic, planned.send))["message_id"] == (
                planned.send["message_id"])


def test_a_channel_without_a_message_and_inactive_endpoints_fail_permanently() -> None:
    request = parse_message_request({
        "Endpoints": {"v": {}, "i": {}},
        "MessageConfiguration": {"SMSMessage": {"Body": "x"}}})
    found = {"v": endpoint("v", "VOICE", "+4911"),
             "i": endpoint("i", "SMS", "+4912", EndpointStatus="INACTIVE")}
    _, by_endpoint = plan_message_request(request, found, app_id=APP, request_id="r",
                                          now_ms=NOW)
    assert by_endpoint["v"].result.status is DeliveryStatus.PERMANENT_FAILURE
    assert "no message for VOICE" in by_endpoint["v"].result.message
    assert by_endpoint["i"].result.message == "The endpoint is INACTIVE"


def test_default_message_fills_push_and_voice() -> None:
    request = parse_message_request({
        "Addresses": {"tok": {"ChannelType": "APNS"}, "+4913": {"ChannelType": "VOICE"}},
        "MessageConfiguration": {"DefaultMessage": {"Body": "hello {{x}}",
                                                    "Substitutions": {"x": ["1"]}}}})
    by_address, _ = plan_message_request(request, {}, app_id=APP, request_id="r", now_ms=NOW)
    assert by_address["tok"].send["content"]["body"] == "hello {{x}}"
    assert by_address["+4913"].send["content"]["body"] == "hello {{x}}"
    assert by_address["tok"].send["substitutions"] == {"x": ["1"]}


def test_the_same_request_id_gives_the_same_message_ids() -> None:
    request = parse_message_request(BODY)
    first, _ = plan_message_request(request, {}, app_id=APP, request_id="req-9", now_ms=NOW)
    again, _ = plan_message_request(request, {}, app_id=APP, request_id="req-9", now_ms=NOW + 5)
    other, _ = plan_message_request(request, {}, app_id=APP, request_id="req-8", now_ms=NOW)
    assert [p.result.message_id for p in first.values()] == [
        p.result.message_id for p in again.values()]
    assert not {p.result.message_id for p in first.values()} & {
        p.result.message_id for p in other.values()}


@pytest.mark.parametrize(("body", "fragment"), [
    ([], "must be a JSON object"),
    ({"Addresses": {"a": {"ChannelType": "SMS"}}}, "MessageConfiguration is required"),
    ({"Addresses": {"a": {"ChannelType": "FAX"}}, "MessageConfiguration": {"SMSMessage": {}}},
     "Addresses.a.ChannelType must be one of"),
    ({"MessageConfiguration": {"SMSMessage": {}}}, "at least one recipient"),
    ({"Endpoints": {"e": {"Substitutions": {"x": "y"}}},
      "MessageConfiguration": {"SMSMessage": {}}}, "Endpoints.e.Substitutions"),
    ({"Endpoints": {"e": {}}, "MessageConfiguration": {"FaxMessage": {}}}, "FaxMessage"),
    ({"Endpoints": {f"e{i}": {} for i in range(101)},
      "MessageConfiguration": {"SMSMessage": {}}}, "at most 100"),
])
def test_malformed_requests_name_every_problem(body: Any, fragment: str) -> None:
    with pytest.raises(SendRequestError, match=fragment):
        parse_message_request(body)


def test_users_messages_reach_every_endpoint_of_each_user() -> None:
    request = parse_users_request({
        "Users": {"u-1": {"Substitutions": {"n": ["Ana"]}}, "u-none": {}},
        "MessageConfiguration": {"SMSMessage": {"Body": "Hi {{n}}"},
                                 "EmailMessage": {"SimpleEmail": {"TextPart": {"Data": "x"}}}}})
    planned = plan_users_request(
        request, {"u-1": [endpoint("e1", "SMS", "+4914"), endpoint("e2", "EMAIL", "a@x.test")]},
        app_id=APP, request_id="r", now_ms=NOW)
    assert planned["u-none"] == {}
    assert {e: p.result.status for e, p in planned["u-1"].items()} == {
        "e1": DeliveryStatus.SUCCESSFUL, "e2": DeliveryStatus.SUCCESSFUL}
    assert planned["u-1"]["e1"].send["user_id"] == "u-1"
    assert planned["u-1"]["e1"].send["substitutions"] == {"n": ["Ana"]}
    with pytest.raises(SendRequestError, match="Users is required"):
        parse_users_request({"MessageConfiguration": {"SMSMessage": {}}})
