"""Contract tests: boto3's ``pinpoint`` client against the segment operations.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL
(migrated) and Kafka, exactly as in ``test_apps_boto3.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from tests.api.live_api import ADMIN, Api
from tests.api.topic_records import topic_records

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.keys import control_key
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

IOS = {"Demographic": {"Platform": {"DimensionType": "INCLUSIVE", "Values": ["ios"]}},
       "Attributes": {"plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}}}
ANDROID = {"Demographic": {"Platform": {"DimensionType": "INCLUSIVE", "Values": ["android"]}}}


@pytest.fixture
def app_id(api: Api) -> str:
    return str(api.admin().create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"])


def _create(client: Any, app_id: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = client.create_segment(ApplicationId=app_id, WriteSegmentRequest=request)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201
    return dict(answer["SegmentResponse"])


def test_segment_lifecycle(api: Api, app_id: str) -> None:
    client = api.admin()
    seg = _create(client, app_id, {"Name": "iOS pro", "Dimensions": IOS})
    assert re.fullmatch(r"[0-9a-f]{32}", seg["Id"])
    assert seg["Arn"] == (f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{app_id}"
                          f"/segments/{seg['Id']}")
    assert seg["ApplicationId"] == app_id and seg["Name"] == "iOS pro"
    assert seg["Version"] == 1 and seg["SegmentType"] == "DIMENSIONAL"
    assert seg["Dimensions"] == IOS and "SegmentGroups" not in seg
    assert re.fullmatch(ISO, seg["CreationDate"]) and re.fullmatch(ISO, seg["LastModifiedDate"])

    got = client.get_segment(ApplicationId=app_id, SegmentId=seg["Id"])["SegmentResponse"]
    assert got == seg

    updated = client.update_segment(ApplicationId=app_id, SegmentId=seg["Id"],
                                    WriteSegmentRequest={"Name": "Android", "Dimensions": ANDROID})
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    v2 = updated["SegmentResponse"]
    assert v2["Version"] == 2 and v2["Name"] == "Android" and v2["Dimensions"] == ANDROID
    assert v2["Id"] == seg["Id"] and v2["CreationDate"] == seg["CreationDate"]
    assert client.get_segment(ApplicationId=app_id, SegmentId=seg["Id"])["SegmentResponse"] == v2

    versions = client.get_segment_versions(ApplicationId=app_id, SegmentId=seg["Id"])[
        "SegmentsResponse"]
    assert versions["Item"] == [seg, v2] and "NextToken" not in versions
    page = client.get_segment_versions(ApplicationId=app_id, SegmentId=seg["Id"],
                                       PageSize="1")["SegmentsResponse"]
    assert page["Item"] == [seg]
    rest = client.get_segment_versions(ApplicationId=app_id, SegmentId=seg["Id"], PageSize="1",
                                       Token=page["NextToken"])["SegmentsResponse"]
    assert rest["Item"] == [v2] and "NextToken" not in rest
    one = client.get_segment_version(ApplicationId=app_id, SegmentId=seg["Id"], Version="1")
    assert one["SegmentResponse"] == seg

    deleted = client.delete_segment(ApplicationId=app_id, SegmentId=seg["Id"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert deleted["SegmentResponse"] == v2
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_segment(ApplicationId=app_id, SegmentId=seg["Id"])
    assert client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []


def test_segment_groups_with_source_segments_and_listing(api: Api, app_id: str) -> None:
    client = api.admin()
    base = _create(client, app_id, {"Name": "base", "Dimensions": IOS})
    groups = {"Include": "ALL", "Groups": [{
        "SourceSegments": [{"Id": base["Id"], "Version": 1}], "SourceType": "ANY",
        "Type": "ALL", "Dimensions": [ANDROID],
    }]}
    built = _create(client, app_id, {"Name": "built", "SegmentGroups": groups})
    assert built["SegmentGroups"] == groups and "Dimensions" not in built
    third = _create(client, app_id, {"Name": "third", "Dimensions": ANDROID})

    first = client.get_segments(ApplicationId=app_id, PageSize="2")["SegmentsResponse"]
    assert [s["Id"] for s in first["Item"]] == [base["Id"], built["Id"]]
    second = client.get_segments(ApplicationId=app_id, PageSize="2",
                                 Token=first["NextToken"])["SegmentsResponse"]
    assert second["Item"] == [third] and "NextToken" not in second

    missing = {"Groups": [{"SourceSegments": [{"Id": "0" * 32}]}]}
    with pytest.raises(client.exceptions.BadRequestException, match=r"0{32}"):
        client.create_segment(ApplicationId=app_id,
                              WriteSegmentRequest={"Name": "x", "SegmentGroups": missing})
    with pytest.raises(client.exceptions.BadRequestException, match="version 7"):
        client.update_segment(ApplicationId=app_id, SegmentId=built["Id"], WriteSegmentRequest={
            "SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": base["Id"],
                                                               "Version": 7}]}]}})
    listed = client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"]
    assert [s["Id"] for s in listed] == [base["Id"], built["Id"], third["Id"]]
    assert listed[1]["Version"] == 1


def test_error_paths(api: Api, app_id: str) -> None:
    client = api.admin()
    bad = {"Name": "bad", "Dimensions": {
        "Attributes": {"plan": {"AttributeType": "SOMETIMES", "Values": ["pro"]}}}}
    with pytest.raises(client.exceptions.BadRequestException,
                       match=r"Dimensions\.Attributes\.plan\.AttributeType"):
        client.create_segment(ApplicationId=app_id, WriteSegmentRequest=bad)
    with pytest.raises(client.exceptions.BadRequestException, match="Dimensions"):
        client.create_segment(ApplicationId=app_id, WriteSegmentRequest={"Name": "empty"})
    assert client.get_segments(ApplicationId=app_id)["SegmentsResponse"]["Item"] == []

    seg = _create(client, app_id, {"Name": "ok", "Dimensions": IOS})
    with pytest.raises(client.exceptions.BadRequestException,
                       match=r"Dimensions\.Attributes\.plan\.AttributeType"):
        client.update_segment(ApplicationId=app_id, SegmentId=seg["Id"],
                              WriteSegmentRequest=bad)
    assert client.get_segment(ApplicationId=app_id, SegmentId=seg["Id"])[
        "SegmentResponse"]["Version"] == 1  # the invalid update was not stored

    unknown = "f" * 32
    for call in (
        lambda: client.get_segment(ApplicationId=app_id, SegmentId=unknown),
        lambda: client.delete_segment(ApplicationId=app_id, SegmentId=unknown),
        lambda: client.update_segment(ApplicationId=app_id, SegmentId=unknown,
                                      WriteSegmentRequest={"Dimensions": IOS}),
        lambda: client.get_segment_versions(ApplicationId=app_id, SegmentId=unknown),
        lambda: client.get_segment_version(ApplicationId=app_id, SegmentId=seg["Id"],
                                           Version="2"),
        lambda: client.get_segment(ApplicationId="0" * 32, SegmentId=seg["Id"]),
    ):
        with pytest.raises(client.exceptions.NotFoundException):
            call()
    with pytest.raises(client.exceptions.BadRequestException, match="version"):
        client.get_segment_version(ApplicationId=app_id, SegmentId=seg["Id"], Version="one")
    with pytest.raises(client.exceptions.BadRequestException, match="page-size"):
        client.get_segments(ApplicationId=app_id, PageSize="0")
    with pytest.raises(client.exceptions.BadRequestException, match="token is not valid"):
        client.get_segments(ApplicationId=app_id, Token="garbage!")


async def _consume(settings: Settings, expected: int, within: float = 20.0) -> list[Any]:
    return await topic_records(settings, Topic.CONTROL, expected, within)


def test_changes_are_published_on_the_control_topic(api: Api, app_id: str) -> None:
    client = api.admin()
    seg = _create(client, app_id, {"Name": "iOS", "Dimensions": IOS})
    v2 = client.update_segment(ApplicationId=app_id, SegmentId=seg["Id"],
                               WriteSegmentRequest={"Dimensions": ANDROID})["SegmentResponse"]
    client.delete_segment(ApplicationId=app_id, SegmentId=seg["Id"])
    with pytest.raises(client.exceptions.BadRequestException):  # not published
        client.update_segment(ApplicationId=app_id, SegmentId=seg["Id"],
                              WriteSegmentRequest={"Dimensions": {"Attributes": {
                                  "a": {"AttributeType": "NEVER", "Values": ["x"]}}}})

    records = asyncio.run(_consume(api.settings, 3))
    segment_records = [r for r in records if r.key.startswith(b"SEGMENT/")]
    assert len(segment_records) == 3
    codec = AvroCodec.default()
    decoded = [codec.decode(Topic.CONTROL, r.value) for r in segment_records]
    assert {r.key for r in segment_records} == {control_key("SEGMENT", app_id, seg["Id"])}
    assert [(d["operation"], d["version"]) for d in decoded] == [
        ("UPSERT", 1), ("UPSERT", 2), ("DELETE", 2)]
    assert all(d["entity_type"] == "SEGMENT" and d["entity_id"] == seg["Id"]
               and d["app_id"] == app_id and d["actor"] == ADMIN[0] for d in decoded)
    assert json.loads(decoded[0]["definition"]) == seg
    assert json.loads(decoded[1]["definition"]) == v2
    assert decoded[2]["definition"] is None
    assert all(d["timestamp"] for d in decoded)
