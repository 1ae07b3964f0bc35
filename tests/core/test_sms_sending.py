from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.core.delivery_events import DeliverySubject, RecordStatus
from lodestar.core.email_sending import Skip, SkipReason
from lodestar.core.price_table import DEFAULT_PRICES, parse_price_table
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind, accepted
from lodestar.core.sms_parts import SmsEncoding
from lodestar.core.sms_routing import (
    NoRoute,
    NoRouteReason,
    OriginationKind,
    RoutingConfig,
    identity,
)
from lodestar.core.sms_sending import (
    PreparedSms,
    RenderingFailed,
    SmsDefaults,
    final_record_status,
    no_route_records,
    prepare_sms,
    provider_records,
    rendering_failure_records,
    screen,
    skip_records,
    sms_definition,
    unknown_outcome_records,
)
from lodestar.core.topics import Topic

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/sms-minimal.json").read_text())
NOW = 1_777_628_160_000
US_10DLC = identity(OriginationKind.TEN_DLC, "+14155550100")
SENDER = identity(OriginationKind.SENDER_ID, "Lodestar")
DEFAULTS = SmsDefaults(RoutingConfig((US_10DLC, SENDER)))
ENDPOINT: dict[str, Any] = {
    "id": "sms-ana", "channel_type": "SMS", "address": "+14155550199",
    "attributes": {"Plan": ["gold"]}, "metrics": {}, "opt_out": "NONE",
    "endpoint_status": "ACTIVE", "effective_date": NOW, "creation_date": NOW, "cohort_id": 3,
    "user": {"user_id": "u-1", "user_attributes": {"FirstName": ["Ana"]}},
}


def _request(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out.update(changes)
    return out


def _prepared(result: object) -> PreparedSms:
    assert isinstance(result, PreparedSms), result
    return result


def test_content_body_is_sent_as_is_from_the_routed_identity() -> None:
    prepared = _prepared(prepare_sms(_request(), None, DEFAULTS, NOW))
    assert prepared.message.body == EXAMPLE["content"]["body"]
    assert prepared.message.to == "+14155550199"
    assert prepared.message.origination == "+14155550100"
    assert prepared.message.origination_kind is OriginationKind.TEN_DLC
    assert prepared.message.message_id == EXAMPLE["message_id"]
    assert prepared.message.message_type == "TRANSACTIONAL"
    assert prepared.country == "US" and prepared.parts.count == 1
    assert prepared.price_in_millicents_usd == DEFAULT_PRICES.price("SMS", "US", 1)


def test_template_body_rendered_against_the_endpoint_and_overlaid_by_content() -> None:
    template = {"Body": "Hi {{User.UserAttributes.FirstName.[0]}}, {{Attributes.Plan.[0]}} "
                        "code {{Code}} ({{ChannelType}})",
                "DefaultSubstitutions": '{"Code": "NONE"}'}
    request = _request(content=None, endpoint=ENDPOINT)
    prepared = _prepared(prepare_sms(request, template, DEFAULTS, NOW))
    assert prepared.message.body == "Hi Ana, gold code NONE (SMS)"
    request["substitutions"] = {"Code": ["X9"]}
    assert _prepared(prepare_sms(request, template, DEFAULTS, NOW)).message.body == (
        "Hi Ana, gold code X9 (SMS)")
    request["content"] = {"body": "Override for {{User.UserAttributes.FirstName.[0]}}"}
    assert _prepared(prepare_sms(request, template, DEFAULTS, NOW)).message.body == (
        "Override for Ana")
    assert sms_definition({"Body": "a", "tags": {"x": "y"}}, {"body": None}) == {"Body": "a"}


def test_a_bare_address_renders_its_channel_type_as_sms() -> None:
    request = _request(content={"body": "{{Address}} on {{ChannelType}}"})
    assert _prepared(prepare_sms(request, None, DEFAULTS, NOW)).message.body == (
        "+14155550199 on SMS")


def test_parts_encoding_and_price() -> None:
    long_text = "x" * 161  # two GSM-7 parts
    prepared = _prepared(prepare_sms(_request(content={"body": long_text}), None, DEFAULTS, NOW))
    assert prepared.parts.count == 2 and prepared.parts.encoding is SmsEncoding.GSM7
    assert prepared.price_in_millicents_usd == 2 * DEFAULT_PRICES.price("SMS", "US", 1)
    japanese = "こんにちは" * 15  # 75 UCS-2 units: two parts
    table = parse_price_table({"SMS": {"countries": {"JP": 7000}}})
    defaults = SmsDefaults(DEFAULTS.routing, table)
    prepared = _prepared(prepare_sms(
        _request(address="+819012345678", content={"body": japanese}), None, defaults, NOW))
    assert prepared.parts.encoding is SmsEncoding.UCS2 and prepared.parts.count == 2
    assert prepared.country == "JP" and prepared.message.origination == "Lodestar"
    assert prepared.price_in_millicents_usd == 14_000


def test_request_level_identity_and_message_type() -> None:
    other = identity(OriginationKind.TEN_DLC, "+14155550111")
    defaults = SmsDefaults(RoutingConfig((US_10DLC, other)), message_type="PROMOTIONAL")
    request = _request(content={"body": "hi", "origination_number": "+14155550111",
                                "entity_id": "E1", "template_id": "T1"})
    prepared = _prepared(prepare_sms(request, None, defaults, NOW))
    assert prepared.message.origination == "+14155550111"
    assert prepared.message.message_type == "PROMOTIONAL"
    assert (prepared.message.entity_id, prepared.message.template_id) == ("E1", "T1")
    request["content"]["message_type"] = "TRANSACTIONAL"
    assert _prepared(prepare_sms(request, None, defaults, NOW)).message.message_type == (
        "TRANSACTIONAL")


@pytest.mark.parametrize(("content", "template", "expected"), [
    (None, None, "MISSING_PART"),  # nothing to render
    ({"body": "{{#if}}"}, None, "template"),  # does not compile
    ({"body": "{{unknownHelper 1}}"}, None, "Body"),
    ({"body": "{{Attributes.Missing}}  "}, None, "rendered empty"),
    ({"body": "y" * 1601}, None, "PART_TOO_LONG"),
])
def test_rendering_failures_are_values(content: Any, template: Any, expected: str) -> None:
    result = prepare_sms(_request(content=content), template, DEFAULTS, NOW)
    assert isinstance(result, RenderingFailed), result
    assert expected in result.error


def test_no_route_comes_before_rendering() -> None:
    defaults = SmsDefaults(RoutingConfig((SENDER,)))  # the US takes no sender ids
    result = prepare_sms(_request(content={"body": "{{#if}}"}), None, defaults, NOW)
    assert isinstance(result, NoRoute) and result.reason is NoRouteReason.NO_IDENTITY


def test_screen_reuses_the_email_rules() -> None:
    assert screen(_request(endpoint=ENDPOINT)) is None
    skip = screen(_request(endpoint={**ENDPOINT, "opt_out": "ALL"}))
    assert skip is not None and skip.reason is SkipReason.OPT_OUT
    skip = screen(_request(endpoint={**ENDPOINT, "endpoint_status": "INACTIVE"}))
    assert skip is not None and skip.reason is SkipReason.INACTIVE


# -- records ---------------------------------------------------------------------------


def _subject(**changes: Any) -> DeliverySubject:
    return DeliverySubject.from_send_request(_request(**changes))


def _encodes(records: list[dict[str, Any]]) -> None:
    codec = AvroCodec.default()
    for record in records:
        codec.encode(Topic.DELIVERIES, record)


def test_skip_records() -> None:
    [optout] = skip_records(_subject(), Skip(SkipReason.OPT_OUT, "opted out"), "+14155550199",
                            NOW)
    assert optout["event_type"] == "_SMS.OPTOUT"
    assert optout["attributes"]["record_status"] == "OPTED_OUT"
    assert optout["attributes"]["skip_reason"] == "OPT_OUT"
    assert optout["metrics"] == {"price_in_millicents_usd": 0.0}
    [inactive] = skip_records(_subject(), Skip(SkipReason.INACTIVE, "inactive"), "+1", NOW)
    assert inactive["event_type"] == "_SMS.FAILURE"
    assert inactive["attributes"]["record_status"] == "UNREACHABLE"
    _encodes([optout, inactive])


def test_no_route_and_rendering_failure_records() -> None:
    no_route = NoRoute(NoRouteReason.COUNTRY_BLOCKED, "blocked", "CN")
    [record] = no_route_records(_subject(), no_route, "+8613800138000", NOW)
    assert record["event_type"] == "_SMS.FAILURE"
    attrs = record["attributes"]
    assert (attrs["record_status"], attrs["iso_country_code"], attrs["route_failure"]) == (
        "BLOCKED", "CN", "COUNTRY_BLOCKED")
    [failed] = rendering_failure_records(_subject(), "RENDER_ERROR: Body: boom", "+1", NOW,
                                         "PROMOTIONAL")
    assert failed["event_type"] == "_SMS.FAILURE"
    assert failed["attributes"]["record_status"] == "INVALID_MESSAGE"
    assert failed["attributes"]["error_message"] == "RENDER_ERROR: Body: boom"
    assert failed["attributes"]["message_type"] == "Promotional"
    _encodes([record, failed])


def test_provider_records_success_carries_price_parts_and_numbers() -> None:
    prepared = _prepared(prepare_sms(_request(content={"body": "z" * 200}), None, DEFAULTS, NOW))
    subject = _subject(source="CAMPAIGN", campaign_id="c1", treatment_id="0", run_id="r1")
    [record] = provider_records(subject, prepared, accepted(201, "SM123"), NOW, attempts=2)
    assert record["event_type"] == "_SMS.SUCCESS"
    attrs = record["attributes"]
    assert attrs["record_status"] == "SUCCESSFUL"
    assert attrs["origination_phone_number"] == "+14155550100"
    assert attrs["destination_phone_number"] == "+14155550199"
    assert attrs["iso_country_code"] == "US"
    assert attrs["number_of_message_parts"] == "2"
    assert attrs["sender_request_id"] == "SM123"
    assert attrs["campaign_id"] == "c1" and attrs["attempts"] == "2"
    assert attrs["message_type"] == "Transactional"
    assert record["metrics"]["price_in_millicents_usd"] == prepared.price_in_millicents_usd > 0
    _encodes([record])


@pytest.mark.parametrize(("outcome", "event", "status"), [
    (ProviderOutcome(ProviderOutcomeKind.PERMANENT, 400, "x", record_status="OPTED_OUT"),
     "_SMS.OPTOUT", "OPTED_OUT"),
    (ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, 400, "x"), "_SMS.FAILURE", "INVALID"),
    (ProviderOutcome(ProviderOutcomeKind.PERMANENT, 400, "x", record_status="BLOCKED"),
     "_SMS.FAILURE", "BLOCKED"),
    (ProviderOutcome(ProviderOutcomeKind.RETRY, 503, "x"), "_SMS.FAILURE", "UNKNOWN"),
    (ProviderOutcome(ProviderOutcomeKind.PERMANENT, 401, "x", record_status="WEIRD"),
     "_SMS.FAILURE", "UNKNOWN"),
])
def test_provider_failure_records(outcome: ProviderOutcome, event: str, status: str) -> None:
    prepared = _prepared(prepare_sms(_request(), None, DEFAULTS, NOW))
    assert final_record_status(outcome) is RecordStatus(status)
    [record] = provider_records(_subject(), prepared, outcome, NOW)
    assert record["event_type"] == event
    assert record["attributes"]["record_status"] == status
    assert record["attributes"]["status_code"] == str(outcome.status_code)
    assert record["metrics"]["price_in_millicents_usd"] == 0.0
    _encodes([record])


def test_unknown_outcome_is_buffered() -> None:
    [record] = unknown_outcome_records(_subject(), "+14155550199", NOW)
    assert record["event_type"] == "_SMS.BUFFERED"
    assert record["attributes"]["record_status"] == "PENDING"
    assert record["attributes"]["send_status"] == "UNKNOWN"
    _encodes([record])
