"""Twilio call-status callbacks as ``_voice.*`` delivery records."""

from __future__ import annotations

from typing import Any

import pytest

from lodestar.core.delivery_events import Channel, DeliverySubject, EventType
from lodestar.core.provider_outcome import accepted
from lodestar.core.voice_message import outcome_records
from lodestar.core.voice_receipts import receipt_record

APP, MID, SID = "app-1", "m-voice-1", "CA" + "7" * 32
NOW = 1_780_000_000_000


def _stored() -> list[dict[str, Any]]:
    """What the voice sender stored for a campaign call Twilio queued."""
    subject = DeliverySubject(APP, MID, Channel.VOICE, endpoint_id="ep-7", user_id="user-7",
                              campaign_id="cmp-1", campaign_activity_id="run-1",
                              treatment_id="0", context={"origin": "reminder"})
    return outcome_records(subject, accepted(201, SID, "call queued"), NOW - 60_000)


def _form(status: str, **more: str) -> dict[str, str]:
    return {"CallSid": SID, "AccountSid": "AC" + "0" * 32, "CallStatus": status,
            "To": "+14155550199", "From": "+14155550100", **more}


def test_a_completed_call_is_a_success_of_the_original_send() -> None:
    stored = _stored()
    record = receipt_record(APP, MID, _form("completed", CallDuration="37"), stored, NOW)
    assert record is not None
    assert record["event_type"] == EventType.VOICE_SUCCESS.value
    assert (record["app_id"], record["message_id"], record["endpoint_id"], record["user_id"],
            record["channel"]) == (APP, MID, "ep-7", "user-7", "VOICE")
    attrs = record["attributes"]
    assert (attrs["campaign_id"], attrs["campaign_activity_id"], attrs["treatment_id"]) == (
        "cmp-1", "run-1", "0")
    assert attrs["origin"] == "reminder"  # the send's Context travels along
    assert attrs["call_status"] == "completed" and attrs["provider_message_id"] == SID
    assert attrs["delivery_type"] == "VOICE"
    assert "attempts" not in attrs and "outcome" not in attrs  # the send's, not the call's
    assert record["metrics"] == {"call_duration_seconds": 37.0}
    assert record["timestamp"] == NOW
    # distinct from the sender's own _voice.success, stable when Twilio repeats it
    assert record["event_id"] != stored[0]["event_id"]
    again = receipt_record(APP, MID, _form("completed", CallDuration="37"), stored, NOW + 5)
    assert again is not None and again["event_id"] == record["event_id"]


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_calls_that_did_not_connect_are_failures(status: str) -> None:
    record = receipt_record(APP, MID, _form(status, SipResponseCode="486"), _stored(), NOW)
    assert record is not None
    assert record["event_type"] == EventType.VOICE_FAILURE.value
    assert record["attributes"]["call_status"] == status
    assert record["attributes"]["sip_response_code"] == "486"
    assert record["attributes"]["status_message"]
    assert record["metrics"] == {}


def test_each_ending_has_its_own_event_id() -> None:
    ids = {receipt_record(APP, MID, _form(s), [], NOW)["event_id"]  # type: ignore[index]
           for s in ("completed", "busy", "no-answer", "failed", "canceled")}
    assert len(ids) == 5


@pytest.mark.parametrize("status", ["queued", "initiated", "ringing", "in-progress", "", "x"])
def test_statuses_that_are_not_endings_publish_nothing(status: str) -> None:
    assert receipt_record(APP, MID, _form(status), _stored(), NOW) is None


def test_an_unknown_message_carries_what_the_callback_does() -> None:
    record = receipt_record(APP, MID, _form("Completed", Timestamp="Sat, 28 Nov 2026 17:00:00 "
                                                                   "+0000"), [], NOW)
    assert record is not None
    assert (record["message_id"], record["endpoint_id"]) == (MID, None)
    assert record["attributes"]["destination_phone_number"] == "+14155550199"
    assert record["timestamp"] == 1_795_885_200_000  # Twilio's Timestamp
    bad_time = receipt_record(APP, MID, _form("busy", Timestamp="yesterday"), [], NOW)
    assert bad_time is not None and bad_time["timestamp"] == NOW


def test_a_completed_call_is_priced_per_started_minute_of_its_country() -> None:
    from lodestar.core.price_table import DEFAULT_PRICES, PriceChannel

    us = DEFAULT_PRICES.unit_price(PriceChannel.VOICE, "US")
    jp = DEFAULT_PRICES.unit_price(PriceChannel.VOICE, "JP")
    assert us != jp
    record = receipt_record(APP, MID, _form("completed", CallDuration="61"), _stored(), NOW,
                            DEFAULT_PRICES)
    assert record is not None
    assert record["metrics"] == {"call_duration_seconds": 61.0,
                                 "price_in_millicents_usd": 2 * us}  # two started minutes
    tokyo = receipt_record(APP, MID, _form("completed", CallDuration="60", To="+81312345678"),
                           _stored(), NOW, DEFAULT_PRICES)
    assert tokyo is not None and tokyo["metrics"]["price_in_millicents_usd"] == jp
    busy = receipt_record(APP, MID, _form("busy", CallDuration="0"), _stored(), NOW,
                          DEFAULT_PRICES)
    assert busy is not None and "price_in_millicents_usd" not in busy["metrics"]
