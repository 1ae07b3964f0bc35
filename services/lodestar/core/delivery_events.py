"""Build ``lodestar.v1.Delivery`` records (schemas/delivery.avsc) for Pinpoint's event types.

Contract:

- Every builder returns a plain dict with exactly the schema's fields
  (``event_id``, ``app_id``, ``endpoint_id``, ``user_id``, ``message_id``,
  ``event_type``, ``channel``, ``timestamp`` in epoch ms, ``attributes``
  map<string>, ``metrics`` map<double>) that ``AvroCodec.encode(Topic.DELIVERIES, …)``
  accepts. Core imports no channel code: outcomes come in as plain values.
- ``event_id`` is ``<message_id>:<event_type>``, plus ``:<16 hex>`` of a hash of
  ``discriminator`` when one is given (the provider's event id, or a tracking
  hit's id for opens/clicks that can repeat), so a replay yields the same id.
- Attributes are the send's Context keys, overlaid by Pinpoint's own names
  (``campaign_id``, ``campaign_activity_id``, ``treatment_id`` for campaigns;
  ``journey_id``, ``journey_activity_id``, ``journey_run_id`` for journeys),
  overlaid by the event's own attributes: Pinpoint's names always win.
- Email: ``email_smtp_outcome`` maps an SMTP outcome (kind DELIVERED /
  SOFT_BOUNCE / HARD_BOUNCE, code, message, stage) to ``_email.delivered``,
  ``_email.softbounce``, ``_email.hardbounce`` (5xx at rcpt/data) or
  ``_email.rejected`` (5xx at connect/auth/mail: our configuration, not the
  recipient's address).
- SMS: ``sms_outcome`` picks ``_SMS.SUCCESS`` / ``BUFFERED`` / ``OPTOUT`` /
  ``FAILURE`` from ``record_status`` and carries parts, numbers, country,
  message type and ``price_in_millicents_usd``.
- Campaign/journey sends on any channel: ``_campaign.send`` / ``_journey.send``
  with ``delivery_type`` (the endpoint's ChannelType, e.g. APNS_SANDBOX).
  Pinpoint documents no ``_push.*`` / ``_voice.*`` / ``_custom.*`` types; for
  transactional sends on those channels Lodestar emits ``_push.success|failure``,
  ``_voice.success|failure`` and ``_custom.success|failure`` (``channel_outcome``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Record = dict[str, Any]


class EventType(StrEnum):
    EMAIL_SEND = "_email.send"
    EMAIL_DELIVERED = "_email.delivered"
    EMAIL_REJECTED = "_email.rejected"
    EMAIL_HARDBOUNCE = "_email.hardbounce"
    EMAIL_SOFTBOUNCE = "_email.softbounce"
    EMAIL_COMPLAINT = "_email.complaint"
    EMAIL_OPEN = "_email.open"
    EMAIL_CLICK = "_email.click"
    EMAIL_UNSUBSCRIBE = "_email.unsubscribe"
    EMAIL_RENDERING_FAILURE = "_email.rendering_failure"
    SMS_BUFFERED = "_SMS.BUFFERED"
    SMS_SUCCESS = "_SMS.SUCCESS"
    SMS_FAILURE = "_SMS.FAILURE"
    SMS_OPTOUT = "_SMS.OPTOUT"
    CAMPAIGN_SEND = "_campaign.send"
    CAMPAIGN_OPENED_NOTIFICATION = "_campaign.opened_notification"
    CAMPAIGN_RECEIVED_FOREGROUND = "_campaign.received_foreground"
    CAMPAIGN_RECEIVED_BACKGROUND = "_campaign.received_background"
    JOURNEY_SEND = "_journey.send"
    PUSH_SUCCESS = "_push.success"
    PUSH_FAILURE = "_push.failure"
    VOICE_SUCCESS = "_voice.success"
    VOICE_FAILURE = "_voice.failure"
    CUSTOM_SUCCESS = "_custom.success"
    CUSTOM_FAILURE = "_custom.failure"


class Channel(StrEnum):
    """The schema's ``Channel`` enum."""

    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    VOICE = "VOICE"
    CUSTOM = "CUSTOM"


class RecordStatus(StrEnum):
    """Pinpoint's SMS ``record_status`` values."""

    SUCCESSFUL = "SUCCESSFUL"
    DELIVERED = "DELIVERED"
    PENDING = "PENDING"
    INVALID = "INVALID"
    UNREACHABLE = "UNREACHABLE"
    UNKNOWN = "UNKNOWN"
    BLOCKED = "BLOCKED"
    CARRIER_UNREACHABLE = "CARRIER_UNREACHABLE"
    SPAM = "SPAM"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    CARRIER_BLOCKED = "CARRIER_BLOCKED"
    TTL_EXPIRED = "TTL_EXPIRED"
    MAX_PRICE_EXCEEDED = "MAX_PRICE_EXCEEDED"
    OPTED_OUT = "OPTED_OUT"


_EMAIL_SENDER_STAGES = frozenset({"connect", "auth", "mail"})


SOURCE_ATTRIBUTES = ("campaign_id", "campaign_activity_id", "treatment_id", "journey_id",
                     "journey_activity_id", "journey_run_id")
"""The attributes naming a record's campaign or journey (``source_attributes``)."""


@dataclass(frozen=True)
class DeliverySubject:
    """Who and what a delivery event is about: the send request's identity."""

    app_id: str
    message_id: str
    channel: Channel
    endpoint_id: str | None = None
    user_id: str | None = None
    campaign_id: str | None = None
    campaign_activity_id: str | None = None
    treatment_id: str | None = None
    journey_id: str | None = None
    journey_activity_id: str | None = None
    journey_run_id: str | None = None
    context: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_send_request(cls, request: Mapping[str, Any]) -> DeliverySubject:
        """The subject of a ``lodestar.v1.SendRequest`` record (a plain dict)."""
        source = request.get("source")
        campaign = source == "CAMPAIGN"
        journey = source == "JOURNEY"
        return cls(
            app_id=request["app_id"],
            message_id=request["message_id"],
            channel=Channel(request["channel"]),
            endpoint_id=request.get("endpoint_id"),
            user_id=request.get("user_id"),
            campaign_id=request.get("campaign_id") if campaign else None,
            campaign_activity_id=request.get("run_id") if campaign else None,
            treatment_id=request.get("treatment_id") if campaign else None,
            journey_id=request.get("journey_id") if journey else None,
            journey_activity_id=request.get("activity_id") if journey else None,
            journey_run_id=request.get("run_id") if journey else None,
            context=dict(request.get("context") or {}),
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, message_id: str | None = None,
                    outcome_attributes: frozenset[str] = frozenset()) -> DeliverySubject:
        """The subject a stored delivery record was about (the inverse of
        ``delivery_record``): its ids, its campaign/journey attributes, and as Context
        every other attribute except ``outcome_attributes`` (the outcome's own)."""
        attributes = dict(record.get("attributes") or {})
        source = {name: attributes.pop(name, None) for name in SOURCE_ATTRIBUTES}
        return cls(
            app_id=record["app_id"], message_id=message_id or record["message_id"],
            channel=Channel(record["channel"]),
            endpoint_id=record.get("endpoint_id"), user_id=record.get("user_id"),
            campaign_id=source["campaign_id"],
            campaign_activity_id=source["campaign_activity_id"],
            treatment_id=source["treatment_id"], journey_id=source["journey_id"],
            journey_activity_id=source["journey_activity_id"],
            journey_run_id=source["journey_run_id"],
            context={k: v for k, v in attributes.items() if k not in outcome_attributes},
        )

    @classmethod
    def of_receipt(cls, app_id: str, message_id: str, channel: Channel,
                   sent: Mapping[str, Any] | None,
                   outcome_attributes: frozenset[str] = frozenset()) -> DeliverySubject:
        """The subject of a provider's later report (a delivery receipt, a call's end)
        about ``message_id``: that of ``sent``, the record the sender stored for the
        message (``from_record``), else just the message's ids."""
        if sent is None:
            return cls(app_id, message_id, channel)
        return cls.from_record({**sent, "app_id": app_id, "channel": channel.value},
                               message_id=message_id, outcome_attributes=outcome_attributes)

    @property
    def is_campaign(self) -> bool:
        return self.campaign_id is not None

    @property
    def is_journey(self) -> bool:
        return self.journey_id is not None

    def source_attributes(self) -> dict[str, str]:
        """Context keys overlaid by Pinpoint's campaign/journey attribute names."""
        out = dict(self.context)
        for name, value in (
            ("campaign_id", self.campaign_id),
            ("campaign_activity_id", self.campaign_activity_id),
            ("treatment_id", self.treatment_id),
            ("journey_id", self.journey_id),
            ("journey_activity_id", self.journey_activity_id),
            ("journey_run_id", self.journey_run_id),
        ):
            if value is not None:
                out[name] = value
        return out


def event_id(message_id: str, event_type: EventType | str, discriminator: str | None = None) -> str:
    """The deterministic id of one delivery event."""
    base = f"{message_id}:{event_type}"
    if discriminator is None:
        return base
    digest = hashlib.sha256(discriminator.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{base}:{digest}"


def delivery_record(
    subject: DeliverySubject,
    event_type: EventType,
    timestamp_ms: int,
    attributes: Mapping[str, str | None] | None = None,
    metrics: Mapping[str, float] | None = None,
    discriminator: str | None = None,
) -> Record:
    """The Delivery record of ``event_type`` about ``subject``; attributes whose value
    is ``None`` are left out."""
    attrs = subject.source_attributes()
    for name, value in (attributes or {}).items():
        if value is not None:
            attrs[name] = value
    return {
        "event_id": event_id(subject.message_id, event_type, discriminator),
        "app_id": subject.app_id,
        "endpoint_id": subject.endpoint_id,
        "user_id": subject.user_id,
        "message_id": subject.message_id,
        "event_type": event_type.value,
        "channel": subject.channel.value,
        "timestamp": int(timestamp_ms),
        "attributes": attrs,
        "metrics": {name: float(value) for name, value in (metrics or {}).items()},
    }


# -- email ------------------------------------------------------------------------


def email_send(subject: DeliverySubject, timestamp_ms: int) -> Record:
    """``_email.send``: the message was handed to the relay."""
    return delivery_record(subject, EventType.EMAIL_SEND, timestamp_ms)


def email_smtp_event_type(kind: str, stage: str) -> EventType:
    """The event type of an SMTP outcome ``kind`` (DELIVERED, SOFT_BOUNCE, HARD_BOUNCE)."""
    if kind == "DELIVERED":
        return EventType.EMAIL_DELIVERED
    if kind == "SOFT_BOUNCE":
        return EventType.EMAIL_SOFTBOUNCE
    if kind == "HARD_BOUNCE":
        if stage in _EMAIL_SENDER_STAGES:
            return EventType.EMAIL_REJECTED
        return EventType.EMAIL_HARDBOUNCE
    raise ValueError(f"unknown SMTP outcome kind {kind!r}")


def email_smtp_outcome(
    subject: DeliverySubject,
    timestamp_ms: int,
    *,
    kind: str,
    code: int | None,
    message: str,
    stage: str,
) -> Record:
    """The event for an SMTP outcome, with ``smtp_status_code``, ``smtp_response`` and
    ``smtp_stage`` attributes (Lodestar's; Pinpoint carries these in its facets)."""
    return delivery_record(
        subject,
        email_smtp_event_type(kind, stage),
        timestamp_ms,
        {
            "smtp_status_code": None if code is None else str(code),
            "smtp_response": message,
            "smtp_stage": stage,
        },
    )


def email_rendering_failure(subject: DeliverySubject, timestamp_ms: int, error: str) -> Record:
    """``_email.rendering_failure``: the template did not render; nothing was sent."""
    return delivery_record(
        subject, EventType.EMAIL_RENDERING_FAILURE, timestamp_ms, {"error_message": error}
    )


def email_open(subject: DeliverySubject, timestamp_ms: int, hit_id: str) -> Record:
    """``_email.open`` from the tracking pixel; ``hit_id`` tells repeated opens apart."""
    return delivery_record(subject, EventType.EMAIL_OPEN, timestamp_ms, discriminator=hit_id)


def email_click(subject: DeliverySubject, timestamp_ms: int, url: str, hit_id: str) -> Record:
    """``_email.click`` on ``url`` (Pinpoint's ``feedback`` attribute)."""
    return delivery_record(
        subject, EventType.EMAIL_CLICK, timestamp_ms, {"feedback": url}, discriminator=hit_id
    )


def email_unsubscribe(subject: DeliverySubject, timestamp_ms: int,
                      url: str | None = None) -> Record:
    """``_email.unsubscribe`` (one per message: a repeat has the same event id)."""
    return delivery_record(subject, EventType.EMAIL_UNSUBSCRIBE, timestamp_ms, {"feedback": url})


def email_feedback(
    subject: DeliverySubject,
    timestamp_ms: int,
    event_type: EventType,
    feedback_id: str | None = None,
    detail: str | None = None,
) -> Record:
    """A bounce or complaint reported later by feedback (SES-notification-shaped or
    generic): ``_email.hardbounce``, ``_email.softbounce`` or ``_email.complaint``."""
    if event_type not in (
        EventType.EMAIL_HARDBOUNCE, EventType.EMAIL_SOFTBOUNCE, EventType.EMAIL_COMPLAINT
    ):
        raise ValueError(f"{event_type} is not bounce or complaint feedback")
    return delivery_record(
        subject, event_type, timestamp_ms, {"feedback": detail}, discriminator=feedback_id
    )


# -- SMS ----------------------------------------------------------------------------


def sms_event_type(record_status: RecordStatus | str) -> EventType:
    """``_SMS.SUCCESS`` for SUCCESSFUL/DELIVERED, ``BUFFERED`` for PENDING, ``OPTOUT`` for
    OPTED_OUT, ``FAILURE`` for every other status."""
    status = RecordStatus(record_status)
    if status in (RecordStatus.SUCCESSFUL, RecordStatus.DELIVERED):
        return EventType.SMS_SUCCESS
    if status is RecordStatus.PENDING:
        return EventType.SMS_BUFFERED
    if status is RecordStatus.OPTED_OUT:
        return EventType.SMS_OPTOUT
    return EventType.SMS_FAILURE


def sms_outcome(
    subject: DeliverySubject,
    timestamp_ms: int,
    *,
    record_status: RecordStatus | str,
    destination_phone_number: str,
    number_of_message_parts: int,
    origination_phone_number: str | None = None,
    iso_country_code: str | None = None,
    message_type: str | None = None,
    price_in_millicents_usd: float | None = None,
    sender_request_id: str | None = None,
    provider_event_id: str | None = None,
) -> Record:
    """The ``_SMS.*`` event for a provider answer or status callback.

    ``message_type`` is ``TRANSACTIONAL``/``PROMOTIONAL`` in any case and is written
    as Pinpoint does (``Transactional``); ``provider_event_id`` distinguishes several
    callbacks of one status.
    """
    status = RecordStatus(record_status)
    metrics = {} if price_in_millicents_usd is None else {
        "price_in_millicents_usd": price_in_millicents_usd
    }
    return delivery_record(
        subject,
        sms_event_type(status),
        timestamp_ms,
        {
            "record_status": status.value,
            "destination_phone_number": destination_phone_number,
            "origination_phone_number": origination_phone_number,
            "iso_country_code": iso_country_code,
            "number_of_message_parts": str(number_of_message_parts),
            "message_type": None if message_type is None else message_type.capitalize(),
            "sender_request_id": sender_request_id,
            "message_id": subject.message_id,
        },
        metrics,
        discriminator=provider_event_id,
    )


# -- campaign / journey sends and other channels ----------------------------------------


def campaign_send(
    subject: DeliverySubject, timestamp_ms: int, *, delivery_type: str, send_status: str
) -> Record:
    """``_campaign.send`` with ``delivery_type`` (ChannelType) and ``campaign_send_status``
    (a DeliveryStatus: SUCCESSFUL, THROTTLED, TEMPORARY_FAILURE, PERMANENT_FAILURE, …)."""
    if not subject.is_campaign:
        raise ValueError("_campaign.send needs a campaign subject")
    return delivery_record(
        subject, EventType.CAMPAIGN_SEND, timestamp_ms,
        {"delivery_type": delivery_type, "campaign_send_status": send_status},
    )


def journey_send(
    subject: DeliverySubject,
    timestamp_ms: int,
    *,
    delivery_type: str,
    send_status: str,
    activity_type: str | None = None,
) -> Record:
    """``_journey.send`` with ``delivery_type``, ``journey_send_status`` and
    ``journey_activity_type`` (EMAIL, SMS, PUSH, CUSTOM …; defaults to the channel)."""
    if not subject.is_journey:
        raise ValueError("_journey.send needs a journey subject")
    return delivery_record(
        subject, EventType.JOURNEY_SEND, timestamp_ms,
        {
            "delivery_type": delivery_type,
            "journey_send_status": send_status,
            "journey_activity_type": activity_type or subject.channel.value,
        },
    )


_CHANNEL_OUTCOMES = {
    Channel.PUSH: (EventType.PUSH_SUCCESS, EventType.PUSH_FAILURE),
    Channel.VOICE: (EventType.VOICE_SUCCESS, EventType.VOICE_FAILURE),
    Channel.CUSTOM: (EventType.CUSTOM_SUCCESS, EventType.CUSTOM_FAILURE),
}


def channel_outcome(
    subject: DeliverySubject,
    timestamp_ms: int,
    *,
    success: bool,
    delivery_type: str,
    status_code: int | None = None,
    status_message: str | None = None,
) -> Record:
    """The outcome of a push, voice or custom send: ``_push|_voice|_custom.success|failure``
    with ``delivery_type``, ``status_code`` and ``status_message`` (the provider's)."""
    if subject.channel not in _CHANNEL_OUTCOMES:
        raise ValueError(f"{subject.channel} outcomes have their own builders")
    ok, failed = _CHANNEL_OUTCOMES[subject.channel]
    return delivery_record(
        subject, ok if success else failed, timestamp_ms,
        {
            "delivery_type": delivery_type,
            "status_code": None if status_code is None else str(status_code),
            "status_message": status_message,
        },
    )
