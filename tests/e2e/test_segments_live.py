"""Dynamic segments on the real stack: every dimension kind enters and exits in real time.

boto3 creates the segments and changes one endpoint; the worker re-evaluates
and publishes each enter/exit on ``lodestar.segment-membership``, which the
test reads; the membership route shows size, channel counts and backfill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes
from tests.e2e.test_endpoints_boto3 import client
from tests.e2e.topic_reader import TopicReader

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.engine.profile_agent import partition_of
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

TOKYO = {"Latitude": 35.68, "Longitude": 139.76}
YOKOHAMA = {"Latitude": 35.44, "Longitude": 139.64}  # ~29 km from Tokyo

SEGMENTS: dict[str, dict[str, Any]] = {
    "attributes": {"Dimensions": {"Attributes": {
        "plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}}}},
    "user-attributes": {"Dimensions": {"UserAttributes": {
        "tier": {"AttributeType": "CONTAINS", "Values": ["gold"]}}}},
    "recency": {"Dimensions": {"Behavior": {
        "Recency": {"Duration": "DAY_7", "RecencyType": "ACTIVE"}}}},
    "demographic": {"Dimensions": {"Demographic": {
        "Platform": {"DimensionType": "INCLUSIVE", "Values": ["ios"]},
        "Channel": {"DimensionType": "INCLUSIVE", "Values": ["EMAIL"]}}}},
    "location": {"Dimensions": {"Location": {
        "Country": {"DimensionType": "INCLUSIVE", "Values": ["JP"]},
        "GPSPoint": {"Coordinates": TOKYO, "RangeInKilometers": 50}}}},
    "metrics": {"Dimensions": {"Metrics": {
        "score": {"ComparisonOperator": "GREATER_THAN", "Value": 5}}}},
    "performed": {"Dimensions": {"Behavioral": {"Performed": [{
        "EventType": "purchase", "Attributes": {"plan": "pro"},
        "Operator": "AT_LEAST", "Count": 2, "WithinHours": 24}]}}},
    "trial": {"Dimensions": {"Attributes": {
        "trial_ends": {"AttributeType": "AFTER", "Values": ["NOW"]}}}},
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _changes(records: list[dict[str, Any]], segment_id: str) -> list[tuple[str, str]]:
    return [(r["change"], r["cause"]) for r in records if r["segment_id"] == segment_id]


def _has(segment_id: str, change: str, cause: str | None = None) -> Callable[[Any], bool]:
    return lambda records: any(
        c == change and (cause is None or k == cause) for c, k in _changes(records, segment_id)
    )


def test_every_dimension_kind_enters_and_exits_as_the_endpoint_changes(
    lodestar: tuple[Processes, dict], settings: Settings, unique: str
) -> None:
    procs, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    app_id = admin.create_app(CreateApplicationRequest={"Name": f"seg-{unique}"})[
        "ApplicationResponse"]["Id"]
    # Behavioral is a Lodestar extension that boto3's validation refuses: plain HTTP
    ids = {name: _create(urls["api"], app_id, {"Name": name, **body})
           for name, body in SEGMENTS.items()}
    both = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
        "Name": "pro-and-engaged", "SegmentGroups": {"Include": "ALL", "Groups": [{
            "SourceType": "ALL", "Type": "ALL",
            "SourceSegments": [{"Id": ids["attributes"]}, {"Id": ids["metrics"]}]}]}})
    ids["groups"] = both["SegmentResponse"]["Id"]
    trial_ends = datetime.now(UTC) + timedelta(seconds=4)

    with TopicReader(settings.kafka_bootstrap, settings.topic(Topic.SEGMENT_MEMBERSHIP),
                     Topic.SEGMENT_MEMBERSHIP, AvroCodec.default()) as reader:
        admin.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest={
            "ChannelType": "EMAIL", "Address": "e1@example.com",
            "Attributes": {"plan": ["pro"], "trial_ends": [_iso(trial_ends)]},
            "User": {"UserId": "u1", "UserAttributes": {"tier": ["gold-plus"]}},
            "Demographic": {"Platform": "ios"},
            "Location": {"Country": "JP", **YOKOHAMA},
            "Metrics": {"score": 7.0},
        })
        entered = ["attributes", "user-attributes", "demographic", "location", "metrics",
                   "trial", "groups"]
        took = reader.wait_for(
            lambda rs: all(_has(ids[n], "ENTER", "endpoint")(rs) for n in entered),
            "ENTER of every endpoint-field segment")
        print(f"UpdateEndpoint -> membership ENTER published in {took:.2f}s")
        assert not _changes(reader.records(), ids["recency"])
        assert not _changes(reader.records(), ids["performed"])
        first = next(r for r in reader.records() if r["segment_id"] == ids["attributes"])
        assert (first["app_id"], first["endpoint_id"], first["user_id"]) == (app_id, "e1", "u1")
        # published to the partition of the endpoint id (the default partitioner's)
        assert {(p, k) for p, k in reader.placements()} == {
            (partition_of("e1", settings.partitions), b"e1")}

        now_ms = int(time.time() * 1000)
        events = {f"p{i}": {"EventType": "purchase", "Timestamp": _iso(datetime.now(UTC)),
                            "Attributes": {"plan": "pro"}} for i in range(2)}
        admin.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": {
            "e1": {"Endpoint": {}, "Events": {"p0": events["p0"]}}}})
        reader.wait_for(_has(ids["recency"], "ENTER", "event"), "recency ENTER")
        assert not _changes(reader.records(), ids["performed"]), "one purchase is not two"
        admin.put_events(ApplicationId=app_id, EventsRequest={"BatchItem": {
            "e1": {"Endpoint": {}, "Events": {"p1": events["p1"]}}}})
        reader.wait_for(_has(ids["performed"], "ENTER", "event"), "performed ENTER")
        performed = next(r for r in reader.records() if r["segment_id"] == ids["performed"])
        assert performed["event_id"] == "p1" and performed["timestamp"] >= now_ms

        took = reader.wait_for(_has(ids["trial"], "EXIT", "time"), "trial EXIT", timeout=20)
        exited = next(r for r in reader.records()
                      if r["segment_id"] == ids["trial"] and r["change"] == "EXIT")
        late_ms = exited["timestamp"] - int(trial_ends.timestamp() * 1000)
        print(f"time-based EXIT {late_ms} ms after the condition flipped")
        assert 0 <= late_ms < 3000

        admin.update_endpoint(ApplicationId=app_id, EndpointId="e1", EndpointRequest={
            "Attributes": {"plan": ["free"]}})
        reader.wait_for(_has(ids["attributes"], "EXIT", "endpoint"), "attributes EXIT")
        reader.wait_for(_has(ids["groups"], "EXIT"), "segment-of-segments EXIT")

        late = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
            "Name": "free", "Dimensions": {"Attributes": {
                "plan": {"AttributeType": "INCLUSIVE", "Values": ["free"]}}}})
        ids["free"] = late["SegmentResponse"]["Id"]
        reader.wait_for(_has(ids["free"], "ENTER", "segment"), "backfill ENTER")
        status = _membership(urls["api"], app_id, ids["free"], lambda s: (
            s["Backfill"]["State"] == "COMPLETED" and s["Size"] == 1))
        assert status["ChannelCounts"] == {"EMAIL": 1}
        assert status["Backfill"]["EndpointsEvaluated"] == status["Backfill"]["EndpointsTotal"] == 1

        admin.delete_endpoint(ApplicationId=app_id, EndpointId="e1")
        members = {"user-attributes", "demographic", "location", "metrics", "recency",
                   "performed", "free"}
        reader.wait_for(lambda rs: all(_has(ids[n], "EXIT", "deleted")(rs) for n in members),
                        "EXIT of every segment on delete")
        replayed: dict[str, bool] = {}
        for record in reader.records():
            replayed[record["segment_id"]] = record["change"] == "ENTER"
        assert not any(replayed.values()), "the change stream replays to no membership"
        procs.assert_alive()


def _create(api: str, app_id: str, body: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}
    response = httpx.post(f"{api}/v1/apps/{app_id}/segments", json=body, headers=headers,
                          timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["Id"])


def _membership(api: str, app_id: str, segment_id: str,
                check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    url = f"{api}/v1/apps/{app_id}/segments/{segment_id}/membership"
    headers = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}
    deadline = time.monotonic() + 15
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = httpx.get(url, headers=headers, timeout=5)
        assert response.status_code == 200, response.text
        body = response.json()["SegmentMembershipResponse"]
        if check(body):
            return body
        time.sleep(0.2)
    pytest.fail(f"membership of {segment_id} never satisfied the check: {body}")
