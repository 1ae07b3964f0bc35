"""A seeded, generated data set of deliveries and events with known KPI answers.

``generate(seed)`` builds Delivery records (with ``core.delivery_events``) for
campaign, journey and transactional messages on email, SMS and push over
several days, plus app events (daily activity, push opens). ``expected(...)``
computes every KPI from those records in plain Python, written from
Pinpoint's definitions independently of the SQL (docs/analytics.md "## KPIs").
``load(client, data)`` inserts them, replaying a share of the rows twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lodestar.analytics.rows import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    delivery_row,
    event_row,
)
from lodestar.core.delivery_events import Channel, DeliverySubject, EventType, delivery_record

APP = "app-kpi"
OTHER_APP = "app-other"
DAY_MS = 86_400_000
BASE_MS = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp() * 1000)
DAYS = 5  # the window covers days 0..DAYS-1; data also lands on day -1 and day DAYS
WINDOW = (BASE_MS, BASE_MS + DAYS * DAY_MS - 1)
CAMPAIGNS = {"c1": ["c1-run1", "c1-run2"], "c2": ["c2-run1"]}
JOURNEYS = {"j1": ["j1-email-a", "j1-email-b"], "j2": ["j2-email-a"]}
COUNTRIES = {"US": 645.0, "DE": 7000.0, "IN": 250.0}
SMS_ERRORS = ["INVALID", "UNREACHABLE", "BLOCKED", "CARRIER_UNREACHABLE"]


@dataclass
class Data:
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _endpoint(rng: random.Random) -> tuple[str, str | None, str]:
    n = rng.randrange(40)
    return f"ep{n}", (f"user{n % 15}" if n % 4 else None), list(COUNTRIES)[n % 3]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.data = Data()
        self.n = 0

    def time(self) -> int:
        day = self.rng.randrange(-1, DAYS + 1)
        return BASE_MS + day * DAY_MS + self.rng.randrange(DAY_MS)

    def subject(self, app: str, channel: Channel, source: str) -> tuple[DeliverySubject, str]:
        self.n += 1
        endpoint, user, country = _endpoint(self.rng)
        if source == "txn" and self.rng.random() < 0.2:
            endpoint, user = None, None  # a send to a raw address
        kw: dict[str, Any] = {}
        if source == "campaign":
            campaign = self.rng.choice(sorted(CAMPAIGNS))
            kw = {"campaign_id": campaign,
                  "campaign_activity_id": self.rng.choice(CAMPAIGNS[campaign]),
                  "treatment_id": self.rng.choice(["0", "1"])}
        elif source == "journey":
            journey = self.rng.choice(sorted(JOURNEYS))
            kw = {"journey_id": journey, "journey_activity_id": self.rng.choice(JOURNEYS[journey]),
                  "journey_run_id": f"{journey}-run"}
        subject = DeliverySubject(app_id=app, message_id=f"m{self.n}", channel=channel,
                                  endpoint_id=endpoint, user_id=user, **kw)
        return subject, country

    def add(self, subject: DeliverySubject, kind: EventType, ts: int,
            attributes: dict[str, str | None] | None = None,
            metrics: dict[str, float] | None = None, hit: str | None = None) -> None:
        self.data.deliveries.append(
            delivery_record(subject, kind, ts, attributes, metrics, discriminator=hit))

    def email(self, subject: DeliverySubject) -> None:
        t = self.time()
        rng = self.rng
        if rng.random() < 0.06:
            self.add(subject, EventType.EMAIL_REJECTED, t)
            return
        self.add(subject, EventType.EMAIL_SEND, t)
        fate = rng.random()
        later = t + rng.randrange(1, 600_000)
        if fate < 0.1:
            self.add(subject, EventType.EMAIL_HARDBOUNCE, later)
            return
        if fate < 0.2:
            self.add(subject, EventType.EMAIL_SOFTBOUNCE, later)
            return
        if fate < 0.25:
            return  # no outcome yet
        self.add(subject, EventType.EMAIL_DELIVERED, later)
        for i in range(rng.choice([0, 0, 1, 1, 2, 3])):
            self.add(subject, EventType.EMAIL_OPEN, later + 1000 * (i + 1), hit=f"o{i}")
        for i in range(rng.choice([0, 0, 0, 1, 2])):
            self.add(subject, EventType.EMAIL_CLICK, later + 5000 * (i + 1),
                     {"feedback": "https://x.test/"}, hit=f"c{i}")
        if rng.random() < 0.08:
            self.add(subject, EventType.EMAIL_COMPLAINT, later + 9000)
        if rng.random() < 0.08:
            self.add(subject, EventType.EMAIL_UNSUBSCRIBE, later + 9500)

    def sms(self, subject: DeliverySubject, country: str) -> None:
        rng = self.rng
        t = self.time()
        parts = rng.randint(1, 3)
        price = COUNTRIES[country] * parts
        base = {"iso_country_code": country, "number_of_message_parts": str(parts),
                "destination_phone_number": "+15550100"}
        if rng.random() < 0.05:
            self.add(subject, EventType.SMS_OPTOUT, t, {**base, "record_status": "OPTED_OUT"})
            return
        if rng.random() < 0.3:
            early = price if rng.random() < 0.5 else 0.0  # some providers price at the end
            self.add(subject, EventType.SMS_BUFFERED, t, {**base, "record_status": "PENDING"},
                     {"price_in_millicents_usd": early})
            t += rng.randrange(1, 60_000)
        if rng.random() < 0.8:
            self.add(subject, EventType.SMS_SUCCESS, t, {**base, "record_status": "DELIVERED"},
                     {"price_in_millicents_usd": price})
        else:
            self.add(subject, EventType.SMS_FAILURE, t,
                     {**base, "record_status": rng.choice(SMS_ERRORS)},
                     {"price_in_millicents_usd": price})

    def push(self, subject: DeliverySubject) -> None:
        rng = self.rng
        t = self.time()
        ok = rng.random() < 0.85
        self.add(subject, EventType.CAMPAIGN_SEND, t,
                 {"delivery_type": "GCM",
                  "campaign_send_status": "SUCCESSFUL" if ok else "PERMANENT_FAILURE"})
        if ok:
            for i in range(rng.choice([0, 0, 1, 2])):
                self.app_event(subject.app_id, subject.endpoint_id or "", subject.user_id,
                               "_campaign.opened_notification", t + 1000 * (i + 1),
                               {"campaign_id": subject.campaign_id or "",
                                "campaign_activity_id": subject.campaign_activity_id or "",
                                "treatment_id": subject.treatment_id or ""})

    def app_event(self, app: str, endpoint: str, user: str | None, kind: str, ts: int,
                  attributes: dict[str, str] | None = None) -> None:
        self.n += 1
        self.data.events.append({
            "event_id": f"ev{self.n}", "app_id": app, "endpoint_id": endpoint,
            "event_type": kind, "timestamp": ts, "arrival_timestamp": ts + 5,
            "attributes": attributes or {}, "metrics": {}, "session": None, "client": None,
            "user_id": user, "endpoint_request": None,
        })


def generate(seed: int = 7, messages: int = 2500, app: str = APP) -> Data:
    gen = _Gen(seed)
    for _ in range(messages):
        app_id = app if gen.rng.random() < 0.92 else OTHER_APP
        source = gen.rng.choice(["campaign", "campaign", "journey", "txn", "txn"])
        channels = [Channel.EMAIL, Channel.SMS] + ([Channel.PUSH] if source == "campaign" else [])
        channel = gen.rng.choice(channels)
        subject, country = gen.subject(app_id, channel, source)
        if channel is Channel.EMAIL:
            gen.email(subject)
        elif channel is Channel.SMS:
            gen.sms(subject, country)
        else:
            gen.push(subject)
    for _ in range(600):
        endpoint, user, _country = _endpoint(gen.rng)
        gen.app_event(app if gen.rng.random() < 0.9 else OTHER_APP, endpoint, user,
                      gen.rng.choice(["_session.start", "pageView", "purchase"]), gen.time())
    return gen.data


def load(client: Any, data: Data, seed: int = 11) -> None:
    """Insert every row, then a third of them again (a replay after a crash)."""
    rng = random.Random(seed)
    deliveries = [delivery_row(r) for r in data.deliveries]
    events = [event_row(r) for r in data.events]
    for table, columns, rows in (("deliveries", DELIVERY_COLUMNS, deliveries),
                                 ("events", EVENT_COLUMNS, events)):
        client.insert(table, rows, column_names=list(columns))
        replay = [row for row in rows if rng.random() < 0.33]
        client.insert(table, replay, column_names=list(columns))


# -- the expected answers, from Pinpoint's definitions --------------------------------

Rec = dict[str, Any]
ATTEMPTS = {"_email.send", "_SMS.SUCCESS", "_SMS.FAILURE", "_SMS.BUFFERED", "_campaign.send",
            "_journey.send", "_push.success", "_push.failure", "_voice.success",
            "_voice.failure", "_custom.success", "_custom.failure"}
SMS_SENT = {"_SMS.SUCCESS", "_SMS.FAILURE", "_SMS.BUFFERED"}


def attr(r: Rec, name: str) -> str:
    return str(r["attributes"].get(name) or "")


def day(r: Rec) -> str:
    return datetime.fromtimestamp(r["timestamp"] / 1000, UTC).strftime("%Y-%m-%d")


def delivered(r: Rec) -> bool:
    kind = r["event_type"]
    if kind in {"_email.delivered", "_SMS.SUCCESS", "_push.success", "_voice.success",
                "_custom.success"}:
        return True
    return (kind in {"_campaign.send", "_journey.send"} and r["channel"] not in {"EMAIL", "SMS"}
            and "SUCCESSFUL" in (attr(r, "campaign_send_status"), attr(r, "journey_send_status")))


def recipient(r: Rec) -> str:
    return r["endpoint_id"] or r["message_id"]


def _distinct(key: Callable[[Rec], Any], keep: Callable[[Rec], bool]) -> Callable[
        [list[Rec]], float]:
    return lambda rows: float(len({key(r) for r in rows if keep(r)}))


def _email(kind: str, key: Callable[[Rec], Any] = lambda r: r["message_id"]) -> Callable[
        [list[Rec]], float]:
    return _distinct(key, lambda r: r["event_type"] == f"_email.{kind}")


def _sms_sum(value: Callable[[Rec], float], kinds: set[str]) -> Callable[[list[Rec]], float]:
    """Each message adds every distinct value its events of ``kinds`` report, once."""
    def total(rows: list[Rec]) -> float:
        pairs = {(r["message_id"], value(r)) for r in rows if r["event_type"] in kinds}
        return float(sum(v for _, v in pairs))
    return total


def _parts(r: Rec) -> float:
    return float(attr(r, "number_of_message_parts") or 0)


def _price(r: Rec) -> float:
    return float(r["metrics"].get("price_in_millicents_usd", 0.0))


# delivery-based measures over deliveries rows; "push_*" and "active_*" read events
MEASURES: dict[str, Callable[[list[Rec]], float]] = {
    "attempted": _distinct(lambda r: r["message_id"], lambda r: r["event_type"] in ATTEMPTS),
    "delivered": _distinct(lambda r: r["message_id"], delivered),
    "unique_deliveries": _distinct(lambda r: r["endpoint_id"],
                                   lambda r: delivered(r) and bool(r["endpoint_id"])),
    "email_sent": _email("send"),
    "email_delivered": _email("delivered"),
    "email_opened": _email("open"),
    "email_openers": _email("open", recipient),
    "email_clicks": _email("click", lambda r: r["event_id"]),
    "email_clickers": _email("click", recipient),
    "email_hard_bounced": _email("hardbounce"),
    "email_soft_bounced": _email("softbounce"),
    "email_complained": _email("complaint"),
    "email_rejected": _email("rejected"),
    "email_unsubscribes": _email("unsubscribe", lambda r: r["event_id"]),
    "push_delivered": _distinct(lambda r: (r["endpoint_id"], attr(r, "campaign_activity_id")),
                                lambda r: delivered(r) and r["channel"] == "PUSH"),
    "sms_sent": _distinct(lambda r: r["message_id"], lambda r: r["event_type"] in SMS_SENT),
    "sms_delivered": _distinct(lambda r: r["message_id"],
                               lambda r: r["event_type"] == "_SMS.SUCCESS"),
    "sms_failures": _distinct(lambda r: r["event_id"], lambda r: r["event_type"] == "_SMS.FAILURE"),
    "sms_parts_sent": _sms_sum(_parts, SMS_SENT),
    "sms_parts_delivered": _sms_sum(_parts, {"_SMS.SUCCESS"}),
    "sms_price": _sms_sum(_price, SMS_SENT),
}
EVENT_MEASURES: dict[str, Callable[[list[Rec]], float]] = {
    "push_opened": _distinct(lambda r: (r["endpoint_id"], attr(r, "campaign_activity_id")),
                             lambda r: r["event_type"] == "_campaign.opened_notification"),
    "push_opens": _distinct(lambda r: r["event_id"],
                            lambda r: r["event_type"] == "_campaign.opened_notification"),
    "active_endpoints": _distinct(lambda r: r["endpoint_id"], lambda r: True),
    "active_users": _distinct(lambda r: r["user_id"], lambda r: bool(r["user_id"])),
}

# Every KPI, written out from Pinpoint's descriptions: (numerator, denominator or None,
# grouping field or None, population of the application scope).
_C, _T, _A = "campaigns", "txn", "all"
EXPECTED_DEFS: dict[str, tuple[str, str | None, str | None, str]] = {
    "successful-delivery-rate": ("delivered", "attempted", None, _C),
    "successful-delivery-rate-grouped-by-date": ("delivered", "attempted", "Date", _C),
    "successful-delivery-rate-grouped-by-campaign-activity":
        ("delivered", "attempted", "CampaignActivityId", _C),
    "email-open-rate": ("email_opened", "email_delivered", None, _C),
    "email-open-rate-grouped-by-campaign": ("email_opened", "email_delivered", "CampaignId", _C),
    "email-open-rate-grouped-by-campaign-activity":
        ("email_opened", "email_delivered", "CampaignActivityId", _C),
    "unique-deliveries": ("unique_deliveries", None, None, _C),
    "unique-deliveries-grouped-by-campaign": ("unique_deliveries", None, "CampaignId", _C),
    "unique-deliveries-grouped-by-date": ("unique_deliveries", None, "Date", _C),
    "unique-deliveries-grouped-by-campaign-activity":
        ("unique_deliveries", None, "CampaignActivityId", _C),
    "successful-deliveries-grouped-by-campaign": ("delivered", None, "CampaignId", _C),
    "successful-deliveries-grouped-by-campaign-activity":
        ("delivered", None, "CampaignActivityId", _C),
    "push-open-rate": ("push_opened", "push_delivered", None, _C),
    "push-open-rate-grouped-by-campaign": ("push_opened", "push_delivered", "CampaignId", _C),
    "push-open-rate-grouped-by-campaign-activity":
        ("push_opened", "push_delivered", "CampaignActivityId", _C),
    "hard-bounce-rate": ("email_hard_bounced", "email_sent", None, _C),
    "hard-bounce-rate-grouped-by-campaign-activity":
        ("email_hard_bounced", "email_sent", "CampaignActivityId", _C),
    "attempted-deliveries-grouped-by-campaign-activity":
        ("attempted", None, "CampaignActivityId", _C),
    "direct-email-opens-grouped-by-campaign-activity":
        ("email_opened", None, "CampaignActivityId", _C),
    "direct-push-opens-grouped-by-campaign-activity":
        ("push_opens", None, "CampaignActivityId", _C),
    "clicks-grouped-by-campaign-activity": ("email_clicks", None, "CampaignActivityId", _C),
    "sms-spend": ("sms_price", None, None, _C),
    "txn-sms-sent": ("sms_sent", None, None, _T),
    "txn-sms-sent-grouped-by-country": ("sms_sent", None, "CountryCode", _T),
    "txn-sms-sent-grouped-by-date": ("sms_sent", None, "Date", _T),
    "txn-sms-delivered": ("sms_delivered", None, None, _T),
    "txn-sms-delivered-grouped-by-country": ("sms_delivered", None, "CountryCode", _T),
    "txn-sms-delivered-grouped-by-date": ("sms_delivered", None, "Date", _T),
    "txn-sms-delivery-rate": ("sms_delivered", "sms_sent", None, _T),
    "txn-sms-delivery-rate-grouped-by-date": ("sms_delivered", "sms_sent", "Date", _T),
    "txn-sms-sent-by-parts": ("sms_parts_sent", None, None, _T),
    "txn-sms-sent-by-parts-grouped-by-country": ("sms_parts_sent", None, "CountryCode", _T),
    "txn-sms-delivered-by-parts": ("sms_parts_delivered", None, None, _T),
    "txn-sms-delivered-by-parts-grouped-by-country":
        ("sms_parts_delivered", None, "CountryCode", _T),
    "txn-sms-error-distribution": ("sms_failures", None, "RecordStatus", _T),
    "txn-sms-average-price-grouped-by-country": ("sms_price", "sms_sent", "CountryCode", _T),
    "txn-sms-average-price-by-parts-grouped-by-country":
        ("sms_price", "sms_parts_sent", "CountryCode", _T),
    "txn-sms-total-price-grouped-by-country": ("sms_price", None, "CountryCode", _T),
    "daily-active-endpoints": ("active_endpoints", None, "Date", _A),
    "daily-active-users": ("active_users", None, "Date", _A),
}
for _suffix, _top, _bottom in (
    ("sent", "email_sent", None), ("delivered", "email_delivered", None),
    ("delivery-rate", "email_delivered", "email_sent"), ("opened", "email_opened", None),
    ("unique-opens", "email_openers", None), ("clicked", "email_clicks", None),
    ("unique-clicks", "email_clickers", None), ("hard-bounced", "email_hard_bounced", None),
    ("soft-bounced", "email_soft_bounced", None), ("with-complaints", "email_complained", None),
    ("complaint-rate", "email_complained", "email_sent"),
):
    EXPECTED_DEFS[f"txn-emails-{_suffix}"] = (_top, _bottom, None, _T)
    EXPECTED_DEFS[f"txn-emails-{_suffix}-grouped-by-date"] = (_top, _bottom, "Date", _T)
for _what, _measure in (
    ("sent", "email_sent"), ("delivered", "email_delivered"), ("opened", "email_opened"),
    ("clicked", "email_clicks"), ("complained", "email_complained"),
    ("hardbounced", "email_hard_bounced"), ("softbounced", "email_soft_bounced"),
    ("rejected", "email_rejected"), ("unsubscribed", "email_unsubscribes"),
):
    EXPECTED_DEFS[f"journey-emails-{_what}"] = (_measure, None, None, _C)
    EXPECTED_DEFS[f"emails-{_what}-grouped-by-journey-activity"] = (
        _measure, None, "JourneyActivityId", _C)

_GROUP_KEYS: dict[str, Callable[[Rec], str]] = {
    "Date": day,
    "CampaignId": lambda r: attr(r, "campaign_id"),
    "CampaignActivityId": lambda r: attr(r, "campaign_activity_id"),
    "CountryCode": lambda r: attr(r, "iso_country_code").upper(),
    "JourneyActivityId": lambda r: attr(r, "journey_activity_id"),
    "RecordStatus": lambda r: attr(r, "record_status"),
}


def _in_scope(r: Rec, scope: str, scope_id: str, population: str, app: str,
              window: tuple[int, int]) -> bool:
    if r["app_id"] != app or not window[0] <= r["timestamp"] <= window[1]:
        return False
    campaign, journey = attr(r, "campaign_id"), attr(r, "journey_id")
    if scope == "campaign":
        return campaign == scope_id
    if scope == "journey":
        return journey == scope_id
    if population == _C:
        return bool(campaign)
    if population == _T:
        return not campaign and not journey
    return True


def expected(data: Data, name: str, scope: str = "application", scope_id: str = "",
             app: str = APP, window: tuple[int, int] = WINDOW) -> dict[str, float]:
    """``{group value ("" when ungrouped): KPI value}`` for the KPI, from the records."""
    top, bottom, grouping, population = EXPECTED_DEFS[name]
    deliveries = _dedup(r for r in data.deliveries
                        if _in_scope(r, scope, scope_id, population, app, window))
    events = _dedup(r for r in data.events
                    if _in_scope(r, scope, scope_id, population, app, window))
    key = _GROUP_KEYS[grouping] if grouping else (lambda r: "")
    out: dict[str, float] = {}

    def value(measure: str, rows: dict[str, list[Rec]], group: str) -> float:
        fn = MEASURES.get(measure) or EVENT_MEASURES[measure]
        source = rows if measure in MEASURES else events_by_group
        return fn(source.get(group, []))

    by_group: dict[str, list[Rec]] = {}
    for r in deliveries:
        by_group.setdefault(key(r), []).append(r)
    events_by_group: dict[str, list[Rec]] = {}
    for r in events:
        events_by_group.setdefault(key(r), []).append(r)
    for group in set(by_group) | set(events_by_group):
        if grouping and not group:
            continue
        numerator = value(top, by_group, group)
        if bottom is None:
            if numerator > 0:
                out[group] = numerator
            continue
        denominator = value(bottom, by_group, group)
        if denominator > 0:
            out[group] = numerator / denominator
    return out


def _dedup(rows: Iterable[Rec]) -> list[Rec]:
    seen: dict[str, Rec] = {}
    for r in rows:
        seen.setdefault(r["event_id"], r)
    return list(seen.values())


def result_values(result: dict[str, Any]) -> dict[str, float]:
    """``{group value: value}`` of a KpiResult (checking each row's shape on the way)."""
    out: dict[str, float] = {}
    for row in result["Rows"]:
        (value,) = row["Values"]
        assert value["Type"] == "Double" and isinstance(value["Value"], str)
        group = ""
        if "GroupedBys" in row:
            (grouped,) = row["GroupedBys"]
            assert grouped["Type"] == "String"
            group = grouped["Value"]
        out[group] = float(value["Value"])
    return out
