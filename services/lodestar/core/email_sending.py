"""What the email sender decides for one ``lodestar.v1.SendRequest``, as values.

Pure: no I/O. The adapter (``lodestar.channels.email_sender``) reads the
template and the dedupe row, talks SMTP and Kafka; this module decides:

- ``screen(request)``: ``Skip`` for an endpoint snapshot with ``OptOut: ALL``
  (reason ``OPT_OUT``) or ``EndpointStatus: INACTIVE`` (``INACTIVE``), else
  ``None``. A skip becomes one ``_email.rejected`` record with
  ``reject_reason`` and nothing reaches SMTP.
- ``email_definition(template_definition, content)``: the EmailTemplateRequest
  to render: the stored template (or nothing), overlaid by the request's
  non-null ``subject``/``html_body``/``text_body`` (which are Handlebars too).
- ``prepare_email(...)``: render it against the request's endpoint snapshot
  and substitutions and build the MIME message as the bytes SMTP sends
  (``OutgoingEmail``: data plus envelope); ``Prepared`` or
  ``RenderingFailed`` (template invalid or missing, render failure, header
  refused by ``build_email``): never a half-built message.
- ``claim_verdict(...)``: what to do with a message id given its dedupe row
  (see ``ClaimVerdict``).
- the records published for each ending (``skip_records``,
  ``rendering_failure_records``, ``smtp_records``, ``unknown_outcome_records``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lodestar.core.delivery_events import (
    DeliverySubject,
    EventType,
    Record,
    delivery_record,
    email_rendering_failure,
    email_send,
    email_smtp_outcome,
)
from lodestar.core.email_message import (
    EmailBuildError,
    Tracking,
    Unsubscribe,
    build_email,
    unsubscribe_url,
)
from lodestar.core.email_wire import OutgoingEmail
from lodestar.core.endpoint_view import endpoint_response
from lodestar.core.template_context import RecipientContext, address_context, personal_variables
from lodestar.core.template_values import ValueList
from lodestar.core.templates import (
    EmailTemplate,
    RenderFailure,
    TemplateDefinitionError,
    parse_template,
    render,
    root_names,
)

OWN_UNSUBSCRIBE_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
"""Request headers the sender drops: Lodestar writes its own List-Unsubscribe pair."""


class SkipReason(StrEnum):
    OPT_OUT = "OPT_OUT"
    INACTIVE = "INACTIVE"
    SUPPRESSED = "SUPPRESSED"


@dataclass(frozen=True)
class Skip:
    reason: SkipReason
    detail: str


class SendState(StrEnum):
    """States of a message id in the dedupe table (``sent_messages.state``)."""

    CLAIMED = "CLAIMED"
    SENT = "SENT"
    FAILED = "FAILED"


class ClaimVerdict(StrEnum):
    SEND = "SEND"
    """We just claimed the id: go ahead and talk to SMTP."""
    REPUBLISH = "REPUBLISH"
    """SENT or FAILED already: publish the stored delivery records again, send nothing."""
    RESOLVE_UNKNOWN = "RESOLVE_UNKNOWN"
    """CLAIMED by a sender that is gone (or by an earlier, aborted attempt of our own):
    it may have reached the relay, so it is never sent again; finish it as SENT with
    an unknown outcome."""
    LEAVE = "LEAVE"
    """CLAIMED by another sender that is alive: it publishes the outcome itself."""


def claim_verdict(
    *, claimed_now: bool, state: SendState | str | None, claimed_by: str | None, me: str,
    claimant_alive: bool, in_flight: bool = False,
) -> ClaimVerdict:
    """What to do with a message id after trying to claim it."""
    if claimed_now:
        return ClaimVerdict.SEND
    if state is None:
        raise ValueError("a message id that was not claimed now must have a row")
    if SendState(state) is not SendState.CLAIMED:
        return ClaimVerdict.REPUBLISH
    if claimed_by == me:
        return ClaimVerdict.LEAVE if in_flight else ClaimVerdict.RESOLVE_UNKNOWN
    return ClaimVerdict.LEAVE if claimant_alive else ClaimVerdict.RESOLVE_UNKNOWN


def screen(request: Mapping[str, Any]) -> Skip | None:
    """A skip for an opted-out or inactive endpoint snapshot; None when it may be sent."""
    endpoint = request.get("endpoint")
    if not endpoint:
        return None
    if endpoint.get("opt_out") == "ALL":
        return Skip(SkipReason.OPT_OUT, "the endpoint opted out of all messages (OptOut ALL)")
    if endpoint.get("endpoint_status") == "INACTIVE":
        return Skip(SkipReason.INACTIVE, "the endpoint is INACTIVE")
    return None


def recipient_context(request: Mapping[str, Any]) -> RecipientContext:
    """Template variables of the recipient: the endpoint snapshot, or the bare address."""
    endpoint = request.get("endpoint")
    if not endpoint:
        return address_context(request["address"], request.get("channel_type") or "EMAIL")
    data: dict[str, Any] = {}
    for key, value in endpoint_response(request["app_id"], endpoint).items():
        if key == "Attributes":
            data[key] = {k: ValueList(v) for k, v in value.items()}
        elif key == "User":
            user = dict(value)
            if "UserAttributes" in user:
                user["UserAttributes"] = {
                    k: ValueList(v) for k, v in user["UserAttributes"].items()}
            data[key] = user
        else:
            data[key] = value
    return RecipientContext(data, endpoint.get("channel_type") or "EMAIL")


def email_definition(
    template_definition: Mapping[str, Any] | None, content: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The EmailTemplateRequest to render: the template overlaid by the request's parts."""
    out = dict(template_definition or {})
    out.pop("tags", None)
    for ours, pinpoint in (("subject", "Subject"), ("html_body", "HtmlPart"),
                           ("text_body", "TextPart")):
        value = (content or {}).get(ours)
        if value is not None:
            out[pinpoint] = value
    return out


@dataclass(frozen=True)
class Prepared:
    message: OutgoingEmail
    """The serialised message with its envelope, ready for SMTP DATA."""
    from_address: str


@dataclass(frozen=True)
class RenderingFailed:
    error: str


@dataclass(frozen=True)
class EmailDefaults:
    """What the sender's settings supply to every message."""

    from_address: str
    message_id_domain: str
    tracking_base_url: str
    tracking_secret: bytes | None = None


@functools.lru_cache(maxsize=1024)
def _email_template(definition_json: str | None, subject: str | None, html_body: str | None,
                    text_body: str | None) -> tuple[EmailTemplate, frozenset[str] | None]:
    """The stored template (as canonical JSON) overlaid by the request's parts, parsed
    and compiled once per distinct input (a send renders the same parts for every
    recipient), with its ``root_names``. Raises ``TemplateDefinitionError``."""
    definition = json.loads(definition_json) if definition_json is not None else None
    content = {"subject": subject, "html_body": html_body, "text_body": text_body}
    template = parse_template("EMAIL", email_definition(definition, content))
    assert isinstance(template, EmailTemplate)
    return template, root_names(template)


def _recipient(request: Mapping[str, Any], names: frozenset[str] | None) -> RecipientContext:
    """``recipient_context(request)``, built only as far as a template reading ``names``
    can tell (``template_context.personal_variables``)."""
    endpoint = request.get("endpoint")
    if endpoint:
        personal = personal_variables(endpoint, names)
        if personal is not None:
            return RecipientContext(personal, endpoint.get("channel_type") or "EMAIL")
    return recipient_context(request)


def prepare_email(
    request: Mapping[str, Any],
    template_definition: Mapping[str, Any] | None,
    defaults: EmailDefaults,
    now_ms: int,
) -> Prepared | RenderingFailed:
    """Render and build the message of ``request``; nothing half-done."""
    content = request.get("content") or {}
    try:
        definition_json = (json.dumps(template_definition, sort_keys=True)
                           if template_definition else None)
        template, names = _email_template(definition_json, content.get("subject"),
                                          content.get("html_body"), content.get("text_body"))
    except TemplateDefinitionError as exc:
        return RenderingFailed(f"template: {exc}")
    substitutions: Mapping[str, Sequence[str]] = request.get("substitutions") or {}
    rendered = render(template, _recipient(request, names), substitutions, now_ms,
                      seed=request["message_id"], names=names)
    if isinstance(rendered, RenderFailure):
        return RenderingFailed(f"{rendered.kind.value}: {rendered.message}")
    extra = [(h["name"], h["value"]) for h in content.get("headers") or ()
             if h["name"].lower() not in OWN_UNSUBSCRIBE_HEADERS]
    tracking = unsubscribe = None
    if defaults.tracking_secret is not None:
        tracking = Tracking(defaults.tracking_base_url, defaults.tracking_secret,
                            app_id=request["app_id"], endpoint_id=request.get("endpoint_id"))
        if defaults.tracking_base_url.lower().startswith("https://"):
            # RFC 8058 one-click needs https; over http (a local setup) the message
            # keeps open/click tracking and goes out without List-Unsubscribe.
            unsubscribe = Unsubscribe(url=unsubscribe_url(tracking, request["message_id"]))
    from_address = content.get("from_address") or defaults.from_address
    try:
        message = build_email(
            rendered,
            from_address=from_address,
            to_address=request["address"],
            message_id=request["message_id"],
            message_id_domain=defaults.message_id_domain,
            now_ms=now_ms,
            reply_to=list(content.get("reply_to") or ()),
            extra_headers=extra,
            unsubscribe=unsubscribe,
            tracking=tracking,
        )
    except EmailBuildError as exc:
        return RenderingFailed(f"message: {exc}")
    return Prepared(message, from_address)


# -- records ------------------------------------------------------------------------


def skip_records(subject: DeliverySubject, skip: Skip, now_ms: int) -> list[Record]:
    return [delivery_record(subject, EventType.EMAIL_REJECTED, now_ms,
                            {"reject_reason": skip.reason.value, "error_message": skip.detail})]


def rendering_failure_records(subject: DeliverySubject, error: str, now_ms: int) -> list[Record]:
    return [email_rendering_failure(subject, now_ms, error)]


@dataclass(frozen=True)
class FinalOutcome:
    """The last SMTP answer for a message, after retries."""

    kind: str  # DELIVERED, SOFT_BOUNCE, HARD_BOUNCE
    code: int | None
    message: str
    stage: str
    attempts: int


_QUEUED_AS = re.compile(r"\bqueued as ([A-Za-z0-9][\w.@-]{3,200})", re.IGNORECASE)
_ID_IS = re.compile(r"\bid=([A-Za-z0-9][\w.@-]{3,200})")
_OK_TOKEN = re.compile(r"(?:[245]\.\d{1,3}\.\d{1,3} )?Ok ([A-Za-z0-9][\w.@-]{7,200})\s*",
                       re.IGNORECASE)


def relay_message_id(reply: str) -> str | None:
    """The id a relay gave an accepted message, read from its 250 answer to DATA:
    SES (``Ok 0100018c…-000000``, SES's ``mail.messageId``), Postfix (``2.0.0 Ok:
    queued as 4Zx…``), Exim (``OK id=1rA…``); ``None`` when the answer names none."""
    for pattern in (_QUEUED_AS, _ID_IS):
        found = pattern.search(reply)
        if found:
            return found.group(1)
    found = _OK_TOKEN.fullmatch(reply)
    return found.group(1) if found else None


def final_state(outcome: FinalOutcome) -> SendState:
    return SendState.SENT if outcome.kind == "DELIVERED" else SendState.FAILED


def smtp_records(subject: DeliverySubject, outcome: FinalOutcome, sent_ms: int,
                 done_ms: int) -> list[Record]:
    """``_email.send`` then the outcome (delivered/softbounce/hardbounce/rejected)."""
    last = email_smtp_outcome(subject, done_ms, kind=outcome.kind, code=outcome.code,
                              message=outcome.message, stage=outcome.stage)
    last["attributes"]["smtp_attempts"] = str(outcome.attempts)
    return [email_send(subject, sent_ms), last]


def unknown_outcome_records(subject: DeliverySubject, now_ms: int) -> list[Record]:
    """A claim left by a sender that died mid-send: it may have reached the relay.
    Only ``_email.send`` (with ``send_status=UNKNOWN``) is published."""
    return [delivery_record(subject, EventType.EMAIL_SEND, now_ms,
                            {"send_status": "UNKNOWN",
                             "error_message": "the sender that claimed this message stopped "
                             "mid-send; it is not sent again"})]
