"""Message templates (Pinpoint's EMAIL, SMS, PUSH, VOICE; IN_APP stored as-is).

``parse_template(type, body)`` validates a Pinpoint template request
(EmailTemplateRequest, SMSTemplateRequest, PushNotificationTemplateRequest,
VoiceTemplateRequest, InAppTemplateRequest — member names from botocore's
``pinpoint/2016-12-01`` model) into frozen records, compiling every Handlebars
part and parsing DefaultSubstitutions, so a template that does not compile is
refused up front. Errors are ``TemplateDefinitionError`` whose ``field`` is
the offending path, e.g. ``APNS.Body`` or ``Headers[2].Name``.

``render(template, recipient, substitutions, now_ms)`` returns ``Rendered``
(every part) or ``RenderFailure`` (the part and the reason) — never a
half-rendered message. What a send needs:

- EMAIL: Subject and HtmlPart or TextPart; header values are rendered too and
  may be at most 870 characters once rendered;
- SMS, VOICE: Body;
- PUSH: Body or RawContent after choosing the recipient's channel. The
  channel's template (APNS for APNS/APNS_SANDBOX/APNS_VOIP*, GCM, Baidu, ADM)
  overrides Default field by field; other channels use Default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from lodestar.core.request_fields import FieldError, as_enum, as_object, known_keys
from lodestar.core.template_context import (
    RecipientContext,
    SubstitutionError,
    build_render_data,
    parse_default_substitutions,
    parse_substitutions,
)
from lodestar.core.template_helpers import HELPER_NAMES, Helper, helpers_for
from lodestar.core.template_render import (
    CompiledPart,
    PartError,
    TemplateSyntaxError,
    compile_part,
    run_part,
)

MAX_HEADERS = 15
MAX_HEADER_NAME = 126
MAX_HEADER_VALUE = 870
_E = TypeVar("_E", bound=StrEnum)


class TemplateDefinitionError(FieldError):
    """An invalid template request; ``field`` is the offending path."""


class TemplateType(StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    VOICE = "VOICE"
    INAPP = "INAPP"


class PushAction(StrEnum):
    OPEN_APP = "OPEN_APP"
    DEEP_LINK = "DEEP_LINK"
    URL = "URL"


class FailureKind(StrEnum):
    """Why a render failed (carried by ``_email.rendering_failure``-style events)."""

    MISSING_PART = "MISSING_PART"
    UNKNOWN_HELPER = "UNKNOWN_HELPER"
    HELPER_ERROR = "HELPER_ERROR"
    RENDER_ERROR = "RENDER_ERROR"
    INVALID_SUBSTITUTIONS = "INVALID_SUBSTITUTIONS"
    PART_TOO_LONG = "PART_TOO_LONG"


@dataclass(frozen=True)
class Part:
    """A Handlebars part: ``name`` is its Pinpoint path (``HtmlPart``, ``APNS.Body``)."""

    name: str
    compiled: CompiledPart

    @property
    def source(self) -> str:
        return self.compiled.source


@dataclass(frozen=True)
class Common:
    """Members every template request shares."""

    default_substitutions: str | None = None
    template_description: str | None = None
    recommender_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """DefaultSubstitutions parsed (see ``template_context``)."""


@dataclass(frozen=True)
class EmailHeader:
    name: str
    value: Part


@dataclass(frozen=True)
class EmailTemplate:
    subject: Part | None
    html_part: Part | None
    text_part: Part | None
    headers: tuple[EmailHeader, ...] = ()
    common: Common = Common()
    template_type: TemplateType = TemplateType.EMAIL


@dataclass(frozen=True)
class SmsTemplate:
    body: Part | None
    common: Common = Common()
    template_type: TemplateType = TemplateType.SMS


@dataclass(frozen=True)
class VoiceTemplate:
    body: Part | None
    language_code: str | None = None
    voice_id: str | None = None
    common: Common = Common()
    template_type: TemplateType = TemplateType.VOICE


PUSH_TEXT_FIELDS = ("Body", "Title", "Url", "Sound", "ImageUrl", "ImageIconUrl",
                    "SmallImageIconUrl", "MediaUrl", "RawContent")
_PUSH_MEMBERS: Mapping[str, frozenset[str]] = {
    "Default": frozenset({"Action", "Body", "Sound", "Title", "Url"}),
    "APNS": frozenset({"Action", "Body", "MediaUrl", "RawContent", "Sound", "Title", "Url"}),
    "GCM": frozenset({"Action", "Body", "ImageIconUrl", "ImageUrl", "RawContent",
                      "SmallImageIconUrl", "Sound", "Title", "Url"}),
}
_PUSH_MEMBERS = {**_PUSH_MEMBERS, "Baidu": _PUSH_MEMBERS["GCM"], "ADM": _PUSH_MEMBERS["GCM"]}
PUSH_CHANNELS = ("Default", "APNS", "GCM", "Baidu", "ADM")
_PUSH_CHANNEL_OF = {
    "APNS": "APNS", "APNS_SANDBOX": "APNS", "APNS_VOIP": "APNS", "APNS_VOIP_SANDBOX": "APNS",
    "GCM": "GCM", "BAIDU": "Baidu", "ADM": "ADM",
}


@dataclass(frozen=True)
class PushChannelTemplate:
    """One of Default / APNS / GCM / Baidu / ADM: its Action and text parts by field name."""

    action: PushAction | None = None
    parts: Mapping[str, Part] = field(default_factory=dict)


@dataclass(frozen=True)
class PushTemplate:
    channels: Mapping[str, PushChannelTemplate]
    """Only the channels the request gave, keyed Default/APNS/GCM/Baidu/ADM."""
    common: Common = Common()
    template_type: TemplateType = TemplateType.PUSH


@dataclass(frozen=True)
class InAppTemplate:
    """Stored as given (in-app templates take no variables)."""

    content: tuple[Mapping[str, Any], ...] = ()
    custom_config: Mapping[str, str] = field(default_factory=dict)
    layout: str | None = None
    template_description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    template_type: TemplateType = TemplateType.INAPP


RenderableTemplate = EmailTemplate | SmsTemplate | PushTemplate | VoiceTemplate
Template = RenderableTemplate | InAppTemplate


@dataclass(frozen=True)
class Rendered:
    """Every rendered part by Pinpoint field name (``Subject``, ``HtmlPart``, ``Body``…),
    rendered email headers, and the settings that are not rendered (``Action``,
    ``LanguageCode``, ``VoiceId``)."""

    template_type: TemplateType
    parts: Mapping[str, str]
    headers: tuple[tuple[str, str], ...] = ()
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderFailure:
    """Nothing was rendered: ``part`` (e.g. ``HtmlPart``) failed for ``reason``."""

    kind: FailureKind
    part: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.part}: {self.reason}"


# ----------------------------------------------------------------- parsing


def parse_template(template_type: TemplateType | str, body: object) -> Template:
    """A validated template of ``template_type``; raises ``TemplateDefinitionError``."""
    kind = _enum(TemplateType, template_type, "TemplateType")
    if kind is TemplateType.EMAIL:
        return parse_email_template(body)
    if kind is TemplateType.SMS:
        return parse_sms_template(body)
    if kind is TemplateType.PUSH:
        return parse_push_template(body)
    if kind is TemplateType.VOICE:
        return parse_voice_template(body)
    return parse_in_app_template(body)


def parse_email_template(body: object) -> EmailTemplate:
    data = _obj(body, "EmailTemplateRequest")
    _keys(data, "", {"Subject", "HtmlPart", "TextPart", "Headers", "DefaultSubstitutions",
                     "RecommenderId", "TemplateDescription", "tags"})
    headers = []
    raw_headers = data.get("Headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, list):
            raise TemplateDefinitionError("Headers", "must be a list")
        if len(raw_headers) > MAX_HEADERS:
            raise TemplateDefinitionError(
                "Headers", f"{len(raw_headers)} headers; at most {MAX_HEADERS}")
        for i, item in enumerate(raw_headers):
            path = f"Headers[{i}]"
            header = _obj(item, path)
            _keys(header, path, {"Name", "Value"})
            name = header.get("Name")
            if not isinstance(name, str) or not name:
                raise TemplateDefinitionError(f"{path}.Name", "must be a non-empty string")
            if len(name) > MAX_HEADER_NAME:
                raise TemplateDefinitionError(
                    f"{path}.Name", f"at most {MAX_HEADER_NAME} characters")
            if not re.fullmatch(r"[!-9;-~]+", name):
                raise TemplateDefinitionError(
                    f"{path}.Name", "must be printable ASCII without spaces or ':'")
            value = _part(header.get("Value"), f"{path}.Value", html=False)
            if value is None:
                raise TemplateDefinitionError(f"{path}.Value", "is required")
            if len(value.source) > MAX_HEADER_VALUE:
                raise TemplateDefinitionError(
                    f"{path}.Value", f"at most {MAX_HEADER_VALUE} characters")
            headers.append(EmailHeader(name, value))
    return EmailTemplate(
        subject=_part(data.get("Subject"), "Subject", html=False),
        html_part=_part(data.get("HtmlPart"), "HtmlPart", html=True),
        text_part=_part(data.get("TextPart"), "TextPart", html=False),
        headers=tuple(headers),
        common=_common(data),
    )


def parse_sms_template(body: object) -> SmsTemplate:
    data = _obj(body, "SMSTemplateRequest")
    _keys(data, "", {"Body", "DefaultSubstitutions", "RecommenderId", "TemplateDescription",
                     "tags"})
    return SmsTemplate(_part(data.get("Body"), "Body", html=False), _common(data))


_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")


def parse_voice_template(body: object) -> VoiceTemplate:
    data = _obj(body, "VoiceTemplateRequest")
    _keys(data, "", {"Body", "LanguageCode", "VoiceId", "DefaultSubstitutions",
                     "TemplateDescription", "tags"})
    language = _string(data.get("LanguageCode"), "LanguageCode")
    if language is not None and not _LANGUAGE_CODE.fullmatch(language):
        raise TemplateDefinitionError(
            "LanguageCode", f"{language!r} is not a language code such as en-US")
    voice = _string(data.get("VoiceId"), "VoiceId")
    if voice is not None and not voice:
        raise TemplateDefinitionError("VoiceId", "must not be empty")
    return VoiceTemplate(_part(data.get("Body"), "Body", html=False), language, voice,
                         _common(data))


def parse_push_template(body: object) -> PushTemplate:
    data = _obj(body, "PushNotificationTemplateRequest")
    _keys(data, "", {*PUSH_CHANNELS, "DefaultSubstitutions", "RecommenderId",
                     "TemplateDescription", "tags"})
    channels: dict[str, PushChannelTemplate] = {}
    for channel in PUSH_CHANNELS:
        if data.get(channel) is None:
            continue
        section = _obj(data[channel], channel)
        _keys(section, channel, set(_PUSH_MEMBERS[channel]))
        action = None
        if section.get("Action") is not None:
            action = _enum(PushAction, section["Action"], f"{channel}.Action")
        parts: dict[str, Part] = {}
        for name in PUSH_TEXT_FIELDS:
            if name in _PUSH_MEMBERS[channel]:
                part = _part(section.get(name), f"{channel}.{name}", html=False)
                if part is not None:
                    parts[name] = part
        channels[channel] = PushChannelTemplate(action, parts)
    return PushTemplate(channels, _common(data))


def parse_in_app_template(body: object) -> InAppTemplate:
    data = _obj(body, "InAppTemplateRequest")
    _keys(data, "", {"Content", "CustomConfig", "Layout", "TemplateDescription", "tags"})
    content = data.get("Content") or []
    if not isinstance(content, list) or not all(isinstance(c, Mapping) for c in content):
        raise TemplateDefinitionError("Content", "must be a list of objects")
    if len(content) > 5:
        raise TemplateDefinitionError("Content", "at most 5 messages")
    return InAppTemplate(
        content=tuple(content),
        custom_config=_string_map(data.get("CustomConfig"), "CustomConfig"),
        layout=_string(data.get("Layout"), "Layout"),
        template_description=_string(data.get("TemplateDescription"), "TemplateDescription"),
        tags=_string_map(data.get("tags"), "tags"),
    )


def _common(data: Mapping[str, Any]) -> Common:
    raw = _string(data.get("DefaultSubstitutions"), "DefaultSubstitutions")
    try:
        defaults = parse_default_substitutions(raw)
    except SubstitutionError as exc:
        raise TemplateDefinitionError(exc.field, exc.message) from None
    return Common(
        default_substitutions=raw,
        template_description=_string(data.get("TemplateDescription"), "TemplateDescription"),
        recommender_id=_string(data.get("RecommenderId"), "RecommenderId"),
        tags=_string_map(data.get("tags"), "tags"),
        defaults=defaults,
    )


def _part(value: object, path: str, *, html: bool) -> Part | None:
    source = _string(value, path)
    if source is None:
        return None
    try:
        return Part(path, compile_part(source, html=html))
    except TemplateSyntaxError as exc:
        raise TemplateDefinitionError(path, f"template does not compile: {exc.message}") from None


def _obj(value: object, path: str) -> Mapping[str, Any]:
    return as_object(TemplateDefinitionError, value, path)


def _keys(data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    known_keys(TemplateDefinitionError, data, path, allowed)


def _string(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TemplateDefinitionError(path, "must be a string")
    return value


def _string_map(value: object, path: str) -> dict[str, str]:
    if value is None:
        return {}
    data = _obj(value, path)
    for key, item in data.items():
        if not isinstance(item, str):
            raise TemplateDefinitionError(f"{path}.{key}", "must be a string")
    return dict(data)


def _enum(kind: type[_E], value: object, path: str) -> _E:
    return as_enum(TemplateDefinitionError, kind, value, path)


# ---------------------------------------------------------------- rendering


def push_channel(channel_type: str | None) -> str:
    """The PushNotificationTemplateRequest section for an endpoint ChannelType."""
    return _PUSH_CHANNEL_OF.get(channel_type or "", "Default")


class _Names(Enum):
    OF_TEMPLATE = "of the template"


_NO_HELPERS: Mapping[str, Helper] = MappingProxyType({})


def render(
    template: RenderableTemplate,
    recipient: RecipientContext,
    substitutions: Mapping[str, Sequence[str]] | None,
    now_ms: int,
    *,
    seed: str = "",
    names: frozenset[str] | Literal[_Names.OF_TEMPLATE] | None = _Names.OF_TEMPLATE,
) -> Rendered | RenderFailure:
    """Render every part of ``template`` for ``recipient``.

    ``substitutions`` are send-time Substitutions (already merged message-level
    then per-recipient); ``now_ms`` is the clock of ``now``/``dateFormat``;
    ``seed`` (e.g. the message id) makes ``uuid`` repeatable. ``names``: the
    template's ``root_names`` when the caller has them already (computed otherwise).
    A template that reads no helper's name renders without building the helpers.
    """
    try:
        overrides = parse_substitutions(substitutions)
    except SubstitutionError as exc:
        return RenderFailure(FailureKind.INVALID_SUBSTITUTIONS, exc.field, exc.message)
    if names is _Names.OF_TEMPLATE:
        names = root_names(template)
    data = build_render_data(template.common.defaults, recipient, overrides, names=names)
    helpers = (helpers_for(now_ms, seed) if names is None or not names.isdisjoint(HELPER_NAMES)
               else _NO_HELPERS)

    def run(part: Part) -> str:
        try:
            return run_part(part.compiled, data, helpers)
        except PartError as exc:
            raise _Failed(RenderFailure(FailureKind(exc.kind), part.name, exc.reason)) from None

    try:
        if isinstance(template, EmailTemplate):
            return _render_email(template, run)
        if isinstance(template, PushTemplate):
            return _render_push(template, recipient.channel_type, run)
        return _render_body(template, run)
    except _Failed as failed:
        return failed.failure


def _parts(template: RenderableTemplate) -> list[Part]:
    if isinstance(template, EmailTemplate):
        parts = [p for p in (template.subject, template.html_part, template.text_part)
                 if p is not None]
        return parts + [h.value for h in template.headers]
    if isinstance(template, PushTemplate):
        return [p for c in template.channels.values() for p in c.parts.values()]
    return [template.body] if template.body is not None else []


def root_names(template: RenderableTemplate) -> frozenset[str] | None:
    """The top-level names any part of ``template`` can read from the render root, or
    None when a part may read the root as a whole (``CompiledPart.root_names``)."""
    names: set[str] = set()
    for part in _parts(template):
        found = part.compiled.root_names
        if found is None:
            return None
        names |= found
    return frozenset(names)


class _Failed(Exception):
    def __init__(self, failure: RenderFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _missing(part: str, reason: str) -> _Failed:
    return _Failed(RenderFailure(FailureKind.MISSING_PART, part, reason))


def _render_email(template: EmailTemplate, run: Any) -> Rendered:
    if template.subject is None:
        raise _missing("Subject", "an email template needs a Subject")
    if template.html_part is None and template.text_part is None:
        raise _missing("HtmlPart", "an email template needs an HtmlPart or a TextPart")
    parts = {"Subject": run(template.subject)}
    if template.html_part is not None:
        parts["HtmlPart"] = run(template.html_part)
    if template.text_part is not None:
        parts["TextPart"] = run(template.text_part)
    headers = []
    for header in template.headers:
        value = run(header.value)
        if len(value) > MAX_HEADER_VALUE:
            raise _Failed(RenderFailure(
                FailureKind.PART_TOO_LONG, header.value.name,
                f"rendered to {len(value)} characters; at most {MAX_HEADER_VALUE}"))
        if "\r" in value or "\n" in value:
            raise _Failed(RenderFailure(
                FailureKind.RENDER_ERROR, header.value.name, "a header may not hold line breaks"))
        headers.append((header.name, value))
    return Rendered(TemplateType.EMAIL, parts, tuple(headers))


def _render_body(template: SmsTemplate | VoiceTemplate, run: Any) -> Rendered:
    if template.body is None:
        raise _missing("Body", f"a {template.template_type.value} template needs a Body")
    settings: dict[str, str] = {}
    if isinstance(template, VoiceTemplate):
        if template.language_code is not None:
            settings["LanguageCode"] = template.language_code
        if template.voice_id is not None:
            settings["VoiceId"] = template.voice_id
    return Rendered(template.template_type, {"Body": run(template.body)}, (), settings)


def _render_push(template: PushTemplate, channel_type: str | None, run: Any) -> Rendered:
    channel = push_channel(channel_type)
    default = template.channels.get("Default", PushChannelTemplate())
    specific = template.channels.get(channel) if channel != "Default" else None
    chosen: dict[str, Part] = dict(default.parts)
    action = default.action
    if specific is not None:
        chosen.update(specific.parts)
        action = specific.action or action
    if "Body" not in chosen and "RawContent" not in chosen:
        raise _missing(f"{channel}.Body", "a push template needs a Body or RawContent")
    parts = {name: run(part) for name, part in chosen.items()}
    settings = {"Action": action.value} if action is not None else {}
    return Rendered(TemplateType.PUSH, parts, (), settings)
