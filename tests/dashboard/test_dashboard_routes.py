"""api/dashboard routes on their own (no Kafka, no PostgreSQL): the static assets, and
the analytics route's answers when the worker owning ClickHouse cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from tests.conftest import free_port

from lodestar.api.dashboard import ASSETS, analytics_routes, dashboard_routes
from lodestar.settings import Settings

ASSET_DIR = Path(__file__).resolve().parents[2] / "services" / "lodestar" / "dashboard"


@pytest.fixture
def client(base_settings: Settings, tmp_path: Path) -> TestClient:
    app = Starlette(routes=[*dashboard_routes(), *analytics_routes()])
    app.state.settings = base_settings.with_changes(
        clickhouse_dsn=f"chdb://{tmp_path}", worker_url=f"http://127.0.0.1:{free_port()}")
    return TestClient(app)


def test_every_asset_is_served_with_its_type_and_the_policy(client: TestClient) -> None:
    assert sorted(ASSETS) == sorted(p.name for p in ASSET_DIR.iterdir())
    page = client.get("/dashboard")
    assert page.status_code == 200 and "<title>Lodestar analytics</title>" in page.text
    for name, media in ASSETS.items():
        if name == "index.html":
            continue
        answer = client.get(f"/dashboard/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == media
        assert answer.content == (ASSET_DIR / name).read_bytes()
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_unknown_assets_and_the_index_path(client: TestClient) -> None:
    assert client.get("/dashboard/../settings.py").status_code == 404
    assert client.get("/dashboard/nope.js").status_code == 404
    moved = client.get("/dashboard/index.html", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (308, "/dashboard")


def test_no_worker_answers_500_saying_what_to_do(client: TestClient) -> None:
    answer = client.get("/v1/apps/app-1/analytics/top-events")
    assert answer.status_code == 500
    assert answer.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    assert "lodestar worker" in answer.json()["Message"]
