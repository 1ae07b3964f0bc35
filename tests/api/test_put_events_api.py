"""PutEvents over HTTP publishes Avro to the events topic of a real Kafka."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from starlette.testclient import TestClient

from lodestar.api.app import create_app
from lodestar.contracts.codec import AvroCodec
from lodestar.control.apps import AppsRepository
from lodestar.control.migrate import migrate
from lodestar.core.topics import Topic
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN = ("LSATESTADMIN00000001", "AdminSecret0000000000000000000000000000x")
AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}


@pytest.fixture
async def api_settings(settings: Settings, postgres_dsn: str) -> Settings:
    """Settings with a migrated control plane holding app ``app-1``, and an admin key."""
    import asyncpg

    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1)
    try:
        await AppsRepository(pool).create_app("test", app_id="app-1")
    finally:
        await pool.close()
    return settings.with_changes(postgres_dsn=postgres_dsn, admin_access_key_id=ADMIN[0],
                                 admin_secret_access_key=ADMIN[1])


async def _consume(settings: Settings, expected: int, within: float = 20.0) -> list:
    consumer = AIOKafkaConsumer(
        settings.topic(Topic.EVENTS),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    out: list = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            polled = await consumer.getmany(timeout_ms=500)
            for records in polled.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


def test_put_events_publishes_accepted_events_only(api_settings: Settings) -> None:
    settings = api_settings
    body = {
        "BatchItem": {
            "ep-a": {
                "Endpoint": {},
                "Events": {
                    "e1": {"EventType": "_session.start", "Timestamp": "2026-05-01T12:00:00.000Z",
                           "Session": {"Id": "s", "StartTimestamp": "2026-05-01T12:00:00.000Z"}},
                    "e2": {"EventType": "pageView", "Timestamp": "not a time"},
                },
            },
            "ep-b": {"Endpoint": {}, "Events": {
                "e3": {"EventType": "pageView", "Timestamp": "2026-05-01T12:01:00Z",
                       "Attributes": {"url": "/x"}},
            }},
        }
    }
    with TestClient(create_app(settings), headers=AUTH) as client:
        response = client.post("/v1/apps/app-1/events", json=body)
        assert response.status_code == 202
        assert response.headers["x-amzn-RequestId"]
        results = response.json()["Results"]
        accepted = {"StatusCode": 202, "Message": "Accepted"}
        assert results["ep-a"]["EventsItemResponse"]["e1"] == accepted
        assert results["ep-a"]["EventsItemResponse"]["e2"]["StatusCode"] == 400
        assert results["ep-b"]["EndpointItemResponse"] == accepted

    records = asyncio.run(_consume(settings, expected=2))
    codec = AvroCodec.default()
    decoded = {r.key.decode(): codec.decode(Topic.EVENTS, r.value) for r in records}
    assert set(decoded) == {"ep-a", "ep-b"}
    assert decoded["ep-a"]["event_id"] == "e1"
    assert decoded["ep-a"]["session"]["id"] == "s"
    assert decoded["ep-b"]["attributes"] == {"url": "/x"}
    assert decoded["ep-b"]["timestamp"] == 1777636860000
    assert all(dict(r.headers) for r in records)


@pytest.mark.parametrize(
    ("payload", "status", "error_type"),
    [
        (b"{not json", 400, "BadRequestException"),
        (b'{"Other": 1}', 400, "BadRequestException"),
        (b"x" * (4 * 1024 * 1024 + 1), 413, "PayloadTooLargeException"),
    ],
)
def test_bad_requests_answer_pinpoint_errors(
    api_settings: Settings, payload: bytes, status: int, error_type: str
) -> None:
    settings = api_settings
    with TestClient(create_app(settings), headers=AUTH) as client:
        response = client.post(
            "/v1/apps/app-1/events", content=payload, headers={"content-type": "application/json"}
        )
    assert response.status_code == status
    assert response.headers["x-amzn-ErrorType"] == error_type
    body = response.json()
    assert set(body) == {"Message", "RequestID"} and body["Message"]


def test_unknown_route_is_a_pinpoint_404(api_settings: Settings) -> None:
    settings = api_settings
    with TestClient(create_app(settings), headers=AUTH) as client:
        response = client.get("/v1/apps/app-1/nothing-here")
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "NotFoundException"
