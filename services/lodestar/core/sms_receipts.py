"""SMS delivery receipts (Twilio status callbacks) as delivery records.

The SMS sender asks Twilio to report each message's status to
``channels.sms.status_callback_url(base, app_id, message_id)``; ``receipt_record(...)`` turns
one report into the ``_SMS.*`` record Pinpoint would have published, or None for
the interim statuses (queued, sending, sent, accepted, scheduled), which the
sender's own ``_SMS.SUCCESS`` (record_status SUCCESSFUL) already covers:

- ``delivered`` → ``_SMS.SUCCESS`` with record_status DELIVERED;
- ``undelivered`` / ``failed`` → ``_SMS.FAILURE`` with the record_status of
  Twilio's ``ErrorCode`` (``RECEIPT_ERRORS``; UNKNOWN when unmapped).

The record's subject (endpoint, user, campaign or journey, Context) comes from
the records the sender stored for the message; its event id is derived from the
message id, the type and Twilio's (MessageSid, MessageStatus), so a callback
Twilio repeats yields the same event. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    Record,
    RecordStatus,
    sms_outcome,
)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})

RECEIPT_ERRORS: Mapping[str, RecordStatus] = {
    "30001": RecordStatus.UNKNOWN,            # queue overflow
    "30002": RecordStatus.BLOCKED,            # account suspended
    "30003": RecordStatus.UNREACHABLE,        # unreachable destination handset
    "30004": RecordStatus.BLOCKED,            # message blocked (e.g. by the recipient)
    "30005": RecordStatus.INVALID,            # unknown destination handset
    "30006": RecordStatus.INVALID,            # landline or unreachable carrier
    "30007": RecordStatus.SPAM,               # filtered as spam by the carrier
    "30008": RecordStatus.UNKNOWN,            # unknown error
    "30009": RecordStatus.CARRIER_UNREACHABLE,  # missing segment
    "30010": RecordStatus.MAX_PRICE_EXCEEDED,   # message price exceeds max price
    "30034": RecordStatus.CARRIER_BLOCKED,    # unregistered US A2P 10DLC number
    "21610": RecordStatus.OPTED_OUT,          # the recipient replied STOP
}
"""Twilio's delivery ErrorCodes → Pinpoint's record_status."""

_OUTCOME_ATTRIBUTES = frozenset({
    "record_status", "destination_phone_number", "origination_phone_number",
    "iso_country_code", "number_of_message_parts", "message_type", "sender_request_id",
    "message_id", "origination_identity_kind", "message_encoding", "delivery_status",
    "status_message", "attempts", "status_code", "skip_reason", "error_message",
    "route_failure", "send_status",
})


def _sent_record(stored: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((r for r in stored if str(r.get("event_type", "")).startswith("_SMS.")),
                None)


def receipt_record(app_id: str, message_id: str, form: Mapping[str, str],
                   stored: Sequence[Mapping[str, Any]], now_ms: int) -> Record | None:
    """The ``_SMS.*`` record of one Twilio status callback, or None (interim status)."""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if status not in FINAL_STATUSES:
        return None
    sent = _sent_record(stored)
    sent_attributes = dict((sent or {}).get("attributes") or {})
    if sent is not None:
        subject = DeliverySubject.from_record({**sent, "app_id": app_id, "channel": "SMS"},
                                              message_id=message_id,
                                              outcome_attributes=_OUTCOME_ATTRIBUTES)
    else:
        subject = DeliverySubject(app_id, message_id, Channel.SMS)
    if status == "delivered":
        record_status = RecordStatus.DELIVERED
    else:
        record_status = RECEIPT_ERRORS.get(form.get("ErrorCode") or "", RecordStatus.UNKNOWN)
    parts = sent_attributes.get("number_of_message_parts") or form.get("NumSegments") or "0"
    record = sms_outcome(
        subject, now_ms,
        record_status=record_status,
        destination_phone_number=form.get("To") or sent_attributes.get(
            "destination_phone_number", ""),
        origination_phone_number=form.get("From") or sent_attributes.get(
            "origination_phone_number"),
        number_of_message_parts=int(parts) if str(parts).isdigit() else 0,
        iso_country_code=sent_attributes.get("iso_country_code"),
        message_type=sent_attributes.get("message_type"),
        sender_request_id=form.get("MessageSid") or form.get("SmsSid"),
        provider_event_id=f"{form.get('MessageSid') or form.get('SmsSid')}:{status}",
    )
    record["attributes"]["provider_status"] = status
    if form.get("ErrorCode"):
        record["attributes"]["provider_error_code"] = form["ErrorCode"]
    return record
