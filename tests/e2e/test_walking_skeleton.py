"""HTTP PutEvents → Kafka → worker → ClickHouse, with processes started as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.conftest import free_port

from lodestar.contracts.codec import AvroCodec
from lodestar.core.dead_letters import DlqReason
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = pytest.mark.e2e

COUNT_TIMEOUT = 60.0


class Processes:
    """Lodestar processes of one test, with their logs, stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "lodestar", *args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def assert_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                tail = self.log_tail(name)
                pytest.fail(f"`lodestar {name}` exited with {proc.returncode}:\n{tail}")

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.running.items():
            try:
                codes[name] = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                codes[name] = proc.wait(timeout=10)
        return codes

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lodestar", *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )


@pytest.fixture
def lodestar(
    settings: Settings, tmp_path: Path, unique: str, postgres_dsn: str
) -> Iterator[tuple[Processes, dict]]:
    api_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "LODESTAR_POSTGRES_DSN": postgres_dsn,
        "LODESTAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LODESTAR_TOPIC_PREFIX": settings.topic_prefix,
        "LODESTAR_WORKER_ID": settings.worker_id,
        "LODESTAR_DATA_DIR": str(tmp_path / "lodestar"),
        "LODESTAR_PARTITIONS": "4",
        "LODESTAR_API_PORT": str(api_port),
        "LODESTAR_WORKER_WEB_PORT": str(web_port),
        "LODESTAR_WORKER_URL": f"http://127.0.0.1:{web_port}",
        "LODESTAR_SINK_FLUSH_SECONDS": "0.5",
    }
    procs = Processes(env, tmp_path)
    migrated = procs.cli("migrate")
    assert migrated.returncode == 0, migrated.stderr
    procs.start("api", "api")
    procs.start("worker", "worker")
    urls = {"api": f"http://127.0.0.1:{api_port}", "worker": f"http://127.0.0.1:{web_port}"}
    try:
        _wait_healthy(procs, urls)
        yield procs, urls
    finally:
        procs.stop_all()


def _wait_healthy(procs: Processes, urls: dict[str, str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    pending = {"api": f"{urls['api']}/healthz", "worker": f"{urls['worker']}/healthz"}
    while pending and time.monotonic() < deadline:
        procs.assert_alive()
        for name, url in list(pending.items()):
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200 and response.json().get("analytics", True):
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if pending:
        tails = "\n\n".join(f"--- {n} ---\n{procs.log_tail(n)}" for n in pending)
        pytest.fail(f"not healthy within {timeout:.0f}s: {', '.join(pending)}\n{tails}")


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
