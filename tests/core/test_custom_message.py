from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lodestar.core.custom_message import (
    TargetRefused,
    WebhookPost,
    custom_body,
    delivery_target,
    encode_body,
    outcome_records,
    prepare_post,
    refusal_records,
    screen,
    skip_records,
)
from lodestar.core.delivery_events import DeliverySubject
from lodestar.core.email_sending import Skip, SkipReason
from lodestar.core.provider_outcome import accepted, from_http_status

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/custom-webhook.json").read_text())
CAMPAIGN: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
NOW = 1_777_637_200_000


def _request(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out.update(changes)
    return out


def _campaign_request() -> dict[str, Any]:
    endpoint = copy.deepcopy(CAMPAIGN["endpoint"])
    return _request(source="CAMPAIGN", campaign_id="c0ffee", treatment_id="2", run_id="act-9",
                    journey_id=None, activity_id=None, endpoint_id=endpoint["id"],
                    endpoint=endpoint, address=endpoint["address"], trace_id="t-1")


def test_campaign_body_has_pinpoints_shape() -> None:
    body = custom_body(_campaign_request(), NOW)
    assert body == {
        "Message": {},
        "Data": "{\"event\":\"onboarding_completed\",\"contact\":\"contact-1842\"}",
        "ApplicationId": "7a8e3c1f0b9d4e5fa6b7c8d9e0f1a2b3",
        "CampaignId": "c0ffee",
        "TreatmentId": "2",
        "ActivityId": "act-9",
        "ScheduledTime": "2026-05-01T12:05:02.000Z",
        "Endpoints": {"email-jane": body["Endpoints"]["email-jane"]},
        "MessageId": "m-0f9e8d7c6b5a4321",
        "TraceId": "t-1",
    }
    endpoint = body["Endpoints"]["email-jane"]
    assert endpoint["ChannelType"] == "EMAIL"
    assert endpoint["Address"] == "jane@example.com"
    assert endpoint["EndpointStatus"] == "ACTIVE" and endpoint["OptOut"] == "NONE"
    assert endpoint["Attributes"] == {"plan": ["pro"]}
    assert endpoint["Location"]["Country"] == "DE"
    assert endpoint["User"]["UserAttributes"]["FirstName"] == ["Jane"]
    assert "ApplicationId" not in endpoint and "Id" not in endpoint


def test_journey_body_names_the_journey_and_a_bare_address() -> None:
    body = custom_body(_request(), NOW)
    assert body["JourneyId"] == "j-onboarding" and body["ActivityId"] == "notifyCrm"
    assert body["JourneyRunId"] == "run-20260501"
    assert "CampaignId" not in body and "TraceId" not in body
    assert body["Endpoints"] == {"crm-contact-1842": {"Address": "contact-1842",
                                                      "ChannelType": "CUSTOM"}}
    assert json.loads(encode_body(body)) == body
    assert b": " not in encode_body(body)


def test_body_encoding_keeps_unicode_as_utf8() -> None:
    body = custom_body(_request(content={"data": "Grüße ✓", "delivery_uri": "https://x"}), NOW)
    raw = encode_body(body)
    assert "Grüße ✓".encode() in raw


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://crm.example.com/hooks/lodestar", True),
    ("http://crm.example.com/hooks", True),  # the guard decides on the scheme
    ("arn:aws:lambda:us-east-1:123456789012:function:send", False),
    ("my-function", False),
    (None, False),
    ("  ", False),
])
def test_delivery_target(uri: str | None, ok: bool) -> None:
    target = delivery_target(_request(content={"data": "{}", "delivery_uri": uri}))
    assert isinstance(target, str) is ok
    if not ok:
        assert isinstance(target, TargetRefused) and target.error


def test_screen_and_skip_records() -> None:
    request = _campaign_request()
    assert screen(request) is None
    request["endpoint"]["opt_out"] = "ALL"
    skip = screen(request)
    assert skip is not None and skip.reason is SkipReason.OPT_OUT
    custom, send = skip_records(DeliverySubject.from_send_request(request), skip, NOW)
    assert custom["event_type"] == "_custom.failure"
    assert custom["attributes"]["reject_reason"] == "OPT_OUT"
    assert send["event_type"] == "_campaign.send"
    assert send["attributes"]["campaign_send_status"] == "OPT_OUT"
    inactive = skip_records(DeliverySubject.from_send_request(request),
                            Skip(SkipReason.INACTIVE, "gone"), NOW)
    assert inactive[1]["attributes"]["campaign_send_status"] == "PERMANENT_FAILURE"


def test_outcome_and_refusal_records_for_journeys() -> None:
    subject = DeliverySubject.from_send_request(_request())
    custom, send = outcome_records(subject, accepted(204), NOW, attempts=2)
    assert custom["event_type"] == "_custom.success"
    assert custom["attributes"]["status_code"] == "204"
    assert custom["attributes"]["delivery_type"] == "CUSTOM"
    assert custom["attributes"]["journey_id"] == "j-onboarding"
    assert send["event_type"] == "_journey.send"
    assert send["attributes"]["journey_activity_type"] == "CUSTOM"
    assert send["attributes"]["journey_send_status"] == "SUCCESSFUL"
    failed, _ = outcome_records(subject, from_http_status(503, "HTTP 503"), NOW)
    assert failed["event_type"] == "_custom.failure"
    assert failed["attributes"]["outcome"] == "RETRY"
    refused, rsend = refusal_records(subject, "DESTINATION_REFUSED", "loopback", NOW)
    assert refused["attributes"]["reject_reason"] == "DESTINATION_REFUSED"
    assert rsend["attributes"]["journey_send_status"] == "PERMANENT_FAILURE"


def test_prepare_post_bundles_target_body_and_message_id() -> None:
    post = prepare_post(_request(), NOW)
    assert isinstance(post, WebhookPost)
    assert post.url == "https://crm.example.com/hooks/lodestar"
    assert post.message_id == "m-0f9e8d7c6b5a4321"
    assert json.loads(post.body) == custom_body(_request(), NOW)
    refused = prepare_post(_request(content={"data": "{}", "delivery_uri": "arn:aws:x"}), NOW)
    assert isinstance(refused, TargetRefused) and "Lambda" in refused.error
