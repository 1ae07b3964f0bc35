"""How a voice call ended (Twilio's call-status callback), as a delivery record. Pure.

The voice sender asks Twilio to report each call's end to
``channels.voice_twilio.status_callback_url(base, app_id, message_id)``
(``StatusCallbackEvent=completed``). ``receipt_record(...)`` turns one report into
a record, or None for a status that is not final (queued, initiated, ringing,
in-progress), which the sender's own ``_voice.success`` (the call was queued) covers.

Pinpoint documents no voice delivery events, so these are Lodestar's, named like
the sender's own voice records (``docs/voice-and-custom.md``):

- ``completed`` (answered, then hung up) → ``_voice.success``;
- ``busy``, ``no-answer``, ``failed``, ``canceled`` → ``_voice.failure``.

Both carry ``delivery_type`` VOICE, ``call_status`` (Twilio's ``CallStatus``),
``provider_message_id`` (the ``CallSid``), ``status_message``, the numbers, and when
Twilio gives them ``answered_by``, ``sip_response_code`` and the metric
``call_duration_seconds``. A completed call with a ``CallDuration`` is priced, when a
price table is given, at the VOICE price of the destination's country per started
minute (``price_in_millicents_usd``; the send itself could not be priced, its
length unknown then). The subject (endpoint, user, campaign or journey, Context)
is the original send's, from the records the sender stored; the event id derives
from the message id, the type and (CallSid, CallStatus), so a repeated callback
yields the same event, distinct from the sender's own ``_voice.success``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any

from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    EventType,
    Record,
    delivery_record,
)
from lodestar.core.price_table import PriceChannel, PriceTable
from lodestar.core.sms_routing import destination_country

DELIVERY_TYPE = "VOICE"

CALL_ENDINGS: Mapping[str, tuple[EventType, str]] = {
    "completed": (EventType.VOICE_SUCCESS, "the call was answered and completed"),
    "busy": (EventType.VOICE_FAILURE, "the line was busy"),
    "no-answer": (EventType.VOICE_FAILURE, "nobody answered the call"),
    "failed": (EventType.VOICE_FAILURE, "the call could not be placed"),
    "canceled": (EventType.VOICE_FAILURE, "the call was canceled before it was answered"),
}
"""Twilio's final ``CallStatus`` values → the record type and its ``status_message``."""

_OUTCOME_ATTRIBUTES = frozenset({
    "delivery_type", "status_code", "status_message", "outcome", "attempts",
    "provider_message_id", "reject_reason", "send_status", "call_status",
    "destination_phone_number", "origination_phone_number", "answered_by",
    "sip_response_code",
})


def _sent_record(stored: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    voice = [r for r in stored if str(r.get("event_type", "")).startswith("_voice.")]
    return next((r for r in voice if r.get("event_type") == EventType.VOICE_SUCCESS.value),
                voice[0] if voice else None)


def _when(form: Mapping[str, str], now_ms: int) -> int:
    """Twilio's ``Timestamp`` (RFC 2822) in epoch ms, else ``now_ms``."""
    raw = form.get("Timestamp")
    if not raw:
        return now_ms
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return now_ms
    if moment.tzinfo is None:
        return now_ms
    return int(moment.timestamp() * 1000)


def call_price(prices: PriceTable, to: str | None, seconds: int) -> float:
    """Millicents USD of a call of ``seconds`` to the number ``to``: the country's VOICE
    price per started minute (the default price when the country is unknown)."""
    country = destination_country(to) if to else None
    return prices.price(PriceChannel.VOICE, country, math.ceil(seconds / 60))


def receipt_record(app_id: str, message_id: str, form: Mapping[str, str],
                   stored: Sequence[Mapping[str, Any]], now_ms: int,
                   prices: PriceTable | None = None) -> Record | None:
    """The ``_voice.success|failure`` record of one call-status callback, or None (the
    call has not ended); priced with ``prices`` when it was completed."""
    status = (form.get("CallStatus") or "").lower()
    ending = CALL_ENDINGS.get(status)
    if ending is None:
        return None
    event_type, message = ending
    subject = DeliverySubject.of_receipt(app_id, message_id, Channel.VOICE,
                                         _sent_record(stored), _OUTCOME_ATTRIBUTES)
    call_sid = form.get("CallSid") or ""
    duration = form.get("CallDuration") or ""
    return delivery_record(
        subject, event_type, _when(form, now_ms),
        {
            "delivery_type": DELIVERY_TYPE,
            "call_status": status,
            "status_message": message,
            "provider_message_id": call_sid or None,
            "destination_phone_number": form.get("To") or None,
            "origination_phone_number": form.get("From") or None,
            "answered_by": form.get("AnsweredBy") or None,
            "sip_response_code": form.get("SipResponseCode") or None,
        },
        metrics=_metrics(status, duration, form.get("To"), prices),
        discriminator=f"{call_sid}:{status}",
    )


def _metrics(status: str, duration: str, to: str | None, prices: PriceTable | None
             ) -> dict[str, float] | None:
    if not duration.isdigit():
        return None
    metrics = {"call_duration_seconds": float(duration)}
    if prices is not None and status == "completed":
        metrics["price_in_millicents_usd"] = call_price(prices, to, int(duration))
    return metrics
