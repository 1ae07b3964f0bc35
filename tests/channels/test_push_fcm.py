"""The FCM HTTP v1 sender against a local FCM-shaped server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.channels.push_peers import FcmPeer, serve_app
from tests.conftest import free_port

from lodestar.channels.push_fcm import (
    FCM_SCOPE,
    FcmConfig,
    FcmSender,
    ServiceAccount,
    ServiceAccountError,
    fcm_outcome,
)
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification

PROJECT = "lodestar-test"
EMAIL = "fcm-sender@lodestar-test.iam.gserviceaccount.com"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOTE = PushNotification(message_id="m-1", channel_type="GCM", title="Hello", body="World",
                        data={"screen": "home"}, ttl_s=120,
                        campaign={"campaign_id": "c-1", "treatment_id": "0"})


def _account_json(token_uri: str, key: rsa.RSAPrivateKey = KEY) -> str:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return json.dumps({"type": "service_account", "project_id": PROJECT,
                       "private_key_id": "k1", "private_key": pem, "client_email": EMAIL,
                       "token_uri": token_uri})


@pytest.fixture(scope="module")
def server() -> Iterator[FcmPeer]:
    peer = FcmPeer(KEY.public_key(), EMAIL, PROJECT)
    with serve_app(peer.app()) as url:
        peer.url = url
        yield peer


@pytest.fixture
def peer(server: FcmPeer) -> FcmPeer:
    server.issued.clear()
    server.assertions.clear()
    server.messages.clear()
    server.revoked.clear()
    server.expire_next = False
    server.token_lifetime_s = 3600
    return server


def _sender(peer: FcmPeer, key: rsa.RSAPrivateKey = KEY) -> FcmSender:
    account = ServiceAccount.from_json(_account_json(f"{peer.url}/token", key))
    return FcmSender(FcmConfig(account, base_url=peer.url))


async def test_accepted_with_the_message_name_and_a_verified_assertion(peer: FcmPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "ok-token-1")
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED
    assert outcome.provider_message_id == f"projects/{PROJECT}/messages/1"
    [claims] = peer.assertions
    assert claims["iss"] == EMAIL and claims["scope"] == FCM_SCOPE
    assert claims["aud"] == f"{peer.url}/token"
    assert claims["exp"] - claims["iat"] == 3600
    [body] = peer.messages
    message = body["message"]
    assert message["token"] == "ok-token-1"
    assert message["notification"] == {"title": "Hello", "body": "World"}
    assert message["android"] == {"priority": "high", "ttl": "120s"}
    assert message["data"]["screen"] == "home"
    assert message["data"]["pinpoint.campaign.campaign_id"] == "c-1"
    assert all(isinstance(v, str) for v in message["data"].values())


async def test_the_access_token_is_cached(peer: FcmPeer) -> None:
    async with _sender(peer) as sender:
        for n in range(3):
            assert (await sender.send(NOTE, f"ok-{n}")).accepted
    assert len(peer.issued) == 1 and len(peer.messages) == 3


async def test_concurrent_sends_fetch_one_token(peer: FcmPeer) -> None:
    async with _sender(peer) as sender:
        outcomes = await asyncio.gather(*(sender.send(NOTE, f"ok-{n}") for n in range(20)))
    assert all(o.accepted for o in outcomes)
    assert len(peer.issued) == 1 and len(peer.messages) == 20
    assert len({o.provider_message_id for o in outcomes}) == 20


async def test_a_token_near_expiry_is_refreshed(peer: FcmPeer) -> None:
    peer.token_lifetime_s = 200  # inside the 300 s refresh margin
    async with _sender(peer) as sender:
        assert (await sender.send(NOTE, "ok-1")).accepted
        assert (await sender.send(NOTE, "ok-2")).accepted
    assert len(peer.issued) == 2


async def test_a_401_refreshes_the_token_once(peer: FcmPeer) -> None:
    async with _sender(peer) as sender:
        assert (await sender.send(NOTE, "ok-1")).accepted
        peer.expire_next = True
        outcome = await sender.send(NOTE, "ok-2")
    assert outcome.accepted
    assert len(peer.issued) == 2
    assert [m["message"]["token"] for m in peer.messages] == ["ok-1", "ok-2"]


@pytest.mark.parametrize(("token", "kind", "status"), [
    ("dead-1", ProviderOutcomeKind.DEAD_ADDRESS, 404),
    ("badarg-1", ProviderOutcomeKind.DEAD_ADDRESS, 400),
    ("badbody-1", ProviderOutcomeKind.PERMANENT, 400),
    ("boom-1", ProviderOutcomeKind.RETRY, 500),
])
async def test_error_answers(peer: FcmPeer, token: str, kind: ProviderOutcomeKind,
                             status: int) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, token)
    assert (outcome.kind, outcome.status_code) == (kind, status)


async def test_429_is_retried_after_the_providers_delay(peer: FcmPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "busy-1")
    assert outcome.kind is ProviderOutcomeKind.RETRY
    assert outcome.retry_after_s == 7.0 and outcome.throttled


async def test_an_assertion_signed_by_the_wrong_key_is_permanent(peer: FcmPeer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with _sender(peer, other) as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert outcome.kind is ProviderOutcomeKind.PERMANENT
    assert "token endpoint" in outcome.message
    assert peer.messages == []


async def test_network_failure_is_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    account = ServiceAccount.from_json(_account_json(f"{url}/token"))
    async with httpx.AsyncClient(timeout=2.0) as client:
        sender = FcmSender(FcmConfig(account, base_url=url), client=client)
        outcome = await sender.send(NOTE, "ok-1")
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


def test_fcm_outcome_reading() -> None:
    assert fcm_outcome(200, {"name": "projects/p/messages/9"}).provider_message_id == \
        "projects/p/messages/9"
    unregistered = {"error": {"status": "NOT_FOUND", "message": "x", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
         "errorCode": "UNREGISTERED"}]}}
    assert fcm_outcome(404, unregistered).kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert fcm_outcome(400, {"error": {"status": "INVALID_ARGUMENT",
                                       "message": "bad ttl"}}).kind is \
        ProviderOutcomeKind.PERMANENT
    assert fcm_outcome(403, None).kind is ProviderOutcomeKind.PERMANENT
    retry = fcm_outcome(503, "unavailable", retry_after_s=3.0)
    assert retry.kind is ProviderOutcomeKind.RETRY and retry.retry_after_s == 3.0


def test_service_account_errors() -> None:
    with pytest.raises(ServiceAccountError):
        ServiceAccount.from_json("{}")
    data = json.loads(_account_json("https://oauth2.example/token"))
    del data["project_id"]
    with pytest.raises(ServiceAccountError):
        ServiceAccount.from_json(json.dumps(data))
