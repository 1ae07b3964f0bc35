"""Which origination identity sends an SMS to a destination number.

Contract:

- ``destination_country(number)``: the ISO 3166-1 alpha-2 country of an E.164
  number (``+`` then digits), by the number's prefix and area code (``+1`` is US, CA
  or a Caribbean country by area code); ``None`` when it is not a possible number.
- An ``OriginationIdentity`` is what a message is sent from: ``SENDER_ID``
  (alphanumeric, 1-11 characters with at least one letter), ``LONG_CODE``,
  ``TEN_DLC``, ``TOLL_FREE`` (E.164 numbers) or ``SHORT_CODE`` (3-8 digits). Its
  ``country`` is where it is registered: for numbers it defaults to the number's
  country; a sender id without a country is usable wherever sender ids are allowed.
- A ``CountryRule`` lists the kinds ``allowed`` for a destination country in order
  of preference (empty: the country is blocked) and whether it is reached
  ``international``-ly, i.e. from identities registered in another country (only
  ``LONG_CODE`` and ``SENDER_ID`` travel; short codes, 10DLC and toll-free numbers
  are domestic by nature). Sender ids are allowed exactly when ``SENDER_ID`` is.
- ``choose_origination(destination, config, origination_number=, sender_id=)``:
  an identity is *eligible* when its kind is allowed and it is domestic (its
  country is the destination's, or a sender id with no country) or the rule is
  international and its kind travels. A requested ``origination_number`` /
  ``sender_id`` (SmsContent) wins when eligible (a number not in the configuration
  counts as a ``LONG_CODE``, or a ``SHORT_CODE`` when it is 3-8 digits; when both are
  requested the kind the rule prefers wins); otherwise it is ignored, said in
  ``Route.ignored_request``, and the configuration chooses: the first eligible
  identity by the rule's kind order, domestic before international, then
  configuration order. The outcome is a ``Route`` or a ``NoRoute(reason)``.
- ``parse_routing_config(data)`` reads the JSON form (docs/sms.md) onto
  ``DEFAULT_COUNTRY_RULES``; errors are ``RoutingConfigError`` naming the path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import phonenumbers

from lodestar.core.delivery_events import RecordStatus
from lodestar.core.request_fields import FieldError


class OriginationKind(StrEnum):
    SENDER_ID = "SENDER_ID"
    LONG_CODE = "LONG_CODE"
    SHORT_CODE = "SHORT_CODE"
    TEN_DLC = "TEN_DLC"
    TOLL_FREE = "TOLL_FREE"


TRAVELLING_KINDS = frozenset({OriginationKind.LONG_CODE, OriginationKind.SENDER_ID})
"""Kinds that can reach another country than their own (international SMS)."""

NUMBER_KINDS = frozenset({OriginationKind.LONG_CODE, OriginationKind.TEN_DLC,
                          OriginationKind.TOLL_FREE})

_SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 \-_.&]{1,11}$")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class NoRouteReason(StrEnum):
    INVALID_DESTINATION = "INVALID_DESTINATION"
    """The destination is not a possible E.164 number."""
    COUNTRY_BLOCKED = "COUNTRY_BLOCKED"
    """The destination country's rule allows no kind of identity."""
    NO_IDENTITY = "NO_IDENTITY"
    """No configured (or requested) identity is eligible for the destination."""

    @property
    def record_status(self) -> RecordStatus:
        """The ``_SMS.FAILURE`` record_status reporting it."""
        if self is NoRouteReason.INVALID_DESTINATION:
            return RecordStatus.INVALID
        if self is NoRouteReason.COUNTRY_BLOCKED:
            return RecordStatus.BLOCKED
        return RecordStatus.UNREACHABLE


class RoutingConfigError(FieldError):
    """A malformed routing configuration; ``field`` is the offending path."""


def destination_country(number: str) -> str | None:
    """The ISO country of an E.164 ``number``, or None when it is not a possible number."""
    if not number.startswith("+") or not number[1:].isdigit():
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    region = phonenumbers.region_code_for_number(parsed)
    if not region or region == "ZZ":
        region = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    return None if not region or region in ("ZZ", "001") else region


@dataclass(frozen=True)
class OriginationIdentity:
    kind: OriginationKind
    value: str
    country: str | None = None

    @property
    def domestic_only(self) -> bool:
        return self.kind not in TRAVELLING_KINDS


def identity(kind: OriginationKind | str, value: str, country: str | None = None,
             path: str = "identity") -> OriginationIdentity:
    """A checked identity; a number's country defaults to the number's own."""
    try:
        kind = OriginationKind(kind)
    except ValueError:
        raise RoutingConfigError(
            f"{path}.kind", f"{kind!r} is not one of {', '.join(k.value for k in OriginationKind)}"
        ) from None
    if country is not None:
        country = country.upper()
        if not _COUNTRY.match(country):
            raise RoutingConfigError(f"{path}.country", "is an ISO 3166-1 alpha-2 code like JP")
    if kind is OriginationKind.SENDER_ID:
        if not _SENDER_ID.match(value):
            raise RoutingConfigError(
                f"{path}.value", "a sender id is 1-11 letters, digits or spaces, with a letter")
    elif kind is OriginationKind.SHORT_CODE:
        if not _SHORT_CODE.match(value):
            raise RoutingConfigError(f"{path}.value", "a short code is 3-8 digits")
        if country is None:
            raise RoutingConfigError(f"{path}.country", "a short code needs its country")
    else:
        own = destination_country(value)
        if own is None:
            raise RoutingConfigError(f"{path}.value", f"{value!r} is not an E.164 number")
        country = country or own
    return OriginationIdentity(kind, value, country)


@dataclass(frozen=True)
class CountryRule:
    allowed: tuple[OriginationKind, ...]
    """Kinds allowed, most preferred first; empty blocks the country."""
    international: bool = False
    """Reached from identities of other countries (international long code / sender id)."""

    @property
    def sender_id_allowed(self) -> bool:
        return OriginationKind.SENDER_ID in self.allowed


_K = OriginationKind
DEFAULT_COUNTRY_RULES: Mapping[str, CountryRule] = MappingProxyType({
    # no alphanumeric sender ids; A2P needs a short code, registered 10DLC or toll-free
    "US": CountryRule((_K.SHORT_CODE, _K.TEN_DLC, _K.TOLL_FREE)),
    "CA": CountryRule((_K.SHORT_CODE, _K.LONG_CODE, _K.TOLL_FREE)),
    # Japan: international SMS, from an international sender id or long code
    "JP": CountryRule((_K.SENDER_ID, _K.LONG_CODE), international=True),
})
DEFAULT_RULE = CountryRule((_K.SHORT_CODE, _K.SENDER_ID, _K.LONG_CODE), international=True)
"""The rule of a country without its own."""


@dataclass(frozen=True)
class RoutingConfig:
    identities: tuple[OriginationIdentity, ...] = ()
    countries: Mapping[str, CountryRule] = field(default_factory=lambda: DEFAULT_COUNTRY_RULES)
    default_rule: CountryRule = DEFAULT_RULE

    def rule(self, country: str) -> CountryRule:
        return self.countries.get(country, self.default_rule)


@dataclass(frozen=True)
class Route:
    identity: OriginationIdentity
    country: str
    """The destination's ISO country."""
    international: bool
    """The identity is registered in another country than the destination's."""
    ignored_request: str | None = None
    """Why a requested origination number / sender id was not used."""


@dataclass(frozen=True)
class NoRoute:
    reason: NoRouteReason
    detail: str
    country: str | None = None


def _eligible(candidate: OriginationIdentity, country: str, rule: CountryRule) -> bool:
    if candidate.kind not in rule.allowed:
        return False
    if candidate.country == country:
        return True
    if candidate.country is None and candidate.kind is OriginationKind.SENDER_ID:
        return True
    return rule.international and not candidate.domestic_only


def _rank(candidate: OriginationIdentity, country: str, rule: CountryRule) -> tuple[int, int]:
    return rule.allowed.index(candidate.kind), 0 if candidate.country in (country, None) else 1


def _requested(
    config: RoutingConfig, origination_number: str | None, sender_id: str | None
) -> tuple[list[OriginationIdentity], list[str]]:
    """The requested identities (configured ones as configured), and why others are invalid."""
    out: list[OriginationIdentity] = []
    problems: list[str] = []
    known = {c.value: c for c in config.identities}
    for value, fallback in ((origination_number, None), (sender_id, OriginationKind.SENDER_ID)):
        if not value:
            continue
        if value in known:
            out.append(known[value])
            continue
        kind = fallback or (OriginationKind.SHORT_CODE if _SHORT_CODE.match(value)
                            else OriginationKind.LONG_CODE)
        if kind is OriginationKind.SHORT_CODE:
            problems.append(f"short code {value} is not configured (its country is unknown)")
            continue
        try:
            out.append(identity(kind, value))
        except RoutingConfigError as exc:
            problems.append(f"requested {kind.value} {value!r}: {exc.message}")
    return out, problems


def choose_origination(
    destination: str,
    config: RoutingConfig,
    *,
    origination_number: str | None = None,
    sender_id: str | None = None,
) -> Route | NoRoute:
    """The identity to send to ``destination`` from (see the module contract)."""
    country = destination_country(destination)
    if country is None:
        return NoRoute(NoRouteReason.INVALID_DESTINATION,
                       f"{destination!r} is not a possible E.164 phone number")
    rule = config.rule(country)
    if not rule.allowed:
        return NoRoute(NoRouteReason.COUNTRY_BLOCKED,
                       f"sending SMS to {country} is not allowed by the routing rules", country)
    requested, problems = _requested(config, origination_number, sender_id)
    fitting = [r for r in requested if _eligible(r, country, rule)]
    problems += [f"{r.kind.value} {r.value} is not allowed for {country}"
                 for r in requested if r not in fitting]
    ignored = "; ".join(problems) or None
    if fitting:
        best = min(fitting, key=lambda r: _rank(r, country, rule))
        return Route(best, country, best.country not in (country, None))
    candidates = [c for c in config.identities if _eligible(c, country, rule)]
    if not candidates:
        allowed = ", ".join(k.value for k in rule.allowed)
        where = "domestic or international" if rule.international else "domestic"
        return NoRoute(NoRouteReason.NO_IDENTITY,
                       f"no configured {where} identity of kind {allowed} for {country}"
                       + (f" ({ignored})" if ignored else ""), country)
    best = min(candidates, key=lambda c: _rank(c, country, rule))  # stable: config order
    return Route(best, country, best.country not in (country, None), ignored)


# -- configuration ------------------------------------------------------------------


def _rule(data: object, path: str) -> CountryRule:
    if not isinstance(data, Mapping):
        raise RoutingConfigError(path, 'must be an object like {"allowed": ["LONG_CODE"]}')
    for key in data:
        if key not in ("allowed", "international"):
            raise RoutingConfigError(f"{path}.{key}", "unknown field; expected allowed, "
                                     "international")
    allowed = data.get("allowed")
    if not isinstance(allowed, Sequence) or isinstance(allowed, str):
        raise RoutingConfigError(f"{path}.allowed", "must be a list of identity kinds")
    kinds: list[OriginationKind] = []
    for index, value in enumerate(allowed):
        try:
            kind = OriginationKind(value)
        except ValueError:
            raise RoutingConfigError(
                f"{path}.allowed[{index}]",
                f"{value!r} is not one of {', '.join(k.value for k in OriginationKind)}",
            ) from None
        if kind in kinds:
            raise RoutingConfigError(f"{path}.allowed[{index}]", f"{kind.value} is repeated")
        kinds.append(kind)
    international = data.get("international", False)
    if not isinstance(international, bool):
        raise RoutingConfigError(f"{path}.international", "must be true or false")
    return CountryRule(tuple(kinds), international)


def parse_routing_config(data: object) -> RoutingConfig:
    """The configuration of the JSON form ``{"identities": [...], "countries": {...},
    "default": {...}}``; countries not given keep ``DEFAULT_COUNTRY_RULES``."""
    if not isinstance(data, Mapping):
        raise RoutingConfigError("$", "the SMS routing configuration is an object")
    for key in data:
        if key not in ("identities", "countries", "default"):
            raise RoutingConfigError(str(key), "unknown field; expected countries, default, "
                                     "identities")
    raw_identities = data.get("identities", [])
    if not isinstance(raw_identities, Sequence) or isinstance(raw_identities, str):
        raise RoutingConfigError("identities", "must be a list")
    identities: list[OriginationIdentity] = []
    for index, item in enumerate(raw_identities):
        path = f"identities[{index}]"
        if not isinstance(item, Mapping):
            raise RoutingConfigError(path, 'must be an object like {"kind": ..., "value": ...}')
        for key in item:
            if key not in ("kind", "value", "country"):
                raise RoutingConfigError(f"{path}.{key}",
                                         "unknown field; expected country, kind, value")
        value, country = item.get("value"), item.get("country")
        if not isinstance(value, str):
            raise RoutingConfigError(f"{path}.value", "is required (a string)")
        if country is not None and not isinstance(country, str):
            raise RoutingConfigError(f"{path}.country", "must be a string")
        identities.append(identity(item.get("kind", ""), value, country, path))
    countries = dict(DEFAULT_COUNTRY_RULES)
    raw_countries = data.get("countries", {})
    if not isinstance(raw_countries, Mapping):
        raise RoutingConfigError("countries", "must be an object of country -> rule")
    for code, rule in raw_countries.items():
        upper = code.upper() if isinstance(code, str) else ""
        if not _COUNTRY.match(upper):
            raise RoutingConfigError(f"countries.{code}", "is not an ISO 3166-1 alpha-2 code")
        countries[upper] = _rule(rule, f"countries.{upper}")
    default = _rule(data["default"], "default") if "default" in data else DEFAULT_RULE
    return RoutingConfig(tuple(identities), MappingProxyType(countries), default)


def routing_config_from_json(text: str) -> RoutingConfig:
    """``parse_routing_config`` of a JSON document."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RoutingConfigError("$", f"not JSON: {exc}") from None
    return parse_routing_config(data)
