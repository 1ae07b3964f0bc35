"""The SMS, push, voice and custom senders end to end: SendRequests on the real Kafka topic,
claims in the real PostgreSQL, the plugin built by ``channels.factory.build_plugin`` from
``ChannelSettings`` pointing at local protocol peers on 127.0.0.1 (Twilio-shaped server,
FCM server checking the RS256 assertion, HTTP/2 TLS APNs peer, decrypting Web Push
receiver, HTTPS webhook receiver checking the HMAC), and the records and endpoint
commands read back from Kafka. Plus ``lodestar sender sms`` as a process."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests.asgi_server import serve_asgi
from tests.channels.apns_peer import Answer, ApnsPeer, TlsMaterial, tls_material
from tests.channels.push_peers import FcmPeer, WebPushPeer, serve_app
from tests.channels.sender_topics import produce, read
from tests.e2e.processes import Processes

from lodestar.channel_settings import ChannelSettings
from lodestar.channels.channel_sender import ChannelSender, ChannelSenderConfig
from lodestar.channels.factory import build_plugin
from lodestar.contracts.codec import AvroCodec
from lodestar.control.apps import AppsRepository
from lodestar.control.migrate import migrate
from lodestar.control.suppression import SuppressionRepository
from lodestar.core.email_feedback import SuppressionReason
from lodestar.core.jwt_tokens import b64url
from lodestar.core.push_payloads import apns_id
from lodestar.core.topics import Topic
from lodestar.core.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, app_secret, verify
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "schemas/examples/send_request"
ENDPOINT = json.loads((EXAMPLES / "email-campaign-full.json").read_text())["endpoint"]
APP = json.loads((EXAMPLES / "sms-minimal.json").read_text())["app_id"]
CODEC = AvroCodec.default()
SID, AUTH = "AC" + "0123456789abcdef" * 2, "live-twilio-auth-token"
FROM = "+14155550100"
TEAM, KEY_ID, BUNDLE = "TEAM123456", "KEY7654321", "com.example.app"
MASTER_KEY = "live-webhook-master-key-0123456789"


def example(name: str, address: str, channel_type: str, **changes: Any) -> dict[str, Any]:
    """``schemas/examples/send_request/<name>.json`` with a fresh message id and a
    snapshot of Jane's endpoint at ``address``."""
    out = json.loads((EXAMPLES / f"{name}.json").read_text())
    out["message_id"] = f"m-{uuid.uuid4().hex}"
    out["address"] = address
    out["endpoint_id"] = f"ep-{uuid.uuid4().hex[:12]}"
    out["channel_type"] = channel_type
    out["endpoint"] = copy.deepcopy(ENDPOINT)
    out["endpoint"].update(id=out["endpoint_id"], address=address, channel_type=channel_type)
    out.update(changes)
    return out


def opted_out(request: dict[str, Any]) -> dict[str, Any]:
    request["endpoint"]["opt_out"] = "ALL"
    return request


# -- Kafka, PostgreSQL and the sender ------------------------------------------------


async def prepare_env(settings: Settings, postgres_dsn: str, topic: Topic,
                      suppressed: Sequence[tuple[str, str]] = ()) -> Settings:
    """Migrate, create the app and the topics, put ``(channel, address)`` on the
    suppression list."""
    configured = settings.with_changes(postgres_dsn=postgres_dsn)
    await migrate(postgres_dsn)
    await ensure_topics(configured, [configured.topic(topic), configured.dlq(topic),
                                     configured.topic(Topic.DELIVERIES),
                                     configured.topic(Topic.ENDPOINT_COMMANDS)])
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        await AppsRepository(pool).create_app("live senders", app_id=APP)
        for channel, address in suppressed:
            await SuppressionRepository(pool).add(APP, channel, address,
                                                  SuppressionReason.MANUAL)
    finally:
        await pool.close()
    return configured


@dataclass
class Sleeps:
    """The runner's backoff sleeps: recorded, then shortened to keep the test fast."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(min(seconds, 0.02))


async def run_sender(settings: Settings, channel: str, channels: ChannelSettings,
                     expected: int, sleeps: Sleeps) -> ChannelSender[Any]:
    """Build the plugin as ``lodestar sender <channel>`` does and run the sender until it
    committed a batch covering ``expected`` requests."""
    plugin = build_plugin(channel, settings.with_changes(channels=channels))
    sender: ChannelSender[Any] = ChannelSender(
        settings, plugin, ChannelSenderConfig(retry_base_s=0.01, retry_cap_s=0.05),
        sleep=sleeps)
    task = asyncio.create_task(sender.run())
    try:
        deadline = time.monotonic() + 60
        while not (sender.stats.requests >= expected and sender.stats.batches >= 1
                   and sender.stats.last_batch_s is not None):
            assert time.monotonic() < deadline, f"sender stats: {sender.stats}"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        sender.stop()
        await asyncio.wait_for(task, 20)
    return sender


def by_message(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(record["message_id"], []).append(record)
    return out


async def deactivations(settings: Settings, wanted: int) -> list[tuple[str, str]]:
    commands = await read(settings, Topic.ENDPOINT_COMMANDS, lambda got: len(got) >= wanted)
    return sorted((c["kind"], c["endpoint_id"]) for c in commands)


# -- a Twilio-shaped server (Messages and Calls) -------------------------------------------


@dataclass
class TwilioPeer:
    """Answers by ``To``: ``dead`` numbers 400 code 21211, ``busy`` numbers 429 (Retry-After
    2) the first time, everything else 201 with a fresh sid. Wrong auth → 401."""

    url: str = ""
    sms: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    dead: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    routing_file: str = ""

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/2010-04-01/Accounts/{sid}/Messages.json", self._messages, methods=["POST"]),
            Route("/2010-04-01/Accounts/{sid}/Calls.json", self._calls, methods=["POST"]),
        ])

    async def _form(self, request: Request) -> dict[str, str] | Response:
        expected = "Basic " + base64.b64encode(f"{SID}:{AUTH}".encode()).decode()
        if request.path_params["sid"] != SID or request.headers.get("authorization") != expected:
            self.refused.append(request.url.path)
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, 401)
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    def _answer(self, to: str, prefix: str) -> Response:
        if to in self.dead:
            return JSONResponse({"code": 21211, "status": 400,
                                 "message": f"The 'To' number {to} is not a valid phone number."},
                                400)
        if to in self.busy:
            self.busy.discard(to)
            return JSONResponse({"code": 20429, "message": "Too Many Requests", "status": 429},
                                429, headers={"Retry-After": "2"})
        return JSONResponse({"sid": prefix + uuid.uuid4().hex, "status": "queued", "to": to},
                            201)

    async def _messages(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        self.sms.append(form)
        return self._answer(form.get("To", ""), "SM")

    async def _calls(self, request: Request) -> Response:
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        self.calls.append(form)
        return self._answer(form.get("To", ""), "CA")


@pytest.fixture
def twilio(tmp_path: Path) -> Iterator[TwilioPeer]:
    routing = tmp_path / "sms-routing.json"
    routing.write_text(json.dumps({"identities": [{"kind": "TEN_DLC", "value": FROM}]}))
    peer = TwilioPeer(routing_file=str(routing))
    with serve_app(peer.app()) as url:
        peer.url = url
        yield peer


def twilio_settings(peer: TwilioPeer) -> ChannelSettings:
    return ChannelSettings(twilio_account_sid=SID, twilio_auth_token=AUTH,
                           twilio_base_url=peer.url, provider_timeout_seconds=5,
                           sms_routing_file=peer.routing_file)


# -- SMS --------------------------------------------------------------------------------


SMS_BODY = "Hi {{User.UserAttributes.FirstName.[0]}}, your {{Attributes.plan.[0]}} code is {{Code}}"


def sms(address: str) -> dict[str, Any]:
    return example("sms-minimal", address, "SMS", substitutions={"Code": ["481516"]},
                   content={"body": SMS_BODY})


async def test_sms_through_the_twilio_shaped_peer(settings: Settings, postgres_dsn: str,
                                                  twilio: TwilioPeer) -> None:
    ok, dead, busy, out, blocked = (sms("+14155550111"), sms("+14155550112"),
                                    sms("+14155550113"), opted_out(sms("+14155550114")),
                                    sms("+14155550115"))
    twilio.dead.add(dead["address"])
    twilio.busy.add(busy["address"])
    env = await prepare_env(settings, postgres_dsn, Topic.SEND_SMS,
                            [("SMS", blocked["address"])])
    reqs = [ok, dead, busy, out, blocked]
    await produce(env, Topic.SEND_SMS, reqs)
    sleeps = Sleeps()
    sender = await run_sender(env, "sms", twilio_settings(twilio), len(reqs), sleeps)

    assert twilio.refused == []
    tos = sorted(f["To"] for f in twilio.sms)
    assert tos == sorted([ok["address"], dead["address"], busy["address"], busy["address"]])
    for form in twilio.sms:
        assert form["From"] == FROM
        assert form["Body"] == "Hi Jane, your pro code is 481516"
    assert max(sleeps.delays) >= 2.0  # Twilio's Retry-After was honoured
    assert (sender.stats.sent, sender.stats.failed, sender.stats.skipped,
            sender.stats.suppressed, sender.stats.retries) == (2, 1, 1, 1, 1)

    records = by_message(await read(env, Topic.DELIVERIES, lambda got: len(got) >= len(reqs)))
    assert {r["message_id"]: len(records[r["message_id"]]) for r in reqs} == {
        r["message_id"]: 1 for r in reqs}
    [success] = records[ok["message_id"]]
    assert success["event_type"] == "_SMS.SUCCESS"
    attrs = success["attributes"]
    assert attrs["record_status"] == "SUCCESSFUL"
    assert attrs["iso_country_code"] == "US"
    assert attrs["number_of_message_parts"] == "1"
    assert attrs["destination_phone_number"] == ok["address"]
    assert attrs["origination_phone_number"] == FROM
    assert attrs["message_type"] == "Transactional"
    assert attrs["sender_request_id"].startswith("SM")
    assert success["metrics"]["price_in_millicents_usd"] > 0
    [retried] = records[busy["message_id"]]
    assert retried["event_type"] == "_SMS.SUCCESS" and retried["attributes"]["attempts"] == "2"
    [gone] = records[dead["message_id"]]
    assert gone["event_type"] == "_SMS.FAILURE"
    assert gone["attributes"]["record_status"] == "INVALID"
    assert gone["metrics"]["price_in_millicents_usd"] == 0
    [skipped] = records[out["message_id"]]
    assert skipped["event_type"] == "_SMS.OPTOUT"
    assert skipped["attributes"]["record_status"] == "OPTED_OUT"
    [refused] = records[blocked["message_id"]]
    assert refused["event_type"] == "_SMS.FAILURE"
    assert refused["attributes"]["skip_reason"] == "SUPPRESSED"

    assert await deactivations(env, 1) == [("DEACTIVATE", dead["endpoint_id"])]


# -- voice ------------------------------------------------------------------------------


def voice(address: str) -> dict[str, Any]:
    return example("voice-minimal", address, "VOICE", content={
        "body": "<speak>Hello {{User.UserAttributes.FirstName.[0]}}, your code is "
                "<say-as interpret-as=\"digits\">481516</say-as>.</speak>",
        "language_code": "en-US", "voice_id": "Joanna", "origination_number": FROM})


async def test_voice_through_the_twilio_calls_peer(settings: Settings, postgres_dsn: str,
                                                   twilio: TwilioPeer) -> None:
    ok, dead, busy, out, blocked = (voice("+14155550121"), voice("+14155550122"),
                                    voice("+14155550123"), opted_out(voice("+14155550124")),
                                    voice("+14155550125"))
    twilio.dead.add(dead["address"])
    twilio.busy.add(busy["address"])
    env = await prepare_env(settings, postgres_dsn, Topic.SEND_VOICE,
                            [("VOICE", blocked["address"])])
    reqs = [ok, dead, busy, out, blocked]
    await produce(env, Topic.SEND_VOICE, reqs)
    sleeps = Sleeps()
    sender = await run_sender(env, "voice", twilio_settings(twilio), len(reqs), sleeps)

    assert twilio.refused == []
    assert sorted(c["To"] for c in twilio.calls) == sorted(
        [ok["address"], dead["address"], busy["address"], busy["address"]])
    for call in twilio.calls:
        assert call["From"] == FROM
        assert "Hello Jane, your code is" in call["Twiml"]
        assert 'voice="Polly.Joanna"' in call["Twiml"] and 'language="en-US"' in call["Twiml"]
    assert max(sleeps.delays) >= 2.0
    assert (sender.stats.sent, sender.stats.failed, sender.stats.skipped,
            sender.stats.suppressed) == (2, 1, 1, 1)

    records = by_message(await read(env, Topic.DELIVERIES, lambda got: len(got) >= len(reqs)))
    kinds = {r["address"]: [x["event_type"] for x in records[r["message_id"]]] for r in reqs}
    assert kinds == {ok["address"]: ["_voice.success"], dead["address"]: ["_voice.failure"],
                     busy["address"]: ["_voice.success"], out["address"]: ["_voice.failure"],
                     blocked["address"]: ["_voice.failure"]}
    assert records[busy["message_id"]][0]["attributes"]["attempts"] == "2"
    assert records[out["message_id"]][0]["attributes"]["reject_reason"] == "OPT_OUT"
    assert records[blocked["message_id"]][0]["attributes"]["reject_reason"] == "SUPPRESSED"
    assert await deactivations(env, 1) == [("DEACTIVATE", dead["endpoint_id"])]


# -- push: FCM, APNs and Web Push in one run -------------------------------------------------


UA_KEY = ec.generate_private_key(ec.SECP256R1())
UA_AUTH = b"sixteen byte key"


def subscription(url: str) -> str:
    public = UA_KEY.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    return json.dumps({"endpoint": url, "expirationTime": None,
                       "keys": {"p256dh": b64url(public), "auth": b64url(UA_AUTH)}})


def push(address: str, channel_type: str, **changes: Any) -> dict[str, Any]:
    req = example("push-journey", address, channel_type, **changes)
    req["content"]["title"] = "Thanks, {{User.UserAttributes.FirstName.[0]}}!"
    req["content"]["body"] = "Your {{Attributes.plan.[0]}} plan is active."
    req["content"]["data"] = {"mid": req["message_id"]}
    return req


@dataclass
class PushPeers:
    fcm: FcmPeer
    apns: ApnsPeer
    webpush: WebPushPeer
    channels: ChannelSettings
    tls: TlsMaterial


@pytest.fixture
async def push_peers(tmp_path: Path) -> AsyncIterator[PushPeers]:
    fcm_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = "sender@lodestar-live.iam.gserviceaccount.com"
    fcm = FcmPeer(fcm_key.public_key(), email, "lodestar-live")
    apns_key = ec.generate_private_key(ec.SECP256R1())
    apns = ApnsPeer(apns_key.public_key(), team_id=TEAM, key_id=KEY_ID, bundle_id=BUNDLE)
    tls = tls_material(tmp_path / "tls")
    webpush = WebPushPeer(UA_KEY, UA_AUTH)
    vapid = ec.generate_private_key(ec.SECP256R1())
    with serve_app(fcm.app()) as fcm_url, serve_app(webpush.app()) as webpush_url:
        fcm.url, webpush.url = fcm_url, webpush_url
        apns_url = await apns.start(tls)
        account = tmp_path / "service-account.json"
        account.write_text(json.dumps({
            "type": "service_account", "project_id": "lodestar-live", "private_key_id": "k1",
            "client_email": email, "token_uri": f"{fcm_url}/token",
            "private_key": fcm_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode()}))
        p8 = tmp_path / "AuthKey.p8"
        p8.write_bytes(apns_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        channels = ChannelSettings(
            provider_timeout_seconds=5, fcm_service_account_file=str(account),
            fcm_base_url=fcm_url, apns_key_file=str(p8), apns_key_id=KEY_ID,
            apns_team_id=TEAM, apns_topic=BUNDLE, apns_production_url=apns_url,
            apns_sandbox_url=apns_url, apns_ca_file=str(tls.ca_path),
            webpush_vapid_private_key=vapid.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode(),
            webpush_vapid_subject="mailto:push@lodestar.test")
        try:
            yield PushPeers(fcm, apns, webpush, channels, tls)
        finally:
            await apns.stop()


async def test_push_through_fcm_apns_and_web_push(settings: Settings, postgres_dsn: str,
                                                  push_peers: PushPeers) -> None:
    peers = push_peers
    dead_apns, flaky_apns = "d0" * 32, "f1" * 32
    peers.apns.answer(dead_apns, Answer(410, "Unregistered", timestamp=1_777_000_000_000))
    peers.apns.answer(flaky_apns, Answer(503, "ServiceUnavailable"))
    campaign = {"source": "CAMPAIGN", "campaign_id": "c0ffee0123456789abcdef0123456789",
                "treatment_id": "0", "run_id": "run-1", "journey_id": None,
                "activity_id": None}
    wp = peers.webpush.url
    reqs = {
        "fcm_ok": push("ok-token-1", "GCM", **campaign),
        "fcm_dead": push("dead-token-1", "GCM"),
        "fcm_flaky": push("flaky-token-1", "GCM"),
        "fcm_out": opted_out(push("ok-token-out", "GCM")),
        "fcm_blocked": push("ok-token-blocked", "GCM"),
        "apns_ok": push("a1" * 32, "APNS_SANDBOX"),
        "apns_dead": push(dead_apns, "APNS"),
        "apns_flaky": push(flaky_apns, "APNS", source="TRANSACTIONAL", journey_id=None,
                           activity_id=None, run_id=None),
        "web_ok": push(subscription(f"{wp}/ok-sub-1"), "GCM"),
        "web_gone": push(subscription(f"{wp}/gone-sub-1"), "GCM"),
    }
    env = await prepare_env(settings, postgres_dsn, Topic.SEND_PUSH,
                            [("PUSH", reqs["fcm_blocked"]["address"])])
    await produce(env, Topic.SEND_PUSH, list(reqs.values()))
    sleeps = Sleeps()
    sender = await run_sender(env, "push", peers.channels, len(reqs), sleeps)
    ids = {name: r["message_id"] for name, r in reqs.items()}

    # FCM: a verified assertion, each message id once per attempt, rendered from the snapshot
    assert peers.fcm.assertions and peers.fcm.assertions[0]["iss"].startswith("sender@")
    fcm_ids = [m["message"]["data"]["mid"] for m in peers.fcm.messages]
    assert sorted(fcm_ids) == sorted([ids["fcm_ok"], ids["fcm_dead"], ids["fcm_flaky"],
                                      ids["fcm_flaky"]])
    for message in peers.fcm.messages:
        assert message["message"]["notification"] == {
            "title": "Thanks, Jane!", "body": "Your pro plan is active.",
            "image": "https://cdn.example.com/push/pro.png"}
    ok_message = next(m["message"] for m in peers.fcm.messages
                      if m["message"]["data"]["mid"] == ids["fcm_ok"])
    assert ok_message["token"] == "ok-token-1"
    assert ok_message["data"]["pinpoint.campaign.campaign_id"] == campaign["campaign_id"]

    # APNs: a valid provider token on every request (the peer refuses others with 403)
    assert {r.status for r in peers.apns.requests} == {200, 410, 503}
    apns_ids = sorted(r.headers["apns-id"] for r in peers.apns.requests)
    assert apns_ids == sorted(apns_id(ids[n]) for n in ("apns_ok", "apns_dead", "apns_flaky",
                                                        "apns_flaky"))
    for received in peers.apns.requests:
        assert received.payload["aps"]["alert"] == {"title": "Thanks, Jane!",
                                                    "body": "Your pro plan is active."}
        assert received.headers["apns-topic"] == BUNDLE
        assert received.payload["mid"] == received.payload["data"]["jsonBody"]["mid"]

    # Web Push: the service decrypted the payload (gone answers 410 after decrypting)
    [delivered] = peers.webpush.received
    assert delivered["path"] == "ok-sub-1"
    payload = json.loads(delivered["plaintext"])
    assert payload["title"] == "Thanks, Jane!" and payload["body"] == "Your pro plan is active."
    assert payload["data"] == {"mid": ids["web_ok"]}

    assert sender.stats.retries == 2 and sender.stats.dead_addresses == 3
    assert (sender.stats.sent, sender.stats.skipped, sender.stats.suppressed) == (5, 1, 1)

    records = by_message(await read(env, Topic.DELIVERIES, lambda got: len(got) >= len(reqs)))
    assert {n: len(records[i]) for n, i in ids.items()} == {n: 1 for n in ids}
    got = {n: records[i][0] for n, i in ids.items()}
    assert got["fcm_ok"]["event_type"] == "_campaign.send"
    assert got["fcm_ok"]["attributes"]["delivery_type"] == "GCM"
    assert got["fcm_ok"]["attributes"]["campaign_send_status"] == "SUCCESSFUL"
    assert got["apns_flaky"]["event_type"] == "_push.success"
    assert got["apns_flaky"]["attributes"]["delivery_type"] == "APNS"
    assert got["apns_flaky"]["attributes"]["attempts"] == "2"
    for name in ("fcm_dead", "apns_dead", "web_gone"):
        assert got[name]["attributes"]["dead_token"] == "true", got[name]
    for name in ("apns_ok", "fcm_flaky", "web_ok", "fcm_dead", "apns_dead", "web_gone",
                 "fcm_out", "fcm_blocked"):
        assert got[name]["event_type"] == "_journey.send", got[name]
    assert got["apns_ok"]["attributes"]["delivery_type"] == "APNS_SANDBOX"
    assert got["fcm_out"]["attributes"]["skip_reason"] == "OPT_OUT"
    assert got["fcm_blocked"]["attributes"]["skip_reason"] == "SUPPRESSED"

    assert await deactivations(env, 3) == sorted(
        ("DEACTIVATE", reqs[n]["endpoint_id"]) for n in ("fcm_dead", "apns_dead", "web_gone"))


# -- custom: a signed HTTPS webhook ---------------------------------------------------------


@dataclass
class WebhookReceiver:
    url: str = ""
    hits: list[dict[str, Any]] = field(default_factory=list)
    busy_once: set[str] = field(default_factory=set)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks/{kind}", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        secret = app_secret(MASTER_KEY.encode(), json.loads(body)["ApplicationId"])
        check = verify(secret, body, request.headers.get(TIMESTAMP_HEADER),
                       request.headers.get(SIGNATURE_HEADER), time.time())
        kind = request.path_params["kind"]
        self.hits.append({"kind": kind, "body": json.loads(body), "valid": check.valid})
        if not check.valid:
            return JSONResponse({"error": check.result.value}, 401)
        if kind in self.busy_once:
            self.busy_once.discard(kind)
            return Response("busy", 503, headers={"Retry-After": "1"})
        return JSONResponse({"received": json.loads(body)["MessageId"]})


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    tls = tls_material(tmp_path / "webhook-tls")
    # the custom sender verifies with the default trust store; point it at the test CA
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_path))
    state = WebhookReceiver()
    with serve_asgi(state.app(), tls=(str(tls.cert_path), str(tls.key_path)),
                    url_host="localhost") as state.url:
        yield state


def custom(address: str, uri: str) -> dict[str, Any]:
    req = example("custom-webhook", address, "CUSTOM")
    req["content"]["delivery_uri"] = uri
    return req


async def test_custom_webhooks_are_signed_and_delivered(settings: Settings, postgres_dsn: str,
                                                        receiver: WebhookReceiver) -> None:
    hook = receiver.url + "/hooks/{}"
    ok, busy = custom("contact-1", hook.format("ok")), custom("contact-2", hook.format("busy"))
    out = opted_out(custom("contact-3", hook.format("ok")))
    blocked = custom("contact-4", hook.format("ok"))
    receiver.busy_once.add("busy")
    env = await prepare_env(settings, postgres_dsn, Topic.SEND_CUSTOM,
                            [("CUSTOM", blocked["address"])])
    reqs = [ok, busy, out, blocked]
    await produce(env, Topic.SEND_CUSTOM, reqs)
    channels = ChannelSettings(webhook_master_key=MASTER_KEY,
                               webhook_allow=("127.0.0.1/32", "::1/128"),
                               provider_timeout_seconds=5)
    sender = await run_sender(env, "custom", channels, len(reqs), Sleeps())

    assert all(hit["valid"] for hit in receiver.hits)
    assert sorted(h["body"]["MessageId"] for h in receiver.hits) == sorted(
        [ok["message_id"], busy["message_id"], busy["message_id"]])
    body = next(h["body"] for h in receiver.hits if h["body"]["MessageId"] == ok["message_id"])
    assert body["Data"] == ok["content"]["data"]
    assert body["JourneyId"] == "j-onboarding"
    entry = body["Endpoints"][ok["endpoint_id"]]
    assert entry["Address"] == "contact-1"
    assert entry["User"]["UserAttributes"]["FirstName"] == ["Jane"]
    assert (sender.stats.sent, sender.stats.skipped, sender.stats.suppressed,
            sender.stats.retries) == (2, 1, 1, 1)

    records = by_message(await read(env, Topic.DELIVERIES, lambda got: len(got) >= 2 * len(reqs)))
    kinds = {r["address"]: sorted(x["event_type"] for x in records[r["message_id"]])
             for r in reqs}
    assert kinds == {"contact-1": ["_custom.success", "_journey.send"],
                     "contact-2": ["_custom.success", "_journey.send"],
                     "contact-3": ["_custom.failure", "_journey.send"],
                     "contact-4": ["_custom.failure", "_journey.send"]}
    failure = {r["address"]: next(x for x in records[r["message_id"]]
                                  if x["event_type"] == "_custom.failure") for r in (out, blocked)}
    assert failure["contact-3"]["attributes"]["reject_reason"] == "OPT_OUT"
    assert failure["contact-4"]["attributes"]["reject_reason"] == "SUPPRESSED"


# -- `lodestar sender sms` as a process ------------------------------------------------------


async def test_the_sms_sender_process_delivers_and_stops_on_sigterm(
        settings: Settings, postgres_dsn: str, twilio: TwilioPeer, tmp_path: Path) -> None:
    env = {**os.environ, "LODESTAR_POSTGRES_DSN": postgres_dsn,
           "LODESTAR_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "LODESTAR_TOPIC_PREFIX": settings.topic_prefix,
           "LODESTAR_WORKER_ID": settings.worker_id,
           "LODESTAR_DATA_DIR": str(tmp_path / "lodestar"), "LODESTAR_PARTITIONS": "4",
           "LODESTAR_TWILIO_ACCOUNT_SID": SID, "LODESTAR_TWILIO_AUTH_TOKEN": AUTH,
           "LODESTAR_TWILIO_BASE_URL": twilio.url, "LODESTAR_SMS_ROUTING": twilio.routing_file}
    procs = Processes(env, tmp_path)
    migrated = await asyncio.to_thread(procs.cli, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    configured = settings.with_changes(postgres_dsn=postgres_dsn)
    await ensure_topics(configured)
    request = sms("+14155550131")
    await produce(configured, Topic.SEND_SMS, [request])
    await asyncio.to_thread(procs.start, "sender", "sender", "sms")
    try:
        records = await read(configured, Topic.DELIVERIES, lambda got: len(got) >= 1, 60)
        assert [r["event_type"] for r in records] == ["_SMS.SUCCESS"]
        assert [f["To"] for f in twilio.sms] == [request["address"]]
        procs.assert_alive()
    finally:
        codes = await asyncio.to_thread(procs.stop_all)  # SIGTERM, as a service manager does
    output = procs.log_tail("sender", 200)
    assert codes == {"sender": 0}, output
    assert "Lodestar sms sender" in output and "stopped:" in output and "sent=1" in output
