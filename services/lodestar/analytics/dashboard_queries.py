"""The dashboard pages' queries over ``deliveries``, ``activity`` and ``events``.

All take ``app-id``, ``start`` and ``end`` like ``analytics.product``. Message
counts are distinct ``message_id``s (a replayed delivery event counts once), told
apart by their 64-bit CityHash as the KPIs count ids (endpoints too, where
conversions meet messages); spend reads ``FINAL``. Stage definitions, per message:

- sent: any send attempt (``_campaign.send``, ``_journey.send``, ``_email.send``,
  any ``_SMS.*``, ``_push|_voice|_custom.success|failure``);
- delivered: ``_email.delivered``, ``_SMS.SUCCESS``, ``_push|_voice|_custom.success``,
  or a ``_campaign.send`` / ``_journey.send`` with send status ``SUCCESSFUL`` on a
  channel other than EMAIL and SMS (which report their own delivery);
- opened: ``_email.open`` or ``_campaign.opened_notification``; clicked: ``_email.click``;
- bounced: ``_email.hardbounce|softbounce``, ``_SMS.FAILURE``, ``_push|_voice|_custom.failure``;
- complained: ``_email.complaint``; opted out: ``_email.unsubscribe``, ``_SMS.OPTOUT``;
- converted: the message was delivered and its endpoint recorded the conversion
  event type (``conversion-event``, default ``_monetization.purchase``) within
  ``conversion-days`` days (default 7) after the first delivery event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.product import PURCHASE, int_param, window
from lodestar.analytics.registry import QueryParameterError, analytics_query
from lodestar.core.significance import Arm, Rule, Verdict, verdict

SENT_TYPES = (
    "_campaign.send", "_journey.send", "_email.send",
    "_SMS.BUFFERED", "_SMS.SUCCESS", "_SMS.FAILURE", "_SMS.OPTOUT",
    "_push.success", "_push.failure", "_voice.success", "_voice.failure",
    "_custom.success", "_custom.failure",
)
DELIVERED_TYPES = (
    "_email.delivered", "_SMS.SUCCESS", "_push.success", "_voice.success", "_custom.success",
)
OPENED_TYPES = ("_email.open", "_campaign.opened_notification")
CLICKED_TYPES = ("_email.click",)
BOUNCED_TYPES = (
    "_email.hardbounce", "_email.softbounce", "_SMS.FAILURE",
    "_push.failure", "_voice.failure", "_custom.failure",
)
COMPLAINED_TYPES = ("_email.complaint",)
OPTED_OUT_TYPES = ("_email.unsubscribe", "_SMS.OPTOUT")

_TYPE_PARAMS = {
    "sent": SENT_TYPES, "delivered_types": DELIVERED_TYPES, "opened": OPENED_TYPES,
    "clicked": CLICKED_TYPES, "bounced": BOUNCED_TYPES, "complained": COMPLAINED_TYPES,
    "opted_out": OPTED_OUT_TYPES,
}
_IS_DELIVERED = (
    "(event_type IN {delivered_types:Array(String)} OR ("
    "event_type IN ('_campaign.send', '_journey.send') AND channel NOT IN ('EMAIL', 'SMS') "
    "AND (attributes['campaign_send_status'] = 'SUCCESSFUL' "
    "OR attributes['journey_send_status'] = 'SUCCESSFUL')))"
)


def _types() -> dict[str, list[str]]:
    return {name: list(types) for name, types in _TYPE_PARAMS.items()}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- campaigns ------------------------------------------------------------------------


@analytics_query("campaigns-page")
def campaigns_page(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """Per campaign and treatment: Sent → Delivered → Opened → Clicked → Converted
    messages (first event between ``start`` and ``end``), and the significance verdict
    across each campaign's treatments on Converted / Sent (``alpha`` default 0.05,
    ``min-sends`` default 100, ``min-conversions`` default 10; see
    ``lodestar.core.significance``). Optional ``campaign-id``."""
    w = window(params)
    days = int_param(params, "conversion-days", 7, 1, 90)
    conversion = params.get("conversion-event") or PURCHASE
    rule = _rule(params)
    campaign = params.get("campaign-id", "")
    messages = (
        "SELECT campaign_id, treatment_id, cityHash64(message_id) AS message, "
        "any(endpoint_id) AS endpoint, cityHash64(endpoint) AS endpoint_hash, "
        "min(event_time) AS first_time, "
        "countIf(event_type IN {sent:Array(String)}) > 0 AS is_sent, "
        f"countIf({_IS_DELIVERED}) > 0 AS is_delivered, "
        f"minIf(event_time, {_IS_DELIVERED}) AS delivered_time, "
        "countIf(event_type IN {opened:Array(String)}) > 0 AS is_opened, "
        "countIf(event_type IN {clicked:Array(String)}) > 0 AS is_clicked "
        "FROM deliveries WHERE app_id = {app_id:String} AND campaign_id != '' "
        "AND ({campaign:String} = '' OR campaign_id = {campaign:String}) "
        "AND event_date BETWEEN {start:Date} AND {last:Date} "
        "GROUP BY campaign_id, treatment_id, message "
        "HAVING toDate(first_time) BETWEEN {start:Date} AND {end:Date}"
    )
    # each delivered message meets its endpoint's conversion times (a plain hash join on
    # the endpoint's hash, cheaper than an ASOF join): converted when one falls within
    # conversion-days at or after the delivery
    conversions = (
        "SELECT cityHash64(endpoint_id) AS endpoint_hash, groupArray(event_time) AS times "
        "FROM events WHERE app_id = {app_id:String} AND event_type = {conversion:String} "
        "AND event_date BETWEEN {start:Date} AND {last:Date} AND endpoint_id != '' "
        "GROUP BY endpoint_hash"
    )
    rows = client.query(
        "SELECT m.campaign_id, m.treatment_id, countIf(m.is_sent), countIf(m.is_delivered), "
        "countIf(m.is_opened), countIf(m.is_clicked), "
        "countIf(m.is_delivered AND m.endpoint != '' AND arrayExists(t -> t >= m.delivered_time "
        "  AND t < m.delivered_time + toIntervalDay({days:UInt32}), c.times)) "
        f"FROM ({messages}) AS m LEFT JOIN ({conversions}) AS c "
        "ON m.endpoint_hash = c.endpoint_hash "
        "GROUP BY m.campaign_id, m.treatment_id ORDER BY m.campaign_id, m.treatment_id",
        parameters=w.sql_params(
            last=w.end + timedelta(days=days + 1), days=days, conversion=conversion,
            campaign=campaign, **_types(),
        ),
    ).result_rows
    grouped: dict[str, list[dict[str, Any]]] = {}
    for campaign_id, treatment, sent, delivered, opened, clicked, converted in rows:
        grouped.setdefault(campaign_id, []).append({
            "TreatmentId": treatment,
            "Sent": int(sent), "Delivered": int(delivered), "Opened": int(opened),
            "Clicked": int(clicked), "Converted": int(converted),
            "ConversionRate": _ratio(int(converted), int(sent)),
        })
    campaigns = []
    for campaign_id, treatments in grouped.items():
        arms = [Arm(t["TreatmentId"] or "0", t["Sent"], min(t["Converted"], t["Sent"]))
                for t in treatments]
        campaigns.append({
            "CampaignId": campaign_id,
            "Treatments": treatments,
            "Significance": verdict_json(verdict(arms, rule)),
        })
    return {
        "ConversionEvent": conversion, "ConversionDays": days,
        "Rule": {"Alpha": rule.alpha, "MinSends": rule.min_sends,
                 "MinConversions": rule.min_conversions},
        "Campaigns": campaigns,
    }


def _rule(params: Mapping[str, str]) -> Rule:
    raw = params.get("alpha") or "0.05"
    try:
        alpha = float(raw)
    except ValueError:
        alpha = -1.0
    if not 0 < alpha < 1:
        raise QueryParameterError(f"alpha must be a number between 0 and 1, got {raw!r}")
    return Rule(
        alpha=alpha,
        min_sends=int_param(params, "min-sends", 100, 1, 10**9),
        min_conversions=int_param(params, "min-conversions", 10, 0, 10**9),
    )


def verdict_json(v: Verdict) -> dict[str, Any]:
    """A ``Verdict`` as the dashboard reads it."""
    return {
        "Winner": v.winner,
        "Reason": None if v.reason is None else v.reason.value,
        "Message": v.message,
        "Best": v.best,
        "AlphaPerTest": v.alpha_per_test,
        "Tests": [
            {"TreatmentId": t.a, "AgainstTreatmentId": t.b, "Difference": round(t.difference, 6),
             "Z": round(t.z, 4), "PValue": t.p_value,
             "ConfidenceInterval": [round(t.ci_low, 6), round(t.ci_high, 6)]}
            for t in v.tests
        ],
    }


# -- journeys -------------------------------------------------------------------------


@analytics_query("journeys-page")
def journeys_page(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """Per journey: endpoints that entered, and per activity the steps by outcome and the
    branches taken (distinct ``step_id``s between ``start`` and ``end``). Optional
    ``journey-id``. ``{"Journeys": [{"JourneyId", "Entered", "Activities": [{"ActivityId",
    "ActivityType", "Total", "Outcomes": {outcome: n}, "Branches": {branch: n}}…]}…]}``;
    journey-level ENTRY/EXIT steps have an empty ActivityId."""
    w = window(params)
    journey = params.get("journey-id", "")
    where = (
        "WHERE app_id = {app_id:String} AND source_type = 'JOURNEY' "
        "AND ({journey:String} = '' OR source_id = {journey:String}) "
        "AND step_date BETWEEN {start:Date} AND {end:Date}"
    )
    sql_params = w.sql_params(journey=journey)
    rows = client.query(
        "SELECT source_id, activity_id, activity_type, outcome, branch, uniqExact(step_id) "
        f"FROM activity {where} GROUP BY source_id, activity_id, activity_type, outcome, branch "
        "ORDER BY source_id, activity_id, activity_type, outcome, branch",
        parameters=sql_params,
    ).result_rows
    entered = dict(client.query(
        "SELECT source_id, uniqExactIf(endpoint_id, activity_type = 'ENTRY' "
        f"AND outcome = 'ENTERED') FROM activity {where} GROUP BY source_id",
        parameters=sql_params,
    ).result_rows)
    journeys: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for source_id, activity_id, activity_type, outcome, branch, n in rows:
        key = (activity_id, activity_type)
        entry = journeys.setdefault(source_id, {}).setdefault(key, {
            "ActivityId": activity_id, "ActivityType": activity_type, "Total": 0,
            "Outcomes": {}, "Branches": {},
        })
        entry["Total"] += int(n)
        entry["Outcomes"][outcome] = entry["Outcomes"].get(outcome, 0) + int(n)
        if branch:
            entry["Branches"][branch] = entry["Branches"].get(branch, 0) + int(n)
    return {"Journeys": [
        {"JourneyId": source_id, "Entered": int(entered.get(source_id, 0)),
         "Activities": list(activities.values())}
        for source_id, activities in journeys.items()
    ]}


# -- channels -------------------------------------------------------------------------

# grouping(iso_country_code, event_date) of each grouping set: 1 marks a key summed over
_PER_CHANNEL, _PER_COUNTRY, _PER_DAY = 3, 1, 2
_CHANNEL_SETS = (
    "SELECT grouping(iso_country_code, event_date) AS grouping_set, channel, "
    "iso_country_code, event_date, {values} FROM ({rows}) "
    "GROUP BY GROUPING SETS ((channel), (channel, iso_country_code), (event_date, channel))"
)
_CHANNEL_ROLLUP = (
    "FROM deliveries_channels_daily WHERE app_id = {app_id:String} "
    "AND event_date BETWEEN {start:Date} AND {end:Date}"
)


@analytics_query("channels-page")
def channels_page(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """Deliverability per channel, per channel and country, and per day and channel:
    Sent, Delivered, Bounced, Complained, OptedOut messages, rates (delivered and
    bounced over sent, complaints over delivered) and spend in USD (the sum of
    ``price_millicents_usd`` / 100,000 over the distinct events, as ``FINAL`` reads
    them). ``{"Channels": […], "Countries": […], "Days": […]}``. Reads the daily rollup
    ``deliveries_channels_daily`` (migration 0007): the stages' message-hash states
    merged per grouping set, and per price the price times its distinct events."""
    w = window(params)
    stages = ", ".join(f"uniqExactMerge({stage})" for stage in
                       ("sent", "delivered", "bounced", "complained", "opted_out"))
    counted = client.query(
        _CHANNEL_SETS.format(
            values=stages,
            rows="SELECT event_date, channel, iso_country_code, sent, delivered, bounced, "
                 f"complained, opted_out {_CHANNEL_ROLLUP}"),
        parameters=w.sql_params(),
    ).result_rows
    spent = client.query(
        _CHANNEL_SETS.format(
            values="sum(spend)",
            rows="SELECT event_date, channel, iso_country_code, "
                 "price_millicents_usd * uniqExactMerge(priced_events) AS spend "
                 f"{_CHANNEL_ROLLUP} AND price_millicents_usd != 0 "
                 "GROUP BY event_date, channel, iso_country_code, price_millicents_usd"),
        parameters=w.sql_params(),
    ).result_rows
    spend = {tuple(r[:4]): r[4] for r in spent}
    rows = sorted(([*r, spend.get(tuple(r[:4]), 0.0)] for r in counted),
                  key=lambda r: (r[0], r[3], r[1], r[2]))

    def shape(sent: int, delivered: int, bounced: int, complained: int, opted_out: int,
              spend: float) -> dict[str, Any]:
        return {
            "Sent": int(sent), "Delivered": int(delivered), "Bounced": int(bounced),
            "Complained": int(complained), "OptedOut": int(opted_out),
            "DeliveryRate": _ratio(int(delivered), int(sent)),
            "BounceRate": _ratio(int(bounced), int(sent)),
            "ComplaintRate": _ratio(int(complained), int(delivered)),
            "SpendUsd": round(float(spend) / 100_000, 6),
        }

    return {
        "Channels": [{"Channel": c, **shape(*v)}
                     for g, c, _k, _d, *v in rows if g == _PER_CHANNEL],
        "Countries": [{"Channel": c, "Country": k, **shape(*v)}
                      for g, c, k, _d, *v in rows if g == _PER_COUNTRY],
        "Days": [{"Date": d.isoformat(), "Channel": c, **shape(*v)}
                 for g, c, _k, d, *v in rows if g == _PER_DAY],
    }
