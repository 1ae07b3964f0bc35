"""What one message costs, per channel and destination country.

Contract:

- Prices are in **millicents of a US dollar** (Pinpoint's ``price_in_millicents_usd``;
  1 USD = 100,000 millicents), per *unit* of the channel: an SMS message part,
  a push message, an email message, a voice minute, a custom webhook call.
- ``PriceTable.price(channel, country, parts)`` is ``unit price * parts``, where
  the unit price is the country's (ISO 3166-1 alpha-2, any case) when the table
  lists it, else the channel's ``default``. ``country`` may be ``None`` (unknown
  destination: the default). ``parts`` is the number of units (SMS parts, voice
  minutes; 1 for the other channels) and must be >= 0.
- ``parse_price_table(data)`` reads the JSON form and overlays it on ``base``
  (``DEFAULT_PRICES`` unless told otherwise), channel by channel: a channel's
  ``default`` replaces the base default when given, its ``countries`` are merged
  into the base countries. The JSON form::

      {"SMS": {"default": 5000, "countries": {"JP": 7000, "US": 790}},
       "PUSH": {"default": 0.1}}

  Anything else (unknown channel or key, a country that is not two letters, a
  price that is not a finite number >= 0) raises ``PriceTableError`` naming the path.
- The defaults are approximate list prices (late 2026) meant for estimates and
  the ``sms-spend`` KPIs; configure your provider's contract prices for billing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from lodestar.core.request_fields import FieldError

MILLICENTS_PER_USD = 100_000


class PriceChannel(StrEnum):
    """Channels with a price (the ``Channel`` symbols of the Avro schemas)."""

    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    VOICE = "VOICE"
    CUSTOM = "CUSTOM"


class PriceUnit(StrEnum):
    MESSAGE = "MESSAGE"
    PART = "PART"
    MINUTE = "MINUTE"


UNITS: Mapping[PriceChannel, PriceUnit] = MappingProxyType({
    PriceChannel.EMAIL: PriceUnit.MESSAGE,
    PriceChannel.SMS: PriceUnit.PART,
    PriceChannel.PUSH: PriceUnit.MESSAGE,
    PriceChannel.VOICE: PriceUnit.MINUTE,
    PriceChannel.CUSTOM: PriceUnit.MESSAGE,
})
"""What ``parts`` counts for each channel."""

_COUNTRY = re.compile(r"^[A-Z]{2}$")


class PriceTableError(FieldError):
    """A malformed price table; ``field`` is the offending path (``SMS.countries.JPN``)."""


def usd(amount: float) -> float:
    """``amount`` US dollars in millicents."""
    return amount * MILLICENTS_PER_USD


@dataclass(frozen=True)
class ChannelPrices:
    """Unit prices of one channel, in millicents USD."""

    default: float
    countries: Mapping[str, float] = field(default_factory=dict)

    def unit_price(self, country: str | None) -> float:
        if country is None:
            return self.default
        return self.countries.get(country.upper(), self.default)


@dataclass(frozen=True)
class PriceTable:
    channels: Mapping[PriceChannel, ChannelPrices]

    def unit_price(self, channel: PriceChannel | str, country: str | None) -> float:
        """Millicents USD for one unit of ``channel`` to ``country``."""
        return self._channel(channel).unit_price(country)

    def price(self, channel: PriceChannel | str, country: str | None, parts: int = 1) -> float:
        """Millicents USD for ``parts`` units of ``channel`` to ``country``."""
        if parts < 0:
            raise ValueError(f"parts must be >= 0, not {parts}")
        return self.unit_price(channel, country) * parts

    def _channel(self, channel: PriceChannel | str) -> ChannelPrices:
        try:
            key = PriceChannel(channel)
        except ValueError:
            raise ValueError(f"{channel!r} is not a priced channel") from None
        return self.channels[key]


DEFAULT_PRICES = PriceTable(MappingProxyType({
    # 1 USD per million push notifications (the brief), FCM/APNs themselves are free
    PriceChannel.PUSH: ChannelPrices(usd(1.0) / 1_000_000),
    # 0.10 USD per thousand emails (Amazon SES list price)
    PriceChannel.EMAIL: ChannelPrices(usd(0.10) / 1_000),
    # per message part; Japan ≈ 0.07 USD (the brief); others are approximate list prices
    PriceChannel.SMS: ChannelPrices(usd(0.05), MappingProxyType({
        "JP": usd(0.07), "US": usd(0.0079), "CA": usd(0.0079), "GB": usd(0.04),
        "DE": usd(0.09), "FR": usd(0.08), "IN": usd(0.003), "AU": usd(0.05),
        "BR": usd(0.045),
    })),
    # per started minute of a call
    PriceChannel.VOICE: ChannelPrices(usd(0.10), MappingProxyType({
        "US": usd(0.013), "CA": usd(0.013), "GB": usd(0.02), "JP": usd(0.08),
    })),
    # our own webhook: no provider fee
    PriceChannel.CUSTOM: ChannelPrices(0.0),
}))


def _amount(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PriceTableError(path, "must be a number of millicents USD")
    if not math.isfinite(value) or value < 0:
        raise PriceTableError(path, f"must be a finite number >= 0, not {value}")
    return float(value)


def _channel_prices(data: object, path: str, base: ChannelPrices | None) -> ChannelPrices:
    if not isinstance(data, Mapping):
        raise PriceTableError(path, 'must be an object like {"default": 5000, "countries": {}}')
    for key in data:
        if key not in ("default", "countries"):
            raise PriceTableError(f"{path}.{key}", "unknown field; expected countries, default")
    if "default" in data:
        default = _amount(data["default"], f"{path}.default")
    elif base is not None:
        default = base.default
    else:
        raise PriceTableError(f"{path}.default", "is required")
    countries = dict(base.countries) if base is not None else {}
    given = data.get("countries", {})
    if not isinstance(given, Mapping):
        raise PriceTableError(f"{path}.countries", "must be an object of country -> price")
    for country, value in given.items():
        where = f"{path}.countries.{country}"
        code = country.upper() if isinstance(country, str) else ""
        if not _COUNTRY.match(code):
            raise PriceTableError(where, "countries are ISO 3166-1 alpha-2 codes such as JP")
        countries[code] = _amount(value, where)
    return ChannelPrices(default, MappingProxyType(countries))


def parse_price_table(data: object, base: PriceTable | None = DEFAULT_PRICES) -> PriceTable:
    """The table of ``data`` (the JSON form) overlaid on ``base``; ``base=None`` requires
    every channel to be given in full."""
    if not isinstance(data, Mapping):
        raise PriceTableError("$", "a price table is an object keyed by channel")
    channels: dict[PriceChannel, ChannelPrices] = {}
    for key, value in data.items():
        try:
            channel = PriceChannel(key)
        except ValueError:
            raise PriceTableError(
                str(key), f"unknown channel; expected {', '.join(c.value for c in PriceChannel)}"
            ) from None
        channels[channel] = _channel_prices(
            value, channel.value, None if base is None else base.channels[channel])
    for channel in PriceChannel:
        if channel not in channels:
            if base is None:
                raise PriceTableError(channel.value, "is required")
            channels[channel] = base.channels[channel]
    return PriceTable(MappingProxyType(channels))


def price_table_from_json(text: str, base: PriceTable | None = DEFAULT_PRICES) -> PriceTable:
    """``parse_price_table`` of a JSON document."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceTableError("$", f"not JSON: {exc}") from None
    return parse_price_table(data, base)
