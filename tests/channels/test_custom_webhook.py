"""The custom-channel webhook transport: a local HTTPS receiver on 127.0.0.1 that verifies
the signature (allowed through the test's allow list), and refused destinations that
are never connected to."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from tests.asgi_server import serve_asgi
from tests.channels.apns_peer import TlsMaterial, tls_material

from lodestar.channels.custom_webhook import (
    MESSAGE_ID_HEADER,
    CustomWebhook,
    PinnedBackend,
    RefusedConnection,
    WebhookConfig,
)
from lodestar.core.custom_message import WebhookPost, custom_body, encode_body, prepare_post
from lodestar.core.destination_guard import GuardPolicy
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = b"per-app-webhook-secret"
REBIND_NAME = "lodestar-rebind.invalid"
LOCAL = GuardPolicy.from_entries(["127.0.0.1/32", "::1/128"])


@dataclass
class Receiver:
    url: str = ""
    port: int = 0
    hits: list[dict[str, Any]] = field(default_factory=list)
    tls: TlsMaterial | None = None


def _app(state: Receiver) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        check = verify(SECRET, body, request.headers.get(TIMESTAMP_HEADER),
                       request.headers.get(SIGNATURE_HEADER), time.time())
        state.hits.append({"path": request.url.path, "body": body, "valid": check.valid,
                           "headers": dict(request.headers)})
        if not check.valid:
            return JSONResponse({"error": check.result.value}, status_code=401)
        kind = request.path_params["kind"]
        if kind == "busy":
            return Response("busy", status_code=503, headers={"Retry-After": "4"})
        if kind == "gone":
            return Response("no such hook", status_code=410)
        if kind == "moved":
            return RedirectResponse("/hooks/ok", status_code=302)
        return JSONResponse({"received": json.loads(body)["MessageId"]})

    return Starlette(routes=[Route("/hooks/{kind}", hook, methods=["POST"])])


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    tls = tls_material(tmp_path_factory.mktemp("webhook-tls"), extra_names=(REBIND_NAME,))
    state = Receiver(tls=tls)
    with serve_asgi(_app(state), tls=(str(tls.cert_path), str(tls.key_path)),
                    url_host="localhost") as url:
        state.url, state.port = url, int(url.rsplit(":", 1)[1])
        yield state


def _body() -> bytes:
    request = {"message_id": "m-hook-1", "app_id": "app-1", "endpoint_id": "e-1",
               "address": "contact-1", "channel": "CUSTOM", "channel_type": "CUSTOM",
               "source": "TRANSACTIONAL", "timestamp": 1_777_637_102_000,
               "content": {"data": "{\"hello\":\"wörld\"}", "delivery_uri": "https://x"}}
    return encode_body(custom_body(request, 1_777_637_102_000))


def _webhook(receiver: Receiver, policy: GuardPolicy = LOCAL, **kw: Any) -> CustomWebhook:
    assert receiver.tls is not None
    return CustomWebhook(WebhookConfig(policy, timeout_s=5, connect_timeout_s=2),
                         ssl_context=receiver.tls.client_context(), **kw)


async def test_a_signed_message_reaches_an_allowed_receiver(receiver: Receiver) -> None:
    webhook = _webhook(receiver)
    body = _body()
    try:
        outcome = await webhook.send(f"{receiver.url}/hooks/ok", body, SECRET, "m-hook-1")
    finally:
        await webhook.aclose()
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED, outcome
    assert outcome.status_code == 200
    hit = receiver.hits[-1]
    assert hit["valid"] and hit["body"] == body
    assert json.loads(hit["body"])["Data"] == "{\"hello\":\"wörld\"}"
    assert hit["headers"]["content-type"] == "application/json"
    assert hit["headers"][MESSAGE_ID_HEADER.lower()] == "m-hook-1"
    assert hit["headers"]["host"] == f"localhost:{receiver.port}"
    assert webhook.backend.attempts[-1] == ("localhost", "127.0.0.1", receiver.port)


async def test_a_prepared_post_is_delivered(receiver: Receiver) -> None:
    request = {"message_id": "m-post-1", "app_id": "app-1", "endpoint_id": "e-1",
               "address": "contact-1", "channel": "CUSTOM", "source": "TRANSACTIONAL",
               "timestamp": 1_777_637_102_000,
               "content": {"data": "{}", "delivery_uri": f"{receiver.url}/hooks/ok"}}
    post = prepare_post(request, 1_777_637_102_000)
    assert isinstance(post, WebhookPost)
    webhook = _webhook(receiver)
    try:
        outcome = await webhook.post(post, SECRET)
    finally:
        await webhook.aclose()
    assert outcome.accepted, outcome
    assert receiver.hits[-1]["body"] == post.body
    assert receiver.hits[-1]["headers"][MESSAGE_ID_HEADER.lower()] == "m-post-1"


async def test_the_wrong_secret_is_refused_by_the_receiver(receiver: Receiver) -> None:
    webhook = _webhook(receiver)
    try:
        outcome = await webhook.send(f"{receiver.url}/hooks/ok", _body(), b"not-the-secret")
    finally:
        await webhook.aclose()
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and outcome.status_code == 401
    assert receiver.hits[-1]["valid"] is False


@pytest.mark.parametrize(("kind", "expected", "status"), [
    ("busy", ProviderOutcomeKind.RETRY, 503),
    ("gone", ProviderOutcomeKind.PERMANENT, 410),
    ("moved", ProviderOutcomeKind.PERMANENT, 302),
])
async def test_answers_are_mapped_and_redirects_not_followed(
        receiver: Receiver, kind: str, expected: ProviderOutcomeKind, status: int) -> None:
    webhook = _webhook(receiver)
    before = len(receiver.hits)
    try:
        outcome = await webhook.send(f"{receiver.url}/hooks/{kind}", _body(), SECRET)
    finally:
        await webhook.aclose()
    assert outcome.kind is expected and outcome.status_code == status
    assert len(receiver.hits) == before + 1  # a redirect is not followed
    if kind == "busy":
        assert outcome.retry_after_s == 4


async def test_the_connection_goes_to_the_checked_address_not_a_new_lookup(
        receiver: Receiver) -> None:
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    webhook = _webhook(receiver, resolver=resolver)
    try:
        url = f"https://{REBIND_NAME}:{receiver.port}/hooks/ok"
        outcome = await webhook.send(url, _body(), SECRET)
    finally:
        await webhook.aclose()
    # the name does not exist in DNS: only the checked, pinned address can have worked
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED, outcome
    assert lookups == [REBIND_NAME]
    assert list(webhook.backend.attempts) == [(REBIND_NAME, "127.0.0.1", receiver.port)]
    assert receiver.hits[-1]["headers"]["host"] == f"{REBIND_NAME}:{receiver.port}"


@dataclass
class Listener:
    port: int
    accepted: list[object]


@pytest.fixture
async def listener() -> Any:
    accepted: list[object] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield Listener(server.sockets[0].getsockname()[1], accepted)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(("host", "reason"), [
    ("127.0.0.1", "LOOPBACK"), ("localhost", "LOOPBACK"), ("[::ffff:127.0.0.1]", "LOOPBACK")])
async def test_a_refused_destination_is_never_connected_to(
        listener: Listener, host: str, reason: str) -> None:
    webhook = CustomWebhook(WebhookConfig(GuardPolicy(), timeout_s=2, connect_timeout_s=1))
    try:
        outcome = await webhook.send(f"https://{host}:{listener.port}/hook", _body(), SECRET)
    finally:
        await webhook.aclose()
    await asyncio.sleep(0.1)
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and outcome.status_code is None
    assert reason in outcome.message
    assert not webhook.backend.attempts
    assert listener.accepted == []


async def test_one_private_address_among_public_ones_refuses_the_host(
        listener: Listener) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:4700::6810:84e5", "127.0.0.1"]

    webhook = CustomWebhook(WebhookConfig(GuardPolicy()), resolver=resolver)
    try:
        outcome = await webhook.send(f"https://hooks.example.com:{listener.port}/h", _body(),
                                     SECRET)
        http = await webhook.send(f"http://127.0.0.1:{listener.port}/h", _body(), SECRET)
    finally:
        await webhook.aclose()
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and "127.0.0.1" in outcome.message
    assert http.kind is ProviderOutcomeKind.PERMANENT and "NOT_HTTPS" in http.message
    assert not webhook.backend.attempts and listener.accepted == []


async def test_a_failed_lookup_is_a_retry() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    webhook = CustomWebhook(WebhookConfig(GuardPolicy()), resolver=resolver)
    try:
        outcome = await webhook.send("https://hooks.example.com/h", _body(), SECRET)
    finally:
        await webhook.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY and "Name or service" in outcome.message


async def test_the_backend_refuses_hosts_that_were_not_checked() -> None:
    backend = PinnedBackend()
    with pytest.raises(RefusedConnection):
        await backend.connect_tcp("127.0.0.1", 9)
    assert not backend.attempts
    assert issubclass(RefusedConnection, httpcore.ConnectError)

