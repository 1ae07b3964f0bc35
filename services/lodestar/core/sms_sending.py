"""What the SMS sender decides for one ``lodestar.v1.SendRequest``, as values.

Pure: no I/O. The adapter reads the template and the dedupe row and calls a
provider (``lodestar.channels.sms``); this module decides:

- ``screen(request)`` (``core.email_sending.screen``): ``Skip`` for an endpoint
  snapshot with ``OptOut: ALL`` or ``EndpointStatus: INACTIVE``; a skip becomes one
  ``_SMS.OPTOUT`` (record_status OPTED_OUT) or ``_SMS.FAILURE`` (UNREACHABLE) record.
- ``sms_definition(template_definition, content)``: the SMSTemplateRequest to
  render: the stored template's ``Body`` (and DefaultSubstitutions) overlaid by a
  non-null ``SmsContent.body`` (Handlebars too).
- ``prepare_sms(request, template_definition, defaults, now_ms)``: route the
  destination (``core.sms_routing``), render the body, split it into parts
  (``core.sms_parts``) and price it (``core.price_table``). ``PreparedSms``, or
  ``NoRoute`` (nothing is rendered), or ``RenderingFailed`` (template invalid or
  missing, render failure, empty body, more than ``max_characters``): never a
  half-rendered message.
- the records for each ending (``skip_records``, ``no_route_records``,
  ``rendering_failure_records``, ``provider_records``, ``unknown_outcome_records``),
  all built with ``core.delivery_events.sms_outcome``. A provider answer maps to
  ``record_status`` by ``final_record_status``; only an accepted message carries
  its price (providers do not charge for refused ones), failures carry 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lodestar.core.delivery_events import DeliverySubject, Record, RecordStatus, sms_outcome
from lodestar.core.email_sending import Skip, SkipReason, recipient_context, screen
from lodestar.core.price_table import DEFAULT_PRICES, PriceChannel, PriceTable
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind
from lodestar.core.sms_parts import SmsParts, sms_parts
from lodestar.core.sms_routing import (
    NoRoute,
    OriginationKind,
    Route,
    RoutingConfig,
    choose_origination,
)
from lodestar.core.templates import (
    RenderFailure,
    SmsTemplate,
    TemplateDefinitionError,
    parse_template,
    render,
)

__all__ = [
    "OutboundSms", "PreparedSms", "RenderingFailed", "SmsDefaults", "final_record_status",
    "no_route_records", "prepare_sms", "provider_records", "rendering_failure_records",
    "screen", "skip_records", "sms_definition", "unknown_outcome_records",
]

MAX_CHARACTERS = 1600
"""Pinpoint's SMS template limit (and Twilio's Body limit)."""


@dataclass(frozen=True)
class SmsDefaults:
    """What the sender's settings supply to every message."""

    routing: RoutingConfig
    prices: PriceTable = DEFAULT_PRICES
    message_type: str = "TRANSACTIONAL"
    max_characters: int = MAX_CHARACTERS


@dataclass(frozen=True)
class OutboundSms:
    """One message as a provider sends it."""

    message_id: str
    to: str
    body: str
    origination: str
    origination_kind: OriginationKind
    message_type: str = "TRANSACTIONAL"
    entity_id: str | None = None
    template_id: str | None = None
    app_id: str | None = None


@dataclass(frozen=True)
class PreparedSms:
    message: OutboundSms
    parts: SmsParts
    route: Route
    price_in_millicents_usd: float

    @property
    def country(self) -> str:
        return self.route.country


@dataclass(frozen=True)
class RenderingFailed:
    error: str


def sms_definition(
    template_definition: Mapping[str, Any] | None, content: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The SMSTemplateRequest to render: the template overlaid by ``SmsContent.body``."""
    out = dict(template_definition or {})
    out.pop("tags", None)
    body = (content or {}).get("body")
    if body is not None:
        out["Body"] = body
    return out


def _render_body(request: Mapping[str, Any], template_definition: Mapping[str, Any] | None,
                 now_ms: int) -> str | RenderingFailed:
    content = request.get("content") or {}
    try:
        template = parse_template("SMS", sms_definition(template_definition, content))
    except TemplateDefinitionError as exc:
        return RenderingFailed(f"template: {exc}")
    assert isinstance(template, SmsTemplate)
    substitutions: Mapping[str, Sequence[str]] = request.get("substitutions") or {}
    recipient = recipient_context({**request, "channel_type": request.get("channel_type") or "SMS"})
    rendered = render(template, recipient, substitutions, now_ms, seed=request["message_id"])
    if isinstance(rendered, RenderFailure):
        return RenderingFailed(f"{rendered.kind.value}: {rendered.message}")
    return rendered.parts["Body"]


def prepare_sms(
    request: Mapping[str, Any],
    template_definition: Mapping[str, Any] | None,
    defaults: SmsDefaults,
    now_ms: int,
) -> PreparedSms | NoRoute | RenderingFailed:
    """Route, render, split and price the message of ``request``; nothing half-done."""
    content = request.get("content") or {}
    route = choose_origination(
        request["address"], defaults.routing,
        origination_number=content.get("origination_number"),
        sender_id=content.get("sender_id"),
    )
    if isinstance(route, NoRoute):
        return route
    body = _render_body(request, template_definition, now_ms)
    if isinstance(body, RenderingFailed):
        return body
    if not body.strip():
        return RenderingFailed("MISSING_PART: Body: the body rendered empty")
    if len(body) > defaults.max_characters:
        return RenderingFailed(f"PART_TOO_LONG: Body: rendered to {len(body)} characters; "
                               f"at most {defaults.max_characters}")
    parts = sms_parts(body)
    message = OutboundSms(
        message_id=request["message_id"],
        to=request["address"],
        body=body,
        origination=route.identity.value,
        origination_kind=route.identity.kind,
        message_type=content.get("message_type") or defaults.message_type,
        entity_id=content.get("entity_id"),
        template_id=content.get("template_id"),
        app_id=request["app_id"],
    )
    price = defaults.prices.price(PriceChannel.SMS, route.country, parts.count)
    return PreparedSms(message, parts, route, price)


# -- records ------------------------------------------------------------------------


def skip_records(subject: DeliverySubject, skip: Skip, destination: str,
                 now_ms: int, message_type: str | None = None) -> list[Record]:
    """``_SMS.OPTOUT`` for an opted-out endpoint, ``_SMS.FAILURE`` for an inactive one."""
    status = (RecordStatus.OPTED_OUT if skip.reason is SkipReason.OPT_OUT
              else RecordStatus.UNREACHABLE)
    record = sms_outcome(subject, now_ms, record_status=status,
                         destination_phone_number=destination, number_of_message_parts=0,
                         message_type=message_type, price_in_millicents_usd=0.0)
    record["attributes"].update(skip_reason=skip.reason.value, error_message=skip.detail)
    return [record]


def no_route_records(subject: DeliverySubject, no_route: NoRoute, destination: str,
                     now_ms: int, message_type: str | None = None) -> list[Record]:
    """``_SMS.FAILURE`` for a destination the routing rules cannot serve."""
    record = sms_outcome(subject, now_ms, record_status=no_route.reason.record_status,
                         destination_phone_number=destination, number_of_message_parts=0,
                         iso_country_code=no_route.country, message_type=message_type,
                         price_in_millicents_usd=0.0)
    record["attributes"].update(route_failure=no_route.reason.value,
                                error_message=no_route.detail)
    return [record]


def rendering_failure_records(subject: DeliverySubject, error: str, destination: str,
                              now_ms: int, message_type: str | None = None) -> list[Record]:
    """``_SMS.FAILURE`` with record_status INVALID_MESSAGE: the body did not render."""
    record = sms_outcome(subject, now_ms, record_status=RecordStatus.INVALID_MESSAGE,
                         destination_phone_number=destination, number_of_message_parts=0,
                         message_type=message_type, price_in_millicents_usd=0.0)
    record["attributes"]["error_message"] = error
    return [record]


def final_record_status(outcome: ProviderOutcome) -> RecordStatus:
    """The record_status of a provider's final answer: the provider's own when it gave
    one; else SUCCESSFUL (accepted), INVALID (dead address), UNKNOWN (anything else)."""
    if outcome.record_status is not None:
        try:
            return RecordStatus(outcome.record_status)
        except ValueError:
            pass
    if outcome.kind is ProviderOutcomeKind.ACCEPTED:
        return RecordStatus.SUCCESSFUL
    if outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS:
        return RecordStatus.INVALID
    return RecordStatus.UNKNOWN


def provider_records(subject: DeliverySubject, prepared: PreparedSms, outcome: ProviderOutcome,
                     now_ms: int, attempts: int = 1) -> list[Record]:
    """The ``_SMS.*`` record of the provider's final answer (after retries)."""
    message = prepared.message
    record = sms_outcome(
        subject, now_ms,
        record_status=final_record_status(outcome),
        destination_phone_number=message.to,
        origination_phone_number=message.origination,
        number_of_message_parts=prepared.parts.count,
        iso_country_code=prepared.country,
        message_type=message.message_type,
        price_in_millicents_usd=prepared.price_in_millicents_usd if outcome.accepted else 0.0,
        sender_request_id=outcome.provider_message_id,
    )
    attrs = record["attributes"]
    attrs.update(
        origination_identity_kind=message.origination_kind.value,
        message_encoding=prepared.parts.encoding.value,
        delivery_status=outcome.delivery_status.value,
        status_message=outcome.message,
        attempts=str(attempts),
    )
    if outcome.status_code is not None:
        attrs["status_code"] = str(outcome.status_code)
    return [record]


def unknown_outcome_records(subject: DeliverySubject, destination: str,
                            now_ms: int) -> list[Record]:
    """A claim left by a sender that died mid-send: the provider may have the message.
    ``_SMS.BUFFERED`` (record_status PENDING, ``send_status=UNKNOWN``); never resent."""
    record = sms_outcome(subject, now_ms, record_status=RecordStatus.PENDING,
                         destination_phone_number=destination, number_of_message_parts=0)
    record["attributes"].update(
        send_status="UNKNOWN",
        error_message="the sender that claimed this message stopped mid-send; "
                      "it is not sent again")
    return [record]
