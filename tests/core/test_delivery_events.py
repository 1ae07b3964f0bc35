"""Delivery records (lodestar.core.delivery_events) against schemas/delivery.avsc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lodestar.contracts.codec import AvroCodec
from lodestar.core import delivery_events as de
from lodestar.core.delivery_events import Channel, DeliverySubject, EventType, RecordStatus
from lodestar.core.topics import Topic

CODEC = AvroCodec.default()
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "delivery.avsc").read_text()
)
FIELDS = {f["name"] for f in SCHEMA["fields"]}
TS = 1_777_628_163_000

CAMPAIGN = DeliverySubject(
    app_id="app-1", message_id="m-3b9f1d2c7a6e5f40", channel=Channel.EMAIL,
    endpoint_id="email-jane", user_id="user-1842", campaign_id="c1",
    campaign_activity_id="act-1", treatment_id="0",
    context={"utm_campaign": "spring", "campaign_id": "spoofed"},
)
JOURNEY_PUSH = DeliverySubject(
    app_id="app-1", message_id="m-d41d8cd98f00b204", channel=Channel.PUSH,
    endpoint_id="device-1", journey_id="j-onboarding", journey_activity_id="thankYouPush",
    journey_run_id="run-20260501",
)
RAW_SMS = DeliverySubject(app_id="app-1", message_id="m-8c1e5a0f2b7d4936", channel=Channel.SMS)


def roundtrip(record: dict[str, Any]) -> dict[str, Any]:
    assert set(record) == FIELDS
    decoded = CODEC.decode(Topic.DELIVERIES, CODEC.encode(Topic.DELIVERIES, record))
    assert decoded == record
    return decoded


def test_event_types_are_pinpoints() -> None:
    values = {t.value for t in EventType}
    for name in ("send", "delivered", "rejected", "hardbounce", "softbounce", "complaint",
                 "open", "click", "unsubscribe", "rendering_failure"):
        assert f"_email.{name}" in values
    for name in ("BUFFERED", "SUCCESS", "FAILURE", "OPTOUT"):
        assert f"_SMS.{name}" in values
    assert {"_campaign.send", "_journey.send"} <= values
    assert {c.value for c in Channel} == set(
        next(f for f in SCHEMA["fields"] if f["name"] == "channel")["type"]["symbols"]
    )


def test_email_send_from_campaign() -> None:
    record = roundtrip(de.email_send(CAMPAIGN, TS))
    assert record["event_type"] == "_email.send"
    assert record["event_id"] == "m-3b9f1d2c7a6e5f40:_email.send"
    assert record["attributes"] == {
        "utm_campaign": "spring", "campaign_id": "c1", "campaign_activity_id": "act-1",
        "treatment_id": "0",
    }
    assert record["channel"] == "EMAIL" and record["timestamp"] == TS


@pytest.mark.parametrize(
    ("kind", "code", "stage", "event"),
    [
        ("DELIVERED", 250, "data", "_email.delivered"),
        ("SOFT_BOUNCE", 451, "rcpt", "_email.softbounce"),
        ("SOFT_BOUNCE", None, "connect", "_email.softbounce"),
        ("HARD_BOUNCE", 550, "rcpt", "_email.hardbounce"),
        ("HARD_BOUNCE", 554, "data", "_email.hardbounce"),
        ("HARD_BOUNCE", 535, "auth", "_email.rejected"),
        ("HARD_BOUNCE", 553, "mail", "_email.rejected"),
    ],
)
def test_smtp_outcomes(kind: str, code: int | None, stage: str, event: str) -> None:
    record = roundtrip(
        de.email_smtp_outcome(CAMPAIGN, TS, kind=kind, code=code, message="text", stage=stage)
    )
    assert record["event_type"] == event
    assert record["attributes"]["smtp_stage"] == stage
    assert record["attributes"].get("smtp_status_code") == (None if code is None else str(code))


def test_smtp_outcome_accepts_str_enums() -> None:
    from enum import StrEnum

    class Kind(StrEnum):
        DELIVERED = "DELIVERED"

    assert de.email_smtp_event_type(Kind.DELIVERED, "data") is EventType.EMAIL_DELIVERED
    with pytest.raises(ValueError):
        de.email_smtp_event_type("BOUNCED", "data")


def test_engagement_events() -> None:
    click = roundtrip(de.email_click(CAMPAIGN, TS, "https://shop.example.com/x", "hit-1"))
    assert click["attributes"]["feedback"] == "https://shop.example.com/x"
    assert click["event_id"].startswith("m-3b9f1d2c7a6e5f40:_email.click:")
    again = de.email_click(CAMPAIGN, TS, "https://shop.example.com/x", "hit-1")
    other = de.email_click(CAMPAIGN, TS, "https://shop.example.com/x", "hit-2")
    assert again["event_id"] == click["event_id"] != other["event_id"]
    roundtrip(de.email_open(CAMPAIGN, TS, "hit-3"))
    unsub = roundtrip(de.email_unsubscribe(CAMPAIGN, TS))
    assert "feedback" not in unsub["attributes"]
    roundtrip(de.email_rendering_failure(CAMPAIGN, TS, "missing partial"))
    complaint = roundtrip(de.email_feedback(CAMPAIGN, TS, EventType.EMAIL_COMPLAINT, "fb-1",
                                            "abuse"))
    assert complaint["event_type"] == "_email.complaint"
    with pytest.raises(ValueError):
        de.email_feedback(CAMPAIGN, TS, EventType.EMAIL_OPEN)


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (RecordStatus.DELIVERED, "_SMS.SUCCESS"),
        (RecordStatus.SUCCESSFUL, "_SMS.SUCCESS"),
        (RecordStatus.PENDING, "_SMS.BUFFERED"),
        (RecordStatus.OPTED_OUT, "_SMS.OPTOUT"),
        (RecordStatus.CARRIER_BLOCKED, "_SMS.FAILURE"),
        ("UNREACHABLE", "_SMS.FAILURE"),
    ],
)
def test_sms_outcomes(status: RecordStatus | str, event: str) -> None:
    record = roundtrip(de.sms_outcome(
        RAW_SMS, TS, record_status=status, destination_phone_number="+14155550199",
        number_of_message_parts=2, origination_phone_number="+18445550100",
        iso_country_code="US", message_type="TRANSACTIONAL", price_in_millicents_usd=581,
        sender_request_id="req-9",
    ))
    assert record["event_type"] == event
    assert record["endpoint_id"] is None
    assert record["metrics"] == {"price_in_millicents_usd": 581.0}
    attrs = record["attributes"]
    assert attrs["record_status"] == str(status)
    assert attrs["number_of_message_parts"] == "2"
    assert attrs["message_type"] == "Transactional"
    assert attrs["message_id"] == RAW_SMS.message_id


def test_sms_without_price_has_no_metric() -> None:
    record = roundtrip(de.sms_outcome(RAW_SMS, TS, record_status="DELIVERED",
                                      destination_phone_number="+1", number_of_message_parts=1))
    assert record["metrics"] == {}


def test_campaign_and_journey_send() -> None:
    push_campaign = DeliverySubject(app_id="a", message_id="m-1", channel=Channel.PUSH,
                                    campaign_id="c", campaign_activity_id="r", treatment_id="1")
    record = roundtrip(de.campaign_send(push_campaign, TS, delivery_type="GCM",
                                        send_status="SUCCESSFUL"))
    assert record["attributes"]["delivery_type"] == "GCM"
    assert record["attributes"]["campaign_send_status"] == "SUCCESSFUL"
    journey = roundtrip(de.journey_send(JOURNEY_PUSH, TS, delivery_type="APNS_SANDBOX",
                                        send_status="SUCCESS"))
    assert journey["attributes"] == {
        "journey_id": "j-onboarding", "journey_activity_id": "thankYouPush",
        "journey_run_id": "run-20260501", "journey_activity_type": "PUSH",
        "journey_send_status": "SUCCESS", "delivery_type": "APNS_SANDBOX",
    }
    assert journey["event_id"] == "m-d41d8cd98f00b204:_journey.send"
    with pytest.raises(ValueError):
        de.campaign_send(JOURNEY_PUSH, TS, delivery_type="GCM", send_status="SUCCESSFUL")
    with pytest.raises(ValueError):
        de.journey_send(CAMPAIGN, TS, delivery_type="EMAIL", send_status="SUCCESS")


@pytest.mark.parametrize("channel", [Channel.PUSH, Channel.VOICE, Channel.CUSTOM])
def test_channel_outcomes(channel: Channel) -> None:
    subject = DeliverySubject(app_id="a", message_id="m-2", channel=channel, endpoint_id="e")
    ok = roundtrip(de.channel_outcome(subject, TS, success=True, delivery_type=channel.value,
                                      status_code=200))
    bad = roundtrip(de.channel_outcome(subject, TS, success=False, delivery_type=channel.value,
                                       status_code=410, status_message="Unregistered"))
    prefix = f"_{channel.value.lower()}."
    assert ok["event_type"] == prefix + "success"
    assert bad["event_type"] == prefix + "failure"
    assert bad["attributes"]["status_code"] == "410"


def test_channel_outcome_refuses_email() -> None:
    with pytest.raises(ValueError):
        de.channel_outcome(CAMPAIGN, TS, success=True, delivery_type="EMAIL")


def test_subject_from_send_request_example() -> None:
    examples = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "send_request"
    for path in sorted(examples.glob("*.json")):
        request = json.loads(path.read_text())
        subject = DeliverySubject.from_send_request(request)
        record = roundtrip(de.delivery_record(subject, EventType.CAMPAIGN_SEND
                                              if subject.is_campaign else EventType.EMAIL_SEND,
                                              TS))
        assert record["message_id"] == request["message_id"]
        if request["source"] == "JOURNEY":
            assert record["attributes"]["journey_id"] == request["journey_id"]
            assert record["attributes"].get("journey_run_id") == request.get("run_id")
        if request["source"] == "CAMPAIGN":
            assert record["attributes"]["campaign_id"] == request["campaign_id"]


@given(
    st.text(min_size=1, max_size=30),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=5),
    st.none() | st.text(max_size=30),
    st.integers(min_value=0, max_value=2**62),
)
def test_any_subject_encodes(message_id: str, context: dict[str, str],
                             discriminator: str | None, ts: int) -> None:
    subject = DeliverySubject(app_id="a", message_id=message_id, channel=Channel.EMAIL,
                              context=context)
    record = de.delivery_record(subject, EventType.EMAIL_OPEN, ts, discriminator=discriminator)
    CODEC.encode(Topic.DELIVERIES, record)
