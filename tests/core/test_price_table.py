from __future__ import annotations

import math

import pytest

from lodestar.core.price_table import (
    DEFAULT_PRICES,
    MILLICENTS_PER_USD,
    PriceChannel,
    PriceTableError,
    parse_price_table,
    price_table_from_json,
    usd,
)


def test_defaults_from_the_brief() -> None:
    # push: 1 USD per million messages
    per_million = DEFAULT_PRICES.price(PriceChannel.PUSH, "US") * 1_000_000
    assert math.isclose(per_million, MILLICENTS_PER_USD)
    # SMS to Japan: about 0.07 USD per part
    assert math.isclose(DEFAULT_PRICES.price("SMS", "JP", 1), 7_000)
    assert math.isclose(DEFAULT_PRICES.price("SMS", "jp", 3), 21_000)


def test_unknown_or_missing_country_uses_the_channel_default() -> None:
    sms_default = DEFAULT_PRICES.channels[PriceChannel.SMS].default
    assert DEFAULT_PRICES.price("SMS", "ZW", 2) == 2 * sms_default
    assert DEFAULT_PRICES.price("SMS", None, 1) == sms_default
    assert DEFAULT_PRICES.price("SMS", "US", 1) < sms_default  # the US is listed, cheaper


def test_every_channel_has_a_price_and_zero_parts_cost_nothing() -> None:
    for channel in PriceChannel:
        assert DEFAULT_PRICES.price(channel, "DE", 0) == 0
        assert DEFAULT_PRICES.price(channel, "DE", 1) >= 0
    assert DEFAULT_PRICES.price("EMAIL", "FR") == usd(0.10) / 1000
    assert DEFAULT_PRICES.price("VOICE", "US", 3) == 3 * DEFAULT_PRICES.unit_price("VOICE", "US")


def test_bad_price_arguments() -> None:
    with pytest.raises(ValueError, match="parts"):
        DEFAULT_PRICES.price("SMS", "JP", -1)
    with pytest.raises(ValueError, match="FAX"):
        DEFAULT_PRICES.price("FAX", "JP", 1)


def test_a_table_overlays_the_defaults_per_channel() -> None:
    table = parse_price_table({
        "SMS": {"countries": {"jp": 6500, "MX": 1200}},
        "PUSH": {"default": 0.25},
    })
    assert table.price("SMS", "JP", 2) == 13_000
    assert table.price("SMS", "MX", 1) == 1200
    assert table.price("SMS", "US", 1) == DEFAULT_PRICES.price("SMS", "US", 1)  # kept
    assert table.price("SMS", "ZW", 1) == DEFAULT_PRICES.price("SMS", "ZW", 1)
    assert table.price("PUSH", "US", 4) == 1.0
    assert table.price("EMAIL", "US") == DEFAULT_PRICES.price("EMAIL", "US")


def test_a_table_without_base_must_be_complete() -> None:
    full = {c.value: {"default": 1} for c in PriceChannel}
    assert parse_price_table(full, base=None).price("VOICE", "JP", 2) == 2
    del full["CUSTOM"]
    with pytest.raises(PriceTableError) as err:
        parse_price_table(full, base=None)
    assert err.value.field == "CUSTOM"
    with pytest.raises(PriceTableError, match="required"):
        parse_price_table({**full, "CUSTOM": {"countries": {}}}, base=None)


@pytest.mark.parametrize(("data", "path"), [
    ([], "$"),
    ({"FAX": {"default": 1}}, "FAX"),
    ({"SMS": 5}, "SMS"),
    ({"SMS": {"default": -1}}, "SMS.default"),
    ({"SMS": {"default": "5"}}, "SMS.default"),
    ({"SMS": {"default": True}}, "SMS.default"),
    ({"SMS": {"default": float("inf")}}, "SMS.default"),
    ({"SMS": {"price": 5}}, "SMS.price"),
    ({"SMS": {"countries": []}}, "SMS.countries"),
    ({"SMS": {"countries": {"JPN": 5}}}, "SMS.countries.JPN"),
    ({"SMS": {"countries": {"JP": None}}}, "SMS.countries.JP"),
])
def test_malformed_tables_name_the_path(data: object, path: str) -> None:
    with pytest.raises(PriceTableError) as err:
        parse_price_table(data)
    assert err.value.field == path


def test_json_form() -> None:
    table = price_table_from_json('{"SMS": {"default": 4000, "countries": {"JP": 7100}}}')
    assert table.price("SMS", "JP", 1) == 7100
    assert table.price("SMS", "IT", 1) == 4000
    with pytest.raises(PriceTableError, match="not JSON"):
        price_table_from_json("{SMS")


def test_the_documented_example_table() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sms.md").read_text()
    [block] = [b for b in re.findall(r"```json\n(.*?)```", doc, re.S) if '"PUSH"' in b]
    table = price_table_from_json(block)
    assert table.price("SMS", "MX", 2) == 2400 and table.price("SMS", "JP", 1) == 6800
    assert table.price("SMS", "US", 1) == DEFAULT_PRICES.price("SMS", "US", 1)
