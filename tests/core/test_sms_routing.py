from __future__ import annotations

import pytest

from lodestar.core.delivery_events import RecordStatus
from lodestar.core.sms_routing import (
    DEFAULT_COUNTRY_RULES,
    CountryRule,
    NoRoute,
    NoRouteReason,
    OriginationKind,
    Route,
    RoutingConfig,
    RoutingConfigError,
    choose_origination,
    destination_country,
    identity,
    parse_routing_config,
    routing_config_from_json,
)

K = OriginationKind
US_10DLC = identity(K.TEN_DLC, "+14155550100")
US_TOLL_FREE = identity(K.TOLL_FREE, "+18885550100")
US_SHORT = identity(K.SHORT_CODE, "12345", "US")
GB_LONG = identity(K.LONG_CODE, "+447700900100", "GB")
GLOBAL_SENDER = identity(K.SENDER_ID, "Lodestar")
IN_SENDER = identity(K.SENDER_ID, "LODIND", "IN")

JP = "+819012345678"
US = "+14155550199"
CA = "+16135550123"
GB = "+447700900123"
DE = "+4915112345678"


def _route(destination: str, config: RoutingConfig, **kw: str | None) -> Route:
    route = choose_origination(destination, config, **kw)
    assert isinstance(route, Route), route
    return route


@pytest.mark.parametrize(("number", "country"), [
    (JP, "JP"), (US, "US"), (CA, "CA"), (GB, "GB"), (DE, "DE"),
    ("+12425550123", "BS"),  # NANP: the Bahamas by area code
    ("+8613800138000", "CN"),
])
def test_destination_country(number: str, country: str) -> None:
    assert destination_country(number) == country


@pytest.mark.parametrize("number", ["", "14155550199", "+1415abc0199", "+15555", "+", "+0123"])
def test_impossible_numbers_have_no_country(number: str) -> None:
    assert destination_country(number) is None


def test_identities_take_their_number_country_and_are_checked() -> None:
    assert US_10DLC.country == "US" and GB_LONG.country == "GB"
    assert GLOBAL_SENDER.country is None
    with pytest.raises(RoutingConfigError, match="sender id"):
        identity(K.SENDER_ID, "TooLongSender1")
    with pytest.raises(RoutingConfigError, match="sender id"):
        identity(K.SENDER_ID, "12345")  # needs a letter
    with pytest.raises(RoutingConfigError, match=r"E\.164"):
        identity(K.LONG_CODE, "4155550100")
    with pytest.raises(RoutingConfigError, match="country"):
        identity(K.SHORT_CODE, "12345")
    with pytest.raises(RoutingConfigError, match="kind"):
        identity("PIGEON", "12345", "US")


def test_us_prefers_short_code_then_10dlc_and_never_a_sender_id() -> None:
    config = RoutingConfig((GLOBAL_SENDER, US_TOLL_FREE, US_10DLC, US_SHORT))
    assert _route(US, config).identity == US_SHORT
    config = RoutingConfig((GLOBAL_SENDER, US_TOLL_FREE, US_10DLC))
    assert _route(US, config).identity == US_10DLC
    no_route = choose_origination(US, RoutingConfig((GLOBAL_SENDER, GB_LONG)))
    assert isinstance(no_route, NoRoute)
    assert no_route.reason is NoRouteReason.NO_IDENTITY and no_route.country == "US"
    assert no_route.reason.record_status is RecordStatus.UNREACHABLE


def test_japan_is_international_sms() -> None:
    config = RoutingConfig((US_10DLC, GB_LONG, GLOBAL_SENDER))
    route = _route(JP, config)
    assert route.identity == GLOBAL_SENDER and route.country == "JP"
    only_long = _route(JP, RoutingConfig((US_10DLC, US_SHORT, GB_LONG)))
    assert only_long.identity == GB_LONG and only_long.international
    # 10DLC and short codes are domestic: they never reach Japan
    assert isinstance(choose_origination(JP, RoutingConfig((US_10DLC, US_SHORT))), NoRoute)


def test_a_domestic_rule_refuses_foreign_long_codes() -> None:
    config = RoutingConfig((GB_LONG,), {"DE": CountryRule((K.LONG_CODE,))})
    assert isinstance(choose_origination(DE, config), NoRoute)
    de_long = identity(K.LONG_CODE, "+4915112340000")
    assert _route(DE, RoutingConfig((GB_LONG, de_long), config.countries)).identity == de_long


def test_domestic_identities_come_before_international_ones() -> None:
    gb_sender = identity(K.SENDER_ID, "ShopUK", "GB")
    config = RoutingConfig((GLOBAL_SENDER, IN_SENDER, gb_sender, GB_LONG))
    route = _route(GB, config)  # default rule: SHORT_CODE, SENDER_ID, LONG_CODE, international
    assert route.identity == GLOBAL_SENDER  # no country: usable as a domestic sender id
    assert _route(GB, RoutingConfig((IN_SENDER, gb_sender))).identity == gb_sender
    assert _route(GB, RoutingConfig((IN_SENDER,))).international


def test_blocked_country_and_invalid_destination() -> None:
    config = RoutingConfig((GLOBAL_SENDER,), {"CN": CountryRule(())})
    blocked = choose_origination("+8613800138000", config)
    assert isinstance(blocked, NoRoute) and blocked.reason is NoRouteReason.COUNTRY_BLOCKED
    assert blocked.reason.record_status is RecordStatus.BLOCKED
    invalid = choose_origination("+1555", config)
    assert isinstance(invalid, NoRoute) and invalid.reason is NoRouteReason.INVALID_DESTINATION
    assert invalid.reason.record_status is RecordStatus.INVALID


def test_a_requested_identity_wins_when_allowed() -> None:
    other_10dlc = identity(K.TEN_DLC, "+14155550111")
    config = RoutingConfig((US_SHORT, US_10DLC, other_10dlc))
    route = _route(US, config, origination_number="+14155550111")
    assert route.identity == other_10dlc and route.ignored_request is None
    # a requested sender id to Japan (sender ids allowed there)
    route = _route(JP, RoutingConfig((GB_LONG,)), sender_id="MyShop")
    assert route.identity.kind is K.SENDER_ID and route.identity.value == "MyShop"


def test_a_requested_identity_the_rules_refuse_is_ignored_and_said() -> None:
    config = RoutingConfig((US_10DLC,))
    route = _route(US, config, sender_id="MyShop")  # the US allows no sender ids
    assert route.identity == US_10DLC
    assert route.ignored_request is not None and "SENDER_ID MyShop" in route.ignored_request
    # an unconfigured number counts as a long code: not allowed in the US
    route = _route(US, config, origination_number="+14155550177")
    assert route.identity == US_10DLC and "LONG_CODE" in (route.ignored_request or "")
    route = _route(US, config, origination_number="99999")
    assert route.identity == US_10DLC and "short code" in (route.ignored_request or "")
    no_route = choose_origination(US, RoutingConfig(()), sender_id="MyShop")
    assert isinstance(no_route, NoRoute) and "MyShop" in no_route.detail


def test_both_requested_the_rule_preference_decides() -> None:
    config = RoutingConfig((GB_LONG,))
    route = _route(JP, config, origination_number="+447700900100", sender_id="MyShop")
    assert route.identity.kind is K.SENDER_ID  # JP prefers SENDER_ID over LONG_CODE
    gb_rule = {"GB": CountryRule((K.LONG_CODE, K.SENDER_ID))}
    route = _route(GB, RoutingConfig((GB_LONG,), gb_rule), origination_number="+447700900100",
                   sender_id="MyShop")
    assert route.identity == GB_LONG


CONFIG_JSON = """
{
  "identities": [
    {"kind": "TEN_DLC", "value": "+14155550100"},
    {"kind": "SHORT_CODE", "value": "12345", "country": "us"},
    {"kind": "LONG_CODE", "value": "+447700900100"},
    {"kind": "SENDER_ID", "value": "Lodestar"}
  ],
  "countries": {
    "jp": {"allowed": ["LONG_CODE"], "international": true},
    "CN": {"allowed": []}
  },
  "default": {"allowed": ["LONG_CODE"], "international": false}
}
"""


def test_json_configuration() -> None:
    config = routing_config_from_json(CONFIG_JSON)
    assert [i.kind for i in config.identities] == [K.TEN_DLC, K.SHORT_CODE, K.LONG_CODE,
                                                   K.SENDER_ID]
    assert config.identities[1].country == "US"
    assert config.countries["US"] == DEFAULT_COUNTRY_RULES["US"]  # kept
    assert _route(JP, config).identity.value == "+447700900100"  # only LONG_CODE now
    assert _route(US, config).identity.value == "12345"
    blocked = choose_origination("+8613800138000", config)
    assert isinstance(blocked, NoRoute) and blocked.reason is NoRouteReason.COUNTRY_BLOCKED
    assert isinstance(choose_origination(DE, config), NoRoute)  # default: domestic only
    assert _route(GB, config).identity.value == "+447700900100"


@pytest.mark.parametrize(("data", "path"), [
    ([], "$"),
    ({"routes": {}}, "routes"),
    ({"identities": {}}, "identities"),
    ({"identities": ["x"]}, "identities[0]"),
    ({"identities": [{"kind": "LONG_CODE"}]}, "identities[0].value"),
    ({"identities": [{"kind": "LONG_CODE", "value": "12"}]}, "identities[0].value"),
    ({"identities": [{"kind": "X", "value": "+14155550100"}]}, "identities[0].kind"),
    ({"identities": [{"kind": "LONG_CODE", "value": "+14155550100", "cc": "US"}]},
     "identities[0].cc"),
    ({"countries": {"JPN": {"allowed": []}}}, "countries.JPN"),
    ({"countries": {"JP": {"allowed": "LONG_CODE"}}}, "countries.JP.allowed"),
    ({"countries": {"JP": {"allowed": ["FAX"]}}}, "countries.JP.allowed[0]"),
    ({"countries": {"JP": {"allowed": ["LONG_CODE", "LONG_CODE"]}}}, "countries.JP.allowed[1]"),
    ({"countries": {"JP": {"allowed": [], "international": "yes"}}},
     "countries.JP.international"),
    ({"default": {"allowed": [], "sender_ids": True}}, "default.sender_ids"),
])
def test_malformed_configuration_names_the_path(data: object, path: str) -> None:
    with pytest.raises(RoutingConfigError) as err:
        parse_routing_config(data)
    assert err.value.field == path


def _doc_json(marker: str) -> str:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sms.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
    return next(b for b in blocks if marker in b)


def test_the_documented_example_routes_as_docs_sms_md_says() -> None:
    config = routing_config_from_json(_doc_json('"identities"'))
    assert _route(JP, config).identity.value == "ExampleShop"
    assert _route(US, config).identity.value == "12345"
    assert _route(GB, config).identity.value == "ExampleShop"
    blocked = choose_origination("+8613800138000", config)
    assert isinstance(blocked, NoRoute) and blocked.reason is NoRouteReason.COUNTRY_BLOCKED
