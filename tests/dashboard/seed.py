"""A generated analytics data set with known truth, and loading it into ClickHouse.

``generate(seed)`` builds plain Python rows for ``events``, ``deliveries`` and
``activity`` (app ``APP``, plus a little of ``OTHER_APP`` that no query of
``APP`` may count); the tests compute their expected answers from these rows
in Python, independently of the SQL. ``load(client, data, replay=True)``
inserts them, every table twice when ``replay`` (a replayed batch must not be
counted twice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

APP = "app-dash"
OTHER_APP = "app-other"
START = date(2026, 5, 1)
DAYS = 21
END = START + timedelta(days=DAYS - 1)
CUSTOM = ("pageView", "addToCart", "checkout")
PURCHASE = "_monetization.purchase"

EVENT_COLUMNS = ["app_id", "event_type", "event_time", "arrival_time", "endpoint_id",
                 "event_id", "session_id", "attributes", "metrics"]
DELIVERY_COLUMNS = ["app_id", "event_type", "channel", "event_time", "event_id", "message_id",
                    "endpoint_id", "campaign_id", "treatment_id", "iso_country_code",
                    "price_millicents_usd", "attributes"]
ACTIVITY_COLUMNS = ["app_id", "source_type", "source_id", "run_id", "activity_id",
                    "activity_type", "endpoint_id", "outcome", "branch", "step_time", "step_id"]


@dataclass
class Event:
    app_id: str
    event_type: str
    time: datetime
    endpoint_id: str
    event_id: str
    session_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    user_id: str = ""

    def row(self) -> list[Any]:
        return [self.app_id, self.event_type, self.time, self.time, self.endpoint_id,
                self.event_id, self.session_id, self.attributes, self.metrics, self.user_id]


@dataclass
class Delivery:
    app_id: str
    event_type: str
    channel: str
    time: datetime
    event_id: str
    message_id: str
    endpoint_id: str
    campaign_id: str = ""
    treatment_id: str = ""
    country: str = ""
    price: float = 0.0
    attributes: dict[str, str] = field(default_factory=dict)

    def row(self) -> list[Any]:
        return [self.app_id, self.event_type, self.channel, self.time, self.event_id,
                self.message_id, self.endpoint_id, self.campaign_id, self.treatment_id,
                self.country, self.price, self.attributes]


@dataclass
class Step:
    app_id: str
    journey_id: str
    activity_id: str
    activity_type: str
    endpoint_id: str
    outcome: str
    branch: str
    time: datetime
    step_id: str

    def row(self) -> list[Any]:
        return [self.app_id, "JOURNEY", self.journey_id, "run-1", self.activity_id,
                self.activity_type, self.endpoint_id, self.outcome, self.branch, self.time,
                self.step_id]


@dataclass
class Data:
    events: list[Event] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


def at(day: date, seconds: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def generate(seed: int = 7, endpoints: int = 60, messages_per_treatment: int = 240) -> Data:
    rnd = random.Random(seed)
    data = Data()
    n = 0

    def eid() -> str:
        nonlocal n
        n += 1
        return f"ev-{n:06d}"

    for i in range(endpoints):
        ep = f"ep-{i:03d}"
        first = rnd.randrange(DAYS)
        loyalty = rnd.random()
        for d in range(first, DAYS):
            if d != first and rnd.random() > loyalty * 0.8:
                continue
            day = START + timedelta(days=d)
            for s in range(rnd.choice((1, 1, 2))):
                sid = f"s-{ep}-{d}-{s}"
                t0 = rnd.randrange(3600, 80000) + s * 1000.0 + rnd.random()
                data.events.append(Event(APP, "_session.start", at(day, t0), ep, eid(), sid,
                                         user_id=user_of(ep)))
                t = t0
                for step in CUSTOM:
                    if rnd.random() > 0.6:
                        break
                    t += rnd.randrange(5, 900) + rnd.random()
                    data.events.append(Event(APP, step, at(day, t), ep, eid(), sid,
                                             {"url": f"/{step}"}, user_id=user_of(ep)))
                if rnd.random() < 0.3:
                    t += rnd.randrange(5, 600) + rnd.random()
                    cur = rnd.choice(("USD", "USD", "EUR"))
                    metrics = {"_item_price": rnd.choice((0.99, 4.99, 19.5))}
                    if rnd.random() < 0.7:
                        metrics["_quantity"] = float(rnd.randrange(1, 4))
                    data.events.append(Event(APP, PURCHASE, at(day, t), ep, eid(), sid,
                                             {"_currency": cur, "_product_id": "sku"}, metrics))
                if rnd.random() < 0.85:  # some sessions never report their stop
                    t += rnd.randrange(1, 300) + rnd.random()
                    data.events.append(Event(APP, "_session.stop", at(day, t), ep, eid(), sid))
    # sessions whose start was never reported: not counted as sessions
    for i in range(5):
        day = START + timedelta(days=2 * i)
        sid = f"orphan-{i}"
        data.events.append(Event(APP, "pageView", at(day, 7000), f"ep-{i:03d}", eid(), sid))
        data.events.append(Event(APP, "_session.stop", at(day, 7100), f"ep-{i:03d}", eid(), sid))
    # another app's events on the same endpoints and days
    for i in range(10):
        day = START + timedelta(days=i)
        data.events.append(Event(OTHER_APP, "pageView", at(day, 500), f"ep-{i:03d}", eid(),
                                 f"o-{i}"))
        data.events.append(Event(OTHER_APP, PURCHASE, at(day, 600), f"ep-{i:03d}", eid(),
                                 f"o-{i}", {"_currency": "USD"}, {"_item_price": 1000.0}))
    _campaign(rnd, data, messages_per_treatment, endpoints)
    _sms(rnd, data)
    _journey(rnd, data, endpoints)
    return data


def _campaign(rnd: random.Random, data: Data, per_treatment: int, endpoints: int) -> None:
    """Campaign c-1: email with treatments 0 (weaker) and 1 (stronger converting)."""
    for treatment, buy in (("0", 0.05), ("1", 0.30)):
        for m in range(per_treatment):
            mid = f"m-{treatment}-{m:04d}"
            ep = f"cep-{treatment}-{m:04d}"
            day = START + timedelta(days=m % (DAYS - 3))
            t = rnd.randrange(100, 40000) + rnd.random()

            def add(event_type: str, offset: float, mid: str = mid, ep: str = ep,
                    day: date = day, t: float = t, treatment: str = treatment) -> datetime:
                when = at(day, t + offset)
                data.deliveries.append(Delivery(
                    APP, event_type, "EMAIL", when, f"{mid}:{event_type}", mid, ep, "c-1",
                    treatment))
                return when

            add("_email.send", 0)
            roll = rnd.random()
            if roll < 0.05:
                add("_email.hardbounce", 5)
                continue
            if roll < 0.08:
                add("_email.softbounce", 5)
                continue
            delivered = add("_email.delivered", 10)
            if rnd.random() < 0.5:
                add("_email.open", 100)
                if rnd.random() < 0.4:
                    add("_email.click", 200)
            if rnd.random() < 0.02:
                add("_email.complaint", 300)
            if rnd.random() < 0.03:
                add("_email.unsubscribe", 400)
            if rnd.random() < buy:
                # a purchase 0..10 days after delivery: only up to 7 days converts
                later = delivered + timedelta(days=rnd.choice((0, 1, 3, 6, 8, 10)), seconds=60)
                data.events.append(Event(APP, PURCHASE, later, ep, f"buy-{mid}", "",
                                         {"_currency": "USD"}, {"_item_price": 1.0}))
            if rnd.random() < 0.1:
                # a purchase before the delivery never converts
                data.events.append(Event(APP, PURCHASE, delivered - timedelta(hours=1), ep,
                                         f"early-{mid}", "", {"_currency": "USD"},
                                         {"_item_price": 1.0}))


def _sms(rnd: random.Random, data: Data) -> None:
    for m in range(120):
        mid = f"sms-{m:04d}"
        day = START + timedelta(days=m % DAYS)
        country = ("US", "FR", "DE")[m % 3]
        price = (645.0, 7000.0, 8250.0)[m % 3]
        roll = rnd.random()
        kind = "_SMS.SUCCESS" if roll < 0.8 else "_SMS.FAILURE" if roll < 0.95 else "_SMS.OPTOUT"
        when = at(day, 1000 + m)
        data.deliveries.append(Delivery(APP, kind, "SMS", when, f"{mid}:{kind}", mid,
                                        f"sep-{m}", country=country, price=price))
    # push through a campaign: delivered when _campaign.send is SUCCESSFUL
    for m in range(30):
        mid = f"push-{m:03d}"
        status = "SUCCESSFUL" if m % 5 else "PERMANENT_FAILURE"
        data.deliveries.append(Delivery(
            APP, "_campaign.send", "PUSH", at(START + timedelta(days=m % DAYS), 2000), f"{mid}:s",
            mid, f"pep-{m}", "c-2", "0", attributes={"campaign_send_status": status}))
    data.deliveries.append(Delivery(OTHER_APP, "_SMS.SUCCESS", "SMS", at(START, 5), "x:1", "x",
                                    "x", country="US", price=1e6))


def _journey(rnd: random.Random, data: Data, endpoints: int) -> None:
    n = 0
    for i in range(endpoints):
        ep = f"ep-{i:03d}"
        day = START + timedelta(days=i % DAYS)
        t = 100.0

        def step(activity: str, kind: str, outcome: str, branch: str = "",
                 ep: str = ep, day: date = day) -> None:
            nonlocal n, t
            n += 1
            t += 10
            data.steps.append(Step(APP, "j-1", activity, kind, ep, outcome, branch, at(day, t),
                                   f"st-{n:05d}"))

        step("", "ENTRY", "ENTERED")
        step("welcome", "MESSAGE", "QUEUED")
        if rnd.random() < 0.2:
            step("welcome", "MESSAGE", "SKIPPED")
            continue
        branch = "true" if rnd.random() < 0.6 else "false"
        step("split", "CONDITIONAL_SPLIT", "COMPLETED", branch)
        step("followup" if branch == "true" else "wait", "MESSAGE" if branch == "true" else
             "WAIT", "QUEUED" if branch == "true" else "WAITING")
        step("", "EXIT", "EXITED")


def user_of(endpoint_id: str) -> str:
    """Endpoints ep-000, ep-001 … belong to users two by two; every third has none."""
    number = int(endpoint_id.rsplit("-", 1)[1])
    return "" if number % 3 == 0 else f"u-{number // 2}"


def events_have_user_id(client: Client) -> bool:
    return bool(client.query("SELECT count() FROM system.columns WHERE database = "
                             "currentDatabase() AND table = 'events' AND name = 'user_id'")
                .result_rows[0][0])


def load(client: Client, data: Data, replay: bool = True) -> None:
    """Insert the data set; with ``replay`` every table's rows go in twice. ``user_id``
    goes in only when the ``events`` table has that column."""
    users = events_have_user_id(client)
    columns = [*EVENT_COLUMNS, "user_id"] if users else EVENT_COLUMNS
    rows = [e.row() if users else e.row()[:-1] for e in data.events]
    for _ in range(2 if replay else 1):
        client.insert("events", rows, column_names=columns)
        client.insert("deliveries", [d.row() for d in data.deliveries],
                      column_names=DELIVERY_COLUMNS)
        client.insert("activity", [s.row() for s in data.steps], column_names=ACTIVITY_COLUMNS)


def retarget(data: Data, app_id: str) -> Data:
    """The data set with ``APP``'s rows moved to application ``app_id``."""
    for rows in (data.events, data.deliveries, data.steps):
        for row in rows:
            if row.app_id == APP:
                row.app_id = app_id
    return data
