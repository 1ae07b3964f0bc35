"""Authentication middleware, authorization rules and the key cache (no PostgreSQL).

A small Starlette app stands in for the API; keys come from an in-memory
source that counts its lookups, so the cache's effect is visible.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from lodestar.api.auth import (
    Authenticator,
    AuthFailure,
    AuthMiddleware,
    Principal,
    TtlCache,
    authorize,
)
from lodestar.control.apps import ApiKey

APP = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
APP_KEY = ApiKey("LSKAPPKEY00000000001", "a" * 40, APP, datetime.now(UTC))
OTHER_KEY = ApiKey("LSKOTHER000000000001", "o" * 40, OTHER, datetime.now(UTC))
REVOKED = ApiKey("LSKREVOKED0000000001", "r" * 40, APP, datetime.now(UTC), datetime.now(UTC))
STORED_ADMIN = ApiKey("LSAADMIN000000000001", "s" * 40, None, datetime.now(UTC))
ENV_ADMIN = ("ENVADMINKEY000000001", "e" * 40)


class FakeSource:
    def __init__(self) -> None:
        self.keys = {k.access_key_id: k for k in (APP_KEY, OTHER_KEY, REVOKED, STORED_ADMIN)}
        self.apps = {APP, OTHER}
        self.key_lookups = 0
        self.app_lookups = 0

    async def get_key(self, access_key_id: str) -> ApiKey | None:
        self.key_lookups += 1
        await asyncio.sleep(0)
        return self.keys.get(access_key_id)

    async def app_exists(self, app_id: str) -> bool:
        self.app_lookups += 1
        return app_id in self.apps


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


async def _echo(request: Request) -> JSONResponse:
    principal: Principal = request.state.principal
    body = await request.body()
    return JSONResponse({"key": principal.access_key_id, "app": principal.app_id,
                         "body": body.decode()})


def make_client(source: FakeSource, clock: Clock | None = None) -> TestClient:
    app = Starlette(
        routes=[
            Route("/healthz", lambda r: JSONResponse({"ok": True})),
            Route("/v1/apps", _echo, methods=["GET", "POST"]),
            Route("/v1/apps/{app_id}", _echo, methods=["GET", "DELETE"]),
            Route("/v1/apps/{app_id}/events", _echo, methods=["POST"]),
            Route("/v1/apps/{app_id}/endpoints/{endpoint_id}", _echo, methods=["GET", "PUT"]),
            Route("/v1/templates", _echo, methods=["GET"]),
        ],
        middleware=[Middleware(AuthMiddleware)],
    )
    app.state.authenticator = Authenticator(source, ttl=30, admin_key=ENV_ADMIN,
                                            clock=clock or Clock())
    return TestClient(app, base_url="http://lodestar.test")


def bearer(key: ApiKey | tuple[str, str]) -> dict[str, str]:
    akid, secret = (key.access_key_id, key.secret) if isinstance(key, ApiKey) else key
    return {"Authorization": f"Bearer {akid}:{secret}"}


def sigv4_headers(
    method: str, path: str, key: ApiKey, body: bytes = b"", *, service: str = "mobiletargeting",
    secret: str | None = None, at: datetime | None = None,
) -> dict[str, str]:
    request = AWSRequest(method=method, url=f"http://lodestar.test{path}", data=body,
                         headers={"Content-Type": "application/json"})
    signer = SigV4Auth(Credentials(key.access_key_id, secret or key.secret), service, "us-east-1")
    if at is None:
        signer.add_auth(request)
    else:
        from unittest import mock

        import botocore.auth
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
            signer.add_auth(request)
    return dict(request.headers.items())


def assert_forbidden(response: Any, *phrases: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    body = response.json()
    assert set(body) == {"Message", "RequestID"}
    for phrase in phrases:
        assert phrase in body["Message"], body["Message"]


# -- authorize: who may call what -------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/apps"), ("GET", "/v1/apps"), ("DELETE", f"/v1/apps/{APP}"),
     ("GET", f"/v1/apps/{OTHER}/endpoints/x"), ("GET", "/v1/templates")],
)
def test_admin_may_call_everything(method: str, path: str) -> None:
    authorize(Principal("A", None), method, path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", f"/v1/apps/{APP}", True),
        ("POST", f"/v1/apps/{APP}/events", True),
        ("PUT", f"/v1/apps/{APP}/endpoints/a b:c", True),
        ("DELETE", f"/v1/apps/{APP}", False),  # DeleteApp is an admin operation
        ("POST", "/v1/apps", False),
        ("GET", "/v1/apps", False),
        ("GET", f"/v1/apps/{OTHER}", False),
        ("POST", f"/v1/apps/{OTHER}/events", False),
        ("POST", f"/v1/apps/{APP}x/events", False),
        ("GET", "/v1/templates", False),
    ],
)
def test_app_keys_may_call_their_own_app_only(method: str, path: str, allowed: bool) -> None:
    principal = Principal(APP_KEY.access_key_id, APP)
    if allowed:
        authorize(principal, method, path)
    else:
        with pytest.raises(AuthFailure):
            authorize(principal, method, path)


# -- the middleware ---------------------------------------------------------------


def test_healthz_and_non_v1_paths_need_no_credentials() -> None:
    with make_client(FakeSource()) as client:
        assert client.get("/healthz").status_code == 200


def test_missing_credentials_say_how_to_authenticate() -> None:
    with make_client(FakeSource()) as client:
        assert_forbidden(client.get("/v1/apps"), "no credentials", "mobiletargeting", "Bearer")
        assert_forbidden(client.get("/v1/apps", headers={"Authorization": "Digest eDp5"}),
                         "Unsupported authorization scheme 'Digest'")


def test_bearer_scheme() -> None:
    source = FakeSource()
    with make_client(source) as client:
        ok = client.post(f"/v1/apps/{APP}/events", content=b"hello", headers=bearer(APP_KEY))
        assert ok.status_code == 200
        assert ok.json() == {"key": APP_KEY.access_key_id, "app": APP, "body": "hello"}
        assert client.get("/v1/apps", headers=bearer(ENV_ADMIN)).json()["app"] is None
        assert client.get("/v1/apps", headers=bearer(STORED_ADMIN)).status_code == 200

        wrong = client.get(f"/v1/apps/{APP}", headers=bearer((APP_KEY.access_key_id, "x" * 40)))
        assert_forbidden(wrong, "is not its secret")
        assert "x" * 40 not in wrong.text and APP_KEY.secret not in wrong.text
        assert_forbidden(client.get("/v1/apps", headers=bearer((ENV_ADMIN[0], "nope" * 5))),
                         "is not its secret")
        assert_forbidden(client.get("/v1/apps", headers={"Authorization": "Bearer justakey"}),
                         "'<access key id>:<secret access key>'")
        assert_forbidden(client.get(f"/v1/apps/{APP}", headers=bearer(("LSKUNKNOWN", "s" * 40))),
                         "LSKUNKNOWN is not known")
        assert_forbidden(client.get(f"/v1/apps/{APP}", headers=bearer(REVOKED)), "revoked")
        assert_forbidden(client.post(f"/v1/apps/{OTHER}/events", headers=bearer(APP_KEY)),
                         f"belongs to application {APP}, not {OTHER}")
        assert_forbidden(client.post("/v1/apps", headers=bearer(APP_KEY)), "needs an admin key")


def test_basic_scheme_as_sns_sends_it() -> None:
    import base64

    def basic(key: tuple[str, str] | Any) -> dict[str, str]:
        akid, secret = (key.access_key_id, key.secret) if hasattr(key, "secret") else key
        return {"Authorization": "Basic " + base64.b64encode(f"{akid}:{secret}".encode()).decode()}

    with make_client(FakeSource()) as client:
        ok = client.post(f"/v1/apps/{APP}/events", content=b"hi", headers=basic(APP_KEY))
        assert ok.status_code == 200 and ok.json()["key"] == APP_KEY.access_key_id
        assert_forbidden(client.get(f"/v1/apps/{APP}",
                                    headers=basic((APP_KEY.access_key_id, "y" * 40))),
                         "is not its secret")
        assert_forbidden(client.get("/v1/apps", headers={"Authorization": "Basic !!notb64"}),
                         "not base64")
        assert_forbidden(client.get("/v1/apps", headers={"Authorization": "Basic eDp5"[:-2]}),
                         "Basic credentials")


def test_sigv4_scheme() -> None:
    with make_client(FakeSource()) as client:
        path = f"/v1/apps/{APP}/events"
        body = b'{"BatchItem": {}}'
        ok = client.post(path, content=body, headers=sigv4_headers("POST", path, APP_KEY, body))
        assert ok.status_code == 200, ok.text
        assert ok.json()["body"] == body.decode()  # the handler still reads the body

        odd = f"/v1/apps/{APP}/endpoints/a%20b%3Ac%C3%BC"
        ok = client.put(odd, content=b"{}", headers=sigv4_headers("PUT", odd, APP_KEY, b"{}"))
        assert ok.status_code == 200, ok.text

        wrong = client.post(path, content=body, headers=sigv4_headers(
            "POST", path, APP_KEY, body, secret="z" * 40))
        assert_forbidden(wrong, "signature Lodestar calculated does not match",
                         "canonical request")
        assert "z" * 40 not in wrong.text and APP_KEY.secret not in wrong.text
        tampered = client.post(path, content=body + b" ",
                               headers=sigv4_headers("POST", path, APP_KEY, body))
        assert_forbidden(tampered, "does not match")
        assert_forbidden(client.get(path, headers=sigv4_headers("GET", path, APP_KEY,
                                                                service="pinpoint")),
                         "'mobiletargeting'")
        late = datetime.now(UTC) - timedelta(minutes=20)
        assert_forbidden(client.get(f"/v1/apps/{APP}",
                                    headers=sigv4_headers("GET", f"/v1/apps/{APP}", APP_KEY,
                                                          at=late)),
                         "more than 15 minutes")
        other = f"/v1/apps/{OTHER}/events"
        assert_forbidden(client.post(other, content=b"{}",
                                     headers=sigv4_headers("POST", other, APP_KEY, b"{}")),
                         "not " + OTHER)
        assert_forbidden(client.get(f"/v1/apps/{APP}",
                                    headers=sigv4_headers("GET", f"/v1/apps/{APP}", REVOKED)),
                         "revoked")


def test_sub_resources_of_unknown_apps_are_404_after_authentication() -> None:
    source = FakeSource()
    with make_client(source) as client:
        missing = "99999999999999999999999999999999"
        response = client.post(f"/v1/apps/{missing}/events", headers=bearer(ENV_ADMIN))
        assert response.status_code == 404
        assert response.headers["x-amzn-ErrorType"] == "NotFoundException"
        assert missing in response.json()["Message"]
        # unauthenticated callers learn nothing about which apps exist
        assert client.post(f"/v1/apps/{missing}/events").status_code == 403
        # an app key's own app exists as long as the key does: no lookup
        lookups = source.app_lookups
        client.post(f"/v1/apps/{APP}/events", headers=bearer(APP_KEY))
        assert source.app_lookups == lookups


def test_lookups_are_cached_until_the_ttl_passes() -> None:
    source, clock = FakeSource(), Clock()
    with make_client(source, clock) as client:
        for _ in range(5):
            assert client.get(f"/v1/apps/{APP}", headers=bearer(APP_KEY)).status_code == 200
            client.get(f"/v1/apps/{APP}", headers=bearer(("LSKUNKNOWN", "s" * 40)))
            client.post(f"/v1/apps/{OTHER}/events", headers=bearer(ENV_ADMIN))
        assert source.key_lookups == 2  # one hit and one miss, each cached
        assert source.app_lookups == 1

        source.keys[APP_KEY.access_key_id] = ApiKey(
            APP_KEY.access_key_id, APP_KEY.secret, APP, APP_KEY.created_at, datetime.now(UTC))
        source.apps.discard(OTHER)
        assert client.get(f"/v1/apps/{APP}", headers=bearer(APP_KEY)).status_code == 200
        clock.t += 31  # the TTL passes: revocation and deletion take effect
        assert_forbidden(client.get(f"/v1/apps/{APP}", headers=bearer(APP_KEY)), "revoked")
        assert client.post(f"/v1/apps/{OTHER}/events",
                           headers=bearer(ENV_ADMIN)).status_code == 404
        assert source.key_lookups == 3


def test_the_env_admin_key_needs_no_lookup() -> None:
    source = FakeSource()
    with make_client(source) as client:
        client.get("/v1/apps", headers=bearer(ENV_ADMIN))
    assert source.key_lookups == 0


async def test_concurrent_misses_share_one_load() -> None:
    cache: TtlCache[int] = TtlCache(10)
    calls = 0
    release = asyncio.Event()

    async def load() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(10)]
    await asyncio.sleep(0.01)
    waiters[0].cancel()  # one caller goes away; the others still get the value
    release.set()
    results = await asyncio.gather(*waiters[1:])
    assert results == [42] * 9 and calls == 1
    assert await cache.get_or_load("k", load) == 42 and calls == 1


async def test_a_failed_load_is_not_cached() -> None:
    cache: TtlCache[int] = TtlCache(10)

    async def boom() -> int:
        raise ConnectionError("db down")

    async def fine() -> int:
        return 1

    with pytest.raises(ConnectionError):
        await cache.get_or_load("k", boom)
    assert await cache.get_or_load("k", fine) == 1


def test_cache_is_bounded() -> None:
    clock = Clock()
    cache: TtlCache[int] = TtlCache(5, max_entries=3, clock=clock)
    for i in range(10):
        cache.put(str(i), i)
    assert len(cache._entries) <= 3
    assert cache.get("9") == (True, 9)
    clock.t += 6
    assert cache.get("9") == (False, None)


def test_a_failing_key_store_answers_a_pinpoint_500() -> None:
    from lodestar.api.app import _internal_error

    class Down(FakeSource):
        async def get_key(self, access_key_id: str) -> ApiKey | None:
            raise ConnectionError("PostgreSQL is down")

    app = Starlette(routes=[Route("/v1/apps", _echo)], middleware=[Middleware(AuthMiddleware)],
                    exception_handlers={Exception: _internal_error})
    app.state.authenticator = Authenticator(Down(), ttl=30)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/apps", headers=bearer(APP_KEY))
    assert response.status_code == 500
    assert response.headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    assert set(response.json()) == {"Message", "RequestID"}
