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


async def _write_endpoints(settings: Settings, app_id: str) -> None:
    codec = AvroCodec.default()
    headers = list(codec.headers(Topic.ENDPOINT_COMMANDS))
    topic = settings.topic(Topic.ENDPOINT_COMMANDS)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        for i in range(ENDPOINTS):
            command = upsert_command(app_id, f"ep-{i}", _endpoint(i), f"load-{i}", now_ms)
            await producer.send(topic, codec.encode(Topic.ENDPOINT_COMMANDS, command),
                                key=f"ep-{i}".encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _read_model_count(dsn: str, app_id: str, within: float) -> tuple[int, float]:
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        count = 0
        while time.monotonic() - started < within:
            count = await conn.fetchval(
                "SELECT count(*) FROM endpoint_read_model WHERE app_id = $1 AND NOT deleted",
                app_id)
            if count == ENDPOINTS:
                break
            await asyncio.sleep(0.5)
        return count, time.monotonic() - started
    finally:
        await conn.close()


def test_a_new_segment_is_backfilled_over_100k_endpoints(
    lodestar: tuple[Processes, dict], settings: Settings, postgres_dsn: str, unique: str
) -> None:
    procs, urls = lodestar
    admin = client(urls["api"], *ADMIN_KEY)
    app_id = admin.create_app(CreateApplicationRequest={"Name": f"backfill-{unique}"})[
        "ApplicationResponse"]["Id"]
    started = time.monotonic()
    asyncio.run(_write_endpoints(settings, app_id))
    count, took = asyncio.run(_read_model_count(postgres_dsn, app_id, within=240))
    assert count == ENDPOINTS, f"only {count} endpoints reached the read model"
    print(f"\n{ENDPOINTS:,} endpoints written and projected in "
          f"{time.monotonic() - started:.1f} s (read model complete after {took:.1f} s)")

    segment = admin.create_segment(ApplicationId=app_id, WriteSegmentRequest={
        "Name": "pro-scoring", "Dimensions": {
            "Attributes": {"plan": {"AttributeType": "INCLUSIVE", "Values": ["pro"]}},
            "Metrics": {"score": {"ComparisonOperator": "GREATER_THAN_OR_EQUAL", "Value": 5}},
        }})["SegmentResponse"]
    created = time.monotonic()
    expected = [i for i in range(ENDPOINTS) if i % 3 == 1 and i % 10 >= 5]
    channels: dict[str, int] = {}
    for i in expected:
        channels[CHANNELS[i % len(CHANNELS)]] = channels.get(CHANNELS[i % len(CHANNELS)], 0) + 1

    url = f"{urls['api']}/v1/apps/{app_id}/segments/{segment['Id']}/membership"
    body: dict[str, Any] = {}
    last_print = 0.0
    while time.monotonic() - created < 300:
        procs.assert_alive()
        body = httpx.get(url, headers=AUTH, timeout=10).json()["SegmentMembershipResponse"]
        backfill = body["Backfill"]
        if time.monotonic() - last_print > 5:
            print(f"  {backfill['State']}: {backfill['EndpointsEvaluated']:,}/"
                  f"{backfill['EndpointsTotal']:,} evaluated, {body['Size']:,} members")
            last_print = time.monotonic()
        if backfill["State"] == "COMPLETED" and body["Size"] == len(expected):
            break
        time.sleep(0.5)
    took = time.monotonic() - created
    print(f"backfill of {ENDPOINTS:,} endpoints: COMPLETED with {body['Size']:,} members "
          f"in {took:.1f} s ({ENDPOINTS / took:,.0f} endpoints/s, membership projected)")
    backfill = body["Backfill"]
    assert backfill["State"] == "COMPLETED", body
    assert backfill["EndpointsEvaluated"] == backfill["EndpointsTotal"] == ENDPOINTS
    assert backfill["PartitionsCompleted"] == backfill["Partitions"] == 4
    assert body["Size"] == len(expected)
    assert body["ChannelCounts"] == channels
