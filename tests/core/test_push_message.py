from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from lodestar.core.delivery_events import DeliverySubject
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind, accepted
from lodestar.core.push_message import (
    PushNotification,
    PushProvider,
    RenderingFailed,
    SkipReason,
    apns_request,
    dead_token_command,
    delivery_type,
    fcm_message,
    outcome_records,
    prepare_push,
    push_provider,
    rendering_failure_records,
    screen,
    skip_records,
    suppressed_records,
    unknown_outcome_records,
    webpush_payload,
)
from lodestar.core.templates import PushAction

ROOT = Path(__file__).resolve().parents[2]
JOURNEY: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/push-journey.json").read_text())
ENDPOINT: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())["endpoint"]
NOW = 1_777_628_160_000


def _request(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(JOURNEY)
    endpoint = copy.deepcopy(ENDPOINT)
    endpoint.update(id=out["endpoint_id"], channel_type=out["channel_type"],
                    address=out["address"])
    out["endpoint"] = endpoint
    out.update(changes)
    return out


def _campaign(**changes: Any) -> dict[str, Any]:
    return _request(source="CAMPAIGN", campaign_id="c-7", treatment_id="1", run_id="act-3",
                    journey_id=None, activity_id=None, **changes)


def _transactional(**changes: Any) -> dict[str, Any]:
    return _request(source="TRANSACTIONAL", journey_id=None, activity_id=None, run_id=None,
                    **changes)


def _note(request: dict[str, Any], template: dict[str, Any] | None = None) -> PushNotification:
    note = prepare_push(request, template, NOW)
    assert isinstance(note, PushNotification), note
    return note


# -- screening and routing ----------------------------------------------------------------


def test_screen_opt_out_and_inactive() -> None:
    assert screen(_request()) is None
    opted = _request()
    opted["endpoint"]["opt_out"] = "ALL"
    skip = screen(opted)
    assert skip is not None and skip.reason is SkipReason.OPT_OUT
    inactive = _request()
    inactive["endpoint"]["endpoint_status"] = "INACTIVE"
    skip = screen(inactive)
    assert skip is not None and skip.reason is SkipReason.INACTIVE


@pytest.mark.parametrize(("channel_type", "address", "provider"), [
    ("GCM", "fcm-token", PushProvider.FCM),
    ("APNS", "abcd", PushProvider.APNS),
    ("APNS_SANDBOX", "abcd", PushProvider.APNS),
    ("APNS_VOIP", "abcd", PushProvider.APNS),
    ("PUSH", '{"endpoint": "https://p.test/x", "keys": {}}', PushProvider.WEBPUSH),
    ("GCM", ' {"endpoint": "https://p.test/x"}', PushProvider.WEBPUSH),
    ("BAIDU", "x", PushProvider.BAIDU),
    ("ADM", "x", PushProvider.ADM),
    ("EMAIL", "x", None),
])
def test_push_provider(channel_type: str, address: str, provider: PushProvider | None) -> None:
    assert push_provider(_request(channel_type=channel_type, address=address)) is provider


def test_delivery_type_falls_back_to_the_endpoint() -> None:
    request = _request(channel_type=None)
    assert delivery_type(request) == "APNS_SANDBOX"
    request["endpoint"] = None
    assert delivery_type(request) == "PUSH"


# -- rendering ------------------------------------------------------------------------------


def test_request_content_alone() -> None:
    note = _note(_request())
    assert note.title == "Thanks for your order!"
    assert note.action is PushAction.DEEP_LINK and note.url == "exampleshop://whats-new"
    assert note.image_url == "https://cdn.example.com/push/pro.png"
    assert note.ttl_s == 86400 and note.data == {"screen": "whats-new"}
    assert note.journey == {"journey_id": "j-onboarding", "journey_activity_id": "thankYouPush",
                            "journey_run_id": "run-20260501"}
    assert note.campaign == {} and note.created_ms == NOW


TEMPLATE = {
    "Default": {"Title": "Hi {{User.UserAttributes.FirstName}}", "Body": "default body",
                "Action": "OPEN_APP"},
    "APNS": {"Body": "Apple {{Attributes.plan}} {{Attributes.tier}}", "Sound": "ding.caf",
             "Action": "URL", "Url": "https://shop.test/{{Attributes.plan}}"},
    "GCM": {"Body": "Google body", "ImageIconUrl": "https://cdn.test/icon.png"},
    "DefaultSubstitutions": json.dumps({"Attributes": {"tier": "gold"}}),
    "tags": {"team": "growth"},
}


def test_template_section_for_the_channel_and_defaults() -> None:
    content = {"title": None, "body": None, "data": {}, "silent": False}
    apns = _note(_request(content=content), TEMPLATE)
    assert (apns.title, apns.body) == ("Hi Jane", "Apple pro gold")
    assert apns.action is PushAction.URL and apns.url == "https://shop.test/pro"
    assert apns.sound == "ding.caf" and apns.image_icon_url is None
    gcm = _note(_request(channel_type="GCM", content=content), TEMPLATE)
    assert gcm.body == "Google body" and gcm.action is PushAction.OPEN_APP
    assert gcm.image_icon_url == "https://cdn.test/icon.png" and gcm.sound is None
    web = _note(_request(channel_type="PUSH", content=content), TEMPLATE)
    assert web.body == "default body"


def test_request_fields_override_the_template_and_substitutions_win() -> None:
    content = {"title": "For {{Attributes.plan}}", "body": None, "data": {}, "silent": False}
    note = _note(_request(content=content, substitutions={"Attributes.plan": ["vip"]}),
                 TEMPLATE)
    assert note.title == "For vip" and note.body == "Apple vip gold"


@pytest.mark.parametrize(("template", "content", "where"), [
    ({"Default": {"Title": "only a title"}}, {"title": None, "body": None}, "Body"),
    (None, {"body": "{{#if}}broken"}, "compile"),
    (None, {"body": "{{nosuchhelper 1 2}}"}, "nosuchhelper"),
    (None, {"body": "b", "raw_content": "not json"}, "RawContent"),
    (None, {"body": "b", "raw_content": "[1, 2]"}, "RawContent"),
    ({"Default": {"Body": "x"}, "Nope": {}}, {}, "template"),
])
def test_rendering_failures_are_values(template: dict[str, Any] | None,
                                       content: dict[str, Any], where: str) -> None:
    failed = prepare_push(_request(content=content), template, NOW)
    assert isinstance(failed, RenderingFailed)
    assert where in failed.error


def test_silent_needs_no_body() -> None:
    note = _note(_request(content={"silent": True, "data": {"sync": "1"}}))
    assert note.silent and note.body is None and note.title is None


def test_raw_content_is_rendered() -> None:
    raw = '{"aps": {"alert": "Hi {{User.UserAttributes.FirstName}}"}}'
    note = _note(_request(content={"raw_content": raw}))
    assert note.raw_content == '{"aps": {"alert": "Hi Jane"}}'


# -- FCM ---------------------------------------------------------------------------------


def test_fcm_message_for_a_campaign() -> None:
    note = _note(_campaign(channel_type="GCM", context={"source": "crm"}))
    message = fcm_message(note, "tok-1")["message"]
    assert message["token"] == "tok-1"
    assert message["notification"] == {"title": "Thanks for your order!",
                                       "body": "Your Pro plan is active. Tap to explore "
                                               "what's new.",
                                       "image": "https://cdn.example.com/push/pro.png"}
    assert message["android"] == {"priority": "high", "ttl": "86400s"}
    data = message["data"]
    assert data["screen"] == "whats-new"
    assert json.loads(data["pinpoint.jsonBody"]) == {"screen": "whats-new"}
    assert data["pinpoint.deeplink"] == "exampleshop://whats-new"
    assert "pinpoint.openApp" not in data and "pinpoint.url" not in data
    assert data["pinpoint.campaign.campaign_id"] == "c-7"
    assert data["pinpoint.campaign.campaign_activity_id"] == "act-3"
    assert data["pinpoint.campaign.treatment_id"] == "1"
    assert data["pinpoint.notification.silentPush"] == "0"
    assert data["pinpoint.notification.title"] == "Thanks for your order!"
    assert data["pinpoint.source"] == "crm"
    assert all(isinstance(v, str) for v in data.values())


def test_fcm_silent_is_data_only() -> None:
    note = _note(_transactional(channel_type="GCM",
                                content={"silent": True, "data": {"k": "v"}, "ttl": 0}))
    message = fcm_message(note, "t")["message"]
    assert "notification" not in message
    assert message["android"] == {"priority": "normal", "ttl": "0s"}
    assert message["data"]["pinpoint.notification.silentPush"] == "1"
    assert message["data"]["pinpoint.campaign.campaign_id"] == "_DIRECT"
    assert message["data"]["pinpoint.openApp"] == "true"


def test_fcm_journey_context() -> None:
    data = fcm_message(_note(_request(channel_type="GCM")), "t")["message"]["data"]
    assert json.loads(data["pinpoint.journey"])["journey_id"] == "j-onboarding"
    assert not any(k.startswith("pinpoint.campaign.") for k in data)


@pytest.mark.parametrize("raw", [
    '{"message": {"topic": "news", "data": {"n": 1, "s": "x"}, "notification": {"title": "R"}}}',
    '{"data": {"n": 1, "s": "x"}, "notification": {"title": "R"}}',
])
def test_fcm_raw_content_replaces_the_payload(raw: str) -> None:
    note = _note(_request(channel_type="GCM", content={"raw_content": raw}))
    assert fcm_message(note, "tok") == {"message": {
        "token": "tok", "data": {"n": "1", "s": "x"}, "notification": {"title": "R"}}}


# -- APNs --------------------------------------------------------------------------------


def test_apns_alert_request() -> None:
    note = _note(_campaign())
    request = apns_request(note, "devtoken", "com.example.shop")
    assert request.path == "/3/device/devtoken"
    assert request.headers == {
        "apns-push-type": "alert", "apns-priority": "10", "apns-topic": "com.example.shop",
        "apns-id": request.headers["apns-id"],
        "apns-expiration": str(NOW // 1000 + 86400),
    }
    assert uuid.UUID(request.headers["apns-id"]).version == 4
    assert apns_request(note, "other", "t").headers["apns-id"] == request.headers["apns-id"]
    payload = json.loads(request.body)
    assert payload["aps"] == {"alert": {"title": "Thanks for your order!",
                                        "body": "Your Pro plan is active. Tap to explore "
                                                "what's new."},
                              "mutable-content": 1}
    assert payload["screen"] == "whats-new"
    assert payload["data"]["pinpoint"] == {
        "deeplink": "exampleshop://whats-new",
        "campaign": {"campaign_id": "c-7", "campaign_activity_id": "act-3",
                     "treatment_id": "1"}}
    assert payload["data"]["jsonBody"] == {"screen": "whats-new"}
    assert payload["data"]["media-url"] == "https://cdn.example.com/push/pro.png"


def test_apns_background_and_voip() -> None:
    silent = _note(_request(content={"silent": True, "data": {"k": "v"}}))
    request = apns_request(silent, "t", "com.x")
    assert request.headers["apns-push-type"] == "background"
    assert request.headers["apns-priority"] == "5"
    assert "apns-expiration" not in request.headers
    assert json.loads(request.body)["aps"] == {"content-available": 1}
    voip = _note(_request(channel_type="APNS_VOIP"))
    headers = apns_request(voip, "t", "com.x").headers
    assert headers["apns-push-type"] == "voip" and headers["apns-topic"] == "com.x.voip"
    zero = _note(_request(content={"body": "b", "ttl": 0}))
    assert apns_request(zero, "t", "com.x").headers["apns-expiration"] == "0"


def test_apns_raw_content_and_collapse_id() -> None:
    raw = '{"aps": {"content-available": 1}, "k": "{{Attributes.plan}}"}'
    note = _note(_request(content={"raw_content": raw}))
    request = apns_request(note, "t", "com.x")
    assert json.loads(request.body) == {"aps": {"content-available": 1}, "k": "pro"}
    assert request.headers["apns-push-type"] == "background"
    collapsing = PushNotification(message_id="m", channel_type="APNS", body="b",
                                  collapse_id="score")
    assert apns_request(collapsing, "t", "com.x").headers["apns-collapse-id"] == "score"


def test_webpush_payload() -> None:
    payload = json.loads(webpush_payload(_note(_request(channel_type="PUSH"))))
    assert payload["title"] == "Thanks for your order!"
    assert payload["action"] == "DEEP_LINK" and payload["url"] == "exampleshop://whats-new"
    assert payload["pinpoint"]["journey"]["journey_id"] == "j-onboarding"
    assert "silent" not in payload and "icon" not in payload


# -- records --------------------------------------------------------------------------------


def test_outcome_records_per_source() -> None:
    ok = accepted(200, "projects/p/messages/1")
    [journey] = outcome_records(DeliverySubject.from_send_request(_request()), ok,
                                "APNS_SANDBOX", NOW)
    assert journey["event_type"] == "_journey.send"
    assert journey["attributes"]["journey_send_status"] == "SUCCESSFUL"
    assert journey["attributes"]["journey_activity_type"] == "PUSH"
    assert journey["attributes"]["delivery_type"] == "APNS_SANDBOX"
    assert journey["attributes"]["provider_message_id"] == "projects/p/messages/1"
    dead = ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, 410, "Unregistered")
    [campaign] = outcome_records(DeliverySubject.from_send_request(_campaign()), dead,
                                 "APNS", NOW)
    assert campaign["event_type"] == "_campaign.send"
    assert campaign["attributes"]["campaign_send_status"] == "PERMANENT_FAILURE"
    assert campaign["attributes"]["status_code"] == "410"
    assert campaign["attributes"]["dead_token"] == "true"
    subject = DeliverySubject.from_send_request(_transactional())
    [success] = outcome_records(subject, ok, "GCM", NOW)
    assert success["event_type"] == "_push.success"
    retry = ProviderOutcome(ProviderOutcomeKind.RETRY, 503, "unavailable")
    [failure] = outcome_records(subject, retry, "GCM", NOW)
    assert failure["event_type"] == "_push.failure"
    assert failure["attributes"]["status_message"] == "unavailable"


def test_skip_and_rendering_failure_records() -> None:
    opted = _campaign()
    opted["endpoint"]["opt_out"] = "ALL"
    skip = screen(opted)
    assert skip is not None
    [record] = skip_records(DeliverySubject.from_send_request(opted), skip, "APNS", NOW)
    assert record["attributes"]["campaign_send_status"] == "OPT_OUT"
    assert record["attributes"]["skip_reason"] == "OPT_OUT"
    subject = DeliverySubject.from_send_request(_transactional())
    [failed] = rendering_failure_records(subject, "MISSING_PART: Body", "GCM", NOW)
    assert failed["event_type"] == "_push.failure"
    assert failed["attributes"]["failure_reason"] == "RENDERING_FAILURE"


def test_dead_token_command() -> None:
    dead = ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, 404, "UNREGISTERED")
    command = dead_token_command(_request(), dead, NOW)
    assert command is not None
    assert command["kind"] == "DEACTIVATE"
    assert command["command_id"] == f"dead-address-{JOURNEY['message_id']}"
    assert command["endpoint_id"] == JOURNEY["endpoint_id"]
    assert "UNREGISTERED" in command["reason"]
    assert dead_token_command(_request(), accepted(200), NOW) is None
    assert dead_token_command(_request(endpoint_id=None), dead, NOW) is None


def test_suppressed_and_unknown_records() -> None:
    subject = DeliverySubject.from_send_request(_request())
    [suppressed] = suppressed_records(subject, "GCM", NOW)
    assert suppressed["attributes"]["journey_send_status"] == "PERMANENT_FAILURE"
    assert suppressed["attributes"]["skip_reason"] == "SUPPRESSED"
    [unknown] = unknown_outcome_records(
        DeliverySubject.from_send_request(_transactional()), "GCM", NOW)
    assert unknown["event_type"] == "_push.failure"
    assert unknown["attributes"]["send_status"] == "UNKNOWN"
