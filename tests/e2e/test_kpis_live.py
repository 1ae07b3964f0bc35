"""Deliveries and events on the real stack show up in the KPI API within 10 seconds.

`lodestar api` and `lodestar worker` run as processes (embedded ClickHouse, so the
API asks the worker); the known-truth data set of tests/analytics/kpi_dataset.py is
published to Kafka as the senders and the API would; boto3 reads the KPIs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from aiokafka import AIOKafkaProducer
from botocore.config import Config
from tests.analytics import kpi_dataset as ds
from tests.e2e.conftest import ADMIN_KEY
from tests.e2e.processes import Processes

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

WITHIN = 10.0
START = datetime.fromtimestamp(ds.WINDOW[0] / 1000, UTC)
END = datetime.fromtimestamp(ds.WINDOW[1] / 1000, UTC)
CHECKS = [  # (operation, scope id, KPI name)
    ("application", "", "successful-delivery-rate-grouped-by-date"),
    ("application", "", "txn-sms-sent-grouped-by-country"),
    ("application", "", "daily-active-endpoints"),
    ("campaign", "c1", "push-open-rate-grouped-by-campaign-activity"),
    ("journey", "j2", "journey-emails-delivered"),
]


async def _publish(env: dict[str, str], data: ds.Data) -> None:
    settings = Settings.from_env(env)
    codec = AvroCodec.default()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20)
    await producer.start()
    try:
        sends = [producer.send(settings.topic(Topic.DELIVERIES),
                               codec.encode(Topic.DELIVERIES, r), key=r["message_id"].encode())
                 for r in data.deliveries]
        sends += [producer.send(settings.topic(Topic.EVENTS), codec.encode(Topic.EVENTS, r),
                                key=r["endpoint_id"].encode()) for r in data.events]
        for sent in await asyncio.gather(*sends):
            await sent
    finally:
        await producer.stop()


def _kpi(client: Any, app_id: str, scope: str, scope_id: str, name: str) -> dict[str, float]:
    args: dict[str, Any] = {"ApplicationId": app_id, "KpiName": name, "StartTime": START,
                            "EndTime": END}
    if scope == "application":
        body = client.get_application_date_range_kpi(**args)["ApplicationDateRangeKpiResponse"]
    elif scope == "campaign":
        body = client.get_campaign_date_range_kpi(CampaignId=scope_id, **args)[
            "CampaignDateRangeKpiResponse"]
    else:
        body = client.get_journey_date_range_kpi(JourneyId=scope_id, **args)[
            "JourneyDateRangeKpiResponse"]
    return ds.result_values(body["KpiResult"])


def test_published_deliveries_and_events_reach_the_kpis(
    lodestar: tuple[Processes, dict[str, str]]
) -> None:
    procs, urls = lodestar
    client = boto3.client("pinpoint", endpoint_url=urls["api"], region_name="us-east-1",
                          aws_access_key_id=ADMIN_KEY[0], aws_secret_access_key=ADMIN_KEY[1],
                          config=Config(retries={"max_attempts": 1}))
    app_id = client.create_app(CreateApplicationRequest={"Name": "Kpis"})[
        "ApplicationResponse"]["Id"]
    data = ds.generate(seed=5, messages=600, app=app_id)
    wanted = {check: ds.expected(data, check[2], check[0], check[1], app=app_id)
              for check in CHECKS}
    assert all(wanted.values())

    asyncio.run(_publish(procs.env, data))
    published = time.monotonic()
    got: dict[tuple[str, str, str], dict[str, float]] = {}
    while True:
        procs.assert_alive()
        got = {check: _kpi(client, app_id, *check) for check in CHECKS}
        if all(got[c] == pytest.approx(wanted[c]) for c in CHECKS):
            break
        assert time.monotonic() - published < WITHIN, (
            f"KPIs after {WITHIN}s: {got}\nwanted {wanted}\n{procs.log_tail('worker')}")
        time.sleep(0.3)
