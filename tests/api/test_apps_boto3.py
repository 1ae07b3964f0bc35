"""Contract tests: an unmodified boto3 ``pinpoint`` client against the running API.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL
(migrated) and Kafka; the client is exactly what a Pinpoint user has
(``boto3.client("pinpoint", endpoint_url=…, region_name=…, aws_access_key_id=…,
aws_secret_access_key=…)``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from tests.api.live_api import ADMIN, Api, api_settings, serve

from lodestar.control.apps import AppsRepository
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

CACHE_SECONDS = 0.5


@pytest.fixture
def api(settings: Settings, control_dsn: str) -> Iterator[Api]:
    configured = api_settings(settings, control_dsn, auth_cache_seconds=CACHE_SECONDS)
    for url in serve(configured):
        yield Api(url, configured)


def _events(n: int = 2) -> dict[str, Any]:
    return {"BatchItem": {
        "ep-1": {"Endpoint": {}, "Events": {
            f"ev-{i}": {"EventType": "pageView", "Timestamp": "2026-05-01T12:00:00.000Z",
                        "Attributes": {"url": "/"}} for i in range(n)}},
    }}


def _keys(created: dict[str, Any]) -> tuple[str, str]:
    headers = created["ResponseMetadata"]["HTTPHeaders"]
    return headers["x-lodestar-access-key-id"], headers["x-lodestar-secret-access-key"]


def test_app_lifecycle(api: Api) -> None:
    admin = api.admin()
    created = admin.create_app(CreateApplicationRequest={"Name": "Shop", "tags": {"t": "1"}})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    app = created["ApplicationResponse"]
    assert re.fullmatch(r"[0-9a-f]{32}", app["Id"])
    assert app["Arn"] == f"arn:aws:mobiletargeting:eu-west-1:123456789012:apps/{app['Id']}"
    assert app["Name"] == "Shop" and app["tags"] == {"t": "1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", app["CreationDate"])
    akid, secret = _keys(created)
    assert re.fullmatch(r"LSK[A-Z0-9]{17}", akid) and len(secret) == 40

    assert admin.get_app(ApplicationId=app["Id"])["ApplicationResponse"] == app
    others = [admin.create_app(CreateApplicationRequest={"Name": f"n{i}"})[
        "ApplicationResponse"]["Id"] for i in range(3)]

    first = admin.get_apps(PageSize="3")["ApplicationsResponse"]
    assert [a["Id"] for a in first["Item"]] == [app["Id"], *others[:2]]
    second = admin.get_apps(PageSize="3", Token=first["NextToken"])["ApplicationsResponse"]
    assert [a["Id"] for a in second["Item"]] == others[2:]
    assert "NextToken" not in second

    deleted = admin.delete_app(ApplicationId=app["Id"])
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert deleted["ApplicationResponse"] == app
    with pytest.raises(admin.exceptions.NotFoundException):
        admin.get_app(ApplicationId=app["Id"])
    with pytest.raises(admin.exceptions.NotFoundException):
        admin.delete_app(ApplicationId=app["Id"])
    with pytest.raises(admin.exceptions.NotFoundException):  # deleted here: at once
        admin.put_events(ApplicationId=app["Id"], EventsRequest=_events())
    remaining = admin.get_apps()["ApplicationsResponse"]["Item"]
    assert [a["Id"] for a in remaining] == others
    # its key went with it
    with pytest.raises(admin.exceptions.ForbiddenException):
        api.client(akid, secret).get_app(ApplicationId=app["Id"])


def test_bad_create_and_list_requests_are_400(api: Api) -> None:
    admin = api.admin()
    with pytest.raises(admin.exceptions.BadRequestException, match="Name is required"):
        admin.create_app(CreateApplicationRequest={"Name": " "})
    with pytest.raises(admin.exceptions.BadRequestException, match="page-size"):
        admin.get_apps(PageSize="zero")
    with pytest.raises(admin.exceptions.BadRequestException, match="token is not valid"):
        admin.get_apps(Token="garbage!")


def test_put_events_with_the_app_key(api: Api) -> None:
    admin = api.admin()
    created = admin.create_app(CreateApplicationRequest={"Name": "Shop"})
    app_id = created["ApplicationResponse"]["Id"]
    client = api.client(*_keys(created))

    response = client.put_events(ApplicationId=app_id, EventsRequest=_events(3))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    items = response["EventsResponse"]["Results"]["ep-1"]["EventsItemResponse"]
    assert items == {f"ev-{i}": {"StatusCode": 202, "Message": "Accepted"} for i in range(3)}
    assert client.get_app(ApplicationId=app_id)["ApplicationResponse"]["Id"] == app_id
    # the admin key may send events to any application too
    assert admin.put_events(ApplicationId=app_id, EventsRequest=_events())[
        "ResponseMetadata"]["HTTPStatusCode"] == 202
    # any region name signs correctly
    assert api.client(*_keys(created), region="ap-south-1").get_app(ApplicationId=app_id)


def test_refusals(api: Api) -> None:
    admin = api.admin()
    one = admin.create_app(CreateApplicationRequest={"Name": "one"})
    two = admin.create_app(CreateApplicationRequest={"Name": "two"})
    one_id, two_id = one["ApplicationResponse"]["Id"], two["ApplicationResponse"]["Id"]
    akid, secret = _keys(one)
    key_one = api.client(akid, secret)

    wrong_secret = api.client(akid, secret[:-1] + ("x" if secret[-1] != "x" else "y"))
    with pytest.raises(wrong_secret.exceptions.ForbiddenException) as info:
        wrong_secret.put_events(ApplicationId=one_id, EventsRequest=_events())
    message = info.value.response["Error"]["Message"]
    assert "does not match" in message and secret not in message
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    with pytest.raises(key_one.exceptions.ForbiddenException, match="not " + two_id):
        key_one.put_events(ApplicationId=two_id, EventsRequest=_events())
    with pytest.raises(key_one.exceptions.ForbiddenException, match="not " + two_id):
        key_one.get_app(ApplicationId=two_id)
    with pytest.raises(key_one.exceptions.ForbiddenException, match="admin key"):
        key_one.create_app(CreateApplicationRequest={"Name": "mine"})
    with pytest.raises(key_one.exceptions.ForbiddenException, match="admin key"):
        key_one.get_apps()
    with pytest.raises(key_one.exceptions.ForbiddenException, match="admin key"):
        key_one.delete_app(ApplicationId=one_id)

    unknown = api.client("LSKNOSUCHKEY00000000", secret)
    with pytest.raises(unknown.exceptions.ForbiddenException, match="not known"):
        unknown.get_app(ApplicationId=one_id)

    missing = "0" * 32
    with pytest.raises(admin.exceptions.NotFoundException, match=missing):
        admin.put_events(ApplicationId=missing, EventsRequest=_events())
    with pytest.raises(admin.exceptions.NotFoundException):
        admin.get_app(ApplicationId=missing)
    # a path that needs encoding verifies, then is simply not found
    for odd in ("a b:c", "ü%~+", "slash/in/id"):
        with pytest.raises(admin.exceptions.NotFoundException):
            admin.get_app(ApplicationId=odd)
        with pytest.raises(admin.exceptions.NotFoundException):
            admin.get_endpoint(ApplicationId=one_id, EndpointId=odd)


async def _revoke(dsn: str, akid: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await AppsRepository(pool).revoke_key(akid)
    finally:
        await pool.close()


def test_revocation_takes_effect_within_the_cache_ttl(api: Api) -> None:
    import asyncio

    admin = api.admin()
    created = admin.create_app(CreateApplicationRequest={"Name": "Shop"})
    app_id = created["ApplicationResponse"]["Id"]
    akid, secret = _keys(created)
    client = api.client(akid, secret)
    client.get_app(ApplicationId=app_id)  # now cached

    asyncio.run(_revoke(api.settings.postgres_dsn, akid))  # as `lodestar keys revoke` does
    time.sleep(CACHE_SECONDS + 0.2)
    with pytest.raises(client.exceptions.ForbiddenException, match="revoked"):
        client.put_events(ApplicationId=app_id, EventsRequest=_events())


def test_bearer_scheme_over_http(api: Api) -> None:
    admin_auth = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}
    with httpx.Client(base_url=api.url, timeout=10) as http:
        created = http.post("/v1/apps", json={"Name": "curl"}, headers=admin_auth)
        assert created.status_code == 201
        assert created.headers["cache-control"] == "no-store"
        app_id = created.json()["Id"]
        key = f"{created.headers['x-lodestar-access-key-id']}:" \
              f"{created.headers['x-lodestar-secret-access-key']}"
        sent = http.post(f"/v1/apps/{app_id}/events", json=_events(1),
                         headers={"Authorization": f"Bearer {key}"})
        assert sent.status_code == 202
        assert sent.json()["Results"]["ep-1"]["EventsItemResponse"]["ev-0"]["StatusCode"] == 202

        anonymous = http.post(f"/v1/apps/{app_id}/events", json=_events(1))
        assert anonymous.status_code == 403 and "no credentials" in anonymous.json()["Message"]
        refused = http.get("/v1/apps")
        assert refused.status_code == 403
        assert refused.headers["x-amzn-ErrorType"] == "ForbiddenException"
        assert http.get("/healthz").status_code == 200


def test_stored_admin_key_when_none_is_configured(settings: Settings, control_dsn: str) -> None:
    import asyncio

    configured = settings.with_changes(postgres_dsn=control_dsn)
    assert configured.admin_access_key_id is None

    async def stored_admin() -> tuple[str, str]:
        pool = await asyncpg.create_pool(control_dsn, min_size=1, max_size=1)
        try:
            keys = await AppsRepository(pool).list_keys(admin=True)
        finally:
            await pool.close()
        assert len(keys) == 1
        return keys[0].access_key_id, keys[0].secret

    for url in serve(configured):
        akid, secret = asyncio.run(stored_admin())  # created by the API at start-up
        assert akid.startswith("LSA")
        admin = Api(url, configured).client(akid, secret)
        app = admin.create_app(CreateApplicationRequest={"Name": "x"})["ApplicationResponse"]
        assert admin.get_apps()["ApplicationsResponse"]["Item"] == [app]
    for _ in serve(configured):  # a restart keeps the same key
        assert asyncio.run(stored_admin()) == (akid, secret)
