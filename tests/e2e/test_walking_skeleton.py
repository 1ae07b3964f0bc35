"""HTTP PutEvents → Kafka → worker → ClickHouse, with processes started as a user would."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.e2e.processes import Processes

from lodestar.contracts.codec import AvroCodec
from lodestar.core.dead_letters import DlqReason
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

COUNT_TIMEOUT = 60.0


SESSION_START_MS = (int(time.time()) // 3600 - 1) * 3600 * 1000  # the previous full hour


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _batch(endpoint: int, events: int) -> dict[str, Any]:
    session = {"Id": f"s-{endpoint}", "StartTimestamp": _iso(SESSION_START_MS)}
    return {
        "Endpoint": {},
        "Events": {
            f"ev-{endpoint}-{i}": {
                "EventType": "_session.start" if i == 0 else "pageView",
                "Timestamp": _iso(SESSION_START_MS + i * 60_000),
                "Attributes": {"url": f"/p/{i}"},
                "Session": session,
            }
            for i in range(events)
        },
    }


async def _produce_garbage_and_read_dlq(env: dict[str, str]) -> list[Any]:
    settings = Settings.from_env(env)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(Topic.EVENTS), value=b"not avro", key=b"ep-garbage"
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        settings.dlq(Topic.EVENTS), bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest", group_id=None,
    )
    await consumer.start()
    codec = AvroCodec.default()
    letters: list[Any] = []
    try:
        deadline = time.monotonic() + 30
        while len(letters) < 2 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                letters += [codec.decode_dlq(r.value) for r in records]
    finally:
        await consumer.stop()
    return letters


def test_put_events_reach_clickhouse_and_the_endpoint_table(
    lodestar: tuple[Processes, dict], unique: str
) -> None:
    procs, urls = lodestar
    created = procs.cli("apps", "create", "--name", f"app-{unique}", "--json")
    assert created.returncode == 0, created.stderr
    app = json.loads(created.stdout)
    app_id = app["Id"]
    auth = {"Authorization": f"Bearer {app['AccessKeyId']}:{app['SecretAccessKey']}"}
    endpoints = 30
    per_endpoint = 3
    with httpx.Client(base_url=urls["api"], timeout=30, headers=auth) as client:
        for first in range(0, endpoints, 10):
            batch = {f"ep-{e}": _batch(e, per_endpoint) for e in range(first, first + 10)}
            if first == 0:
                batch["ep-0"]["Events"]["broken"] = {"EventType": "x", "Timestamp": "soon"}
            response = client.post(f"/v1/apps/{app_id}/events", json={"BatchItem": batch})
            assert response.status_code == 202, response.text
            results = response.json()["Results"]
            if first == 0:
                assert results["ep-0"]["EventsItemResponse"]["broken"]["StatusCode"] == 400
            last = first + 9
            assert results[f"ep-{last}"]["EventsItemResponse"][f"ev-{last}-0"] == {
                "StatusCode": 202, "Message": "Accepted"
            }

    expected = {"_session.start": endpoints, "pageView": endpoints * (per_endpoint - 1)}
    deadline = time.monotonic() + COUNT_TIMEOUT
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        procs.assert_alive()
        result = procs.cli("events", "count", "--app-id", app_id, "--json")
        if result.returncode == 0:
            counts = {c["EventType"]: c["Count"] for c in json.loads(result.stdout)["Counts"]}
            if counts == expected:
                break
        time.sleep(0.5)
    worker_log = procs.log_tail("worker")
    assert counts == expected, f"ClickHouse counts after {COUNT_TIMEOUT}s:\n{worker_log}"

    # the engine's profile of an endpoint saw its session and every event
    state = httpx.get(
        f"{urls['worker']}/v1/apps/{app_id}/endpoints/ep-7/state", timeout=5
    ).json()
    assert state["session_count"] == 1
    assert state["last_active_ms"] == SESSION_START_MS + (per_endpoint - 1) * 60_000
    assert state["open_session"]["id"] == "s-7"

    # a human-readable count from the CLI too
    table = procs.cli("events", "count", "--app-id", app_id)
    assert table.returncode == 0
    assert "pageView" in table.stdout and str(endpoints * per_endpoint) in table.stdout

    # a record that is not Avro, written straight to Kafka, is parked on the DLQ by
    # both consumers of the events topic, and the processes keep running
    letters = asyncio.run(_produce_garbage_and_read_dlq(procs.env))
    assert {(env.service, env.reason) for env in letters} == {
        ("engine", DlqReason.DECODE_ERROR),
        ("analytics-sink", DlqReason.DECODE_ERROR),
    }
    assert all(env.value == b"not avro" and env.key == b"ep-garbage" for env in letters)
    assert "magic" in letters[0].error_message or "single-object" in letters[0].error_message
    procs.assert_alive()

    codes = procs.stop_all()
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), codes
