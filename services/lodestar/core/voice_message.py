"""What the voice sender decides for one ``lodestar.v1.SendRequest``, as values.

Pure: no I/O. The transport (``lodestar.channels.voice_twilio``) places the call.

- ``screen`` is ``email_sending.screen``: opt-out (``OptOut: ALL``) and INACTIVE
  endpoints are skipped before anything is rendered.
- ``voice_definition(template, content)``: the VoiceTemplateRequest to render —
  the stored VOICE template overlaid by the request's non-null ``body``,
  ``language_code`` and ``voice_id``.
- ``prepare_call(request, template, defaults, now_ms)``: render it against the
  endpoint snapshot and substitutions into a ``VoiceCall`` whose ``twiml`` is
  ``<Response><Say language=".." voice="..">text</Say></Response>``, or
  ``RenderingFailed`` — never a half-built call.
- TwiML mapping: Pinpoint's ``VoiceId`` names an Amazon Polly voice; Twilio
  speaks Polly voices as ``Polly.<Name>`` (``Joanna`` → ``Polly.Joanna``,
  ``Joanna-Neural`` → ``Polly.Joanna-Neural``). A value that already names a
  Twilio voice (``Polly.*``, ``Google.*``, ``man``, ``woman``, ``alice``) is kept.
  ``LanguageCode`` (``en-US``, ``ja-JP``, ``cmn-CN``, ``arb`` …) is Twilio's
  ``language`` unchanged. The default voice is used only with the default
  language (a Polly voice speaks one language); otherwise Twilio picks its
  voice for the language. A body that is SSML (``<speak>…</speak>``) has its
  elements copied into ``<Say>`` when Twilio supports them (break, emphasis,
  lang, p, phoneme, prosody, s, say-as, sub, w); any other SSML is a rendering
  failure. Everything else is text, XML-escaped.
- records: ``_voice.success|failure`` (``delivery_events.channel_outcome``) plus
  ``_campaign.send`` / ``_journey.send`` for those sources. How the call ended
  (Twilio's status callback) is ``core.voice_receipts``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lodestar.core.delivery_events import (
    DeliverySubject,
    Record,
    campaign_send,
    channel_outcome,
    journey_send,
)
from lodestar.core.email_sending import Skip, SkipReason, recipient_context, screen
from lodestar.core.provider_outcome import DeliveryStatus, ProviderOutcome
from lodestar.core.template_context import RecipientContext, address_context
from lodestar.core.templates import (
    RenderFailure,
    TemplateDefinitionError,
    VoiceTemplate,
    parse_template,
    render,
)

__all__ = ["RenderingFailed", "Skip", "VoiceCall", "VoiceDefaults", "prepare_call", "screen"]

TWIML_MAX_CHARS = 4000
"""Twilio refuses a ``Twiml`` parameter longer than this."""
TWILIO_NAMED_VOICES = frozenset({"man", "woman", "alice"})
SSML_ELEMENTS = frozenset({"break", "emphasis", "lang", "p", "phoneme", "prosody", "s",
                           "say-as", "sub", "w"})
DELIVERY_TYPE = "VOICE"


@dataclass(frozen=True)
class VoiceDefaults:
    """What the sender's settings supply when the message and template do not."""

    origination_number: str | None = None
    language_code: str = "en-US"
    voice_id: str | None = "Joanna"


@dataclass(frozen=True)
class VoiceCall:
    to: str
    from_number: str
    twiml: str
    language: str
    voice: str | None
    text: str
    message_id: str = ""  # Lodestar's: the call-status callback URL names it
    app_id: str = ""


@dataclass(frozen=True)
class RenderingFailed:
    error: str


def twilio_voice(voice_id: str | None) -> str | None:
    """Twilio's ``voice`` for a Pinpoint/Polly ``VoiceId`` (see the module doc)."""
    if voice_id is None or not voice_id.strip():
        return None
    voice = voice_id.strip()
    if voice in TWILIO_NAMED_VOICES or "." in voice:
        return voice
    return f"Polly.{voice}"


def voice_definition(
    template_definition: Mapping[str, Any] | None, content: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The VoiceTemplateRequest to render: the template overlaid by the request's parts."""
    out = dict(template_definition or {})
    out.pop("tags", None)
    for ours, pinpoint in (("body", "Body"), ("language_code", "LanguageCode"),
                           ("voice_id", "VoiceId")):
        value = (content or {}).get(ours)
        if value is not None:
            out[pinpoint] = value
    return out


def _ssml_content(body: str) -> tuple[str | None, list[ET.Element]] | str:
    """The leading text and elements inside ``<speak>``, or why they are refused."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        return f"SSML does not parse: {exc}"
    for element in root.iter():  # drop the SSML namespace, Twilio takes bare names
        element.tag = element.tag.rpartition("}")[2]
    if root.tag != "speak":
        return "SSML must have <speak> as its root"
    for element in root.iter():
        if element is not root and element.tag not in SSML_ELEMENTS:
            return f"SSML element <{element.tag}> is not supported inside Twilio <Say>"
    return root.text, list(root)


def build_twiml(text: str, language: str, voice: str | None) -> str | RenderingFailed:
    """``<Response><Say …>text</Say></Response>``; text escaped, SSML elements kept."""
    response = ET.Element("Response")
    attrs = {"language": language}
    if voice is not None:
        attrs["voice"] = voice
    say = ET.SubElement(response, "Say", attrs)
    if text.lstrip().startswith("<speak"):
        content = _ssml_content(text.strip())
        if isinstance(content, str):
            return RenderingFailed(content)
        say.text, elements = content
        say.extend(elements)
    else:
        say.text = text
    twiml = ET.tostring(response, encoding="unicode", short_empty_elements=True)
    if len(twiml) > TWIML_MAX_CHARS:
        return RenderingFailed(f"the TwiML is {len(twiml)} characters; Twilio takes at most "
                               f"{TWIML_MAX_CHARS}")
    return twiml


def _recipient(request: Mapping[str, Any]) -> RecipientContext:
    if request.get("endpoint"):
        return recipient_context(request)
    return address_context(request["address"], request.get("channel_type") or "VOICE")


def prepare_call(
    request: Mapping[str, Any],
    template_definition: Mapping[str, Any] | None,
    defaults: VoiceDefaults,
    now_ms: int,
) -> VoiceCall | RenderingFailed:
    """Render ``request`` into a call; ``RenderingFailed`` when anything is missing or wrong."""
    content = request.get("content") or {}
    try:
        template = parse_template("VOICE", voice_definition(template_definition, content))
    except TemplateDefinitionError as exc:
        return RenderingFailed(f"template: {exc}")
    assert isinstance(template, VoiceTemplate)
    substitutions: Mapping[str, Sequence[str]] = request.get("substitutions") or {}
    rendered = render(template, _recipient(request), substitutions, now_ms,
                      seed=request["message_id"])
    if isinstance(rendered, RenderFailure):
        return RenderingFailed(f"{rendered.kind.value}: {rendered.message}")
    text = rendered.parts["Body"]
    if not text.strip():
        return RenderingFailed("Body: rendered to nothing to say")
    from_number = content.get("origination_number") or defaults.origination_number
    if not from_number:
        return RenderingFailed("OriginationNumber: no number to call from (message or settings)")
    language = rendered.settings.get("LanguageCode") or defaults.language_code
    voice_id = rendered.settings.get("VoiceId")
    if voice_id is None and language == defaults.language_code:
        voice_id = defaults.voice_id  # a default voice speaks the default language only
    voice = twilio_voice(voice_id)
    twiml = build_twiml(text, language, voice)
    if isinstance(twiml, RenderingFailed):
        return twiml
    return VoiceCall(request["address"], from_number, twiml, language, voice, text,
                     message_id=request["message_id"], app_id=request.get("app_id") or "")


# -- records ------------------------------------------------------------------------


def _source_records(subject: DeliverySubject, now_ms: int, status: str) -> list[Record]:
    if subject.is_campaign:
        return [campaign_send(subject, now_ms, delivery_type=DELIVERY_TYPE, send_status=status)]
    if subject.is_journey:
        return [journey_send(subject, now_ms, delivery_type=DELIVERY_TYPE, send_status=status,
                             activity_type="VOICE")]
    return []


def _failure(subject: DeliverySubject, now_ms: int, message: str, status: str,
             extra: Mapping[str, str]) -> list[Record]:
    record = channel_outcome(subject, now_ms, success=False, delivery_type=DELIVERY_TYPE,
                             status_message=message)
    record["attributes"].update(extra)
    return [record, *_source_records(subject, now_ms, status)]


def skip_records(subject: DeliverySubject, skip: Skip, now_ms: int) -> list[Record]:
    """``_voice.failure`` with ``reject_reason``; the source send is OPT_OUT or
    PERMANENT_FAILURE (inactive)."""
    status = (DeliveryStatus.OPT_OUT if skip.reason is SkipReason.OPT_OUT
              else DeliveryStatus.PERMANENT_FAILURE)
    return _failure(subject, now_ms, skip.detail, status.value,
                    {"reject_reason": skip.reason.value})


def rendering_failure_records(subject: DeliverySubject, error: str, now_ms: int) -> list[Record]:
    """``_voice.failure`` with ``reject_reason`` RENDERING_FAILURE; nothing was called."""
    return _failure(subject, now_ms, error, DeliveryStatus.PERMANENT_FAILURE.value,
                    {"reject_reason": "RENDERING_FAILURE"})


def outcome_records(subject: DeliverySubject, outcome: ProviderOutcome, now_ms: int,
                    attempts: int = 1) -> list[Record]:
    """The final provider answer: ``_voice.success`` (ACCEPTED) or ``_voice.failure``,
    with the call sid as ``provider_message_id``, then the source send record."""
    record = channel_outcome(subject, now_ms, success=outcome.accepted,
                             delivery_type=DELIVERY_TYPE, status_code=outcome.status_code,
                             status_message=outcome.message)
    record["attributes"]["attempts"] = str(attempts)
    record["attributes"]["outcome"] = outcome.kind.value
    if outcome.provider_message_id is not None:
        record["attributes"]["provider_message_id"] = outcome.provider_message_id
    return [record, *_source_records(subject, now_ms, outcome.delivery_status.value)]
