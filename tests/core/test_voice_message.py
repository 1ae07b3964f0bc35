from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from lodestar.core.delivery_events import DeliverySubject
from lodestar.core.email_sending import Skip, SkipReason
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    network_failure,
)
from lodestar.core.voice_message import (
    TWIML_MAX_CHARS,
    RenderingFailed,
    VoiceCall,
    VoiceDefaults,
    build_twiml,
    outcome_records,
    prepare_call,
    rendering_failure_records,
    screen,
    skip_records,
    twilio_voice,
    voice_definition,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/voice-minimal.json").read_text())
CAMPAIGN: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
DEFAULTS = VoiceDefaults(origination_number="+14155550100")
NOW = 1_777_629_000_500


def _request(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE)
    out.update(changes)
    return out


def _with_endpoint(**changes: Any) -> dict[str, Any]:
    endpoint = copy.deepcopy(CAMPAIGN["endpoint"])
    endpoint.update(channel_type="VOICE", address="+14155550199", id="voice-ana")
    return _request(endpoint=endpoint, **changes)


def _say(twiml: str) -> ET.Element:
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    [say] = list(root)
    assert say.tag == "Say"
    return say


def test_ssml_body_keeps_supported_elements_inside_say() -> None:
    call = prepare_call(_request(), None, DEFAULTS, NOW)
    assert isinstance(call, VoiceCall), call
    assert (call.to, call.from_number) == ("+14155550199", "+14155550100")
    say = _say(call.twiml)
    assert say.attrib == {"language": "en-US", "voice": "Polly.Joanna"}
    assert say.text == "Your code is "
    [say_as] = list(say)
    assert (say_as.tag, say_as.attrib, say_as.text, say_as.tail) == (
        "say-as", {"interpret-as": "digits"}, "481516", ".")


def test_namespaced_ssml_is_accepted() -> None:
    body = ('<speak xmlns="http://www.w3.org/2001/10/synthesis">Hi'
            '<break time="1s"/>there</speak>')
    call = prepare_call(_request(content={"body": body}), None, DEFAULTS, NOW)
    assert isinstance(call, VoiceCall), call
    assert "xmlns" not in call.twiml and "ns0" not in call.twiml
    say = _say(call.twiml)
    [pause] = list(say)
    assert (say.text, pause.tag, pause.attrib, pause.tail) == (
        "Hi", "break", {"time": "1s"}, "there")


def test_plain_text_is_escaped_and_rendered_from_the_endpoint() -> None:
    content = {"body": "Hi {{User.UserAttributes.FirstName.[0]}} <b>&</b> \"you\"",
               "language_code": "de-DE", "voice_id": "Vicki", "origination_number": "+4930123"}
    call = prepare_call(_with_endpoint(content=content), None, DEFAULTS, NOW)
    assert isinstance(call, VoiceCall), call
    assert "<b>" not in call.twiml and "&lt;b&gt;&amp;&lt;/b&gt;" in call.twiml
    say = _say(call.twiml)
    assert say.text == 'Hi Jane <b>&</b> "you"'
    assert say.attrib == {"language": "de-DE", "voice": "Polly.Vicki"}
    assert call.from_number == "+4930123"


def test_template_parts_are_overridden_by_the_message() -> None:
    template = {"Body": "Hello {{Attributes.plan.[0]}} user", "LanguageCode": "ja-JP",
                "VoiceId": "Mizuki", "DefaultSubstitutions": "{\"Attributes.plan\": \"free\"}"}
    call = prepare_call(_request(content=None, endpoint=None), template, DEFAULTS, NOW)
    assert isinstance(call, VoiceCall), call
    assert _say(call.twiml).text == "Hello free user"
    assert _say(call.twiml).attrib == {"language": "ja-JP", "voice": "Polly.Mizuki"}
    overridden = prepare_call(_request(content={"body": None, "voice_id": "Takumi"}),
                              template, DEFAULTS, NOW)
    assert isinstance(overridden, VoiceCall)
    assert overridden.voice == "Polly.Takumi" and overridden.language == "ja-JP"
    assert voice_definition({"Body": "x", "tags": {"a": "b"}}, {"body": "y"}) == {"Body": "y"}


def test_defaults_fill_language_and_voice() -> None:
    call = prepare_call(_request(content={"body": "Hi"}), None, DEFAULTS, NOW)
    assert isinstance(call, VoiceCall)
    assert _say(call.twiml).attrib == {"language": "en-US", "voice": "Polly.Joanna"}
    bare = prepare_call(_request(content={"body": "Hi"}), None,
                        VoiceDefaults("+1555", "en-GB", None), NOW)
    assert isinstance(bare, VoiceCall)
    assert _say(bare.twiml).attrib == {"language": "en-GB"}
    other_language = prepare_call(_request(content={"body": "Hola", "language_code": "es-ES"}),
                                  None, DEFAULTS, NOW)
    assert isinstance(other_language, VoiceCall)
    assert _say(other_language.twiml).attrib == {"language": "es-ES"}


@pytest.mark.parametrize(("voice_id", "twilio"), [
    ("Joanna", "Polly.Joanna"), ("Joanna-Neural", "Polly.Joanna-Neural"),
    ("Polly.Hans", "Polly.Hans"), ("Google.en-US-Standard-C", "Google.en-US-Standard-C"),
    ("alice", "alice"), (None, None), ("  ", None)])
def test_voice_mapping(voice_id: str | None, twilio: str | None) -> None:
    assert twilio_voice(voice_id) == twilio


@pytest.mark.parametrize(("content", "template", "error"), [
    ({"body": None}, None, "Body"),
    ({"body": "{{#if}}"}, None, "template"),
    ({"body": "<speak><audio src='x'/></speak>"}, None, "audio"),
    ({"body": "<speak>unclosed"}, None, "SSML"),
    ({"body": "{{Attributes.missing}}"}, None, "nothing to say"),
    ({"body": "x" * TWIML_MAX_CHARS}, None, "at most"),
    ({"body": "hi", "language_code": "english"}, None, "LanguageCode"),
])
def test_rendering_failures(content: dict[str, Any], template: Any, error: str) -> None:
    failed = prepare_call(_request(content=content), template, DEFAULTS, NOW)
    assert isinstance(failed, RenderingFailed)
    assert error in failed.error


def test_a_call_needs_an_origination_number() -> None:
    failed = prepare_call(_request(content={"body": "Hi"}), None, VoiceDefaults(None), NOW)
    assert isinstance(failed, RenderingFailed) and "OriginationNumber" in failed.error


def test_build_twiml_escapes_attributes() -> None:
    twiml = build_twiml("a", 'en"US', None)
    assert isinstance(twiml, str)
    assert _say(twiml).attrib == {"language": 'en"US'}


def test_screen_skips_opted_out_and_inactive_endpoints() -> None:
    assert screen(_with_endpoint()) is None
    opted = _with_endpoint()
    opted["endpoint"]["opt_out"] = "ALL"
    opted_skip = screen(opted)
    assert opted_skip is not None and opted_skip.reason is SkipReason.OPT_OUT
    inactive = _with_endpoint()
    inactive["endpoint"]["endpoint_status"] = "INACTIVE"
    skip = screen(inactive)
    assert skip is not None and skip.reason is SkipReason.INACTIVE


def _subject(request: dict[str, Any]) -> DeliverySubject:
    return DeliverySubject.from_send_request(request)


def test_transactional_outcome_records() -> None:
    subject = _subject(_request())
    [ok] = outcome_records(subject, accepted(201, "CA123"), NOW, attempts=1)
    assert ok["event_type"] == "_voice.success"
    assert ok["attributes"]["provider_message_id"] == "CA123"
    assert ok["attributes"]["delivery_type"] == "VOICE"
    assert ok["attributes"]["status_code"] == "201"
    [lost] = outcome_records(subject, network_failure("timeout"), NOW, attempts=5)
    assert lost["event_type"] == "_voice.failure"
    assert lost["attributes"]["attempts"] == "5" and lost["attributes"]["outcome"] == "RETRY"


def test_campaign_and_journey_sources_add_their_send_record() -> None:
    campaign = _request(source="CAMPAIGN", campaign_id="c1", treatment_id="0", run_id="r1")
    dead = ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, 400, "Twilio 21211")
    voice, send = outcome_records(_subject(campaign), dead, NOW)
    assert voice["event_type"] == "_voice.failure"
    assert send["event_type"] == "_campaign.send"
    assert send["attributes"]["campaign_send_status"] == "PERMANENT_FAILURE"
    assert send["attributes"]["delivery_type"] == "VOICE"
    journey = _request(source="JOURNEY", journey_id="j1", activity_id="a1", run_id="r1")
    _, jsend = outcome_records(_subject(journey), accepted(201, "CA1"), NOW)
    assert jsend["event_type"] == "_journey.send"
    assert jsend["attributes"]["journey_send_status"] == "SUCCESSFUL"
    assert jsend["attributes"]["journey_activity_type"] == "VOICE"


def test_skip_and_rendering_failure_records() -> None:
    campaign = _subject(_request(source="CAMPAIGN", campaign_id="c1", run_id="r1"))
    voice, send = skip_records(campaign, Skip(SkipReason.OPT_OUT, "opted out"), NOW)
    assert voice["event_type"] == "_voice.failure"
    assert voice["attributes"]["reject_reason"] == "OPT_OUT"
    assert send["attributes"]["campaign_send_status"] == "OPT_OUT"
    [failure] = rendering_failure_records(_subject(_request()), "Body: missing", NOW)
    assert failure["attributes"]["reject_reason"] == "RENDERING_FAILURE"
    assert failure["attributes"]["status_message"] == "Body: missing"
