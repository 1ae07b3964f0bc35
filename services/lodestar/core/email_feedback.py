"""Bounce, complaint and delivery feedback about sent email, parsed into values (pure).

``parse_feedback(body, now_ms)`` takes the decoded JSON body of a feedback request
(one object, or a list of them) and answers one ``ItemOutcome`` per item, in order:

- ``Accepted``: the item's ``Feedback`` values, one per recipient;
- ``Invalid``: a message saying what is wrong with the item (nothing else is refused);
- ``Confirmation``: an SNS ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation``
  and its ``SubscribeURL`` (the caller does not fetch it; an operator visits it);
- ``Ignored``: a well-formed SES notification of a type that is not feedback
  (``Send``, ``Open``, ``Click``, ``DeliveryDelay`` …), so SNS is not made to retry it.

Accepted shapes:

- SES notifications as SES publishes them through SNS: the SNS envelope
  (``Type: Notification`` with ``Message`` a JSON string), or the SES object itself,
  ``notificationType`` (or event publishing's ``eventType``) ``Bounce``
  (``bounceType`` Permanent / Transient / Undetermined, ``bouncedRecipients``),
  ``Complaint`` (``complainedRecipients``, ``complaintFeedbackType``) or ``Delivery``
  (``delivery.recipients``). Lodestar's message id is read from the original headers
  in ``mail.headers``: ``X-Lodestar-Message-Id``, else a ``Message-ID`` Lodestar made
  (``<id.lodestar@domain>``, not a hashed one).
- The generic form ``{"Type": "Bounce"|"Complaint"|"Delivery", "Address", "MessageId",
  "BounceType": "Permanent"|"Transient"|"Undetermined" (required for bounces),
  "Diagnostic", "Timestamp" (ISO-8601 or epoch ms), "FeedbackId",
  "ComplaintFeedbackType"}``.

Only Permanent bounces are hard bounces (``_email.hardbounce``, suppressed); Transient
and Undetermined ones are soft (``_email.softbounce``, never suppressed). Every
complaint is suppressed. ``feedback_record`` builds the delivery record of one
``Feedback`` about a ``DeliverySubject`` (``feedback_subject`` rebuilds it from the
records the sender stored for the message, when there are any).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum
from typing import Any

from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    EventType,
    Record,
    delivery_record,
    email_feedback,
)
from lodestar.core.timestamps import TimestampError, parse_timestamp

MAX_ITEMS = 500
"""Most items one feedback request may carry."""

LODESTAR_ID_HEADER = "x-lodestar-message-id"
_OWN_MESSAGE_ID = re.compile(r"<([A-Za-z0-9_-]{1,64})\.lodestar@[^>]+>")
_HASHED_LOCAL = re.compile(r"h-[0-9a-f]{40}")
_MAX_TEXT = 1000  # longest diagnostic / detail kept in a record attribute


class SuppressionReason(StrEnum):
    """Why a destination is on an application's suppression list."""

    BOUNCE = "BOUNCE"
    COMPLAINT = "COMPLAINT"
    MANUAL = "MANUAL"


class FeedbackKind(StrEnum):
    HARD_BOUNCE = "HARD_BOUNCE"
    SOFT_BOUNCE = "SOFT_BOUNCE"
    COMPLAINT = "COMPLAINT"
    DELIVERY = "DELIVERY"


class FeedbackSource(StrEnum):
    SES = "SES"
    GENERIC = "GENERIC"


_EVENT_TYPES = {
    FeedbackKind.HARD_BOUNCE: EventType.EMAIL_HARDBOUNCE,
    FeedbackKind.SOFT_BOUNCE: EventType.EMAIL_SOFTBOUNCE,
    FeedbackKind.COMPLAINT: EventType.EMAIL_COMPLAINT,
    FeedbackKind.DELIVERY: EventType.EMAIL_DELIVERED,
}
_SUPPRESS = {FeedbackKind.HARD_BOUNCE: SuppressionReason.BOUNCE,
             FeedbackKind.COMPLAINT: SuppressionReason.COMPLAINT}
_BOUNCE_TYPES = {"permanent": FeedbackKind.HARD_BOUNCE, "transient": FeedbackKind.SOFT_BOUNCE,
                 "undetermined": FeedbackKind.SOFT_BOUNCE}
_SNS_CONFIRMATIONS = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
_FEEDBACK_TYPES = ("Bounce", "Complaint", "Delivery")


@dataclass(frozen=True)
class Feedback:
    """One recipient's bounce, complaint or delivery report."""

    kind: FeedbackKind
    address: str  # normalised (lower-cased)
    timestamp_ms: int
    source: FeedbackSource
    message_id: str | None = None  # Lodestar's, when the feedback carries it
    provider_message_id: str | None = None  # SES's mail.messageId
    feedback_id: str | None = None
    detail: str | None = None  # diagnostic code, complaint type or SMTP response
    bounce_type: str | None = None
    bounce_sub_type: str | None = None
    status: str | None = None  # the DSN status, e.g. 5.1.1
    complaint_type: str | None = None

    @property
    def event_type(self) -> EventType:
        return _EVENT_TYPES[self.kind]

    @property
    def suppression_reason(self) -> SuppressionReason | None:
        """BOUNCE for hard bounces, COMPLAINT for complaints; None: not suppressed."""
        return _SUPPRESS.get(self.kind)


@dataclass(frozen=True)
class Accepted:
    index: int
    feedback: tuple[Feedback, ...]


@dataclass(frozen=True)
class Invalid:
    index: int
    message: str


@dataclass(frozen=True)
class Confirmation:
    index: int
    sns_type: str  # SubscriptionConfirmation or UnsubscribeConfirmation
    subscribe_url: str
    topic_arn: str | None


@dataclass(frozen=True)
class Ignored:
    index: int
    reason: str


ItemOutcome = Accepted | Invalid | Confirmation | Ignored


class _Bad(ValueError):
    """An item is malformed; the message says how."""


def normalise_address(channel: Channel | str, address: str) -> str:
    """The stored form of an address: email lower-cased, other channels as given
    (surrounding white space dropped)."""
    stripped = address.strip()
    return stripped.lower() if Channel(channel) is Channel.EMAIL else stripped


def email_address(value: object) -> str | None:
    """The normalised bare address of ``value`` (``a@b`` or ``Name <a@b>``), or None."""
    if not isinstance(value, str):
        return None
    _, addr = parseaddr(value.strip())
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        return None
    return normalise_address(Channel.EMAIL, addr)


def parse_feedback(body: object, now_ms: int) -> list[ItemOutcome]:
    """One outcome per item of ``body`` (an object, or a list of objects)."""
    items = body if isinstance(body, list) else [body]
    return [_item(i, item, now_ms) for i, item in enumerate(items)]


def _item(index: int, item: object, now_ms: int) -> ItemOutcome:
    try:
        if not isinstance(item, dict):
            raise _Bad("is not a JSON object")
        kind = item.get("Type")
        if kind == "Notification":
            return _sns_notification(index, item, now_ms)
        if kind in _SNS_CONFIRMATIONS:
            url = item.get("SubscribeURL")
            if not isinstance(url, str) or not url.startswith("https://"):
                raise _Bad(f"is an SNS {kind} without an https SubscribeURL")
            arn = item.get("TopicArn")
            return Confirmation(index, kind, url, arn if isinstance(arn, str) else None)
        if kind in _FEEDBACK_TYPES:
            return Accepted(index, (_generic(item, now_ms),))
        if kind is not None:
            raise _Bad(f"has Type {kind!r}, which is neither an SNS message type (Notification, "
                       "SubscriptionConfirmation, UnsubscribeConfirmation) nor a feedback type "
                       "(Bounce, Complaint, Delivery)")
        if "notificationType" in item or "eventType" in item:
            return _ses(index, item, now_ms, None)
        raise _Bad("is neither an SNS message, an SES notification (notificationType) nor "
                   "generic feedback (Type Bounce, Complaint or Delivery)")
    except _Bad as exc:
        return Invalid(index, f"Item {index} {exc}.")


def _sns_notification(index: int, envelope: dict[str, Any], now_ms: int) -> ItemOutcome:
    message = envelope.get("Message")
    if not isinstance(message, str):
        raise _Bad("is an SNS Notification whose Message is not a string")
    try:
        notification = json.loads(message)
    except ValueError:
        raise _Bad("is an SNS Notification whose Message is not JSON") from None
    if not isinstance(notification, dict):
        raise _Bad("is an SNS Notification whose Message is not a JSON object")
    sns_id = envelope.get("MessageId")
    return _ses(index, notification, now_ms, sns_id if isinstance(sns_id, str) else None)


# -- SES ------------------------------------------------------------------------------


def _ses(index: int, note: dict[str, Any], now_ms: int, sns_id: str | None) -> ItemOutcome:
    kind = note.get("notificationType", note.get("eventType"))
    if not isinstance(kind, str):
        raise _Bad("has a notificationType that is not a string")
    if kind not in _FEEDBACK_TYPES:
        return Ignored(index, f"SES notification type {kind!r} is not bounce, complaint or "
                              "delivery feedback")
    mail = note.get("mail")
    if not isinstance(mail, dict):
        raise _Bad(f"is an SES {kind} notification without a mail object")
    message_id = lodestar_message_id(mail)
    provider_id = _opt_str(mail, "messageId", "mail.messageId")
    part = note.get(kind.lower())
    if not isinstance(part, dict):
        raise _Bad(f"is an SES {kind} notification without a {kind.lower()} object")
    when = _ses_time(part, mail, now_ms, kind.lower())

    def report(feedback_kind: FeedbackKind, address: str, **more: Any) -> Feedback:
        return Feedback(feedback_kind, address, when, FeedbackSource.SES, message_id=message_id,
                        provider_message_id=provider_id, **more)

    if kind == "Bounce":
        bounce_type = _opt_str(part, "bounceType", "bounce.bounceType")
        feedback_kind = _BOUNCE_TYPES.get((bounce_type or "").lower())
        if feedback_kind is None:
            raise _Bad(f"has bounce.bounceType {bounce_type!r}; expected Permanent, Transient "
                       "or Undetermined")
        feedback_id = _opt_str(part, "feedbackId", "bounce.feedbackId")
        sub_type = _opt_str(part, "bounceSubType", "bounce.bounceSubType")
        out = []
        for i, rcpt in enumerate(_recipients(part, "bouncedRecipients", "bounce")):
            where = f"bounce.bouncedRecipients[{i}]"
            out.append(report(
                feedback_kind, _address_of(rcpt.get("emailAddress"), f"{where}.emailAddress"),
                feedback_id=feedback_id, bounce_type=bounce_type,
                bounce_sub_type=sub_type, status=_opt_str(rcpt, "status", f"{where}.status"),
                detail=_clip(_opt_str(rcpt, "diagnosticCode", f"{where}.diagnosticCode"))))
        return Accepted(index, tuple(out))
    if kind == "Complaint":
        feedback_id = _opt_str(part, "feedbackId", "complaint.feedbackId")
        complaint_type = _opt_str(part, "complaintFeedbackType", "complaint.complaintFeedbackType")
        out = [report(FeedbackKind.COMPLAINT,
                      _address_of(r.get("emailAddress"),
                                  f"complaint.complainedRecipients[{i}].emailAddress"),
                      feedback_id=feedback_id, complaint_type=complaint_type,
                      detail=complaint_type)
               for i, r in enumerate(_recipients(part, "complainedRecipients", "complaint"))]
        return Accepted(index, tuple(out))
    recipients = part.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        raise _Bad("has no delivery.recipients (a non-empty list of addresses)")
    response = _clip(_opt_str(part, "smtpResponse", "delivery.smtpResponse"))
    return Accepted(index, tuple(
        report(FeedbackKind.DELIVERY, _address_of(r, f"delivery.recipients[{i}]"),
               feedback_id=sns_id, detail=response)
        for i, r in enumerate(recipients)))


def lodestar_message_id(mail: Mapping[str, Any]) -> str | None:
    """Lodestar's message id from an SES ``mail`` object's original headers: the
    ``X-Lodestar-Message-Id`` header, else a ``Message-ID`` Lodestar made from the id
    itself (``<id.lodestar@domain>``); None when neither is there."""
    headers = mail.get("headers")
    pairs: list[tuple[str, str]] = []
    if isinstance(headers, list):
        pairs = [(h["name"].lower(), h["value"].strip()) for h in headers
                 if isinstance(h, dict) and isinstance(h.get("name"), str)
                 and isinstance(h.get("value"), str)]
    for name, value in pairs:
        if name == LODESTAR_ID_HEADER and value:
            return value
    common = mail.get("commonHeaders")
    candidates = [v for n, v in pairs if n == "message-id"]
    if isinstance(common, dict) and isinstance(common.get("messageId"), str):
        candidates.append(common["messageId"])
    for value in candidates:
        match = _OWN_MESSAGE_ID.fullmatch(value.strip())
        if match and not _HASHED_LOCAL.fullmatch(match[1]):
            return match[1]
    return None


def _recipients(part: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = part.get(key)
    if not isinstance(value, list) or not value:
        raise _Bad(f"has no {where}.{key} (a non-empty list)")
    for i, rcpt in enumerate(value):
        if not isinstance(rcpt, dict):
            raise _Bad(f"has {where}.{key}[{i}] that is not an object")
    return value


def _ses_time(part: dict[str, Any], mail: dict[str, Any], now_ms: int, where: str) -> int:
    for value, name in ((part.get("timestamp"), f"{where}.timestamp"),
                        (mail.get("timestamp"), "mail.timestamp")):
        if value is not None:
            try:
                return parse_timestamp(value, name)
            except TimestampError as exc:
                raise _Bad(f"has a bad timestamp: {exc}") from None
    return now_ms


# -- the generic form ---------------------------------------------------------------------


def _generic(item: dict[str, Any], now_ms: int) -> Feedback:
    kind = item["Type"]
    address = _address_of(item.get("Address"), "Address")
    bounce_type = _opt_str(item, "BounceType", "BounceType")
    if kind == "Bounce":
        feedback_kind = _BOUNCE_TYPES.get((bounce_type or "").lower())
        if feedback_kind is None:
            raise _Bad(f"is a Bounce with BounceType {bounce_type!r}; expected Permanent, "
                       "Transient or Undetermined")
    else:
        feedback_kind = FeedbackKind.COMPLAINT if kind == "Complaint" else FeedbackKind.DELIVERY
        bounce_type = None
    timestamp = item.get("Timestamp")
    if timestamp is None:
        when = now_ms
    elif isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp >= 0:
        when = timestamp
    else:
        try:
            when = parse_timestamp(timestamp, "Timestamp")
        except TimestampError as exc:
            raise _Bad(f"has a bad Timestamp: {exc} Epoch milliseconds are accepted too") \
                from None
    complaint_type = _opt_str(item, "ComplaintFeedbackType", "ComplaintFeedbackType")
    return Feedback(
        feedback_kind, address, when, FeedbackSource.GENERIC,
        message_id=_opt_str(item, "MessageId", "MessageId") or None,
        feedback_id=_opt_str(item, "FeedbackId", "FeedbackId") or None,
        detail=_clip(_opt_str(item, "Diagnostic", "Diagnostic")) or complaint_type,
        bounce_type=bounce_type,
        complaint_type=complaint_type if feedback_kind is FeedbackKind.COMPLAINT else None,
    )


def _address_of(value: object, field: str) -> str:
    address = email_address(value)
    if address is None:
        raise _Bad(f"has {field} {value!r}, which is not an email address")
    return address


def _opt_str(obj: Mapping[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Bad(f"has {field} that is not a string")


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= _MAX_TEXT else text[:_MAX_TEXT - 1] + "…"


# -- records ----------------------------------------------------------------------------

_OUTCOME_ATTRIBUTES = frozenset({
    "smtp_status_code", "smtp_response", "smtp_stage", "smtp_attempts", "reject_reason",
    "error_message", "send_status", "feedback",
})


def message_id_of(feedback: Feedback) -> str:
    """The message id the records of ``feedback`` carry: Lodestar's when known, else
    ``ses:<SES message id>``, else ``feedback:<hash of the report>`` (stable on replay)."""
    if feedback.message_id:
        return feedback.message_id
    if feedback.provider_message_id:
        return f"ses:{feedback.provider_message_id}"
    raw = f"{feedback.kind}|{feedback.address}|{feedback.feedback_id}|{feedback.timestamp_ms}"
    return "feedback:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def feedback_subject(app_id: str, feedback: Feedback,
                     stored: Sequence[Mapping[str, Any]] | None = None) -> DeliverySubject:
    """The subject of ``feedback``'s record. ``stored``: the delivery records the sender
    kept for the message (``sent_messages.deliveries``); their endpoint, user, campaign
    or journey and Context are the original send's. Without them, only what the
    feedback carries (the message id)."""
    message_id = message_id_of(feedback)
    records = list(stored or ())
    first = next((r for r in records if r.get("event_type") == EventType.EMAIL_SEND.value),
                 records[0] if records else None)
    return DeliverySubject.of_receipt(app_id, message_id, Channel.EMAIL, first,
                                      _OUTCOME_ATTRIBUTES)


def feedback_record(subject: DeliverySubject, feedback: Feedback) -> Record:
    """The ``_email.hardbounce|softbounce|complaint|delivered`` record of ``feedback``.

    Its event id is deterministic from the message id, the type, the feedback id and
    the address, so a replayed report publishes the same id."""
    discriminator = f"{feedback.feedback_id or ''}|{feedback.address}"
    if feedback.kind is FeedbackKind.DELIVERY:
        record = delivery_record(subject, EventType.EMAIL_DELIVERED, feedback.timestamp_ms,
                                 {"smtp_response": feedback.detail}, discriminator=discriminator)
    else:
        record = email_feedback(subject, feedback.timestamp_ms, feedback.event_type,
                                feedback_id=discriminator, detail=feedback.detail)
    extra = {
        "feedback_source": feedback.source.value,
        "destination_address": feedback.address,
        "feedback_id": feedback.feedback_id,
        "provider_message_id": feedback.provider_message_id,
        "bounce_type": feedback.bounce_type,
        "bounce_sub_type": feedback.bounce_sub_type,
        "bounce_status": feedback.status,
        "complaint_feedback_type": feedback.complaint_type,
    }
    record["attributes"].update({k: v for k, v in extra.items() if v is not None})
    return record
