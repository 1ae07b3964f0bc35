"""SendMessages and SendUsersMessages with an unmodified boto3 client on the live API:
per-recipient results in Pinpoint's shape, and one SendRequest per queued recipient on
its channel's send topic."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from botocore.exceptions import ClientError
from tests.api.live_api import Api
from tests.api.topic_records import topic_records

from lodestar.contracts.codec import AvroCodec
from lodestar.control import endpoint_read_model as read_model
from lodestar.core.topics import Topic

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _endpoint(app_id: str, eid: str, channel_type: str, address: str, user: str | None,
              **extra: Any) -> read_model.ReadModelRow:
    response = {"ApplicationId": app_id, "Id": eid, "ChannelType": channel_type,
                "Address": address, "Attributes": {}, "CohortId": "7",
                "CreationDate": "2026-05-01T12:00:00.000Z", "EndpointStatus": "ACTIVE",
                "OptOut": "NONE", "Metrics": {}, **extra}
    if user:
        response["User"] = {"UserId": user, "UserAttributes": {"FirstName": ["Ana"]}}
    return read_model.ReadModelRow(app_id, eid, user, address, channel_type, response, False, 1)


async def _seed(dsn: str, rows: list[read_model.ReadModelRow]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await read_model.apply_changes(pool, rows)
    finally:
        await pool.close()


def _sends(api: Api, topic: Topic, expected: int) -> list[dict[str, Any]]:
    records = asyncio.run(topic_records(api.settings, topic, expected, 10.0))
    codec = AvroCodec.default()
    return [{"key": r.key.decode(), **codec.decode(topic, r.value)} for r in records]


def test_send_messages_answers_per_recipient_and_queues_each_send(api: Api) -> None:
    admin = api.admin()
    app_id = admin.create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"]
    asyncio.run(_seed(api.settings.postgres_dsn, [
        _endpoint(app_id, "ep-sms", "SMS", "+4915100000001", "u-1"),
        _endpoint(app_id, "ep-out", "SMS", "+4915100000002", None, OptOut="ALL"),
    ]))
    answer = admin.send_messages(ApplicationId=app_id, MessageRequest={
        "Addresses": {"ana@example.com": {"ChannelType": "EMAIL",
                                          "Substitutions": {"Name": ["Ana"]}}},
        "Endpoints": {"ep-sms": {"BodyOverride": "Code {{Code}}"}, "ep-out": {},
                      "ep-nope": {}},
        "Context": {"flow": "signup"},
        "MessageConfiguration": {
            "EmailMessage": {"FromAddress": "shop@example.com", "SimpleEmail": {
                "Subject": {"Data": "Hi {{Name}}"}, "TextPart": {"Data": "Welcome"}}},
            "SMSMessage": {"Body": "x", "MessageType": "TRANSACTIONAL",
                           "Substitutions": {"Code": ["123"]}}},
        "TraceId": "trace-42",
    })["MessageResponse"]
    assert answer["ApplicationId"] == app_id and answer["RequestId"]
    result = answer["Result"]["ana@example.com"]
    assert (result["DeliveryStatus"], result["StatusCode"], result["StatusMessage"]) == (
        "SUCCESSFUL", 200, "Queued")
    endpoints = answer["EndpointResult"]
    assert {e: r["DeliveryStatus"] for e, r in endpoints.items()} == {
        "ep-sms": "SUCCESSFUL", "ep-out": "OPT_OUT", "ep-nope": "PERMANENT_FAILURE"}
    assert endpoints["ep-sms"]["Address"] == "+4915100000001"

    [email] = _sends(api, Topic.SEND_EMAIL, 1)
    assert email["message_id"] == result["MessageId"]
    assert email["key"] == "ana@example.com"
    assert email["content"]["subject"] == "Hi {{Name}}"
    assert email["substitutions"] == {"Name": ["Ana"]}
    assert email["context"] == {"flow": "signup"} and email["trace_id"] == "trace-42"
    [sms] = _sends(api, Topic.SEND_SMS, 1)
    assert sms["message_id"] == endpoints["ep-sms"]["MessageId"]
    assert (sms["key"], sms["endpoint_id"], sms["user_id"]) == ("ep-sms", "ep-sms", "u-1")
    assert sms["content"]["body"] == "Code {{Code}}"
    assert sms["endpoint"]["user"]["user_attributes"] == {"FirstName": ["Ana"]}


def test_send_users_messages_reaches_every_endpoint_of_the_user(api: Api) -> None:
    admin = api.admin()
    app_id = admin.create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"]
    asyncio.run(_seed(api.settings.postgres_dsn, [
        _endpoint(app_id, "e1", "SMS", "+4915100000003", "u-7"),
        _endpoint(app_id, "e2", "GCM", "fcm-token-1", "u-7"),
    ]))
    answer = admin.send_users_messages(ApplicationId=app_id, SendUsersMessageRequest={
        "Users": {"u-7": {}, "u-nobody": {}},
        "MessageConfiguration": {"SMSMessage": {"Body": "hi"},
                                 "GCMMessage": {"Title": "T", "Body": "B"}},
    })["SendUsersMessageResponse"]
    assert answer["Result"]["u-nobody"] == {}
    assert {e: r["DeliveryStatus"] for e, r in answer["Result"]["u-7"].items()} == {
        "e1": "SUCCESSFUL", "e2": "SUCCESSFUL"}
    [push] = _sends(api, Topic.SEND_PUSH, 1)
    assert (push["channel_type"], push["address"], push["content"]["title"]) == (
        "GCM", "fcm-token-1", "T")
    assert len(_sends(api, Topic.SEND_SMS, 1)) == 1


def test_a_malformed_request_is_refused_with_every_problem(api: Api) -> None:
    admin = api.admin()
    app_id = admin.create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"]
    with pytest.raises(ClientError) as caught:
        admin.send_messages(ApplicationId=app_id, MessageRequest={
            "Addresses": {"a": {"ChannelType": "FAX"}},
            "MessageConfiguration": {}})
    error = caught.value.response["Error"]
    assert error["Code"] == "BadRequestException"
    assert "MessageConfiguration is required" in error["Message"]
    assert "Addresses.a.ChannelType" in error["Message"]
