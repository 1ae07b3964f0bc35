"""``GET /v1/apps/{app}/segments/{segment}/membership`` (a Lodestar extension) end to end:
the real API app on a migrated PostgreSQL and Kafka; rows written with the repository
functions the engine uses, answers checked against the committed OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from starlette.testclient import TestClient
from tests.api.test_openapi import _Checker

from lodestar.api import openapi
from lodestar.api.app import create_app
from lodestar.control.apps import AppsRepository
from lodestar.control.endpoint_read_model import ReadModelRow, apply_changes
from lodestar.control.migrate import migrate
from lodestar.control.segment_membership import (
    apply_membership_changes,
    record_backfill_progress,
)
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN = ("LSATESTADMIN00000001", "AdminSecret0000000000000000000000000000x")
AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}
PATH = "/v1/apps/{application-id}/segments/{segment-id}/membership"
DIMS = {"Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def api_settings(settings: Settings, postgres_dsn: str) -> Settings:
    return settings.with_changes(postgres_dsn=postgres_dsn, admin_access_key_id=ADMIN[0],
                                 admin_secret_access_key=ADMIN[1], partitions=2)


def _enter(app_id: str, segment_id: str, endpoint_id: str, version: int) -> dict[str, Any]:
    return {"app_id": app_id, "segment_id": segment_id, "segment_version": version,
            "endpoint_id": endpoint_id, "user_id": None, "change": "ENTER",
            "cause": "segment", "event_id": None, "timestamp": 1_780_000_000_000}


async def test_membership_status(api_settings: Settings, pool: asyncpg.Pool) -> None:
    check = _Checker(openapi.document())
    apps = AppsRepository(pool)
    _, other_key = await apps.create_app("Other")
    with TestClient(create_app(api_settings), headers=AUTH) as client:
        app_id = client.post("/v1/apps", json={"Name": "Shop"}).json()["Id"]
        created = client.post(f"/v1/apps/{app_id}/segments", json={"Name": "iOS", **DIMS})
        assert created.status_code == 201, created.text
        segment_id = created.json()["Id"]
        url = f"/v1/apps/{app_id}/segments/{segment_id}/membership"

        body = check(client.get(url), "GET", PATH)
        assert body == {"SegmentMembershipResponse": {
            "ApplicationId": app_id, "SegmentId": segment_id, "Version": 1, "Size": 0,
            "ChannelCounts": {},
            "Backfill": {"Version": 1, "State": "PENDING", "EndpointsEvaluated": 0,
                         "EndpointsTotal": 0, "PartitionsCompleted": 0, "Partitions": 2},
        }}

        assert client.put(f"/v1/apps/{app_id}/segments/{segment_id}",
                          json=DIMS).status_code == 200  # version 2
        await apply_changes(pool, [
            ReadModelRow(app_id=app_id, endpoint_id=eid, user_id=None, address=None,
                         channel_type=channel, endpoint={"Id": eid}, deleted=False,
                         change_ts=1)
            for eid, channel in (("e1", "EMAIL"), ("e2", "EMAIL"), ("s1", "SMS"))
        ])
        await apply_membership_changes(pool, [
            _enter(app_id, segment_id, eid, 2) for eid in ("e1", "e2", "s1", "unknown")
        ])
        await record_backfill_progress(pool, app_id, segment_id, 1, 0, 9, 9, True)
        await record_backfill_progress(pool, app_id, segment_id, 1, 1, 9, 9, True)
        await record_backfill_progress(pool, app_id, segment_id, 2, 0, 30, 40, False)
        await record_backfill_progress(pool, app_id, segment_id, 2, 1, 25, 25, True)

        answer = client.get(url)
        assert answer.headers["x-amzn-RequestId"]
        status = check(answer, "GET", PATH)["SegmentMembershipResponse"]
        assert status == {
            "ApplicationId": app_id, "SegmentId": segment_id, "Version": 2, "Size": 4,
            "ChannelCounts": {"EMAIL": 2, "SMS": 1},
            "Backfill": {"Version": 2, "State": "IN_PROGRESS", "EndpointsEvaluated": 55,
                         "EndpointsTotal": 65, "PartitionsCompleted": 1, "Partitions": 2},
        }
        await record_backfill_progress(pool, app_id, segment_id, 2, 0, 40, 40, True)
        backfill = client.get(url).json()["SegmentMembershipResponse"]["Backfill"]
        assert backfill["State"] == "COMPLETED" and backfill["PartitionsCompleted"] == 2

        # a key of another application may not look; no credentials, none may
        other = {"Authorization": f"Bearer {other_key.access_key_id}:{other_key.secret}"}
        assert check(client.get(url, headers=other), "GET", PATH) is not None
        assert client.get(url, headers=other).status_code == 403
        assert client.get(url, headers={"Authorization": ""}).status_code == 403

        missing = client.get(f"/v1/apps/{app_id}/segments/{'0' * 32}/membership")
        assert missing.status_code == 404
        assert missing.headers["x-amzn-ErrorType"] == "NotFoundException"
        error = check(missing, "GET", PATH)
        assert error["Message"] == (f"Segment {'0' * 32} does not exist in application "
                                    f"{app_id}.")
        assert client.get(f"/v1/apps/nope/segments/{segment_id}/membership").status_code == 404

        assert client.delete(f"/v1/apps/{app_id}/segments/{segment_id}").status_code == 200
        assert client.get(url).status_code == 404
        assert await pool.fetchval("SELECT count(*) FROM segment_members") == 0
        assert await pool.fetchval("SELECT count(*) FROM segment_backfill") == 0
