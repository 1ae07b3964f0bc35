"""The render root is built only for the names the parts read; the output never changes.

``CompiledPart.root_names`` / ``templates.root_names`` say which top-level names a
template can read; ``build_render_data(…, names=…)`` builds only those, and
``template_context.personal_variables`` builds Attributes/User straight from the
snapshot. Each must render exactly what the full root renders.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lodestar.core.email_sending import recipient_context
from lodestar.core.endpoint_view import endpoint_response
from lodestar.core.template_context import (
    ENDPOINT_VARIABLES,
    build_render_data,
    parse_default_substitutions,
    parse_substitutions,
    personal_variables,
)
from lodestar.core.template_helpers import helpers_for
from lodestar.core.template_render import compile_part, run_part
from lodestar.core.templates import parse_template, root_names

ROOT = Path(__file__).resolve().parents[2]
REQUEST: dict[str, Any] = json.loads(
    (ROOT / "schemas/examples/send_request/email-campaign-full.json").read_text())
NOW = 1_777_628_160_000

SOURCES = [
    "Hi {{User.UserAttributes.FirstName.[0]}}, your {{Attributes.plan}} plan",
    "{{upper User.UserId}} {{#if Attributes.plan}}{{Attributes.plan.[0]}}{{else}}none{{/if}}",
    "{{#each Attributes}}{{@key}}={{this}};{{/each}}",
    "{{#with User}}{{UserId}} {{UserAttributes.FirstName}}{{/with}}",
    "{{#with User}}{{../Id}}{{/with}}",
    "{{#each User.UserAttributes.FirstName}}{{@index}}:{{.}} {{@root.Address}}{{/each}}",
    "{{this}}",
    "{{.}}",
    "{{lookup . 'Id'}}",
    "{{eq (lookup Attributes 'plan') 'pro' yes='P' no='-'}} {{default Missing 'x'}}",
    "{{#User}}{{UserId}}{{/User}}{{^Nope}}absent{{/Nope}}",
    '{{#* inline "n"}}{{Id}} {{Location.City}}{{/inline}}{{> n}}',
    "{{Demographic.Platform}} {{Location.Country}} {{CreationDate}} {{Metrics}}",
    "{{User}} | {{Attributes}}",
    "{{Sub.Name}} {{DiscountCode}} {{Attributes.Default.[0]}}",
    "plain text & <b>no variables</b>",
]


def _request(**endpoint_changes: Any) -> dict[str, Any]:
    request = copy.deepcopy(REQUEST)
    request["endpoint"].update(endpoint_changes)
    return request


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("html", [False, True])
def test_the_restricted_root_renders_what_the_full_root_renders(source: str,
                                                                html: bool) -> None:
    part = compile_part(source, html=html)
    recipient = recipient_context(_request())
    defaults = parse_default_substitutions(json.dumps({
        "Attributes.Default": "d", "User.UserAttributes.FirstName": "friend",
        "Sub": {"Name": "s"}}))
    subs = parse_substitutions({"DiscountCode": ["SAVE10"], "Attributes.plan": ["gold"]})
    full = build_render_data(defaults, recipient, subs)
    restricted = build_render_data(defaults, recipient, subs, names=part.root_names)
    expected = run_part(part, full, helpers_for(NOW, "m-1"))
    assert run_part(part, restricted, helpers_for(NOW, "m-1")) == expected
    if part.root_names is not None:
        assert set(restricted) <= part.root_names


@pytest.mark.parametrize(("source", "names"), [
    ("{{User.UserAttributes.FirstName.[0]}} {{Attributes.plan}}", {"User", "Attributes"}),
    ("{{upper Id}} {{#if Location}}{{Location.City}}{{/if}}", {"upper", "Id", "if", "Location"}),
    ("{{#each Attributes}}{{@key}}{{/each}}", {"each", "Attributes", "@key"}),
    ("{{#Foo}}x{{/Foo}}", {"Foo"}),
    ("no variables", set()),
    ("{{this}}", None),
    ("{{.}}", None),
    ("{{#with User}}{{../Id}}{{/with}}", None),
    ("{{@root.Id}}", None),
    ("{{./Id}}", None),
    ('{{#* inline "p"}}{{Id}}{{/inline}}{{> p}}', None),
])
def test_root_names_of_a_part(source: str, names: set[str] | None) -> None:
    found = compile_part(source, html=False).root_names
    assert found == (None if names is None else frozenset(names))


def test_root_names_of_a_template_are_the_union_or_none() -> None:
    template = parse_template("EMAIL", {"Subject": "{{User.UserId}}",
                                        "TextPart": "{{Attributes.plan}}",
                                        "HtmlPart": "<p>static</p>",
                                        "Headers": [{"Name": "X-A", "Value": "{{Id}}"}]})
    assert root_names(template) == frozenset({"User", "Attributes", "Id"})  # type: ignore[arg-type]
    whole = parse_template("SMS", {"Body": "{{this}}"})
    assert root_names(whole) is None  # type: ignore[arg-type]


def test_a_part_without_mustaches_is_kept_as_its_literal() -> None:
    for source, html in [("plain & <b>", True), ("line\nbreak {single} } {", False), ("", False)]:
        assert compile_part(source, html=html).literal == source
    assert compile_part("a {{b}}", html=False).literal is None


@pytest.mark.parametrize("endpoint", [
    {},
    {"user": None},
    {"user": {"user_id": None, "user_attributes": {}}},
    {"user": {"user_id": "u-2", "user_attributes": None}},
    {"attributes": {}},
    {"attributes": None, "user": {"user_id": None, "user_attributes": {"A": ["1", "2"]}}},
])
def test_personal_variables_match_the_full_endpoint_context(endpoint: dict[str, Any]) -> None:
    request = _request(**endpoint)
    full = recipient_context(request).data
    for names in ({"User", "Attributes"}, {"User"}, {"Attributes", "DiscountCode"}, set()):
        got = personal_variables(request["endpoint"], frozenset(names))
        assert got == {k: v for k, v in full.items() if k in names}


def test_personal_variables_defer_to_the_full_context() -> None:
    endpoint = _request()["endpoint"]
    assert personal_variables(endpoint, None) is None
    assert personal_variables(endpoint, frozenset({"User", "Id"})) is None
    assert personal_variables(endpoint, frozenset({"CreationDate"})) is None


def test_endpoint_variables_name_everything_an_endpoint_can_have() -> None:
    full = _request(effective_date=NOW, request_id="r-1")["endpoint"]
    full["demographic"] = full.get("demographic") or {"platform": "ios"}
    full["location"] = full.get("location") or {"city": "Lisbon"}
    assert set(endpoint_response("app", full)) == ENDPOINT_VARIABLES


@pytest.mark.parametrize("body", [
    "Hi {{User.UserAttributes.FirstName.[0]}}",            # no helper: rendered without them
    "{{#if Attributes.plan}}{{Attributes.plan.[0]}}{{else}}none{{/if}}",
    "{{upper User.UserAttributes.FirstName.[0]}} {{uuid}} {{now}}",
    "{{#each User.UserAttributes.LastName}}[{{this}}]{{/each}}",
])
def test_render_with_the_names_given_matches_the_names_computed(body: str) -> None:
    from lodestar.core.templates import Rendered, render

    template = parse_template("SMS", {"Body": body})
    recipient = recipient_context(_request())
    names = root_names(template)  # type: ignore[arg-type]
    computed = render(template, recipient, {}, NOW, seed="m-1")  # type: ignore[arg-type]
    given = render(template, recipient, {}, NOW, seed="m-1", names=names)  # type: ignore[arg-type]
    assert isinstance(computed, Rendered) and computed == given
    assert computed.parts["Body"] and "{{" not in computed.parts["Body"]
