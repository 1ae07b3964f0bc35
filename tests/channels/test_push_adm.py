"""The ADM sender against a local ADM-shaped server on 127.0.0.1.

``AdmPeer`` speaks ADM's documented API: ``POST /auth/o2/token`` (client
credentials; wrong ones 401 ``invalid_client``; ``token_status`` forces another
answer) and ``POST /messaging/registrations/{id}/messages``, which checks the bearer
token (401 ``AccessTokenExpired`` when unknown, revoked, or ``expire_next``), ADM's
type headers (400 ``InvalidType``), the data map (400 ``InvalidData``), the checksum,
computed here from ADM's rule (400 ``InvalidChecksum``), ``expiresAfter`` (400
``InvalidExpiration``) and the 6 KB limit (413 ``MessageTooLarge``), then answers by
the registration id's prefix: ``dead`` 400 InvalidRegistrationId, ``gone`` 400
Unregistered, ``busy`` 429 MaxRateExceeded (Retry-After 9), ``boom`` 500, ``down`` 503
(Retry-After 2), ``moved`` 200 with a new registrationID, else 200.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.channels.push_peers import serve_app
from tests.conftest import free_port

from lodestar.channels.push_adm import AdmConfig, AdmSender
from lodestar.core.adm_message import AdmOptions
from lodestar.core.provider_outcome import ProviderOutcomeKind
from lodestar.core.push_payloads import PushNotification

CLIENT_ID = "amzn1.application-oa2-client.0123456789abcdef"
CLIENT_SECRET = "0af96083320f5d70dc4f358cc783ac65"
NOTE = PushNotification(message_id="m-1", channel_type="ADM", title="Hello", body="World",
                        data={"screen": "home"}, ttl_s=120,
                        campaign={"campaign_id": "c-1", "treatment_id": "0"})


def _checksum(data: dict[str, str]) -> str:
    text = ",".join(f"{k}:{data[k]}" for k in sorted(data, key=lambda k: k.encode()))
    return base64.b64encode(hashlib.md5(text.encode()).digest()).decode()


def _reason(status: int, reason: str, **headers: str) -> Response:
    return JSONResponse({"reason": reason}, status, headers=headers or None)


@dataclass
class AdmPeer:
    token_lifetime_s: int = 3600
    token_status: int = 200
    issued: list[str] = field(default_factory=list)
    token_forms: list[dict[str, list[str]]] = field(default_factory=list)
    messages: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    expire_next: bool = False
    always_expired: bool = False
    url: str = ""

    def reset(self) -> None:
        self.issued.clear()
        self.token_forms.clear()
        self.messages.clear()
        self.revoked.clear()
        self.expire_next = self.always_expired = False
        self.token_lifetime_s, self.token_status = 3600, 200

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/auth/o2/token", self._token, methods=["POST"]),
            Route("/messaging/registrations/{rid}/messages", self._send, methods=["POST"]),
        ])

    async def _token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"):
            return JSONResponse({"error": "invalid_request"}, 400)
        form = parse_qs((await request.body()).decode("ascii"))
        self.token_forms.append(form)
        if self.token_status != 200:
            return JSONResponse({"error": "server_error"}, self.token_status)
        if form.get("grant_type") != ["client_credentials"]:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        if form.get("scope") != ["messaging:push"]:
            return JSONResponse({"error": "invalid_scope"}, 400)
        if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [CLIENT_SECRET]:
            return JSONResponse({"error": "invalid_client",
                                 "error_description": "Client authentication failed"}, 401)
        token = f"Atc|test-{len(self.issued)}"
        self.issued.append(token)
        return JSONResponse({"access_token": token, "expires_in": self.token_lifetime_s,
                             "scope": "messaging:push", "token_type": "bearer"})

    async def _send(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if (self.always_expired or self.expire_next or bearer not in self.issued
                or bearer in self.revoked):
            if self.expire_next:
                self.expire_next = False
                self.revoked.add(bearer)
            return _reason(401, "AccessTokenExpired")
        headers = dict(request.headers)
        if (headers.get("x-amzn-type-version") != "com.amazon.device.messaging.ADMMessage@1.0"
                or headers.get("x-amzn-accept-type")
                != "com.amazon.device.messaging.ADMSendResult@1.0"
                or headers.get("accept") != "application/json"
                or headers.get("content-type") != "application/json"):
            return _reason(400, "InvalidType")
        raw = await request.body()
        body = json.loads(raw)
        rid = request.path_params["rid"]
        self.messages.append((rid, headers, body))
        data = body.get("data")
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            return _reason(400, "InvalidData")
        if len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()) > 6144:
            return _reason(413, "MessageTooLarge")
        if "md5" in body and body["md5"] != _checksum(data):
            return _reason(400, "InvalidChecksum")
        expires = body.get("expiresAfter", 604800)
        if not isinstance(expires, int) or not 60 <= expires <= 2678400:
            return _reason(400, "InvalidExpiration")
        for prefix, status, reason, extra in (
                ("dead", 400, "InvalidRegistrationId", {}),
                ("gone", 400, "Unregistered", {}),
                ("busy", 429, "MaxRateExceeded", {"Retry-After": "9"}),
                ("boom", 500, "InternalServerError", {}),
                ("down", 503, "ServiceUnavailable", {"Retry-After": "2"}),
                ("big", 413, "MessageTooLarge", {})):
            if rid.startswith(prefix):
                return _reason(status, reason, **extra)
        current = f"new-{rid}" if rid.startswith("moved") else rid
        return JSONResponse({"registrationID": current}, headers={
            "X-Amzn-RequestId": f"req-{len(self.messages)}",
            "X-Amzn-Data-md5": _checksum(data),
            "X-Amzn-Type-Version": "com.amazon.device.messaging.ADMSendResult@1.0"})


@pytest.fixture(scope="module")
def server() -> Iterator[AdmPeer]:
    peer = AdmPeer()
    with serve_app(peer.app()) as url:
        peer.url = url
        yield peer


@pytest.fixture
def peer(server: AdmPeer) -> AdmPeer:
    server.reset()
    return server


def _sender(peer: AdmPeer, secret: str = CLIENT_SECRET) -> AdmSender:
    return AdmSender(AdmConfig(CLIENT_ID, secret, base_url=peer.url))


async def test_accepted_with_adms_headers_checksum_and_request_id(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "amzn1.adm-registration.v3.ok-1",
                                    AdmOptions(consolidation_key="news"))
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED
    assert outcome.provider_message_id == "req-1" and outcome.message == "accepted"
    [form] = peer.token_forms
    assert form == {"grant_type": ["client_credentials"], "scope": ["messaging:push"],
                    "client_id": [CLIENT_ID], "client_secret": [CLIENT_SECRET]}
    [(rid, headers, body)] = peer.messages
    assert rid == "amzn1.adm-registration.v3.ok-1"
    assert headers["authorization"] == "Bearer Atc|test-0"
    assert set(body) == {"data", "consolidationKey", "expiresAfter", "md5"}
    assert body["consolidationKey"] == "news" and body["expiresAfter"] == 120
    assert body["md5"] == _checksum(body["data"])
    assert body["data"]["pinpoint.notification.title"] == "Hello"
    assert body["data"]["pinpoint.notification.body"] == "World"
    assert body["data"]["pinpoint.campaign.campaign_id"] == "c-1"
    assert body["data"]["screen"] == "home"


async def test_a_registration_id_is_one_path_segment(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "ok+id==")
    assert outcome.accepted
    assert peer.messages[0][0] == "ok+id=="


async def test_a_new_registration_id_is_reported(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "moved-1")
    assert outcome.accepted and "new-moved-1" in outcome.message


async def test_the_access_token_is_cached(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        for n in range(3):
            assert (await sender.send(NOTE, f"ok-{n}")).accepted
        outcomes = await asyncio.gather(*(sender.send(NOTE, f"ok-c{n}") for n in range(10)))
    assert all(o.accepted for o in outcomes)
    assert len(peer.issued) == 1 and len(peer.messages) == 13


async def test_concurrent_first_sends_fetch_one_token(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        outcomes = await asyncio.gather(*(sender.send(NOTE, f"ok-{n}") for n in range(10)))
    assert all(o.accepted for o in outcomes) and len(peer.issued) == 1


async def test_a_token_near_expiry_is_refreshed(peer: AdmPeer) -> None:
    peer.token_lifetime_s = 30  # inside the 60 s refresh margin
    async with _sender(peer) as sender:
        assert (await sender.send(NOTE, "ok-1")).accepted
        assert (await sender.send(NOTE, "ok-2")).accepted
    assert len(peer.issued) == 2


async def test_a_401_refreshes_the_token_once(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        assert (await sender.send(NOTE, "ok-1")).accepted
        peer.expire_next = True
        outcome = await sender.send(NOTE, "ok-2")
    assert outcome.accepted
    assert len(peer.issued) == 2
    assert [m[0] for m in peer.messages] == ["ok-1", "ok-2"]
    assert peer.messages[-1][1]["authorization"] == "Bearer Atc|test-1"


async def test_a_second_401_is_permanent(peer: AdmPeer) -> None:
    peer.always_expired = True
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.PERMANENT, 401)
    assert len(peer.issued) == 2


@pytest.mark.parametrize(("rid", "kind", "status", "reason"), [
    ("dead-1", ProviderOutcomeKind.DEAD_ADDRESS, 400, "InvalidRegistrationId"),
    ("gone-1", ProviderOutcomeKind.DEAD_ADDRESS, 400, "Unregistered"),
    ("big-1", ProviderOutcomeKind.PERMANENT, 413, "MessageTooLarge"),
    ("boom-1", ProviderOutcomeKind.RETRY, 500, ""),
])
async def test_error_answers(peer: AdmPeer, rid: str, kind: ProviderOutcomeKind,
                             status: int, reason: str) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, rid)
    assert (outcome.kind, outcome.status_code) == (kind, status)
    assert reason in outcome.message


async def test_retry_after_is_honoured(peer: AdmPeer) -> None:
    async with _sender(peer) as sender:
        busy = await sender.send(NOTE, "busy-1")
        down = await sender.send(NOTE, "down-1")
    assert (busy.kind, busy.retry_after_s, busy.throttled) == (
        ProviderOutcomeKind.RETRY, 9.0, True)
    assert (down.kind, down.retry_after_s, down.throttled) == (
        ProviderOutcomeKind.RETRY, 2.0, False)


@pytest.mark.parametrize(("body", "reason"), [
    ({"data": {"k": "v"}, "md5": "AAAAAAAAAAAAAAAAAAAAAA=="}, "InvalidChecksum"),
    ({"data": {"k": 1}}, "InvalidData"),
    ({"data": {"k": "v"}, "expiresAfter": 5}, "InvalidExpiration"),
])
async def test_bad_messages_are_permanent(peer: AdmPeer, body: dict[str, Any],
                                          reason: str) -> None:
    async with _sender(peer) as sender:
        outcome = await sender.send_message("ok-1", body)
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.PERMANENT, 400)
    assert reason in outcome.message


async def test_an_oversized_payload_is_refused_before_sending(peer: AdmPeer) -> None:
    note = PushNotification(message_id="m", channel_type="ADM", body="x",
                            data={"blob": "x" * 7000})
    async with _sender(peer) as sender:
        outcome = await sender.send(note, "ok-1")
    assert outcome.kind is ProviderOutcomeKind.PERMANENT and "MessageTooLarge" in \
        outcome.message
    assert peer.messages == [] and peer.issued == []


async def test_wrong_credentials_are_permanent(peer: AdmPeer) -> None:
    async with _sender(peer, secret="wrong") as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.PERMANENT, 401)
    assert "token endpoint" in outcome.message and "invalid_client" in outcome.message
    assert peer.messages == []


async def test_a_failing_token_endpoint_is_retry(peer: AdmPeer) -> None:
    peer.token_status = 503
    async with _sender(peer) as sender:
        outcome = await sender.send(NOTE, "ok-1")
    assert (outcome.kind, outcome.status_code) == (ProviderOutcomeKind.RETRY, 503)
    assert peer.messages == []


async def test_network_failure_is_retry() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(timeout=2.0) as client:
        sender = AdmSender(AdmConfig(CLIENT_ID, CLIENT_SECRET, base_url=url), client=client)
        outcome = await sender.send(NOTE, "ok-1")
    assert outcome.kind is ProviderOutcomeKind.RETRY and outcome.status_code is None


async def test_urls() -> None:
    async with httpx.AsyncClient() as client:
        sender = AdmSender(AdmConfig(CLIENT_ID, CLIENT_SECRET), client=client)
        custom = AdmSender(AdmConfig(CLIENT_ID, CLIENT_SECRET, base_url="http://127.0.0.1:9/",
                                     token_url="http://127.0.0.1:9/t"), client=client)
    assert sender.token_url == "https://api.amazon.com/auth/o2/token"
    assert sender.send_url("amzn1.adm-registration.v3.Y/Z") == (
        "https://api.amazon.com/messaging/registrations/"
        "amzn1.adm-registration.v3.Y%2FZ/messages")
    assert custom.token_url == "http://127.0.0.1:9/t"
    assert custom.send_url("r") == "http://127.0.0.1:9/messaging/registrations/r/messages"
