"""What the custom-channel sender decides for one ``lodestar.v1.SendRequest``, as values.

Pure: no I/O. The transport (``lodestar.channels.custom_webhook``) signs and POSTs.

- ``screen`` is ``email_sending.screen`` (opt-out and INACTIVE endpoints are skipped).
- ``delivery_target(request)``: the request's ``DeliveryUri``; an https(s) URL is a
  webhook, a Lambda name or ARN is refused (Lodestar has no Lambda), none at all is
  refused (the engine fills it from the campaign's CustomDeliveryConfiguration or
  the journey's CUSTOM activity).
- ``custom_body(request, now_ms)``: the JSON document Pinpoint's custom channel
  sends (developer guide ``channels-custom.html``)::

      {"Message": {}, "Data": "<CustomMessage.Data>", "ApplicationId": "…",
       "CampaignId": "…", "TreatmentId": "0", "ActivityId": "…",
       "ScheduledTime": "2026-05-01T12:00:00.000Z",
       "Endpoints": {"<endpoint id>": {"ChannelType": "…", "Address": "…", …}}}

  For journeys ``JourneyId`` replaces ``CampaignId``/``TreatmentId`` and
  ``ActivityId`` is the journey activity. ``Data`` is passed verbatim (Pinpoint
  does not template it). Lodestar adds ``MessageId`` (the deterministic message
  id: receivers dedupe on it) and ``TraceId`` when the request has one. Pinpoint
  batches up to 50 endpoints per call; Lodestar sends one endpoint per request,
  so each has its own message id and outcome.
- ``prepare_post(request, now_ms)``: all of the above as one ``WebhookPost`` (url,
  exact body bytes, message id) or ``TargetRefused``.
- records: ``_custom.success|failure`` plus ``_campaign.send`` / ``_journey.send``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lodestar.core.delivery_events import (
    DeliverySubject,
    Record,
    campaign_send,
    channel_outcome,
    journey_send,
)
from lodestar.core.email_sending import Skip, screen
from lodestar.core.endpoint_view import endpoint_response
from lodestar.core.provider_outcome import DeliveryStatus, ProviderOutcome
from lodestar.core.timestamps import iso_millis

__all__ = ["RejectReason", "TargetRefused", "WebhookPost", "custom_body", "delivery_target",
           "encode_body", "prepare_post", "screen"]

DELIVERY_TYPE = "CUSTOM"


class RejectReason(StrEnum):
    """``reject_reason`` of a custom send that never reached the webhook."""

    OPT_OUT = "OPT_OUT"
    INACTIVE = "INACTIVE"
    NO_TARGET = "NO_TARGET"
    DESTINATION_REFUSED = "DESTINATION_REFUSED"
    SUPPRESSED = "SUPPRESSED"
    UNKNOWN = "UNKNOWN"
    """A sender died between claiming and recording the answer: not sent again."""


@dataclass(frozen=True)
class TargetRefused:
    error: str


def delivery_target(request: Mapping[str, Any]) -> str | TargetRefused:
    """The webhook URL of ``request`` (``content.delivery_uri``), or why there is none."""
    uri = ((request.get("content") or {}).get("delivery_uri") or "").strip()
    if not uri:
        return TargetRefused("no DeliveryUri: the campaign or journey gave no custom destination")
    lowered = uri.lower()
    if lowered.startswith("arn:") or "://" not in lowered:
        return TargetRefused(f"DeliveryUri {uri!r} names a Lambda function; Lodestar delivers "
                             "custom messages to https webhooks only")
    return uri


@dataclass(frozen=True)
class WebhookPost:
    """One webhook request to make: ``body`` is exactly what is signed and sent."""

    url: str
    body: bytes
    message_id: str


def prepare_post(request: Mapping[str, Any], now_ms: int) -> WebhookPost | TargetRefused:
    """The webhook request for ``request`` (target, then the encoded Pinpoint body)."""
    target = delivery_target(request)
    if isinstance(target, TargetRefused):
        return target
    return WebhookPost(target, encode_body(custom_body(request, now_ms)), request["message_id"])


def _endpoint_entry(request: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    endpoint = request.get("endpoint")
    if endpoint:
        entry = endpoint_response(request["app_id"], endpoint)
        entry.pop("ApplicationId", None)
        entry.pop("Id", None)
        return endpoint["id"], entry
    key = request.get("endpoint_id") or request["address"]
    entry = {"Address": request["address"], "ChannelType": request.get("channel_type") or "CUSTOM"}
    return key, entry


def custom_body(request: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The Pinpoint-shaped custom-channel document for ``request`` (see the module doc);
    ``ScheduledTime`` is the request's timestamp (when the engine decided the send)."""
    content = request.get("content") or {}
    body: dict[str, Any] = {"Message": {}, "Data": content.get("data") or "",
                            "ApplicationId": request["app_id"]}
    if request.get("source") == "CAMPAIGN":
        body["CampaignId"] = request.get("campaign_id")
        body["TreatmentId"] = request.get("treatment_id") or "0"
        body["ActivityId"] = request.get("run_id")
    elif request.get("source") == "JOURNEY":
        body["JourneyId"] = request.get("journey_id")
        body["ActivityId"] = request.get("activity_id")
        body["JourneyRunId"] = request.get("run_id")
    body["ScheduledTime"] = iso_millis(int(request.get("timestamp") or now_ms))
    key, entry = _endpoint_entry(request)
    body["Endpoints"] = {key: entry}
    body["MessageId"] = request["message_id"]
    if request.get("trace_id"):
        body["TraceId"] = request["trace_id"]
    return body


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes that are signed and sent: compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- records ------------------------------------------------------------------------


def _source_records(subject: DeliverySubject, now_ms: int, status: str) -> list[Record]:
    if subject.is_campaign:
        return [campaign_send(subject, now_ms, delivery_type=DELIVERY_TYPE, send_status=status)]
    if subject.is_journey:
        return [journey_send(subject, now_ms, delivery_type=DELIVERY_TYPE, send_status=status,
                             activity_type="CUSTOM")]
    return []


def refusal_records(subject: DeliverySubject, reason: RejectReason | str, message: str,
                    now_ms: int) -> list[Record]:
    """``_custom.failure`` with ``reject_reason`` when nothing was sent; the source send
    is OPT_OUT for an opt-out, PERMANENT_FAILURE otherwise."""
    reason = RejectReason(reason)
    record = channel_outcome(subject, now_ms, success=False, delivery_type=DELIVERY_TYPE,
                             status_message=message)
    record["attributes"]["reject_reason"] = reason.value
    status = DeliveryStatus.OPT_OUT if reason is RejectReason.OPT_OUT else \
        DeliveryStatus.PERMANENT_FAILURE
    return [record, *_source_records(subject, now_ms, status.value)]


def skip_records(subject: DeliverySubject, skip: Skip, now_ms: int) -> list[Record]:
    return refusal_records(subject, skip.reason.value, skip.detail, now_ms)


def outcome_records(subject: DeliverySubject, outcome: ProviderOutcome, now_ms: int,
                    attempts: int = 1) -> list[Record]:
    """The final answer of the webhook: ``_custom.success`` (2xx) or ``_custom.failure``
    with the HTTP status, then the source send record."""
    record = channel_outcome(subject, now_ms, success=outcome.accepted,
                             delivery_type=DELIVERY_TYPE, status_code=outcome.status_code,
                             status_message=outcome.message)
    record["attributes"]["attempts"] = str(attempts)
    record["attributes"]["outcome"] = outcome.kind.value
    return [record, *_source_records(subject, now_ms, outcome.delivery_status.value)]
