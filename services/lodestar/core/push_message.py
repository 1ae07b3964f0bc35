"""What the push sender decides for one ``lodestar.v1.SendRequest`` on PUSH, as values.

Pure: no I/O. The adapter reads the stored template and the dedupe row, picks
the transport and talks to it; this module decides:

- ``screen(request)``: ``Skip`` for an endpoint snapshot with ``OptOut: ALL``
  or ``EndpointStatus: INACTIVE`` (the email sender's rule), else ``None``.
- ``push_provider(request)``: FCM (GCM), APNS (APNS, APNS_SANDBOX, APNS_VOIP*),
  ADM, BAIDU, or WEBPUSH (an address that is a Web Push subscription JSON
  object); None for a ChannelType no push provider serves.
- ``prepare_push(request, template_definition, now_ms)``: the stored
  PushNotificationTemplate (Default overlaid by the recipient's APNS/GCM/…
  section) overlaid by the request's non-null PushContent fields (Handlebars
  too), rendered against the endpoint snapshot and substitutions into a
  ``PushNotification``, or ``RenderingFailed``: never half-rendered. A
  RawContent that does not render to a JSON object is a rendering failure.
- the records for each ending (``skip_records``, ``suppressed_records``,
  ``rendering_failure_records``, ``outcome_records``, ``unknown_outcome_records``):
  ``_campaign.send`` / ``_journey.send`` for campaign and journey sends,
  ``_push.success|failure`` for transactional ones, each with ``delivery_type``
  (the endpoint's ChannelType) and the provider's ``status_code`` /
  ``status_message``.
- ``dead_token_command(request, outcome, now_ms)``: the DEACTIVATE endpoint
  command for a provider answer that the token is dead.

The provider payload builders (``fcm_message``, ``apns_request``,
``webpush_payload``) live in ``push_payloads`` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping, Sequence
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
from lodestar.core.email_sending import Skip, SkipReason, recipient_context, screen
from lodestar.core.endpoint_commands import Command, deactivate_command
from lodestar.core.provider_outcome import DeliveryStatus, ProviderOutcome, ProviderOutcomeKind
from lodestar.core.push_payloads import (
    ApnsRequest,
    PushNotification,
    apns_request,
    fcm_message,
    webpush_payload,
)
from lodestar.core.template_context import RecipientContext, personal_variables
from lodestar.core.template_render import TemplateSyntaxError, compile_part
from lodestar.core.templates import (
    Part,
    PushAction,
    PushChannelTemplate,
    PushTemplate,
    RenderFailure,
    TemplateDefinitionError,
    parse_template,
    push_channel,
    render,
    root_names,
)

__all__ = [
    "ApnsRequest", "PushNotification", "PushProvider", "RenderingFailed", "Skip", "SkipReason",
    "apns_request", "dead_token_command", "delivery_type", "fcm_message", "outcome_records",
    "prepare_push", "push_provider", "rendering_failure_records", "screen", "skip_records",
    "suppressed_records", "unknown_outcome_records", "webpush_payload",
]

_CONTENT_PARTS = (("title", "Title"), ("body", "Body"), ("url", "Url"),
                  ("image_url", "ImageUrl"), ("image_icon_url", "ImageIconUrl"),
                  ("sound", "Sound"), ("raw_content", "RawContent"))


class PushProvider(StrEnum):
    FCM = "FCM"
    APNS = "APNS"
    WEBPUSH = "WEBPUSH"
    ADM = "ADM"
    BAIDU = "BAIDU"


_PROVIDER_OF = {
    "GCM": PushProvider.FCM, "APNS": PushProvider.APNS, "APNS_SANDBOX": PushProvider.APNS,
    "APNS_VOIP": PushProvider.APNS, "APNS_VOIP_SANDBOX": PushProvider.APNS,
    "ADM": PushProvider.ADM, "BAIDU": PushProvider.BAIDU,
}


def delivery_type(request: Mapping[str, Any]) -> str:
    """The endpoint's ChannelType (``delivery_type`` of the records); PUSH when unknown."""
    endpoint = request.get("endpoint") or {}
    return str(request.get("channel_type") or endpoint.get("channel_type") or "PUSH")


def push_provider(request: Mapping[str, Any]) -> PushProvider | None:
    """The transport for ``request``: an address holding a JSON object is a Web Push
    subscription (whatever the ChannelType), GCM is FCM, APNS* is APNs."""
    if str(request.get("address") or "").lstrip().startswith("{"):
        return PushProvider.WEBPUSH
    return _PROVIDER_OF.get(delivery_type(request))


@dataclass(frozen=True)
class RenderingFailed:
    error: str


def _with_request_parts(
    template: PushTemplate, section: str, values: Sequence[str | None], action_value: str | None,
    silent: bool,
) -> PushTemplate:
    """``template`` with the request's non-null fields (``values``, in ``_CONTENT_PARTS``
    order) as parts of ``section``."""
    current = template.channels.get(section, PushChannelTemplate())
    parts: dict[str, Part] = dict(current.parts)
    for (_, pinpoint), value in zip(_CONTENT_PARTS, values, strict=True):
        if value is not None:
            name = f"{section}.{pinpoint}"
            parts[pinpoint] = Part(name, compile_part(value, html=False))
    action = PushAction(action_value) if action_value else current.action
    channels = dict(template.channels)
    channels[section] = PushChannelTemplate(action, parts)
    if silent and not any(
        "Body" in c.parts or "RawContent" in c.parts for c in channels.values()
    ):
        channels[section] = PushChannelTemplate(
            action, {**parts, "Body": Part(f"{section}.Body", compile_part("", html=False))})
    return dataclasses.replace(template, channels=channels)


@functools.lru_cache(maxsize=1024)
def _push_template(definition_json: str | None, section: str,
                   values: tuple[str | None, ...], action: str | None,
                   silent: bool) -> PushTemplate:
    """The stored template (as canonical JSON) overlaid by the request's parts, parsed
    and compiled once per distinct input: a send renders the same parts for every
    recipient. Raises ``TemplateDefinitionError`` / ``TemplateSyntaxError``."""
    definition = json.loads(definition_json) if definition_json is not None else {}
    definition.pop("tags", None)
    parsed = parse_template("PUSH", definition)
    assert isinstance(parsed, PushTemplate)
    return _with_request_parts(parsed, section, values, action, silent)


def _source_maps(request: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The campaign and journey ids of ``request``, named as ``DeliverySubject`` names
    them (``from_send_request``), without building the subject."""
    source = request.get("source")
    campaign: dict[str, str] = {}
    journey: dict[str, str] = {}
    if source == "CAMPAIGN":
        campaign = {k: v for k, v in (
            ("campaign_id", request.get("campaign_id")),
            ("campaign_activity_id", request.get("run_id")),
            ("treatment_id", request.get("treatment_id"))) if v is not None}
    elif source == "JOURNEY":
        journey = {k: v for k, v in (
            ("journey_id", request.get("journey_id")),
            ("journey_activity_id", request.get("activity_id")),
            ("journey_run_id", request.get("run_id"))) if v is not None}
    return campaign, journey


def prepare_push(
    request: Mapping[str, Any], template_definition: Mapping[str, Any] | None, now_ms: int
) -> PushNotification | RenderingFailed:
    """Render the notification of ``request``; nothing half-done."""
    content = request.get("content") or {}
    channel_type = delivery_type(request)
    try:
        definition_json = (json.dumps(template_definition, sort_keys=True)
                           if template_definition else None)
        template = _push_template(
            definition_json, push_channel(channel_type),
            tuple([content.get(ours) for ours, _ in _CONTENT_PARTS]),
            content.get("action") or None, bool(content.get("silent")))
    except TemplateDefinitionError as exc:
        return RenderingFailed(f"template: {exc}")
    except TemplateSyntaxError as exc:
        return RenderingFailed(f"content: template does not compile: {exc.message}")
    endpoint = request.get("endpoint")
    names = root_names(template)
    personal = personal_variables(endpoint, names) if endpoint else None
    recipient = (RecipientContext(personal, channel_type) if personal is not None else
                 dataclasses.replace(recipient_context(request), channel_type=channel_type))
    substitutions: Mapping[str, Sequence[str]] = request.get("substitutions") or {}
    rendered = render(template, recipient, substitutions, now_ms, seed=request["message_id"],
                      names=names)
    if isinstance(rendered, RenderFailure):
        return RenderingFailed(f"{rendered.kind.value}: {rendered.message}")
    parts = rendered.parts
    raw = parts.get("RawContent")
    if raw is not None:
        try:
            if not isinstance(json.loads(raw), dict):
                return RenderingFailed("RawContent: must render to a JSON object")
        except ValueError as exc:
            return RenderingFailed(f"RawContent: not valid JSON once rendered: {exc}")
    campaign, journey = _source_maps(request)
    ttl = content.get("ttl")
    return PushNotification(
        message_id=request["message_id"],
        channel_type=channel_type,
        title=parts.get("Title") or None,
        body=parts.get("Body") or None,
        action=PushAction(rendered.settings.get("Action") or "OPEN_APP"),
        url=parts.get("Url") or None,
        image_url=parts.get("ImageUrl") or None,
        image_icon_url=parts.get("ImageIconUrl") or None,
        small_image_icon_url=parts.get("SmallImageIconUrl") or None,
        media_url=parts.get("MediaUrl") or None,
        sound=parts.get("Sound") or None,
        data=dict(content.get("data") or {}),
        silent=bool(content.get("silent")),
        ttl_s=None if ttl is None else int(ttl),
        raw_content=raw,
        campaign=campaign,
        journey=journey,
        context=dict(request.get("context") or {}),
        created_ms=now_ms,
    )


# -- records ------------------------------------------------------------------------


def _send_record(
    subject: DeliverySubject, now_ms: int, delivery: str, status: DeliveryStatus,
    status_code: int | None, status_message: str, extra: Mapping[str, str | None],
) -> Record:
    if subject.is_campaign:
        record = campaign_send(subject, now_ms, delivery_type=delivery, send_status=status.value)
    elif subject.is_journey:
        record = journey_send(subject, now_ms, delivery_type=delivery, send_status=status.value,
                              activity_type="PUSH")
    else:
        record = channel_outcome(subject, now_ms, success=status is DeliveryStatus.SUCCESSFUL,
                                 delivery_type=delivery, status_code=status_code,
                                 status_message=status_message)
    attributes = record["attributes"]
    if status_code is not None:
        attributes["status_code"] = str(status_code)
    attributes["status_message"] = status_message
    for name, value in extra.items():
        if value is not None:
            attributes[name] = value
    return record


def skip_records(subject: DeliverySubject, skip: Skip, delivery: str,
                 now_ms: int) -> list[Record]:
    """Nothing was sent: OPT_OUT, or PERMANENT_FAILURE for an INACTIVE endpoint."""
    status = (DeliveryStatus.OPT_OUT if skip.reason is SkipReason.OPT_OUT
              else DeliveryStatus.PERMANENT_FAILURE)
    return [_send_record(subject, now_ms, delivery, status, None, skip.detail,
                         {"skip_reason": skip.reason.value})]


def suppressed_records(subject: DeliverySubject, delivery: str, now_ms: int) -> list[Record]:
    """The address is on the suppression list: PERMANENT_FAILURE, nothing sent."""
    skip = Skip(SkipReason.SUPPRESSED, "the address is on the suppression list")
    return skip_records(subject, skip, delivery, now_ms)


def unknown_outcome_records(subject: DeliverySubject, delivery: str,
                            now_ms: int) -> list[Record]:
    """A claim left by a sender that died mid-send: the push may have gone out, so it is
    not sent again; UNKNOWN_FAILURE with ``send_status=UNKNOWN``."""
    return [_send_record(subject, now_ms, delivery, DeliveryStatus.UNKNOWN_FAILURE, None,
                         "the sender that claimed this message stopped mid-send; it is not "
                         "sent again", {"send_status": "UNKNOWN"})]


def rendering_failure_records(subject: DeliverySubject, error: str, delivery: str,
                              now_ms: int) -> list[Record]:
    """The template did not render: PERMANENT_FAILURE, nothing sent."""
    return [_send_record(subject, now_ms, delivery, DeliveryStatus.PERMANENT_FAILURE, None,
                         f"rendering failure: {error}", {"failure_reason": "RENDERING_FAILURE"})]


def outcome_records(subject: DeliverySubject, outcome: ProviderOutcome, delivery: str,
                    now_ms: int) -> list[Record]:
    """The provider's final answer (after retries), with ``provider_message_id`` and
    ``dead_token=true`` when the token is gone."""
    extra = {
        "provider_message_id": outcome.provider_message_id,
        "dead_token": "true" if outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS else None,
    }
    return [_send_record(subject, now_ms, delivery, outcome.delivery_status,
                         outcome.status_code, outcome.message, extra)]


def dead_token_command(request: Mapping[str, Any], outcome: ProviderOutcome,
                       now_ms: int) -> Command | None:
    """DEACTIVATE for the endpoint when the provider said its token is dead; None
    otherwise (or for a send to a raw address)."""
    endpoint_id = request.get("endpoint_id")
    if outcome.kind is not ProviderOutcomeKind.DEAD_ADDRESS or not endpoint_id:
        return None
    reason = f"{delivery_type(request)} token rejected: {outcome.message}"
    return deactivate_command(request["app_id"], endpoint_id, reason,
                              f"dead-address-{request['message_id']}", now_ms)
