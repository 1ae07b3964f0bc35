"""Product analytics queries against ClickHouse, checked against answers computed in
Python from the generated rows (tests/dashboard/seed.py), every row inserted twice."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from tests.dashboard.seed import APP, END, PURCHASE, START, Data, Event, generate, load

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.registry import QueryParameterError, run_query

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def data() -> Data:
    return generate(seed=11)


@pytest.fixture(scope="module")
def client(data: Data, clickhouse_dsn: str) -> Iterator[Client]:
    ch = connect(clickhouse_dsn, f"t_product_{uuid.uuid4().hex[:10]}")
    migrate(ch)
    load(ch, data)
    yield ch
    ch.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": ch.database})
    ch.close()


def ask(client: Client, name: str, start: date = START, end: date = END,
        **extra: str) -> Any:
    return run_query(client, name, {"app-id": APP, "start": start.isoformat(),
                                    "end": end.isoformat(), **extra})


def app_events(data: Data) -> list[Event]:
    return [e for e in data.events if e.app_id == APP]


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@pytest.mark.parametrize("before", [-8, 20], ids=["one-query", "two-chunks"])
def test_active_endpoints_per_day_week_and_month(client: Client, data: Data,
                                                 before: int) -> None:
    # 20 days before START: 41 days, more than one 64-bit mask's chunk of days
    start, end = START - timedelta(days=before), END
    active: dict[date, set[str]] = defaultdict(set)
    users: dict[date, set[str]] = defaultdict(set)
    for e in app_events(data):
        active[e.time.date()].add(e.endpoint_id)
        if e.user_id:
            users[e.time.date()].add(e.user_id)

    def within(sets: dict[date, set[str]], day: date, span: int) -> int:
        return len(set().union(*(sets[day - timedelta(days=k)] for k in range(span))))

    answer = ask(client, "active-users", start, end)
    assert [d["Date"] for d in answer["Days"]] == [d.isoformat() for d in days(start, end)]
    for row, day in zip(answer["Days"], days(start, end), strict=True):
        assert row["DailyActiveEndpoints"] == len(active[day])
        assert row["WeeklyActiveEndpoints"] == within(active, day, 7)
        assert row["MonthlyActiveEndpoints"] == within(active, day, 30)
        if answer["UsersCounted"]:
            assert row["DailyActiveUsers"] == len(users[day])
            assert row["WeeklyActiveUsers"] == within(users, day, 7)
            assert row["MonthlyActiveUsers"] == within(users, day, 30)
    assert any(r["WeeklyActiveEndpoints"] > r["DailyActiveEndpoints"] for r in answer["Days"])


def test_days_without_events_answer_zero(client: Client) -> None:
    answer = ask(client, "active-users", date(2025, 1, 1), date(2025, 1, 3))
    assert [r["MonthlyActiveEndpoints"] for r in answer["Days"]] == [0, 0, 0]


def inclusive_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def test_sessions_and_their_length(client: Client, data: Data) -> None:
    by_session: dict[str, list[Event]] = defaultdict(list)
    for e in app_events(data):
        if e.session_id:
            by_session[e.session_id].append(e)
    per_day: dict[date, list[float | None]] = defaultdict(list)
    for events in by_session.values():
        starts = [e.time for e in events if e.event_type == "_session.start"]
        stops = [e.time for e in events if e.event_type == "_session.stop"]
        if not starts:
            continue
        started = min(starts)
        per_day[started.date()].append(
            (max(stops) - started).total_seconds() if stops else None)

    answer = ask(client, "sessions")
    lengths_all: list[float] = []
    for row in answer["Days"]:
        sessions = per_day[date.fromisoformat(row["Date"])]
        lengths = [s for s in sessions if s is not None]
        lengths_all += lengths
        assert row["Sessions"] == len(sessions)
        assert row["CompletedSessions"] == len(lengths)
        if lengths:
            assert row["AverageSeconds"] == pytest.approx(sum(lengths) / len(lengths), abs=2e-3)
            assert row["P50Seconds"] == pytest.approx(inclusive_quantile(lengths, 0.5), abs=2e-3)
            assert row["P90Seconds"] == pytest.approx(inclusive_quantile(lengths, 0.9), abs=2e-3)
    total = answer["Total"]
    assert total["Sessions"] == sum(len(v) for v in per_day.values())
    assert total["CompletedSessions"] == len(lengths_all) < total["Sessions"]
    assert total["P90Seconds"] == pytest.approx(inclusive_quantile(lengths_all, 0.9), abs=2e-3)


def test_retention_cohorts_within_the_range(client: Client, data: Data) -> None:
    start, end, n = START + timedelta(days=3), END - timedelta(days=2), 5
    seen: dict[str, set[date]] = defaultdict(set)
    for e in app_events(data):
        if start <= e.time.date() <= end:
            seen[e.endpoint_id].add(e.time.date())
    cohorts: dict[date, list[str]] = defaultdict(list)
    for ep, active in seen.items():
        cohorts[min(active)].append(ep)

    answer = ask(client, "retention", start, end, days=str(n))
    assert answer["Days"] == n
    assert [c["Date"] for c in answer["Cohorts"]] == [d.isoformat() for d in sorted(cohorts)]
    for cohort in answer["Cohorts"]:
        day = date.fromisoformat(cohort["Date"])
        members = cohorts[day]
        assert cohort["Size"] == len(members)
        for k in range(n + 1):
            target = day + timedelta(days=k)
            if target > end:
                assert cohort["Returned"][k] is None and cohort["Rates"][k] is None
            else:
                returned = sum(1 for ep in members if target in seen[ep])
                assert cohort["Returned"][k] == returned
                assert cohort["Rates"][k] == round(returned / len(members), 4)
    assert cohort["Returned"][1] is None  # the last cohort has no day 1 yet


def funnel_levels(
    data: Data, steps: list[str], window: float, start: date, end: date
) -> dict[str, int]:
    """The deepest step reached per endpoint, by following each step-1 event greedily."""
    levels: dict[str, int] = {}
    by_endpoint: dict[str, list[Event]] = defaultdict(list)
    for e in app_events(data):
        by_endpoint[e.endpoint_id].append(e)
    for ep, events in by_endpoint.items():
        events.sort(key=lambda e: e.time)
        best = 0
        for i, first in enumerate(events):
            if first.event_type != steps[0] or not start <= first.time.date() <= end:
                continue
            level, last = 1, first.time
            for later in events[i + 1:]:
                if level == len(steps) or (later.time - first.time).total_seconds() > window:
                    break
                if later.event_type == steps[level] and later.time > last:
                    level, last = level + 1, later.time
            best = max(best, level)
        if best:
            levels[ep] = best
    return levels


@pytest.mark.parametrize("window", [600, 3600])
def test_funnel_over_a_sequence_of_event_types(client: Client, data: Data, window: int) -> None:
    steps = ["_session.start", "pageView", "addToCart", "checkout"]
    start, end = START + timedelta(days=2), END - timedelta(days=4)
    levels = funnel_levels(data, steps, window, start, end)
    answer = ask(client, "funnel", start, end, steps=",".join(steps), window=str(window))
    counts = [sum(1 for level in levels.values() if level >= k) for k in range(1, 5)]
    assert [s["Count"] for s in answer["Steps"]] == counts
    assert [s["EventType"] for s in answer["Steps"]] == steps
    assert answer["Steps"][2]["ConversionFromPrevious"] == round(counts[2] / counts[1], 4)
    assert answer["Steps"][3]["ConversionFromFirst"] == round(counts[3] / counts[0], 4)
    assert counts[0] > counts[1] > counts[3]


def test_revenue_per_currency_counts_a_replayed_purchase_once(
    client: Client, data: Data
) -> None:
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    payers: dict[str, set[str]] = defaultdict(set)
    for e in app_events(data):
        if e.event_type == PURCHASE and START <= e.time.date() <= END:
            qty = e.metrics.get("_quantity", 1.0)
            cur = e.attributes.get("_currency", "")
            totals[cur][0] += 1
            totals[cur][1] += qty
            totals[cur][2] += qty * e.metrics.get("_item_price", 0.0)
            payers[cur].add(e.endpoint_id)
    answer = ask(client, "revenue")
    got = {t["Currency"]: t for t in answer["Totals"]}
    assert set(got) == set(totals) == {"USD", "EUR"}
    for cur, (count, units, amount) in totals.items():
        assert got[cur]["Purchases"] == count
        assert got[cur]["Units"] == pytest.approx(units)
        assert got[cur]["Revenue"] == pytest.approx(amount, abs=1e-6)
        assert got[cur]["Payers"] == len(payers[cur])
    assert sum(d["Purchases"] for d in answer["Days"]) == sum(t[0] for t in totals.values())


def test_top_events(client: Client, data: Data) -> None:
    counts: dict[str, int] = defaultdict(int)
    endpoints: dict[str, set[str]] = defaultdict(set)
    for e in app_events(data):
        counts[e.event_type] += 1
        endpoints[e.event_type].add(e.endpoint_id)
    expected = sorted(counts, key=lambda t: (-counts[t], t))[:3]
    answer = ask(client, "top-events", limit="3")
    assert [(r["EventType"], r["Count"], r["Endpoints"]) for r in answer["Events"]] == [
        (t, counts[t], len(endpoints[t])) for t in expected
    ]


@pytest.mark.parametrize(("name", "params", "complaint"), [
    ("active-users", {"start": "2026-05-01"}, "app-id is required"),
    ("sessions", {"app-id": APP, "start": "May 1st"}, "ISO date"),
    ("retention", {"app-id": APP, "start": "2026-05-09", "end": "2026-05-01"}, "after"),
    ("retention", {"app-id": APP, "days": "31"}, "days must be"),
    ("funnel", {"app-id": APP, "steps": "pageView"}, "2 to 10"),
    ("funnel", {"app-id": APP, "steps": "a,b", "window": "soon"}, "window must be"),
    ("top-events", {"app-id": APP, "start": "2024-01-01", "end": "2026-01-01"}, "366 days"),
])
def test_bad_parameters_say_what_to_send(
    client: Client, name: str, params: dict[str, str], complaint: str
) -> None:
    with pytest.raises(QueryParameterError, match=complaint):
        run_query(client, name, params)
