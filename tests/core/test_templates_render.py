"""Rendering: variable paths, lists, defaults, send-time overrides, escaping, failures."""

from __future__ import annotations

from typing import Any

import pytest

from lodestar.core.endpoint_request import ChannelType, Demographic, EndpointUser, Location
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.template_context import (
    RecipientContext,
    address_context,
    endpoint_context,
    merge_substitutions,
)
from lodestar.core.templates import (
    FailureKind,
    RenderableTemplate,
    Rendered,
    RenderFailure,
    TemplateType,
    parse_template,
    render,
)

NOW = 1_600_000_000_000  # 2020-09-13T12:26:40Z


def _state(**changes: Any) -> EndpointState:
    values: dict[str, Any] = {
        "application_id": "app",
        "id": "ep-1",
        "cohort_id": 42,
        "creation_date": 1_561_895_125_220,  # 2019-06-30T11:45:25.220Z
        "address": "sofia@example.com",
        "channel_type": ChannelType.EMAIL,
        "attributes": {"plan": ("pro",), "colors": ("red", "blue"), "Last Name": ("Santos",)},
        "demographic": Demographic(locale="en_US", platform="ios", timezone="America/Denver"),
        "location": Location(city="Los Angeles", country="US"),
        "metrics": {"visits": 3.0, "score": 2.5},
        "user": EndpointUser(user_id="user-1", user_attributes={"FirstName": ("Sofia",)}),
        "effective_date": 1_566_557_675_220,
        "request_id": "req-9",
    }
    values.update(changes)
    return EndpointState(**values)


def _sms(body: str, defaults: str | None = None) -> RenderableTemplate:
    request: dict[str, Any] = {"Body": body}
    if defaults is not None:
        request["DefaultSubstitutions"] = defaults
    template = parse_template("SMS", request)
    assert not isinstance(template, type(None))
    return template  # type: ignore[return-value]


def _body(body: str, context: RecipientContext | None = None, subs: Any = None,
          defaults: str | None = None) -> str:
    result = render(_sms(body, defaults), context or endpoint_context(_state()), subs, NOW)
    assert isinstance(result, Rendered), result
    return result.parts["Body"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{User.UserAttributes.FirstName}}", "Sofia"),
        ("{{User.UserAttributes.FirstName.[0]}}", "Sofia"),
        ("{{User.UserId}}", "user-1"),
        ("{{Attributes.plan}}", "pro"),
        ("{{Attributes.[Last Name].[0]}}", "Santos"),
        ("{{Demographic.Locale}}", "en_US"),
        ("{{Demographic.Platform}}", "ios"),
        ("{{Location.City}}", "Los Angeles"),
        ("{{Location.Country}}", "US"),
        ("{{Address}}", "sofia@example.com"),
        ("{{ChannelType}}", "EMAIL"),
        ("{{Id}}", "ep-1"),
        ("{{Metrics.visits}}", "3"),
        ("{{Metrics.score}}", "2.5"),
        ("{{CohortId}}", "42"),
        ("{{OptOut}}", "NONE"),
        ("{{EndpointStatus}}", "ACTIVE"),
        ("{{CreationDate}}", "2019-06-30T11:45:25.220Z"),
        ("{{EffectiveDate}}", "2019-08-23T10:54:35.220Z"),
        ("{{RequestId}}", "req-9"),
        ("{{Attributes.nothing}}|{{Nope.deeper.still}}", "|"),
    ],
)
def test_variable_paths(source: str, expected: str) -> None:
    assert _body(source) == expected


def test_list_attributes_render_joined_and_index() -> None:
    assert _body("{{Attributes.colors}}") == "red,blue"
    assert _body("{{Attributes.colors.[1]}}|{{Attributes.colors.[5]}}") == "blue|"
    assert _body("{{Attributes.colors.length}}") == "2"
    assert _body("{{#each Attributes.colors}}<{{@index}}:{{this}}>{{/each}}") == "<0:red><1:blue>"
    assert _body("{{#each Attributes.none}}x{{else}}none{{/each}}") == "none"
    assert _body("{{#if Attributes.colors}}y{{/if}}{{#if Attributes.none}}n{{/if}}") == "y"
    assert _body("{{lookup Attributes.colors 1}}") == "blue"
    assert _body("{{#each Attributes}}{{@key}};{{/each}}") == "plan;colors;Last Name;"


def test_methods_of_python_objects_are_not_reachable() -> None:
    assert _body("{{Attributes.keys}}{{Attributes.items}}{{Attributes.colors.index}}") == ""


def test_default_substitutions_dotted_and_nested() -> None:
    bare = RecipientContext({})
    defaults = ('{"User.UserAttributes.FirstName": "friend", '
                '"Attributes": {"Purchase": "Test"}, "Promo": "P", "Location.City": "Paris"}')
    source = ("{{User.UserAttributes.FirstName}}/{{User.UserAttributes.FirstName.[0]}}/"
              "{{Attributes.Purchase.[0]}}/{{Promo}}/{{Location.City}}")
    assert _body(source, bare, defaults=defaults) == "friend/friend/Test/P/Paris"
    # the endpoint's own values win over defaults
    assert _body(source, defaults=defaults) == "Sofia/Sofia/Test/P/Los Angeles"


def test_defaults_stand_in_for_empty_values_and_indexed_keys() -> None:
    state = _state(attributes={"plan": ()}, location=Location(city=""))
    context = endpoint_context(state)
    defaults = '{"Attributes.plan": "basic", "Location.City": "somewhere", "Attributes.x.[1]": "b"}'
    assert _body("{{Attributes.plan}} {{Location.City}} {{Attributes.x.[1]}}", context,
                 defaults=defaults) == "basic somewhere b"


def test_default_values_of_other_json_types() -> None:
    defaults = '{"n": 3, "f": 1.5, "b": true, "l": ["x", "y"], "z": null}'
    assert _body("{{n}} {{f}} {{b}} {{l}} {{l.[1]}} [{{z}}]", RecipientContext({}),
                 defaults=defaults) == "3 1.5 true x,y y []"


def test_send_time_substitutions_override_endpoint_and_defaults() -> None:
    defaults = '{"Promo": "default-promo", "User.UserAttributes.FirstName": "friend"}'
    subs = {"Promo": ["sent"], "User.UserAttributes.FirstName": ["Jane"], "Extra": ["a", "b"]}
    source = ("{{Promo}} {{User.UserAttributes.FirstName}} {{User.UserAttributes.FirstName.[0]}}"
              " {{Extra}}")
    assert _body(source, subs=subs, defaults=defaults) == "sent Jane Jane a,b"
    assert _body("[{{Attributes.plan}}]", subs={"Attributes.plan": []}) == "[]"


def test_merge_substitutions_per_recipient_wins() -> None:
    merged = merge_substitutions({"a": ["msg"], "b": ["msg"]}, {"a": ["recipient"]}, None)
    assert merged == {"a": ["recipient"], "b": ["msg"]}


def test_invalid_send_time_substitutions_fail_the_render() -> None:
    result = render(_sms("x"), endpoint_context(_state()), {"a": "not-a-list"}, NOW)
    assert isinstance(result, RenderFailure)
    assert result.kind is FailureKind.INVALID_SUBSTITUTIONS
    assert result.part == "Substitutions.a"


def test_html_part_escapes_by_default_and_triple_stash_is_raw() -> None:
    name = ("<b>Al & 'Bo'</b>",)
    state = _state(user=EndpointUser(user_id="u", user_attributes={"FirstName": name}))
    template = parse_template("EMAIL", {
        "Subject": "{{User.UserAttributes.FirstName}}",
        "HtmlPart": "{{User.UserAttributes.FirstName}}|{{{User.UserAttributes.FirstName}}}"
                    "|{{&User.UserAttributes.FirstName}}",
        "TextPart": "{{User.UserAttributes.FirstName}}",
    })
    result = render(template, endpoint_context(state), None, NOW)  # type: ignore[arg-type]
    assert isinstance(result, Rendered)
    escaped = "&lt;b&gt;Al &amp; &#x27;Bo&#x27;&lt;/b&gt;"
    raw = "<b>Al & 'Bo'</b>"
    assert result.parts["HtmlPart"] == f"{escaped}|{raw}|{raw}"
    assert result.parts["TextPart"] == raw
    assert result.parts["Subject"] == raw


def test_email_headers_render_and_are_checked() -> None:
    template = parse_template("EMAIL", {
        "Subject": "s", "TextPart": "t",
        "Headers": [{"Name": "X-User", "Value": "{{User.UserId}}"}],
    })
    result = render(template, endpoint_context(_state()), None, NOW)  # type: ignore[arg-type]
    assert isinstance(result, Rendered) and result.headers == (("X-User", "user-1"),)
    long_value = parse_template("EMAIL", {
        "Subject": "s", "TextPart": "t", "Headers": [{"Name": "X-A", "Value": "{{v}}"}]})
    too_long = render(long_value, RecipientContext({}), {"v": ["x" * 871]}, NOW)  # type: ignore[arg-type]
    assert isinstance(too_long, RenderFailure) and too_long.kind is FailureKind.PART_TOO_LONG
    assert too_long.part == "Headers[0].Value"
    broken = render(long_value, RecipientContext({}), {"v": ["a\r\nBcc: x"]}, NOW)  # type: ignore[arg-type]
    assert isinstance(broken, RenderFailure) and broken.part == "Headers[0].Value"


@pytest.mark.parametrize(
    ("kind", "body", "part"),
    [
        ("EMAIL", {"HtmlPart": "x"}, "Subject"),
        ("EMAIL", {"Subject": "x"}, "HtmlPart"),
        ("SMS", {}, "Body"),
        ("VOICE", {"LanguageCode": "en-US"}, "Body"),
        ("PUSH", {"Default": {"Title": "t"}}, "Default.Body"),
    ],
)
def test_missing_required_part_fails(kind: str, body: dict[str, Any], part: str) -> None:
    result = render(parse_template(kind, body), RecipientContext({}), None, NOW)  # type: ignore[arg-type]
    assert isinstance(result, RenderFailure)
    assert result.kind is FailureKind.MISSING_PART and result.part == part


def test_failure_names_the_part_and_returns_nothing_rendered() -> None:
    template = parse_template("EMAIL", {
        "Subject": "fine {{Id}}", "HtmlPart": "<p>ok</p>", "TextPart": "{{divide 1 0}}"})
    result = render(template, endpoint_context(_state()), None, NOW)  # type: ignore[arg-type]
    assert result == RenderFailure(FailureKind.HELPER_ERROR, "TextPart", "divide: division by zero")
    assert result.message == "TextPart: divide: division by zero"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("{{nosuchhelper Id}}", FailureKind.UNKNOWN_HELPER),
        ("{{upper (nosuch Id)}}", FailureKind.UNKNOWN_HELPER),
        ("{{substring Id -1}}", FailureKind.HELPER_ERROR),
        ("{{> missingPartial}}", FailureKind.RENDER_ERROR),
        ("{{Address.upper}}", FailureKind.RENDER_ERROR),
    ],
)
def test_render_failures(source: str, kind: FailureKind) -> None:
    result = render(_sms(source), endpoint_context(_state()), None, NOW)
    assert isinstance(result, RenderFailure) and result.kind is kind and result.part == "Body"


def test_unknown_simple_variable_is_empty_not_a_failure() -> None:
    assert _body("[{{nosuchvariable}}]") == "[]"


def test_push_uses_channel_section_over_default_field_by_field() -> None:
    template = parse_template("PUSH", {
        "Default": {"Action": "OPEN_APP", "Title": "Hi {{User.UserId}}", "Body": "default body"},
        "APNS": {"Action": "URL", "Body": "apns {{Id}}", "Url": "https://x/{{Id}}"},
        "GCM": {"RawContent": "{\"data\": \"{{Id}}\"}"},
    })
    apns = render(template, endpoint_context(_state(channel_type=ChannelType.APNS_SANDBOX)),  # type: ignore[arg-type]
                  None, NOW)
    assert apns == Rendered(TemplateType.PUSH, {"Title": "Hi user-1", "Body": "apns ep-1",
                                                "Url": "https://x/ep-1"}, (), {"Action": "URL"})
    gcm = render(template, endpoint_context(_state(channel_type=ChannelType.GCM)), None, NOW)  # type: ignore[arg-type]
    assert isinstance(gcm, Rendered)
    assert gcm.parts["RawContent"] == '{"data": "ep-1"}' and gcm.parts["Body"] == "default body"
    assert gcm.settings == {"Action": "OPEN_APP"}
    other = render(template, address_context("tok", "BAIDU"), None, NOW)  # type: ignore[arg-type]
    assert isinstance(other, Rendered) and other.parts["Body"] == "default body"


def test_voice_settings_pass_through() -> None:
    template = parse_template("VOICE", {"Body": "Hello {{Address}}", "LanguageCode": "en-US",
                                        "VoiceId": "Joanna"})
    result = render(template, address_context("+15550100", ChannelType.VOICE), None, NOW)  # type: ignore[arg-type]
    assert result == Rendered(TemplateType.VOICE, {"Body": "Hello +15550100"}, (),
                              {"LanguageCode": "en-US", "VoiceId": "Joanna"})


def test_inline_partials() -> None:
    source = ('{{#* inline "fullName"}}{{User.UserAttributes.FirstName.[0]}}'
              '{{#if Attributes.[Last Name].[0]}} {{Attributes.[Last Name].[0]}}{{/if}}{{/inline}}'
              'Hello {{> fullName}}')
    assert _body(source) == "Hello Sofia Santos"


def test_comments_and_whitespace_control() -> None:
    assert _body("a {{! note }}b {{~Id~}} c") == "a bep-1c"


def test_render_is_repeatable() -> None:
    template = _sms("{{uuid}} {{now}}")
    context = endpoint_context(_state())
    first = render(template, context, None, NOW, seed="msg-1")
    assert first == render(template, context, None, NOW, seed="msg-1")
    assert first != render(template, context, None, NOW, seed="msg-2")
