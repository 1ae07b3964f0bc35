"""APNs over HTTP/2 against a local provider-API peer (tests/channels/apns_peer.py)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tests.channels.apns_peer import Answer, ApnsPeer, tls_material
from tests.conftest import free_port

from lodestar.channels.push_apns import ApnsConfig, ApnsTransport, load_p8
from lodestar.core.provider_outcome import ProviderOutcomeKind

TEAM, KEY_ID, BUNDLE = "TEAM123456", "KEY7654321", "com.example.app"
TOKEN = "a1" * 32
OTHER = "b2" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    transport: ApnsTransport
    production: ApnsPeer
    sandbox: ApnsPeer
    clock: Clock
    key: ec.EllipticCurvePrivateKey


def _claims(jwt: str) -> dict[str, object]:
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def _setup(tmp_path: Path, signing_key: ec.EllipticCurvePrivateKey | None = None
                 ) -> tuple[Setup, httpx.AsyncClient]:
    tls = tls_material(tmp_path / "tls")
    key = ec.generate_private_key(ec.SECP256R1())
    clock = Clock()
    peers = [ApnsPeer(key.public_key(), team_id=TEAM, key_id=KEY_ID, bundle_id=BUNDLE,
                      clock=clock) for _ in range(2)]
    production_url = await peers[0].start(tls)
    sandbox_url = await peers[1].start(tls)
    client = httpx.AsyncClient(http2=True, verify=tls.client_context(), timeout=5)
    config = ApnsConfig(team_id=TEAM, key_id=KEY_ID, private_key=signing_key or key,
                        topic=BUNDLE, production_url=production_url, sandbox_url=sandbox_url)
    return Setup(ApnsTransport(config, client, clock), peers[0], peers[1], clock, key), client


@pytest.fixture
async def apns(tmp_path: Path) -> AsyncIterator[Setup]:
    setup, client = await _setup(tmp_path)
    try:
        yield setup
    finally:
        await client.aclose()
        await setup.production.stop()
        await setup.sandbox.stop()


PAYLOAD = {"aps": {"alert": {"title": "Hi", "body": "Ünïcode body"}, "sound": "default"},
           "data": {"pinpoint": {"campaign": {"campaign_id": "c1"}}}}


async def test_push_is_accepted_with_a_verified_token_and_the_apns_headers(apns: Setup) -> None:
    headers = {"apns-push-type": "alert", "apns-priority": "10", "apns-expiration": "1800003600",
               "apns-collapse-id": "offer-1", "apns-id": "6B8F5E3C-1D2A-4C4B-9E7F-0A1B2C3D4E5F"}
    outcome = await apns.transport.send("APNS", TOKEN, headers, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.ACCEPTED, outcome
    assert outcome.provider_message_id == headers["apns-id"]
    [seen] = apns.production.requests
    assert seen.status == 200
    assert seen.path == f"/3/device/{TOKEN}"
    assert seen.payload == PAYLOAD
    for name, value in headers.items():
        assert seen.headers[name] == value
    assert seen.headers["apns-topic"] == BUNDLE
    assert _claims(seen.jwt or "") == {"iss": TEAM, "iat": int(apns.clock.now)}
    assert apns.sandbox.requests == []


async def test_several_pushes_share_one_http2_connection(apns: Setup) -> None:
    tokens = [f"{i:02x}" * 32 for i in range(8)]
    outcomes = await asyncio.gather(*(apns.transport.send("APNS", t, {}, PAYLOAD)
                                      for t in tokens))
    outcomes.append(await apns.transport.send("APNS", TOKEN, {}, PAYLOAD))
    assert all(o.accepted for o in outcomes)
    assert len(apns.production.requests) == 9
    assert apns.production.connections == 1
    assert {r.connection for r in apns.production.requests} == {1}
    assert len({r.jwt for r in apns.production.requests}) == 1  # one token, reused


async def test_sandbox_and_voip_channel_types_pick_url_topic_and_push_type(apns: Setup) -> None:
    assert (await apns.transport.send("APNS_SANDBOX", TOKEN, {}, PAYLOAD)).accepted
    assert (await apns.transport.send("APNS_VOIP", OTHER, {}, PAYLOAD)).accepted
    assert (await apns.transport.send("APNS_VOIP_SANDBOX", OTHER, {}, PAYLOAD)).accepted
    [sandbox_alert, sandbox_voip] = apns.sandbox.requests
    [voip] = apns.production.requests
    assert sandbox_alert.headers["apns-push-type"] == "alert"
    assert sandbox_alert.headers["apns-topic"] == BUNDLE
    for request in (voip, sandbox_voip):
        assert request.headers["apns-push-type"] == "voip"
        assert request.headers["apns-topic"] == f"{BUNDLE}.voip"


async def test_410_unregistered_is_a_dead_address(apns: Setup) -> None:
    apns.production.answer(TOKEN, Answer(410, "Unregistered", timestamp=1_799_999_000_000))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert outcome.status_code == 410
    assert "Unregistered" in outcome.message and "1799999000000" in outcome.message


@pytest.mark.parametrize("reason", ["BadDeviceToken", "DeviceTokenNotForTopic"])
async def test_400_dead_token_reasons_are_dead_addresses(apns: Setup, reason: str) -> None:
    apns.production.answer(TOKEN, Answer(400, reason))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert reason in outcome.message


@pytest.mark.parametrize(("status", "reason"), [(400, "BadCollapseId"), (413, "PayloadTooLarge")])
async def test_other_client_errors_are_permanent_with_the_reason(
        apns: Setup, status: int, reason: str) -> None:
    apns.production.answer(TOKEN, Answer(status, reason))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.PERMANENT
    assert outcome.status_code == status and reason in outcome.message


@pytest.mark.parametrize(("status", "reason", "throttled"), [
    (429, "TooManyRequests", True), (429, "TooManyProviderTokenUpdates", True),
    (503, "ServiceUnavailable", False), (500, "InternalServerError", False)])
async def test_throttling_and_server_errors_are_retried(
        apns: Setup, status: int, reason: str, throttled: bool) -> None:
    apns.production.answer(TOKEN, Answer(status, reason, headers={"retry-after": "7"}))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.RETRY
    assert outcome.throttled is throttled
    assert outcome.retry_after_s == 7


async def test_expired_provider_token_is_refreshed_once_and_the_push_retried(apns: Setup) -> None:
    assert (await apns.transport.send("APNS", OTHER, {}, PAYLOAD)).accepted
    apns.clock.now += 30
    apns.production.answer(TOKEN, Answer(403, "ExpiredProviderToken"))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.accepted, outcome
    first, refused, retried = apns.production.requests
    assert refused.status == 403 and retried.status == 200
    assert first.jwt == refused.jwt != retried.jwt
    assert _claims(retried.jwt or "")["iat"] == int(apns.clock.now)
    assert apns.transport.tokens.signed == 2
    # the fresh token is reused afterwards
    assert (await apns.transport.send("APNS", OTHER, {}, PAYLOAD)).accepted
    assert apns.production.requests[-1].jwt == retried.jwt


async def test_a_token_refused_twice_is_permanent(apns: Setup) -> None:
    apns.production.answer(TOKEN, Answer(403, "ExpiredProviderToken"),
                           Answer(403, "InvalidProviderToken"))
    outcome = await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)
    assert outcome.kind is ProviderOutcomeKind.PERMANENT
    assert outcome.status_code == 403 and "InvalidProviderToken" in outcome.message
    assert len(apns.production.requests) == 2


async def test_the_token_is_reused_for_50_minutes_then_re_signed(apns: Setup) -> None:
    start = apns.clock.now
    for minutes in (0, 20, 49):
        apns.clock.now = start + minutes * 60
        assert (await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)).accepted
    apns.clock.now = start + 51 * 60
    assert (await apns.transport.send("APNS", TOKEN, {}, PAYLOAD)).accepted
    jwts = [r.jwt for r in apns.production.requests]
    assert jwts[0] == jwts[1] == jwts[2] != jwts[3]
    assert _claims(jwts[3] or "")["iat"] == int(start + 51 * 60)


async def test_a_token_signed_with_the_wrong_key_is_refused_by_the_peer(tmp_path: Path) -> None:
    setup, client = await _setup(tmp_path, signing_key=ec.generate_private_key(ec.SECP256R1()))
    try:
        outcome = await setup.transport.send("APNS", TOKEN, {}, PAYLOAD)
        assert outcome.kind is ProviderOutcomeKind.PERMANENT
        assert [r.reason for r in setup.production.requests] == ["InvalidProviderToken"] * 2
    finally:
        await client.aclose()
        await setup.production.stop()
        await setup.sandbox.stop()


async def test_an_apns_request_value_is_accepted(apns: Setup) -> None:
    from lodestar.core.push_payloads import ApnsRequest

    request = ApnsRequest(path=f"/3/device/{TOKEN}",
                          headers={"apns-push-type": "background", "apns-priority": "5",
                                   "apns-topic": BUNDLE},
                          payload={"aps": {"content-available": 1}})
    assert (await apns.transport.send_request("APNS", request)).accepted
    [seen] = apns.production.requests
    assert seen.headers["apns-push-type"] == "background"
    assert seen.payload == {"aps": {"content-available": 1}}


async def test_no_answer_is_a_retry_and_a_malformed_token_is_dead(apns: Setup) -> None:
    config = ApnsConfig(team_id=TEAM, key_id=KEY_ID, private_key=apns.key, topic=BUNDLE,
                        production_url=f"https://127.0.0.1:{free_port()}", timeout_s=2)
    async with httpx.AsyncClient(http2=True, timeout=2) as client:
        lost = await ApnsTransport(config, client).send("APNS", TOKEN, {}, PAYLOAD)
    assert lost.kind is ProviderOutcomeKind.RETRY and lost.status_code is None
    bad = await apns.transport.send("APNS", "not/a-token", {}, PAYLOAD)
    assert bad.kind is ProviderOutcomeKind.DEAD_ADDRESS
    assert apns.production.requests == []


def test_load_p8_reads_an_ec_p256_key_and_refuses_others() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    assert load_p8(pem).private_numbers() == key.private_numbers()
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(ValueError, match="P-256"):
        load_p8(other)
