"""Template requests: parsing, validation errors per field, compile-time refusal."""

from __future__ import annotations

import pytest

from lodestar.core.templates import (
    EmailTemplate,
    InAppTemplate,
    PushAction,
    PushTemplate,
    SmsTemplate,
    TemplateDefinitionError,
    TemplateType,
    VoiceTemplate,
    parse_template,
)


def _error(kind: str, body: object) -> TemplateDefinitionError:
    with pytest.raises(TemplateDefinitionError) as info:
        parse_template(kind, body)
    return info.value


def test_email_template_parses_every_member() -> None:
    template = parse_template("EMAIL", {
        "Subject": "Hi {{User.UserAttributes.FirstName}}",
        "HtmlPart": "<p>{{Attributes.plan}}</p>",
        "TextPart": "plan {{Attributes.plan}}",
        "Headers": [{"Name": "X-Plan", "Value": "{{Attributes.plan}}"}],
        "DefaultSubstitutions": '{"Attributes.plan": "free"}',
        "TemplateDescription": "welcome",
        "RecommenderId": "rec-1",
        "tags": {"team": "growth"},
    })
    assert isinstance(template, EmailTemplate)
    assert template.subject is not None and template.subject.name == "Subject"
    assert template.html_part is not None and template.html_part.compiled.html
    assert template.text_part is not None and not template.text_part.compiled.html
    assert template.headers[0].name == "X-Plan"
    assert template.common.template_description == "welcome"
    assert template.common.recommender_id == "rec-1"
    assert template.common.tags == {"team": "growth"}
    assert template.common.default_substitutions == '{"Attributes.plan": "free"}'
    assert template.template_type is TemplateType.EMAIL


def test_sms_voice_push_in_app_parse() -> None:
    sms = parse_template("SMS", {"Body": "Hi {{Id}}"})
    assert isinstance(sms, SmsTemplate) and sms.body is not None
    voice = parse_template("VOICE", {"Body": "Hello", "LanguageCode": "en-US", "VoiceId": "Joanna"})
    assert isinstance(voice, VoiceTemplate) and voice.language_code == "en-US"
    push = parse_template("PUSH", {
        "Default": {"Action": "OPEN_APP", "Body": "b", "Title": "t"},
        "APNS": {"Action": "URL", "Url": "https://x/{{Id}}", "MediaUrl": "m", "RawContent": "{}"},
        "GCM": {"ImageUrl": "i", "ImageIconUrl": "ii", "SmallImageIconUrl": "s"},
        "Baidu": {"Body": "baidu"},
        "ADM": {"Sound": "ding"},
    })
    assert isinstance(push, PushTemplate)
    assert set(push.channels) == {"Default", "APNS", "GCM", "Baidu", "ADM"}
    assert push.channels["APNS"].action is PushAction.URL
    assert set(push.channels["GCM"].parts) == {"ImageUrl", "ImageIconUrl", "SmallImageIconUrl"}
    in_app = parse_template("INAPP", {"Content": [{"BodyConfig": {"Body": "{{not rendered}"}}],
                                      "Layout": "BOTTOM_BANNER", "CustomConfig": {"k": "v"}})
    assert isinstance(in_app, InAppTemplate) and in_app.layout == "BOTTOM_BANNER"


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("EMAIL", [], "EmailTemplateRequest"),
        ("EMAIL", {"Subject": 3}, "Subject"),
        ("EMAIL", {"HtmlPart": ["x"]}, "HtmlPart"),
        ("EMAIL", {"TextPart": {}}, "TextPart"),
        ("EMAIL", {"Bogus": "x"}, "Bogus"),
        ("EMAIL", {"TemplateDescription": 1}, "TemplateDescription"),
        ("EMAIL", {"RecommenderId": 1}, "RecommenderId"),
        ("EMAIL", {"tags": {"a": 1}}, "tags.a"),
        ("EMAIL", {"tags": "x"}, "tags"),
        ("EMAIL", {"Headers": "x"}, "Headers"),
        ("EMAIL", {"Headers": [{"Name": "A", "Value": "v"}] * 16}, "Headers"),
        ("EMAIL", {"Headers": [{"Value": "v"}]}, "Headers[0].Name"),
        ("EMAIL", {"Headers": [{"Name": "A" * 127, "Value": "v"}]}, "Headers[0].Name"),
        ("EMAIL", {"Headers": [{"Name": "Bad Name", "Value": "v"}]}, "Headers[0].Name"),
        ("EMAIL", {"Headers": [{"Name": "A"}]}, "Headers[0].Value"),
        ("EMAIL", {"Headers": [{"Name": "A", "Value": "v" * 871}]}, "Headers[0].Value"),
        ("EMAIL", {"Headers": [{"Name": "A", "Value": "v", "X": 1}]}, "Headers[0].X"),
        ("EMAIL", {"DefaultSubstitutions": {"a": "b"}}, "DefaultSubstitutions"),
        ("EMAIL", {"DefaultSubstitutions": "{not json"}, "DefaultSubstitutions"),
        ("EMAIL", {"DefaultSubstitutions": "[1]"}, "DefaultSubstitutions"),
        ("SMS", {"DefaultSubstitutions": '{"a": [{"x": 1}]}'}, "DefaultSubstitutions.a"),
        ("SMS", {"DefaultSubstitutions": '{"a": "x", "a.b": "y"}'}, "DefaultSubstitutions.a.b"),
        ("SMS", {"DefaultSubstitutions": '{"a..b": "x"}'}, "DefaultSubstitutions.a..b"),
        ("SMS", {"Body": 5}, "Body"),
        ("SMS", {"Subject": "x"}, "Subject"),
        ("VOICE", {"LanguageCode": "english"}, "LanguageCode"),
        ("VOICE", {"VoiceId": 1}, "VoiceId"),
        ("VOICE", {"VoiceId": ""}, "VoiceId"),
        ("VOICE", {"RecommenderId": "r"}, "RecommenderId"),
        ("PUSH", {"Default": "x"}, "Default"),
        ("PUSH", {"Default": {"Action": "JUMP"}}, "Default.Action"),
        ("PUSH", {"Default": {"ImageUrl": "x"}}, "Default.ImageUrl"),
        ("PUSH", {"APNS": {"ImageUrl": "x"}}, "APNS.ImageUrl"),
        ("PUSH", {"GCM": {"MediaUrl": "x"}}, "GCM.MediaUrl"),
        ("PUSH", {"Baidu": {"Title": 1}}, "Baidu.Title"),
        ("PUSH", {"ADM": {"Body": "{{#if x}}"}}, "ADM.Body"),
        ("INAPP", {"Content": "x"}, "Content"),
        ("INAPP", {"Content": [{}] * 6}, "Content"),
        ("INAPP", {"CustomConfig": {"a": 1}}, "CustomConfig.a"),
        ("INAPP", {"Layout": 1}, "Layout"),
    ],
)
def test_validation_errors_name_the_field(kind: str, body: object, field: str) -> None:
    assert _error(kind, body).field == field


def test_unknown_template_type() -> None:
    assert _error("FAX", {}).field == "TemplateType"


@pytest.mark.parametrize(
    "source",
    [
        "{{#if x}}never closed",
        "{{#if x}}a{{/each}}",
        "stray {{/if}}",
        "{{else}}",
        "{{foo",
        "{{#if a}}x{{else if b}}y{{/if}}",
        "{{#*inline}}x{{/inline}}",
        "{{#* inline \"p\"}}{{#if}}{{/inline}}",
    ],
)
def test_a_part_that_does_not_compile_is_refused_with_the_part(source: str) -> None:
    error = _error("EMAIL", {"Subject": "ok", "HtmlPart": source})
    assert error.field == "HtmlPart"
    assert "does not compile" in error.message


def test_pybars_message_is_kept() -> None:
    error = _error("SMS", {"Body": "{{foo bar=}}"})
    assert error.field == "Body"
    assert "Error at character" in error.message


@pytest.mark.parametrize(
    "source",
    [
        "{{a.[x'] + __import__('os').getcwd() + u'']}}",
        "{{f ([\"+str(1)+\"] x)}}",
        "{{a.[b\\c]}}",
    ],
)
def test_path_segments_that_could_escape_pybars_code_are_refused(source: str) -> None:
    error = _error("SMS", {"Body": source})
    assert error.field == "Body"


def test_equal_templates_compare_equal() -> None:
    body = {"Body": "Hi {{Id}}", "DefaultSubstitutions": '{"Id": "x"}'}
    assert parse_template("SMS", body) == parse_template("SMS", body)
