"""The Web Push sender against a local push service on 127.0.0.1 that decrypts every
message with the subscription's private key and verifies the VAPID token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.channels.push_peers import WebPushPeer, serve_app
from tests.conftest import free_port

from lodestar.channels.push_webpush import WebPushConfig, WebPushSender, webpush_outcome
from lodestar.core.jwt_tokens import b64url
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification
from lodestar.core.templates import PushAction

UA_KEY = ec.generate_private_key(ec.SECP256R1())
AUTH = b"sixteen byte key"
VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
SUBJECT = "mailto:push@lodestar.test"
NOTE = PushNotification(message_id="m-1", channel_type="PUSH", title="Sale", body="50% off",
                        action=PushAction.URL, url="https://shop.test/sale",
                        image_icon_url="https://cdn.test/i.png", data={"sku": "42"},
                        ttl_s=600, collapse_id="sale-1",
                        journey={"journey_id": "j1", "journey_activity_id": "a1"})


def _address(url: str, path: str) -> str:
    public = UA_KEY.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    return json.dumps({"endpoint": f"{url}/{path}", "expirationTime": None,
                       "keys": {"p256dh": b64url(public), "auth": b64url(AUTH)}})


@pytest.fixture(scope="module")
def server() -> Iterator[WebPushPeer]:
    peer = WebPushPeer(UA_KEY, AUTH)
    with serve_app(peer.app()) as url:
        peer.url = url
        yield peer


@pytest.fixture
def peer(server: WebPushPeer) -> WebPushPeer:
    server.received.clear()
    return server


def _sender(**changes: object) -> WebPushSender:
    return WebPushSender(WebPushConfig(VAPID_KEY, SUBJECT, **changes))  # type: ignore[arg-type]


async def test_the_push_service_decrypts_the_payload(peer: WebPushPeer) -> None:
    sender = _sender()
    try:
        outcome = await sender.send(NOTE, _address(peer.url, "ok/sub-1"))
    finally:
        await sender.aclose()
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED and outcome.status_code == 201
    assert outcome.provider_message_id == f"{peer.url}/m/1"
    [got] = peer.received
    payload = json.loads(got["plaintext"])
    assert payload["title"] == "Sale" and payload["body"] == "50% off"
    assert payload["url"] == "https://shop.test/sale" and payload["action"] == "URL"
    assert payload["icon"] == "https://cdn.test/i.png"
    assert payload["data"] == {"sku": "42"}
    assert payload["pinpoint"]["journey"] == {"journey_id": "j1", "journey_activity_id": "a1"}
    assert got["ttl"] == "600" and got["urgency"] == "normal" and got["topic"] == "sale-1"
    assert got["claims"]["sub"] == SUBJECT
    assert got["claims"]["exp"] <= time.time() + 24 * 3600


async def test_silent_and_raw_content(peer: WebPushPeer) -> None:
    sender = _sender(default_ttl_s=30)
    silent = PushNotification(message_id="m-2", channel_type="PUSH", silent=True,
                              data={"sync": "1"})
    raw = PushNotification(message_id="m-3", channel_type="PUSH",
                           raw_content='{"custom": {"shape": true}}')
    try:
        assert (await sender.send(silent, _address(peer.url, "ok/a"))).accepted
        assert (await sender.send(raw, _address(peer.url, "ok/b"))).accepted
    finally:
        await sender.aclose()
    first, second = peer.received
    assert first["urgency"] == "low" and first["ttl"] == "30"
    assert json.loads(first["plaintext"]) == {"action": "OPEN_APP", "silent": True,
                                              "data": {"sync": "1"}}
    assert json.loads(second["plaintext"]) == {"custom": {"shape": True}}


@pytest.mark.parametrize(("path", "kind", "status"), [
    ("gone/1", ProviderOutcomeKind.DEAD_ADDRESS, 410),
    ("missing/1", ProviderOutcomeKind.DEAD_ADDRESS, 404),
    ("big/1", ProviderOutcomeKind.PERMANENT, 413),
])
async def test_error_answers(peer: WebPushPeer, path: str, kind: ProviderOutcomeKind,
                             status: int) -> None:
    sender = _sender()
    try:
        outcome = await sender.send(NOTE, _address(peer.url, path))
    finally:
        await sender.aclose()
    assert (outcome.kind, outcome.status_code) == (kind, status)


async def test_429_honours_retry_after(peer: WebPushPeer) -> None:
    sender = _sender()
    try:
        outcome = await sender.send(NOTE, _address(peer.url, "busy/1"))
    finally:
        await sender.aclose()
    assert outcome.kind is ProviderOutcomeKind.RETRY
    assert outcome.retry_after_s == 11.0 and outcome.throttled


async def test_a_wrong_vapid_key_is_refused_by_the_peer(peer: WebPushPeer) -> None:
    """The peer really checks the signature: a token signed by another key than ``k``
    is refused (403), which the sender reports as PERMANENT."""
    sender = _sender()
    other = ec.generate_private_key(ec.SECP256R1())
    good = sender.authorization(f"{peer.url}/ok/x")
    token = good.removeprefix("vapid t=").split(", k=")[0]
    forged_k = b64url(other.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    sender._vapid[peer.url] = (f"vapid t={token}, k={forged_k}", time.time() + 60)
    try:
        outcome = await sender.send(NOTE, _address(peer.url, "ok/x"))
    finally:
        await sender.aclose()
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and outcome.status_code == 403
    assert peer.received == []


async def test_local_refusals_send_nothing(peer: WebPushPeer) -> None:
    sender = _sender()
    big = PushNotification(message_id="m-4", channel_type="PUSH", body="x" * 5000)
    try:
        bad = await sender.send(NOTE, '{"endpoint": "https://x.test/"}')
        too_big = await sender.send(big, _address(peer.url, "ok/y"))
    finally:
        await sender.aclose()
    assert bad.kind is ProviderOutcomeKind.PERMANENT and "subscription" in bad.message
    assert too_big.kind is ProviderOutcomeKind.PERMANENT and "too large" in too_big.message
    assert peer.received == []


async def test_network_failure_is_retry() -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        sender = WebPushSender(WebPushConfig(VAPID_KEY, SUBJECT), client=client)
        outcome = await sender.send(NOTE, _address(f"http://127.0.0.1:{free_port()}", "ok"))
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


def test_vapid_header_is_reused_per_origin() -> None:
    now = [1_000_000.0]
    sender = WebPushSender(WebPushConfig(VAPID_KEY, SUBJECT), clock=lambda: now[0])
    first = sender.authorization("https://push.a.test/1")
    assert sender.authorization("https://push.a.test/2") == first
    assert sender.authorization("https://push.b.test/1") != first
    now[0] += 7 * 3600  # past half of the 12 h lifetime
    assert sender.authorization("https://push.a.test/1") != first


def test_outcome_reading() -> None:
    assert webpush_outcome(201, "", "https://p/m/1", None).provider_message_id == "https://p/m/1"
    assert webpush_outcome(410, "", None, None).kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert webpush_outcome(400, "bad", None, None).kind is ProviderOutcomeKind.PERMANENT
    assert webpush_outcome(502, "", None, 4.0).retry_after_s == 4.0


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        WebPushConfig(VAPID_KEY, "push@lodestar.test")
    with pytest.raises(ValueError):
        WebPushConfig(VAPID_KEY, SUBJECT, urgency="urgent")
