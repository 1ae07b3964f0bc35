from __future__ import annotations

import pytest

from lodestar.core.kpi_catalog import (
    KPIS,
    Grouping,
    KpiScope,
    Measure,
    UnknownKpi,
    format_value,
    kpi_names,
    kpi_rows,
    lookup_kpi,
    value_key,
)

# Pinpoint's documented names (reference/pinpoint-api.md §8, analytics-standard-metrics)
_TXN_EMAIL = ["sent", "delivered", "delivery-rate", "opened", "unique-opens", "clicked",
              "unique-clicks", "hard-bounced", "soft-bounced", "with-complaints",
              "complaint-rate"]
APPLICATION = {
    "successful-delivery-rate", "successful-delivery-rate-grouped-by-date", "email-open-rate",
    "email-open-rate-grouped-by-campaign", "unique-deliveries",
    "unique-deliveries-grouped-by-campaign", "unique-deliveries-grouped-by-date",
    "successful-deliveries-grouped-by-campaign", "push-open-rate",
    "push-open-rate-grouped-by-campaign",
    *(f"txn-emails-{x}" for x in _TXN_EMAIL),
    *(f"txn-emails-{x}-grouped-by-date" for x in _TXN_EMAIL),
    "txn-sms-sent", "txn-sms-sent-grouped-by-country", "txn-sms-sent-grouped-by-date",
    "txn-sms-delivered", "txn-sms-delivered-grouped-by-country",
    "txn-sms-delivered-grouped-by-date", "txn-sms-delivery-rate",
    "txn-sms-delivery-rate-grouped-by-date", "txn-sms-sent-by-parts",
    "txn-sms-sent-by-parts-grouped-by-country", "txn-sms-delivered-by-parts",
    "txn-sms-delivered-by-parts-grouped-by-country", "txn-sms-error-distribution",
    "txn-sms-average-price-grouped-by-country",
    "txn-sms-average-price-by-parts-grouped-by-country",
    "txn-sms-total-price-grouped-by-country",
    "daily-active-endpoints", "daily-active-users",
}
CAMPAIGN = {
    "hard-bounce-rate", "hard-bounce-rate-grouped-by-campaign-activity",
    "successful-delivery-rate", "successful-delivery-rate-grouped-by-campaign-activity",
    "successful-delivery-rate-grouped-by-date", "email-open-rate",
    "email-open-rate-grouped-by-campaign-activity", "push-open-rate",
    "push-open-rate-grouped-by-campaign-activity", "unique-deliveries",
    "unique-deliveries-grouped-by-campaign-activity", "unique-deliveries-grouped-by-date",
    "successful-deliveries-grouped-by-campaign-activity",
    "attempted-deliveries-grouped-by-campaign-activity",
    "direct-email-opens-grouped-by-campaign-activity",
    "direct-push-opens-grouped-by-campaign-activity", "clicks-grouped-by-campaign-activity",
    "sms-spend",
}
_JOURNEY = ["sent", "delivered", "opened", "clicked", "complained", "hardbounced",
            "softbounced", "rejected", "unsubscribed"]
JOURNEY = {*(f"journey-emails-{x}" for x in _JOURNEY),
           *(f"emails-{x}-grouped-by-journey-activity" for x in _JOURNEY)}


def test_every_documented_name_in_its_scopes_and_no_other() -> None:
    assert set(kpi_names(KpiScope.APPLICATION)) == APPLICATION
    assert set(kpi_names(KpiScope.CAMPAIGN)) == CAMPAIGN
    assert set(kpi_names(KpiScope.JOURNEY)) == JOURNEY
    assert set(KPIS) == APPLICATION | CAMPAIGN | JOURNEY


@pytest.mark.parametrize(("suffix", "grouping"), [
    ("-grouped-by-date", Grouping.DATE), ("-grouped-by-campaign", Grouping.CAMPAIGN),
    ("-grouped-by-campaign-activity", Grouping.CAMPAIGN_ACTIVITY),
    ("-grouped-by-country", Grouping.COUNTRY),
    ("-grouped-by-journey-activity", Grouping.JOURNEY_ACTIVITY),
])
def test_the_name_says_the_grouping(suffix: str, grouping: Grouping) -> None:
    named = [kpi for name, kpi in KPIS.items() if name.endswith(suffix)]
    assert named and all(kpi.group_by is grouping for kpi in named)


def test_value_keys_follow_pinpoint() -> None:
    assert value_key("unique-deliveries") == "UniqueDeliveries"
    assert KPIS["unique-deliveries-grouped-by-campaign"].value_key == "UniqueDeliveries"
    assert KPIS["txn-emails-sent"].value_key == "TxnEmailsSent"
    assert KPIS["txn-sms-sent-grouped-by-date"].value_key == "TxnSmsSent"
    assert KPIS["successful-delivery-rate"].value_key == "SuccessfulDeliveryRate"


def test_rates_divide_and_counts_are_plain() -> None:
    rate = KPIS["successful-delivery-rate"]
    assert rate.measures == (Measure.DELIVERED, Measure.ATTEMPTED) and rate.is_rate
    assert rate.value({Measure.DELIVERED: 3, Measure.ATTEMPTED: 4}) == 0.75
    assert rate.value({Measure.DELIVERED: 0, Measure.ATTEMPTED: 4}) == 0.0
    assert rate.value({Measure.DELIVERED: 3, Measure.ATTEMPTED: 0}) is None
    count = KPIS["txn-sms-sent"]
    assert count.value({Measure.SMS_SENT: 7}) == 7.0
    assert count.value({Measure.SMS_SENT: 0}) is None


def test_unknown_or_other_scope_names_list_the_valid_ones() -> None:
    assert lookup_kpi("sms-spend", KpiScope.CAMPAIGN).name == "sms-spend"
    with pytest.raises(UnknownKpi,
                       match=r"No application KPI is named 'sms-spend'; valid names: .*txn-sms"):
        lookup_kpi("sms-spend", KpiScope.APPLICATION)
    with pytest.raises(UnknownKpi, match="journey-emails-sent"):
        lookup_kpi("nope", KpiScope.JOURNEY)


def test_rows_in_pinpoint_shape() -> None:
    grouped = KPIS["unique-deliveries-grouped-by-campaign"]
    rows = kpi_rows(grouped, {
        "c2": {Measure.UNIQUE_DELIVERIES: 456},
        "c1": {Measure.UNIQUE_DELIVERIES: 123},
        "": {Measure.UNIQUE_DELIVERIES: 9},  # unknown campaign: no row
        "c3": {Measure.UNIQUE_DELIVERIES: 0},  # nothing: no row
    })
    assert rows == [
        {"GroupedBys": [{"Key": "CampaignId", "Type": "String", "Value": "c1"}],
         "Values": [{"Key": "UniqueDeliveries", "Type": "Double", "Value": "123.0"}]},
        {"GroupedBys": [{"Key": "CampaignId", "Type": "String", "Value": "c2"}],
         "Values": [{"Key": "UniqueDeliveries", "Type": "Double", "Value": "456.0"}]},
    ]
    plain = KPIS["successful-delivery-rate"]
    assert kpi_rows(plain, {"": {Measure.DELIVERED: 1, Measure.ATTEMPTED: 8}}) == [
        {"Values": [{"Key": "SuccessfulDeliveryRate", "Type": "Double", "Value": "0.125"}]}]
    assert kpi_rows(plain, {}) == []
    assert format_value(1368) == "1368.0"
