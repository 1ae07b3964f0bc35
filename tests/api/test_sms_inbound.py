"""Twilio's inbound SMS webhook (``/sms/inbound/twilio/{app}``) on the live API.

The API runs in-process under uvicorn on a real port, on a real PostgreSQL (whose
endpoint read model the test fills) and Kafka; each test reads its own
``<prefix>.deliveries`` and ``<prefix>.endpoint-commands`` topics back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from tests.api.live_api import api_settings
from tests.api.topic_records import topic_records
from tests.asgi_server import serve_asgi

from lodestar.api.app import create_app
from lodestar.api.sms_inbound import SmsInboundConfig, signature_valid, twilio_signature
from lodestar.contracts.codec import AvroCodec
from lodestar.control.endpoint_read_model import ReadModelRow, apply_changes
from lodestar.control.migrate import migrate
from lodestar.core.topics import Topic
from lodestar.settings import Settings

APP = "b" * 32
TOKEN = "twilio-auth-token-for-tests-0123456789"
HELP = "Example Shop: help at shop.example.com. Reply STOP to opt out. <3 & more"
ANA = "+14155550199"
OURS = "+14155550100"


def test_signature_matches_twilios_documented_example() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
              "From": "+12349013030", "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params.items(), "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    items = list(params.items())
    assert signature_valid(url, items, "12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    # the same URL with its default port written out is accepted too
    assert signature_valid("https://mycompany.com:443/myapp.php?foo=1&bar=2", items, "12345",
                           "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signature_valid(url, items, "54321", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signature_valid(url, [*items[:-1], ("To", "+18005551213")], "12345",
                               "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not signature_valid(url, items, "12345", None)


# -- live ---------------------------------------------------------------------------------



def _row(endpoint_id: str, address: str, channel: str = "SMS", deleted: bool = False,
         status: str = "ACTIVE") -> ReadModelRow:
    endpoint = {"Id": endpoint_id, "Address": address, "ChannelType": channel,
                "EndpointStatus": status, "OptOut": "NONE", "ApplicationId": APP}
    return ReadModelRow(APP, endpoint_id, None, None if deleted else address,
                        None if deleted else channel, None if deleted else endpoint,
                        deleted, 1)


@pytest.fixture
async def control_dsn(postgres_dsn: str) -> AsyncIterator[str]:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=2)
    try:
        await apply_changes(pool, [
            _row("sms-ana", ANA), _row("sms-ana-2", ANA, status="INACTIVE"),
            _row("voice-ana", ANA, channel="VOICE"), _row("sms-bob", "+14155550142"),
            _row("sms-gone", ANA, deleted=True),
        ])
    finally:
        await pool.close()
    yield postgres_dsn


class Live:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.hook = f"{url}/sms/inbound/twilio/{APP}"

    def post(self, body: str, *, sender: str = ANA, sid: str = "SM" + "1" * 32,
             token: str = TOKEN, signature: str | None = None,
             url: str | None = None) -> httpx.Response:
        form = {"MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": sender, "To": OURS,
                "Body": body, "NumMedia": "0", "FromCountry": "US"}
        target = url or self.hook
        sig = signature or twilio_signature(target, form.items(), token)
        return httpx.post(target, data=form, headers={"X-Twilio-Signature": sig})

    def records(self, topic: Topic, expected: int, within: float = 10.0) -> list[dict[str, Any]]:
        raw = asyncio.run(topic_records(self.settings, topic, expected, within))
        codec = AvroCodec.default()
        return [{"key": r.key, **codec.decode(topic, r.value)} for r in raw]


def _serve(settings: Settings, config: SmsInboundConfig) -> Iterator[str]:
    app = create_app(settings)
    app.state.sms_inbound = config
    with serve_asgi(app, lifespan="on") as url:
        yield url


@pytest.fixture
def live(settings: Settings, control_dsn: str) -> Iterator[Live]:
    configured = api_settings(settings, control_dsn)
    for url in _serve(configured, SmsInboundConfig(TOKEN, HELP)):
        yield Live(url, configured)


@pytest.mark.kafka
@pytest.mark.postgres
def test_stop_opts_out_every_sms_endpoint_of_the_number(live: Live) -> None:
    response = live.post("  Stop ")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")

    commands = live.records(Topic.ENDPOINT_COMMANDS, 3, within=8)
    assert sorted(c["endpoint_id"] for c in commands) == ["sms-ana", "sms-ana-2"]
    for command in commands:
        assert command["kind"] == "UPSERT" and command["app_id"] == APP
        assert json.loads(command["endpoint_request"]) == {"OptOut": "ALL"}
        assert command["key"] == command["endpoint_id"].encode()

    deliveries = live.records(Topic.DELIVERIES, 3, within=5)
    assert sorted(d["endpoint_id"] for d in deliveries) == ["sms-ana", "sms-ana-2"]
    for record in deliveries:
        assert record["event_type"] == "_SMS.OPTOUT" and record["channel"] == "SMS"
        attrs = record["attributes"]
        assert attrs["record_status"] == "OPTED_OUT" and attrs["keyword"] == "STOP"
        assert attrs["destination_phone_number"] == ANA
        assert attrs["origination_phone_number"] == OURS
        assert record["message_id"] == "SM" + "1" * 32
    assert len({d["event_id"] for d in deliveries}) == 2


@pytest.mark.kafka
@pytest.mark.postgres
def test_help_answers_twiml_and_changes_nothing(live: Live) -> None:
    response = live.post("help")
    assert response.status_code == 200
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Example Shop: help at '
        "shop.example.com. Reply STOP to opt out. &lt;3 &amp; more</Message></Response>")
    other = live.post("When does my order ship?", sid="SM" + "2" * 32)
    assert other.status_code == 200 and other.text.endswith("<Response/>")
    assert live.records(Topic.ENDPOINT_COMMANDS, 1, within=3) == []
    assert live.records(Topic.DELIVERIES, 1, within=1) == []


@pytest.mark.kafka
@pytest.mark.postgres
def test_start_opts_back_in_without_a_delivery_record(live: Live) -> None:
    assert live.post("START", sender="+14155550142").status_code == 200
    [command] = live.records(Topic.ENDPOINT_COMMANDS, 1, within=8)
    assert command["endpoint_id"] == "sms-bob"
    assert json.loads(command["endpoint_request"]) == {"OptOut": "NONE"}
    assert live.records(Topic.DELIVERIES, 1, within=2) == []


@pytest.mark.kafka
@pytest.mark.postgres
def test_bad_signatures_are_refused_and_change_nothing(live: Live) -> None:
    assert live.post("STOP", token="not-the-token").status_code == 403
    assert live.post("STOP", signature="AAAA").status_code == 403
    unsigned = httpx.post(live.hook, data={"From": ANA, "Body": "STOP"})
    assert unsigned.status_code == 403
    # signed for another URL (another application)
    other = f"{live.url}/sms/inbound/twilio/{'c' * 32}"
    sig = twilio_signature(other, {"From": ANA, "Body": "STOP"}.items(), TOKEN)
    forged = httpx.post(live.hook, data={"From": ANA, "Body": "STOP"},
                        headers={"X-Twilio-Signature": sig})
    assert forged.status_code == 403
    assert live.records(Topic.ENDPOINT_COMMANDS, 1, within=3) == []


@pytest.mark.kafka
@pytest.mark.postgres
def test_without_a_token_the_route_is_absent(settings: Settings, control_dsn: str) -> None:
    configured = api_settings(settings, control_dsn)
    for url in _serve(configured, SmsInboundConfig(None)):
        response = httpx.post(f"{url}/sms/inbound/twilio/{APP}", data={"Body": "STOP"})
        assert response.status_code == 404


@pytest.mark.kafka
@pytest.mark.postgres
def test_status_callbacks_become_delivery_receipts_of_the_original_send(live: Live) -> None:
    import asyncpg

    from lodestar.channels.sms import status_callback_url

    sent = {"event_id": "e-1", "app_id": APP, "endpoint_id": "sms-ana", "user_id": "u-ana",
            "message_id": "m-" + "5" * 32, "event_type": "_SMS.SUCCESS", "channel": "SMS",
            "timestamp": 1_780_000_000_000,
            "attributes": {"campaign_id": "c-1", "treatment_id": "0",
                           "campaign_activity_id": "run-1", "record_status": "SUCCESSFUL",
                           "iso_country_code": "US", "number_of_message_parts": "2",
                           "message_type": "Transactional", "origin": "welcome-flow"},
            "metrics": {"price_in_millicents_usd": 1580.0}}

    async def store() -> None:
        conn = await asyncpg.connect(live.settings.postgres_dsn)
        try:
            await conn.execute(
                "INSERT INTO sent_messages (message_id, app_id, channel, state, claimed_by, "
                "deliveries) VALUES ($1, $2, 'SMS', 'SENT', 'sms-test', $3::jsonb)",
                sent["message_id"], APP, json.dumps([sent]))
        finally:
            await conn.close()

    asyncio.run(store())
    url = status_callback_url(live.url, APP, str(sent["message_id"]))

    def callback(status: str, error: str | None = None, token: str = TOKEN) -> httpx.Response:
        form = {"MessageSid": "SM" + "9" * 32, "MessageStatus": status, "To": ANA,
                "From": OURS, "AccountSid": "AC" + "0" * 32}
        if error:
            form["ErrorCode"] = error
        sig = twilio_signature(url, form.items(), token)
        return httpx.post(url, data=form, headers={"X-Twilio-Signature": sig})

    assert callback("sent").status_code == 204  # interim: nothing published
    assert callback("delivered").status_code == 204
    assert callback("delivered").status_code == 204  # Twilio retries: same event id
    assert callback("undelivered", token="forged").status_code == 403
    records = live.records(Topic.DELIVERIES, 3, within=8)
    assert len(records) == 2 and records[0]["event_id"] == records[1]["event_id"]
    receipt = records[0]
    assert (receipt["event_type"], receipt["endpoint_id"], receipt["user_id"]) == (
        "_SMS.SUCCESS", "sms-ana", "u-ana")
    attrs = receipt["attributes"]
    assert attrs["record_status"] == "DELIVERED" and attrs["campaign_id"] == "c-1"
    assert attrs["iso_country_code"] == "US" and attrs["number_of_message_parts"] == "2"
    assert attrs["origin"] == "welcome-flow"  # the send's Context travels along
    assert "price_in_millicents_usd" not in receipt["metrics"]  # the send was priced once
    no_id = httpx.post(url.split("?")[0], data={"MessageStatus": "delivered"},
                       headers={"X-Twilio-Signature": twilio_signature(
                           url.split("?")[0], [("MessageStatus", "delivered")], TOKEN)})
    assert no_id.status_code == 400


@pytest.mark.kafka
@pytest.mark.postgres
def test_call_status_callbacks_become_voice_outcomes_of_the_original_call(live: Live) -> None:
    from lodestar.channels.voice_twilio import status_callback_url
    from lodestar.core.delivery_events import Channel, DeliverySubject
    from lodestar.core.provider_outcome import accepted
    from lodestar.core.voice_message import outcome_records

    call_sid = "CA" + "4" * 32
    subject = DeliverySubject(APP, "m-" + "6" * 32, Channel.VOICE, endpoint_id="voice-ana",
                              user_id="u-ana", journey_id="j-1", journey_activity_id="act-1",
                              journey_run_id="run-9", context={"origin": "reminder"})
    sent = outcome_records(subject, accepted(201, call_sid, "call queued"), 1_780_000_000_000)

    async def store() -> None:
        conn = await asyncpg.connect(live.settings.postgres_dsn)
        try:
            await conn.execute(
                "INSERT INTO sent_messages (message_id, app_id, channel, state, claimed_by, "
                "deliveries, provider_message_id) "
                "VALUES ($1, $2, 'VOICE', 'SENT', 'voice-test', $3::jsonb, $4)",
                subject.message_id, APP, json.dumps(sent), call_sid)
        finally:
            await conn.close()

    asyncio.run(store())
    url = status_callback_url(live.url, APP, subject.message_id)

    def callback(status: str, token: str = TOKEN, **more: str) -> httpx.Response:
        form = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "CallStatus": status,
                "To": ANA, "From": OURS, "ApiVersion": "2010-04-01", **more}
        sig = twilio_signature(url, form.items(), token)
        return httpx.post(url, data=form, headers={"X-Twilio-Signature": sig})

    assert callback("ringing").status_code == 204  # not an ending: nothing published
    assert callback("completed", CallDuration="42").status_code == 204
    assert callback("completed", CallDuration="42").status_code == 204  # repeated
    assert callback("busy", token="forged").status_code == 403
    records = live.records(Topic.DELIVERIES, 3, within=8)
    assert len(records) == 2 and records[0]["event_id"] == records[1]["event_id"]
    outcome = records[0]
    assert (outcome["event_type"], outcome["channel"], outcome["endpoint_id"],
            outcome["user_id"], outcome["message_id"]) == (
        "_voice.success", "VOICE", "voice-ana", "u-ana", subject.message_id)
    assert outcome["event_id"] != sent[0]["event_id"]  # not the sender's own record
    attrs = outcome["attributes"]
    assert (attrs["journey_id"], attrs["journey_activity_id"], attrs["journey_run_id"]) == (
        "j-1", "act-1", "run-9")
    assert attrs["origin"] == "reminder"
    assert attrs["call_status"] == "completed" and attrs["provider_message_id"] == call_sid
    assert outcome["metrics"] == {"call_duration_seconds": 42.0,  # one started US minute
                                  "price_in_millicents_usd": 1300.0}
    no_id = httpx.post(url.split("?")[0], data={"CallStatus": "busy"},
                       headers={"X-Twilio-Signature": twilio_signature(
                           url.split("?")[0], [("CallStatus", "busy")], TOKEN)})
    assert no_id.status_code == 400


@pytest.mark.kafka
@pytest.mark.postgres
def test_call_failures_of_unknown_calls_carry_what_twilio_says(live: Live) -> None:
    from lodestar.channels.voice_twilio import status_callback_url

    url = status_callback_url(live.url, APP, "m-unknown")
    form = {"CallSid": "CA" + "5" * 32, "CallStatus": "no-answer", "To": ANA, "From": OURS}
    answer = httpx.post(url, data=form,
                        headers={"X-Twilio-Signature": twilio_signature(url, form.items(),
                                                                        TOKEN)})
    assert answer.status_code == 204
    [record] = live.records(Topic.DELIVERIES, 1, within=8)
    assert (record["event_type"], record["message_id"], record["endpoint_id"]) == (
        "_voice.failure", "m-unknown", None)
    assert record["attributes"]["call_status"] == "no-answer"
    assert record["attributes"]["destination_phone_number"] == ANA


GENERIC_TOKEN = "receipt0token0for0tests"


@pytest.fixture
def live_generic(settings: Settings, control_dsn: str) -> Iterator[Live]:
    from lodestar.core.sms_receipts import receipt_rules_from_mapping

    rules = receipt_rules_from_mapping({
        "token": GENERIC_TOKEN, "status_path": "status", "delivered": ["DELIVRD"],
        "failed": ["UNDELIV", "REJECTD"], "error_code_path": "err",
        "error_statuses": {"12": "SPAM"}, "message_id_path": "client_ref",
        "provider_id_path": "msg.id"})
    configured = api_settings(settings, control_dsn)
    for url in _serve(configured, SmsInboundConfig(TOKEN, HELP, generic_receipts=rules)):
        yield Live(url, configured)


@pytest.mark.kafka
@pytest.mark.postgres
def test_generic_provider_receipts_find_the_send_by_either_id(live_generic: Live) -> None:
    from lodestar.channels.sms import generic_status_callback_url

    live = live_generic
    mid = "m-" + "6" * 32
    sent = {"event_id": "e-6", "app_id": APP, "endpoint_id": "sms-ana", "user_id": None,
            "message_id": mid, "event_type": "_SMS.SUCCESS", "channel": "SMS",
            "timestamp": 1_780_000_000_000,
            "attributes": {"journey_id": "j-9", "journey_activity_id": "a-1",
                           "journey_run_id": "r-1", "record_status": "SUCCESSFUL",
                           "number_of_message_parts": "1"}}

    async def store() -> None:
        conn = await asyncpg.connect(live.settings.postgres_dsn)
        try:
            await conn.execute(
                "INSERT INTO sent_messages (message_id, app_id, channel, state, claimed_by, "
                "deliveries, provider_message_id) VALUES ($1, $2, 'SMS', 'SENT', 'sms-test', "
                "$3::jsonb, 'prov-6')", mid, APP, json.dumps([sent]))
        finally:
            await conn.close()

    asyncio.run(store())
    account_url = generic_status_callback_url(live.url, APP, GENERIC_TOKEN)
    # the account-wide URL: the provider's own id finds the send
    assert httpx.post(account_url, json={"msg": {"id": "prov-6"}, "status": "ENROUTE"}
                      ).status_code == 204  # interim: nothing
    assert httpx.post(account_url, json={"msg": {"id": "prov-6"}, "status": "DELIVRD"}
                      ).status_code == 204
    # the per-message URL, as a GET with query parameters, for a failure
    per_message = generic_status_callback_url(live.url, APP, GENERIC_TOKEN, mid)
    assert httpx.get(f"{per_message}&status=UNDELIV&err=12").status_code == 204
    # a form that echoes Lodestar's id
    assert httpx.post(account_url, data={"client_ref": mid, "status": "REJECTD"}
                      ).status_code == 204
    refused = [
        httpx.post(account_url.replace(GENERIC_TOKEN, "x" * len(GENERIC_TOKEN)),
                   json={"msg": {"id": "prov-6"}, "status": "DELIVRD"}),
        httpx.post(account_url, json={"msg": {"id": "nobody"}, "status": "DELIVRD"}),
        httpx.post(account_url, content=b"[1, 2]",
                   headers={"content-type": "application/json"}),
    ]
    assert [r.status_code for r in refused] == [403, 404, 400]
    assert "No SMS of this app matches" in refused[1].text
    records = live.records(Topic.DELIVERIES, 4, within=8)
    assert [(r["event_type"], r["attributes"]["record_status"]) for r in records] == [
        ("_SMS.SUCCESS", "DELIVERED"), ("_SMS.FAILURE", "SPAM"), ("_SMS.FAILURE", "UNKNOWN")]
    assert {r["message_id"] for r in records} == {mid}
    assert {r["endpoint_id"] for r in records} == {"sms-ana"}
    assert records[0]["attributes"]["journey_id"] == "j-9"
    assert records[0]["attributes"]["sender_request_id"] == "prov-6"


@pytest.mark.kafka
@pytest.mark.postgres
def test_without_receipt_rules_the_generic_route_is_absent(live: Live) -> None:
    response = httpx.post(f"{live.url}/sms/status/generic/{APP}?t=anything", json={})
    assert response.status_code == 404 and "LODESTAR_SMS_GENERIC_CONFIG" in response.text
