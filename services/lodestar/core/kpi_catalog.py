"""Pinpoint's KPI names (GetApplication/Campaign/JourneyDateRangeKpi) and what each one means.

Every KPI is a ``KpiDefinition``: the scopes that answer it (application,
campaign, journey), which deliveries of an application it covers
(``Population``: campaign messages, transactional messages, everything), the
``Measure`` it reports — or the ratio of two — and the field its rows are
grouped by (``Grouping``, whose value is Pinpoint's ``GroupedBys.Key``).
``KPIS`` holds them all by name; ``kpi_rows`` turns measured values into
Pinpoint's ``KpiResult.Rows`` (a request's dates: ``core.kpi_dates``).

Pure: the SQL that measures lives in ``lodestar.analytics.kpis``.
docs/analytics.md ("## KPIs") gives every formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class KpiScope(StrEnum):
    """Which operation asks: the path's resource."""

    APPLICATION = "application"
    CAMPAIGN = "campaign"
    JOURNEY = "journey"


class Population(StrEnum):
    """Which of an application's messages an application-scope KPI covers."""

    CAMPAIGNS = "campaigns"  # messages of any campaign (campaign_id set)
    TRANSACTIONAL = "transactional"  # no campaign and no journey
    ALL = "all"  # everything (the events-based daily-active counts)


class Grouping(StrEnum):
    """What rows are grouped by; the value is Pinpoint's ``GroupedBys.Key``."""

    DATE = "Date"
    CAMPAIGN = "CampaignId"
    CAMPAIGN_ACTIVITY = "CampaignActivityId"
    COUNTRY = "CountryCode"
    JOURNEY_ACTIVITY = "JourneyActivityId"
    RECORD_STATUS = "RecordStatus"


class Source(StrEnum):
    """Which query computes a measure."""

    DELIVERIES = "deliveries"  # rows of the deliveries table
    SMS_VALUES = "sms_values"  # sums of SMS parts and prices over distinct messages
    EVENTS = "events"  # rows of the events table


class Measure(StrEnum):
    """A counted quantity. Messages are distinct message ids, events distinct event ids."""

    ATTEMPTED = "attempted"  # messages with a send attempt, any channel
    DELIVERED = "delivered"  # messages delivered, any channel
    UNIQUE_DELIVERIES = "unique_deliveries"  # endpoints with a delivered message
    EMAIL_SENT = "email_sent"  # messages with _email.send
    EMAIL_DELIVERED = "email_delivered"
    EMAIL_OPENED = "email_opened"  # messages opened at least once
    EMAIL_OPENERS = "email_openers"  # recipients (endpoint, else message) who opened
    EMAIL_CLICKS = "email_clicks"  # click events
    EMAIL_CLICKERS = "email_clickers"  # recipients who clicked
    EMAIL_HARD_BOUNCED = "email_hard_bounced"
    EMAIL_SOFT_BOUNCED = "email_soft_bounced"
    EMAIL_COMPLAINED = "email_complained"
    EMAIL_REJECTED = "email_rejected"
    EMAIL_UNSUBSCRIBES = "email_unsubscribes"  # unsubscribe events
    PUSH_DELIVERED = "push_delivered"  # (endpoint, campaign run) pairs delivered a push
    PUSH_OPENED = "push_opened"  # (endpoint, campaign run) pairs that opened one
    PUSH_OPENS = "push_opens"  # _campaign.opened_notification events
    SMS_SENT = "sms_sent"  # messages with _SMS.SUCCESS|FAILURE|BUFFERED
    SMS_DELIVERED = "sms_delivered"  # messages with _SMS.SUCCESS
    SMS_FAILURES = "sms_failures"  # _SMS.FAILURE events
    SMS_PARTS_SENT = "sms_parts_sent"  # parts of sent messages
    SMS_PARTS_DELIVERED = "sms_parts_delivered"  # parts of delivered messages
    SMS_PRICE = "sms_price"  # millicents USD of sent messages
    ACTIVE_ENDPOINTS = "active_endpoints"  # endpoints with an event
    ACTIVE_USERS = "active_users"  # user ids with an event

    @property
    def source(self) -> Source:
        if self in _SMS_VALUE_MEASURES:
            return Source.SMS_VALUES
        if self in _EVENT_MEASURES:
            return Source.EVENTS
        return Source.DELIVERIES


_SMS_VALUE_MEASURES = frozenset({
    Measure.SMS_PARTS_SENT, Measure.SMS_PARTS_DELIVERED, Measure.SMS_PRICE,
})
_EVENT_MEASURES = frozenset({
    Measure.PUSH_OPENED, Measure.PUSH_OPENS, Measure.ACTIVE_ENDPOINTS, Measure.ACTIVE_USERS,
})

# Delivery event types (lodestar.core.delivery_events.EventType values), as the measures read them.
SMS_ATTEMPT_TYPES: tuple[str, ...] = ("_SMS.SUCCESS", "_SMS.FAILURE", "_SMS.BUFFERED")
SEND_RECEIPT_TYPES: tuple[str, ...] = ("_campaign.send", "_journey.send")
ATTEMPT_TYPES: tuple[str, ...] = (
    "_email.send", *SMS_ATTEMPT_TYPES, *SEND_RECEIPT_TYPES,
    "_push.success", "_push.failure", "_voice.success", "_voice.failure",
    "_custom.success", "_custom.failure",
)
DELIVERED_TYPES: tuple[str, ...] = (
    "_email.delivered", "_SMS.SUCCESS", "_push.success", "_voice.success", "_custom.success",
)
RECEIPT_DELIVERED_STATUS = "SUCCESSFUL"
PUSH_OPEN_EVENT_TYPE = "_campaign.opened_notification"


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI name: ``numerator`` (÷ ``denominator`` for a rate) per ``group_by`` value."""

    name: str
    scopes: frozenset[KpiScope]
    population: Population
    value_key: str
    numerator: Measure
    denominator: Measure | None = None
    group_by: Grouping | None = None

    @property
    def measures(self) -> tuple[Measure, ...]:
        return (self.numerator,) if self.denominator is None else (
            self.numerator, self.denominator)

    @property
    def is_rate(self) -> bool:
        return self.denominator is not None

    def value(self, measured: Mapping[Measure, float]) -> float | None:
        """The KPI's value from its measures; ``None`` when there is none to report
        (a rate whose denominator is 0, a count of 0)."""
        top = float(measured.get(self.numerator, 0))
        if self.denominator is None:
            return top if top > 0 else None
        bottom = float(measured.get(self.denominator, 0))
        return top / bottom if bottom > 0 else None


_APP = frozenset({KpiScope.APPLICATION})
_CAMPAIGN = frozenset({KpiScope.CAMPAIGN})
_APP_CAMPAIGN = frozenset({KpiScope.APPLICATION, KpiScope.CAMPAIGN})
_JOURNEY = frozenset({KpiScope.JOURNEY})

_SUFFIXES = {
    Grouping.DATE: "date",
    Grouping.CAMPAIGN: "campaign",
    Grouping.CAMPAIGN_ACTIVITY: "campaign-activity",
    Grouping.COUNTRY: "country",
    Grouping.JOURNEY_ACTIVITY: "journey-activity",
}


def value_key(base: str) -> str:
    """Pinpoint's ``Values.Key`` of a KPI base name (``unique-deliveries`` →
    ``UniqueDeliveries``)."""
    return "".join(part.capitalize() for part in base.split("-"))


def _family(
    base: str,
    numerator: Measure,
    denominator: Measure | None = None,
    *,
    plain: frozenset[KpiScope] | None,
    grouped: Mapping[Grouping, frozenset[KpiScope]] | None = None,
    population: Population = Population.CAMPAIGNS,
    key: str | None = None,
) -> Iterable[KpiDefinition]:
    """``base`` (when ``plain`` scopes are given) and ``base-grouped-by-<x>`` variants."""
    key = key or value_key(base)
    if plain:
        yield KpiDefinition(base, plain, population, key, numerator, denominator)
    for grouping, scopes in (grouped or {}).items():
        yield KpiDefinition(f"{base}-grouped-by-{_SUFFIXES[grouping]}", scopes, population, key,
                            numerator, denominator, grouping)


def _catalog() -> Iterable[KpiDefinition]:
    m, g = Measure, Grouping
    # application metrics for campaigns, and campaign metrics
    yield from _family("successful-delivery-rate", m.DELIVERED, m.ATTEMPTED, plain=_APP_CAMPAIGN,
                       grouped={g.DATE: _APP_CAMPAIGN, g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("email-open-rate", m.EMAIL_OPENED, m.EMAIL_DELIVERED, plain=_APP_CAMPAIGN,
                       grouped={g.CAMPAIGN: _APP, g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("unique-deliveries", m.UNIQUE_DELIVERIES, plain=_APP_CAMPAIGN,
                       grouped={g.CAMPAIGN: _APP, g.DATE: _APP_CAMPAIGN,
                                g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("successful-deliveries", m.DELIVERED, plain=None,
                       grouped={g.CAMPAIGN: _APP, g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("push-open-rate", m.PUSH_OPENED, m.PUSH_DELIVERED, plain=_APP_CAMPAIGN,
                       grouped={g.CAMPAIGN: _APP, g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("hard-bounce-rate", m.EMAIL_HARD_BOUNCED, m.EMAIL_SENT, plain=_CAMPAIGN,
                       grouped={g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    for base, measure in (("attempted-deliveries", m.ATTEMPTED),
                          ("direct-email-opens", m.EMAIL_OPENED),
                          ("direct-push-opens", m.PUSH_OPENS),
                          ("clicks", m.EMAIL_CLICKS)):
        yield from _family(base, measure, plain=None, grouped={g.CAMPAIGN_ACTIVITY: _CAMPAIGN})
    yield from _family("sms-spend", m.SMS_PRICE, plain=_CAMPAIGN)
    # application metrics for transactional email
    txn, by_date = Population.TRANSACTIONAL, {g.DATE: _APP}
    for suffix, top, bottom in (
        ("sent", m.EMAIL_SENT, None), ("delivered", m.EMAIL_DELIVERED, None),
        ("delivery-rate", m.EMAIL_DELIVERED, m.EMAIL_SENT), ("opened", m.EMAIL_OPENED, None),
        ("unique-opens", m.EMAIL_OPENERS, None), ("clicked", m.EMAIL_CLICKS, None),
        ("unique-clicks", m.EMAIL_CLICKERS, None), ("hard-bounced", m.EMAIL_HARD_BOUNCED, None),
        ("soft-bounced", m.EMAIL_SOFT_BOUNCED, None),
        ("with-complaints", m.EMAIL_COMPLAINED, None),
        ("complaint-rate", m.EMAIL_COMPLAINED, m.EMAIL_SENT),
    ):
        yield from _family(f"txn-emails-{suffix}", top, bottom, plain=_APP, grouped=by_date,
                           population=txn)
    # application metrics for transactional SMS
    for base, measure, grouped in (
        ("txn-sms-sent", m.SMS_SENT, {g.COUNTRY: _APP, g.DATE: _APP}),
        ("txn-sms-delivered", m.SMS_DELIVERED, {g.COUNTRY: _APP, g.DATE: _APP}),
        ("txn-sms-sent-by-parts", m.SMS_PARTS_SENT, {g.COUNTRY: _APP}),
        ("txn-sms-delivered-by-parts", m.SMS_PARTS_DELIVERED, {g.COUNTRY: _APP}),
    ):
        yield from _family(base, measure, plain=_APP, grouped=grouped, population=txn)
    yield from _family("txn-sms-delivery-rate", m.SMS_DELIVERED, m.SMS_SENT, plain=_APP,
                       grouped=by_date, population=txn)
    yield KpiDefinition("txn-sms-error-distribution", _APP, txn, "Count", m.SMS_FAILURES,
                        group_by=g.RECORD_STATUS)
    by_country = {g.COUNTRY: _APP}
    yield from _family("txn-sms-average-price", m.SMS_PRICE, m.SMS_SENT, plain=None,
                       grouped=by_country, population=txn)
    yield from _family("txn-sms-average-price-by-parts", m.SMS_PRICE, m.SMS_PARTS_SENT,
                       plain=None, grouped=by_country, population=txn)
    yield from _family("txn-sms-total-price", m.SMS_PRICE, plain=None, grouped=by_country,
                       population=txn)
    # journey engagement metrics
    for what, measure in (
        ("sent", m.EMAIL_SENT), ("delivered", m.EMAIL_DELIVERED), ("opened", m.EMAIL_OPENED),
        ("clicked", m.EMAIL_CLICKS), ("complained", m.EMAIL_COMPLAINED),
        ("hardbounced", m.EMAIL_HARD_BOUNCED), ("softbounced", m.EMAIL_SOFT_BOUNCED),
        ("rejected", m.EMAIL_REJECTED), ("unsubscribed", m.EMAIL_UNSUBSCRIBES),
    ):
        yield from _family(f"journey-emails-{what}", measure, plain=_JOURNEY)
        yield from _family(f"emails-{what}", measure, plain=None,
                           grouped={g.JOURNEY_ACTIVITY: _JOURNEY})
    # named by AWS support; from the events table, per day
    yield KpiDefinition("daily-active-endpoints", _APP, Population.ALL, "DailyActiveEndpoints",
                        m.ACTIVE_ENDPOINTS, group_by=g.DATE)
    yield KpiDefinition("daily-active-users", _APP, Population.ALL, "DailyActiveUsers",
                        m.ACTIVE_USERS, group_by=g.DATE)


KPIS: dict[str, KpiDefinition] = {kpi.name: kpi for kpi in _catalog()}


def kpi_names(scope: KpiScope) -> list[str]:
    """The KPI names ``scope`` answers, sorted."""
    return sorted(name for name, kpi in KPIS.items() if scope in kpi.scopes)


class UnknownKpi(LookupError):
    """The name is not a KPI of the scope; the message lists the valid ones."""


def lookup_kpi(name: str, scope: KpiScope) -> KpiDefinition:
    """The KPI ``name`` of ``scope``, or ``UnknownKpi`` naming the valid ones."""
    kpi = KPIS.get(name)
    if kpi is None or scope not in kpi.scopes:
        raise UnknownKpi(
            f"No {scope.value} KPI is named {name!r}; valid names: "
            f"{', '.join(kpi_names(scope))}."
        )
    return kpi


# -- result shape ---------------------------------------------------------------------


def format_value(value: float) -> str:
    """A KPI value as Pinpoint writes it (Java's Double.toString for usual values): ``1368.0``."""
    return repr(float(value))


def kpi_rows(
    kpi: KpiDefinition, measured: Mapping[str, Mapping[Measure, float]]
) -> list[dict[str, Any]]:
    """``KpiResult.Rows`` from the measures of each group value (``""`` for an ungrouped KPI).

    Rows come in group-value order; a group whose value is unknown (``""`` for a
    grouped KPI) or whose KPI value is ``None`` (see ``KpiDefinition.value``) has
    no row, so a KPI with no data answers ``[]`` as Pinpoint does.
    """
    rows: list[dict[str, Any]] = []
    for group in sorted(measured):
        if kpi.group_by is not None and group == "":
            continue
        value = kpi.value(measured[group])
        if value is None:
            continue
        row: dict[str, Any] = {}
        if kpi.group_by is not None:
            row["GroupedBys"] = [{"Key": kpi.group_by.value, "Type": "String", "Value": group}]
        row["Values"] = [{"Key": kpi.value_key, "Type": "Double", "Value": format_value(value)}]
        rows.append(row)
    return rows
