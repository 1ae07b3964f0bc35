"""SMS delivery receipts (Twilio status callbacks, a generic provider's receipts) as
delivery records.

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
Twilio repeats yields the same event.

A generic HTTP provider (``channels.sms.GenericHttpProvider``) reports delivery in
its own shape; ``ReceiptRules`` (the ``receipt`` object of its configuration) say
where a receipt holds the status, the error code and the message ids, which statuses
are final, and the token that proves a receipt comes from the provider.
``read_generic_receipt`` reads one receipt and ``generic_receipt_record`` turns a
final one into the same ``_SMS.*`` record. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
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
    if status == "delivered":
        record_status = RecordStatus.DELIVERED
    else:
        record_status = RECEIPT_ERRORS.get(form.get("ErrorCode") or "", RecordStatus.UNKNOWN)
    return _receipt(app_id, message_id, stored, now_ms, record_status, status,
                    provider_id=form.get("MessageSid") or form.get("SmsSid"),
                    error_code=form.get("ErrorCode") or None, to=form.get("To"),
                    origination=form.get("From"), parts=form.get("NumSegments"))


def _receipt(app_id: str, message_id: str, stored: Sequence[Mapping[str, Any]], now_ms: int,
             record_status: RecordStatus, status: str, *, provider_id: str | None,
             error_code: str | None, to: str | None = None, origination: str | None = None,
             parts: str | None = None) -> Record:
    """The ``_SMS.*`` record of a final receipt about ``message_id``: the send's subject
    and attributes (from its ``stored`` records) with the receipt's status."""
    sent = _sent_record(stored)
    sent_attributes = dict((sent or {}).get("attributes") or {})
    subject = DeliverySubject.of_receipt(app_id, message_id, Channel.SMS, sent,
                                         _OUTCOME_ATTRIBUTES)
    count = sent_attributes.get("number_of_message_parts") or parts or "0"
    record = sms_outcome(
        subject, now_ms,
        record_status=record_status,
        destination_phone_number=to or sent_attributes.get("destination_phone_number", ""),
        origination_phone_number=origination or sent_attributes.get(
            "origination_phone_number"),
        number_of_message_parts=int(count) if str(count).isdigit() else 0,
        iso_country_code=sent_attributes.get("iso_country_code"),
        message_type=sent_attributes.get("message_type"),
        sender_request_id=provider_id,
        provider_event_id=f"{provider_id}:{status}",
    )
    record["attributes"]["provider_status"] = status
    if error_code:
        record["attributes"]["provider_error_code"] = error_code
    return record


# -- a generic provider's receipts -------------------------------------------------------


class ReceiptEnding(StrEnum):
    """What a receipt's status says about the message."""

    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    INTERIM = "INTERIM"
    """Not final (queued, sent, …), or a status the rules do not name: no record."""


@dataclass(frozen=True)
class ReceiptRules:
    """Where a generic provider's delivery receipt holds what Lodestar needs.

    Paths are dotted (``data.status``, list items by index) into the receipt: a JSON
    object, or the flat fields of a form or query string. Status values are matched
    without regard to case.
    """

    token: str = field(repr=False)
    """Secret the receipt URL carries as ``?t=``: only the provider knows it."""
    status_path: str = "status"
    delivered: frozenset[str] = frozenset({"delivered"})
    failed: frozenset[str] = frozenset({"failed", "undelivered", "rejected", "expired"})
    error_code_path: str | None = "error_code"
    error_statuses: Mapping[str, RecordStatus] = field(default_factory=dict)
    """Provider error code → Pinpoint ``record_status`` of a failed message (else UNKNOWN)."""
    message_id_path: str | None = "message_id"
    """Where the receipt echoes Lodestar's message id (the send's ``message_id`` field)."""
    provider_id_path: str | None = "id"
    """Where the receipt names the provider's own message id (the send answer's id)."""


@dataclass(frozen=True)
class GenericReceipt:
    """One receipt, read with ``ReceiptRules``."""

    ending: ReceiptEnding
    status: str
    error_code: str | None = None
    message_id: str | None = None
    provider_id: str | None = None


_MIN_TOKEN = 16
_RULE_KEYS = frozenset({"token", "status_path", "delivered", "failed", "error_code_path",
                        "error_statuses", "message_id_path", "provider_id_path"})


def receipt_rules_from_mapping(data: object) -> ReceiptRules:
    """``ReceiptRules`` from the ``receipt`` object of the generic provider's configuration;
    ``ValueError`` naming the field (``receipt.<name>``) when malformed."""
    if not isinstance(data, Mapping):
        raise ValueError("receipt: a JSON object")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise ValueError(f"receipt: unknown field(s) {sorted(unknown)}; "
                         f"expected {sorted(_RULE_KEYS)}")
    token = data.get("token")
    if not isinstance(token, str) or len(token) < _MIN_TOKEN or not token.isascii() \
            or not token.isalnum():
        raise ValueError(f"receipt.token: at least {_MIN_TOKEN} letters and digits (it goes "
                         "in the receipt URL as ?t=)")
    kwargs: dict[str, Any] = {"token": token}
    for name in ("status_path", "error_code_path", "message_id_path", "provider_id_path"):
        if name in data:
            value = data[name]
            if (value is None and name != "status_path") or (isinstance(value, str) and value):
                kwargs[name] = value
            else:
                raise ValueError(f"receipt.{name}: a dotted path"
                                 + ("" if name == "status_path" else " or null"))
    for name in ("delivered", "failed"):
        if name in data:
            values = data[name]
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, str) and v for v in values):
                raise ValueError(f"receipt.{name}: a non-empty list of status values")
            kwargs[name] = frozenset(v.lower() for v in values)
    if kwargs.get("delivered", ReceiptRules.delivered) & kwargs.get("failed",
                                                                    ReceiptRules.failed):
        raise ValueError("receipt: a status cannot be both delivered and failed")
    statuses = data.get("error_statuses", {})
    if not isinstance(statuses, Mapping):
        raise ValueError("receipt.error_statuses: an object of error code → record_status")
    known = {s.value for s in RecordStatus}
    for code, status in statuses.items():
        if status not in known:
            raise ValueError(f"receipt.error_statuses.{code}: {status!r} is not a "
                             f"record_status ({', '.join(sorted(known))})")
    kwargs["error_statuses"] = {str(c): RecordStatus(s) for c, s in statuses.items()}
    return ReceiptRules(**kwargs)


def value_at(data: Any, path: str | None) -> str | None:
    """The scalar at a dotted ``path`` (``a.0.b``) as text, or None."""
    if not path:
        return None
    node = data
    for step in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(step)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    if node is None or isinstance(node, Mapping | list):
        return None
    return str(node)


def read_generic_receipt(body: Mapping[str, Any], rules: ReceiptRules) -> GenericReceipt:
    """What one receipt says, as ``rules`` read it."""
    status = (value_at(body, rules.status_path) or "").strip().lower()
    ending = (ReceiptEnding.DELIVERED if status in rules.delivered
              else ReceiptEnding.FAILED if status in rules.failed else ReceiptEnding.INTERIM)
    return GenericReceipt(ending, status, value_at(body, rules.error_code_path),
                          value_at(body, rules.message_id_path),
                          value_at(body, rules.provider_id_path))


def generic_receipt_record(app_id: str, message_id: str, receipt: GenericReceipt,
                           rules: ReceiptRules, stored: Sequence[Mapping[str, Any]],
                           now_ms: int) -> Record | None:
    """The ``_SMS.*`` record of a generic provider's final receipt, or None (interim)."""
    if receipt.ending is ReceiptEnding.INTERIM:
        return None
    record_status = (RecordStatus.DELIVERED if receipt.ending is ReceiptEnding.DELIVERED
                     else rules.error_statuses.get(receipt.error_code or "",
                                                   RecordStatus.UNKNOWN))
    return _receipt(app_id, message_id, stored, now_ms, record_status, receipt.status,
                    provider_id=receipt.provider_id or message_id,
                    error_code=receipt.error_code)
