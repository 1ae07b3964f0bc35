"""A segment created over 100,000 existing endpoints is backfilled by the worker.

The endpoints are written as UPSERT commands straight onto the run's
``endpoint-commands`` topic (the API's UpdateEndpointsBatch writes the same
records; going around it keeps the test about the backfill). Once the read
model holds all of them, CreateSegment through the API starts the backfill;
the membership route must report COMPLETED over 100,000 endpoints with the
exact size and channel counts the generator implies.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes
from tests.e2e.test_endpoints_boto3 import client

from lodestar.contracts.codec import AvroCodec
from lodestar.core.endpoint_commands import upsert_command
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

ENDPOINTS = 100_000
CHANNELS = ("EMAIL", "SMS", "GCM", "APNS")
PLANS = ("free", "pro", "team")
AUTH = {"Authorization": f"Bearer {ADMIN_KEY[0]}:{ADMIN_KEY[1]}"}


def _endpoint(i: int) -> dict[str, Any]:
    channel = CHANNELS[i % len(CHANNELS)]
    return {"ChannelType": channel, "Address": f"addr-{i}",
            "Attributes": {"plan": [PLANS[i % len(PLANS)]]}, "Metrics": {"score": float(i % 10)}}


async def _write_endpoints(settings: Settings, app_id: str, count: int) -> None:
    codec = AvroCodec.default()
    headers = list(codec.headers(Topic.ENDPOINT_COMMANDS))
    topic = settings.topic(Topic.ENDPOINT_COMMANDS)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        for i in range(count):
            command = upsert_command(app_id, f"ep-{i}", _endpoint(i), f"load-{i}", now_ms)
            await producer.send(topic, codec.encode(Topic.ENDPOINT_COMMANDS, command),
                                key=f"ep-{i}".encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _read_model_count(
    dsn: str, app_id: str, count: int, within: float
) -> tuple[int, float]:
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        have = 0
        while time.monotonic() - started < within:
            have = await conn.fetchval(
                "SELECT count(*) FROM endpoint_read_model WHERE app_id = $1 AND NOT deleted",
                app_id)
            if have == count:
                break
            await asyncio.sleep(0.5)
        return have, time.monotonic() - started
    finally:
        await conn.close()


def _load(lodestar: tuple[Processes, dict], settings: Settings, postgres_dsn: str,
          unique: str, count: int) -> tuple[Any, str]:
    """An app with ``count`` endpoints, all in the read model; (boto3 client, app id)."""
    _, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    app_id = admin.create_app(CreateApplicationRequest={"Name": f"backfill-{unique}"})[
        "ApplicationResponse"]["Id"]
    started = time.monotonic()
    asyncio.run(_write_endpoints(settings, app_id, count))
    have, took = asyncio.run(_read_model_count(postgres_dsn, app_id, count, within=240))
    assert have == count, f"only {have} endpoints reached the read model"
    print(f"\n{count:,} endpoints written and projected in "
          f"{time.monotonic() - started:.1f} s (read model complete after {took:.1f} s)")
    return admin, app_id


def _create_pro_scoring(admin: Any, app_id: str, count: int) -> tuple[str, int, dict[str, int]]:
    """The segment; its id, expected size and channel counts."""
    segment = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
        "Name": "pro-scoring", "Dimensions": {
            "Attributes": {"plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}},
            "Metrics": {"score": {"ComparisonOperator": "GREATER_THAN_OR_EQUAL", "Value": 5}},
        }})["SegmentResponse"]
    expected = [i for i in range(count) if i % 3 == 1 and i % 10 >= 5]
    channels: dict[str, int] = {}
    for i in expected:
        channels[CHANNELS[i % len(CHANNELS)]] = channels.get(CHANNELS[i % len(CHANNELS)], 0) + 1
    return segment["Id"], len(expected), channels


def _status(api: str, app_id: str, segment_id: str) -> dict[str, Any]:
    url = f"{api}/v1/apps/{app_id}/segments/{segment_id}/membership"
    return dict(httpx.get(url, headers=AUTH, timeout=10).json()["SegmentMembershipResponse"])


def _until_complete(procs: Processes, api: str, app_id: str, segment_id: str, size: int,
                    within: float = 300) -> dict[str, Any]:
    started = last_print = time.monotonic()
    body: dict[str, Any] = {}
    while time.monotonic() - started < within:
        procs.assert_alive()
        body = _status(api, app_id, segment_id)
        backfill = body["Backfill"]
        if time.monotonic() - last_print > 5:
            print(f"  {backfill['State']}: {backfill['EndpointsEvaluated']:,}/"
                  f"{backfill['EndpointsTotal']:,} evaluated, {body['Size']:,} members")
            last_print = time.monotonic()
        if backfill["State"] == "COMPLETED" and body["Size"] == size:
            break
        time.sleep(0.5)
    return body


def test_a_new_segment_is_backfilled_over_100k_endpoints(
    lodestar: tuple[Processes, dict], settings: Settings, postgres_dsn: str, unique: str
) -> None:
    procs, urls = lodestar
    admin, app_id = _load(lodestar, settings, postgres_dsn, unique, ENDPOINTS)
    created = time.monotonic()
    segment_id, size, channels = _create_pro_scoring(admin, app_id, ENDPOINTS)
    body = _until_complete(procs, urls["api"], app_id, segment_id, size)
    took = time.monotonic() - created
    print(f"backfill of {ENDPOINTS:,} endpoints: {body['Backfill']['State']} with "
          f"{body['Size']:,} members in {took:.1f} s ({ENDPOINTS / took:,.0f} endpoints/s, "
          "membership projected)")
    backfill = body["Backfill"]
    assert backfill["State"] == "COMPLETED", body
    assert backfill["EndpointsEvaluated"] == backfill["EndpointsTotal"] == ENDPOINTS
    assert backfill["PartitionsCompleted"] == backfill["Partitions"] == 4
    assert body["Size"] == size
    assert body["ChannelCounts"] == channels


def test_a_backfill_interrupted_by_a_worker_crash_resumes_and_completes(
    lodestar: tuple[Processes, dict], settings: Settings, postgres_dsn: str, unique: str
) -> None:
    procs, urls = lodestar
    count = 30_000
    admin, app_id = _load(lodestar, settings, postgres_dsn, unique, count)
    segment_id, size, channels = _create_pro_scoring(admin, app_id, count)
    deadline = time.monotonic() + 60
    while True:
        backfill = _status(urls["api"], app_id, segment_id)["Backfill"]
        if backfill["EndpointsEvaluated"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert backfill["State"] == "IN_PROGRESS", f"too late to interrupt: {backfill}"
    print(f"killing the worker at {backfill['EndpointsEvaluated']:,}/"
          f"{backfill['EndpointsTotal']:,} evaluated")
    assert procs.kill("worker") == -9
    procs.start("worker", "worker")
    body = _until_complete(procs, urls["api"], app_id, segment_id, size)
    assert body["Backfill"]["State"] == "COMPLETED", body
    assert body["Backfill"]["EndpointsEvaluated"] == count
    assert body["Size"] == size and body["ChannelCounts"] == channels
