"""Analytics query latency: every dashboard query and every KPI over generated data in the
embedded ClickHouse engine (chdb), p50/p95 per query (issue #6, target < 300 ms p95 at
10,000,000 events).

What runs:

1. A chdb database made by ``analytics.clickhouse.connect`` + ``migrate`` (the production
   schema, so the materialized views fill the daily rollups as they do in production),
   filled through the same tables in batches with ClickHouse's own
   ``INSERT … SELECT … FROM numbers(…)``:

   - ``events`` (``--events``, default 10,000,000): sessions of 8 events (a
     ``_session.start``, six app events, a ``_session.stop`` for 90 % of them — the
     others end on an app event) of ``--endpoints`` endpoints (500,000, skewed: a few
     are much more active), 70 % with a user id (some users have several endpoints),
     sessions spread over ``--days`` (30) days from ``START``; the app events a mix of
     ``page_view``, ``product_view``, ``search``, ``add_to_cart``, ``checkout``,
     ``_monetization.purchase`` (``_item_price``, ``_quantity`` on 80 %, ``_currency``
     of USD/EUR/GBP/JPY), ``_campaign.opened_notification`` (campaign, activity,
     treatment attributes), ``share``, ``_userauth.sign_in``; 5 % of the sessions belong
     to another application.
   - ``deliveries``: one message per 12 events (833,000 at 10M), each with its
     lifecycle events (about 2.5 per message): email (send, delivered, open, click,
     hard/soft bounce, complaint, unsubscribe), SMS (BUFFERED, SUCCESS/FAILURE with a
     record status, OPTOUT; ten countries, 1 to 3 parts, prices by country and parts), push
     (success/failure); campaign messages (20 campaigns, 3 treatments, 3 activities each)
     and journey messages (10 journeys, 6 activities each) add their ``_campaign.send`` /
     ``_journey.send`` receipt with its send status; the rest are transactional.
   - ``activity``: one journey entry per 50 events, each with its ENTRY, email, wait,
     split (two branches), SMS/push and EXIT steps.

   ``--keep PATH`` keeps the database at PATH and reuses it when it already holds the
   requested sizes (migrations added since are applied, backfilling their rollups).
2. Each query ``--runs`` times (default 20; KPIs ``--kpi-runs``, default 10) after one
   untimed warm-up, timed around ``registry.run_query`` (the SQL and the shaping of the
   answer, as the API pays it): the baselines (``SELECT count() FROM events`` and a
   ``GROUP BY event_type`` over every event), every product and dashboard query over
   the whole 30 days, and every KPI name in each of its scopes over the whole days and
   over one partial-day range. One table of p50 / p95 / max per query goes to stdout
   (``--json PATH`` saves it; ``--compare PATH`` adds the saved p95 as a before column).

CI never runs this at full size; tests/bench/test_analytics_queries_smoke.py runs it at
50,000 events.

    .venv/bin/python bench/analytics_queries.py --keep /tmp/lodestar-bench-chdb
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.clickhouse import connect, migrate, scalar
from lodestar.analytics.registry import load_queries, run_query
from lodestar.core.kpi_catalog import KPIS, KpiScope

APP = "bench-app"
OTHER_APP = "bench-other"
START = date(2026, 10, 20)  # the 30 days cross a month (two partitions), as they will
DATABASE = "bench_analytics"
CAMPAIGN = "camp-3"
JOURNEY = "journey-2"
TARGET_MS = 300.0
EVENTS_PER_SESSION = 8
EVENTS_PER_MESSAGE = 12
EVENTS_PER_JOURNEY_ENTRY = 50
BATCH = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data -----------------------------------------------------------------------------

def _hex(*parts: str) -> str:
    return f"lower(hex(cityHash64({', '.join(parts)})))"


def _endpoint(seed: str, endpoints: int) -> str:
    """A skewed endpoint number from the hash ``seed``: low numbers are much more active."""
    return (f"toUInt64(least({endpoints - 1}, "
            f"floor({endpoints} * pow((cityHash64({seed}) % 1000003) / 1000003.0, 1.6))))")


def _user(e: str, endpoints: int) -> str:
    users = max(1, endpoints * 7 // 10)
    return f"if({e} % 10 < 7, concat('user-', toString(cityHash64({e}, 'u') % {users})), '')"


def _events_sql(first: int, count: int, endpoints: int, days: int) -> str:
    """Rows ``first .. first + count - 1`` of the events (row n: session n // 8, place n % 8)."""
    return f"""
INSERT INTO events (app_id, event_type, event_time, arrival_time, endpoint_id, event_id,
                    session_id, attributes, metrics, app_version_code, sdk_name, user_id)
SELECT
    if(cityHash64(s, 'app') % 100 < 5, '{OTHER_APP}', '{APP}') AS app_id,
    multiIf(p = 0, '_session.start',
            p = {EVENTS_PER_SESSION - 1} AND cityHash64(s, 'stop') % 10 < 9, '_session.stop',
            r < 30, 'page_view', r < 50, 'product_view', r < 60, 'search',
            r < 72, 'add_to_cart', r < 80, 'checkout', r < 86, '_monetization.purchase',
            r < 92, '_campaign.opened_notification', r < 96, 'share', '_userauth.sign_in')
        AS event_type,
    toDateTime64('{START.isoformat()} 00:00:00', 3, 'UTC')
        + toIntervalMillisecond(cityHash64(s, 'day') % {days} * 86400000
                                + cityHash64(s, 'sec') % 86400000
                                + p * (15000 + cityHash64(n, 'gap') % 60000)) AS event_time,
    event_time + toIntervalMillisecond(200 + cityHash64(n, 'lag') % 3000) AS arrival_time,
    {_hex('e', "'ep'")} AS endpoint_id,
    concat({_hex('n', "'ev1'")}, {_hex('n', "'ev2'")}) AS event_id,
    {_hex('s', "'session'")} AS session_id,
    multiIf(event_type = '_monetization.purchase',
                map('_currency',
                    ['USD', 'USD', 'USD', 'EUR', 'GBP', 'JPY'][cityHash64(n, 'cur') % 6 + 1],
                    '_product_id', concat('sku-', toString(cityHash64(n, 'sku') % 500))),
            event_type = '_campaign.opened_notification',
                map('campaign_id', concat('camp-', toString(c)),
                    'campaign_activity_id', concat('camp-', toString(c), '-act-',
                                                   toString(cityHash64(n, 'act') % 3)),
                    'treatment_id', toString(cityHash64(e, c) % 3)),
            event_type IN ('page_view', 'product_view'),
                map('page', concat('/p/', toString(cityHash64(n, 'page') % 200))),
            map()) AS attributes,
    if(event_type = '_monetization.purchase',
       if(cityHash64(n, 'q') % 5 < 4,
          map('_item_price', round(0.99 + cityHash64(n, 'price') % 20000 / 100.0, 2),
              '_quantity', toFloat64(1 + cityHash64(n, 'qty') % 3)),
          map('_item_price', round(0.99 + cityHash64(n, 'price') % 20000 / 100.0, 2))),
       map()) AS metrics,
    concat('1.4.', toString(cityHash64(e, 'v') % 5)) AS app_version_code,
    ['aws-amplify-js', 'aws-amplify-android', 'aws-amplify-swift'][cityHash64(e, 'sdk') % 3 + 1]
        AS sdk_name,
    {_user('e', endpoints)} AS user_id
FROM (
    SELECT number AS n, intDiv(n, {EVENTS_PER_SESSION}) AS s, n % {EVENTS_PER_SESSION} AS p,
           cityHash64(n, 'type') % 100 AS r, cityHash64(n, 'camp') % 20 AS c,
           {_endpoint("s, 'who'", endpoints)} AS e
    FROM numbers({first}, {count})
)
"""


_COUNTRIES = "['US', 'US', 'US', 'GB', 'DE', 'FR', 'IN', 'BR', 'MX', 'CA']"
_PRICES = "[645, 645, 645, 4000, 7200, 6800, 180, 2100, 1500, 750]"  # millicents per part
_SMS_FAILURES = "['UNREACHABLE', 'CARRIER_UNREACHABLE', 'BLOCKED', 'TTL_EXPIRED']"


def _deliveries_sql(first: int, count: int, endpoints: int, days: int) -> str:
    """Messages ``first .. first + count - 1`` and their lifecycle events (see module doc)."""
    receipt = ("if(kind = 'campaign', '_campaign.send', "
               "if(kind = 'journey', '_journey.send', ''))")
    email, sms, push = "channel = 'EMAIL'", "channel = 'SMS'", "channel = 'PUSH'"
    events = f"""[
        tuple({receipt}, 0),
        tuple(if({email}, '_email.send', ''), 1),
        tuple(if({email} AND ok, '_email.delivered', ''), 5),
        tuple(if({email} AND ok AND r2 < 40, '_email.open', ''), 600 + r3 * 60),
        tuple(if({email} AND ok AND r2 < 10, '_email.click', ''), 700 + r3 * 60),
        tuple(if({email} AND NOT ok AND r3 < 80, '_email.hardbounce', ''), 6),
        tuple(if({email} AND NOT ok AND r3 >= 80, '_email.softbounce', ''), 6),
        tuple(if({email} AND ok AND r4 = 0, '_email.complaint', ''), 900),
        tuple(if({email} AND ok AND r4 BETWEEN 1 AND 2, '_email.unsubscribe', ''), 950),
        tuple(if({sms} AND r2 < 30, '_SMS.BUFFERED', ''), 1),
        tuple(if({sms}, if(ok, '_SMS.SUCCESS', '_SMS.FAILURE'), ''), 4),
        tuple(if({sms} AND ok AND r4 = 5, '_SMS.OPTOUT', ''), 3600),
        tuple(if({push} AND kind = 'transactional', if(ok, '_push.success', '_push.failure'),
                 ''), 1)
    ]"""
    return f"""
INSERT INTO deliveries (app_id, event_type, channel, event_time, event_id, message_id,
    endpoint_id, user_id, campaign_id, treatment_id, campaign_activity_id, journey_id,
    journey_activity_id, journey_run_id, delivery_type, record_status, iso_country_code,
    message_parts, price_millicents_usd, attributes)
SELECT
    app_id, ev.1 AS event_type, channel,
    sent_at + toIntervalSecond(ev.2) AS event_time,
    concat({_hex('m', 'ev.1', "'d1'")}, {_hex('m', 'ev.1', "'d2'")}) AS event_id,
    message_id, endpoint_id, user_id,
    if(kind = 'campaign', concat('camp-', toString(cityHash64(m, 'c') % 20)), '') AS campaign_id,
    if(kind = 'campaign', toString(cityHash64(m, 't') % 3), '') AS treatment_id,
    if(kind = 'campaign', concat(campaign_id, '-act-', toString(cityHash64(m, 'a') % 3)), '')
        AS campaign_activity_id,
    if(kind = 'journey', concat('journey-', toString(cityHash64(m, 'j') % 10)), '')
        AS journey_id,
    if(kind = 'journey', concat(journey_id, '-act-', toString(cityHash64(m, 'ja') % 6)), '')
        AS journey_activity_id,
    if(kind = 'journey', concat('run-', toString(cityHash64(m, 'j') % 10)), '')
        AS journey_run_id,
    if({sms}, if(cityHash64(m, 'dt') % 3 = 0, 'PROMOTIONAL', 'TRANSACTIONAL'), '')
        AS delivery_type,
    multiIf(ev.1 = '_SMS.SUCCESS', 'SUCCESSFUL', ev.1 = '_SMS.BUFFERED', 'PENDING',
            ev.1 = '_SMS.FAILURE', {_SMS_FAILURES}[r3 % 4 + 1], '') AS record_status,
    if({sms}, {_COUNTRIES}[country + 1], '') AS iso_country_code,
    toUInt16(if({sms}, parts, 0)) AS message_parts,
    if({sms} AND ev.1 IN ('_SMS.SUCCESS', '_SMS.FAILURE'),
       toFloat64(parts * {_PRICES}[country + 1]), 0.0) AS price_millicents_usd,
    multiIf(ev.1 = '_campaign.send',
                map('campaign_send_status', if(ok OR {email} OR {sms}, 'SUCCESSFUL',
                                               'PERMANENT_FAILURE')),
            ev.1 = '_journey.send',
                map('journey_send_status', if(ok OR {email} OR {sms}, 'SUCCESSFUL',
                                              'PERMANENT_FAILURE')),
            ev.1 = '_email.click', map('click_url', concat('https://shop.example/p/',
                                                           toString(r3))),
            map()) AS attributes
FROM (
    SELECT number AS m,
           if(cityHash64(m, 'app') % 100 < 5, '{OTHER_APP}', '{APP}') AS app_id,
           cityHash64(m, 'ch') % 100 AS r1,
           multiIf(r1 < 50, 'EMAIL', r1 < 75, 'SMS', 'PUSH') AS channel,
           multiIf(cityHash64(m, 'k') % 100 < 55, 'campaign',
                   cityHash64(m, 'k') % 100 < 75, 'journey', 'transactional') AS kind,
           cityHash64(m, 'ok') % 100 < 94 AS ok,
           cityHash64(m, 'r2') % 100 AS r2, cityHash64(m, 'r3') % 10 AS r3,
           cityHash64(m, 'r4') % 200 AS r4,
           cityHash64(m, 'country') % 10 AS country,
           1 + if(cityHash64(m, 'parts') % 10 < 7, 0, if(cityHash64(m, 'parts') % 10 < 9, 1, 2))
               AS parts,
           {_endpoint("m, 'who'", endpoints)} AS e,
           {_hex('e', "'ep'")} AS endpoint_id, {_user('e', endpoints)} AS user_id,
           {_hex('m', "'msg'")} AS message_id,
           toDateTime64('{START.isoformat()} 00:00:00', 3, 'UTC')
               + toIntervalMillisecond(cityHash64(m, 'day') % {days} * 86400000
                                       + cityHash64(m, 'at') % 86400000) AS sent_at,
           arrayJoin(arrayFilter(x -> x.1 != '', {events})) AS ev
    FROM numbers({first}, {count})
)
"""


def _activity_sql(first: int, count: int, endpoints: int, days: int) -> str:
    """Journey entries ``first .. first + count - 1`` and their steps."""
    steps = """[
        tuple('', 'ENTRY', 'ENTERED', '', '', 0, true),
        tuple('act-1', 'EMAIL', 'SENT', '', 'act-2', 1, true),
        tuple('act-2', 'WAIT', 'WAITED', '', 'act-3', 3600, true),
        tuple('act-3', 'MULTI_CONDITIONAL_SPLIT', 'EVALUATED', if(r < 60, 'branch-1',
              'branch-2'), if(r < 60, 'act-4', 'act-5'), 3601, true),
        tuple('act-4', 'SMS', if(r < 55, 'SENT', 'FAILED'), '', '', 3602, r < 60),
        tuple('act-5', 'PUSH', 'SENT', '', '', 3602, r >= 60),
        tuple('', 'EXIT', 'EXITED', '', '', 7200, r % 10 < 8)
    ]"""
    return f"""
INSERT INTO activity (app_id, source_type, source_id, source_version, run_id, activity_id,
    activity_type, channel, endpoint_id, user_id, outcome, branch, next_activity_id,
    step_time, step_id)
SELECT app_id, 'JOURNEY', journey, 1, concat('run-', journey), step.1,
       step.2, multiIf(step.2 = 'EMAIL', 'EMAIL', step.2 = 'SMS', 'SMS',
                       step.2 = 'PUSH', 'PUSH', ''),
       endpoint_id, user_id, step.3, step.4, step.5,
       entered_at + toIntervalSecond(step.6),
       concat({_hex('x', 'step.1', 'step.2', "'s1'")}, {_hex('x', 'step.1', "'s2'")})
FROM (
    SELECT number AS x,
           if(cityHash64(x, 'app') % 100 < 5, '{OTHER_APP}', '{APP}') AS app_id,
           concat('journey-', toString(cityHash64(x, 'j') % 10)) AS journey,
           cityHash64(x, 'r') % 100 AS r,
           {_endpoint("x, 'who'", endpoints)} AS e,
           {_hex('e', "'ep'")} AS endpoint_id, {_user('e', endpoints)} AS user_id,
           toDateTime64('{START.isoformat()} 00:00:00', 3, 'UTC')
               + toIntervalMillisecond(cityHash64(x, 'day') % {days} * 86400000
                                       + cityHash64(x, 'at') % 86400000) AS entered_at,
           arrayJoin(arrayFilter(t -> t.7, {steps})) AS step
    FROM numbers({first}, {count})
)
"""


@dataclass(frozen=True)
class Sizes:
    events: int
    endpoints: int
    days: int

    @property
    def messages(self) -> int:
        return max(1, self.events // EVENTS_PER_MESSAGE)

    @property
    def journey_entries(self) -> int:
        return max(1, self.events // EVENTS_PER_JOURNEY_ENTRY)


def _fill(client: Client, table: str, total: int, batch: int,
          sql: Callable[[int, int], str]) -> None:
    started = time.perf_counter()
    for first in range(0, total, batch):
        count = min(batch, total - first)
        client.command(sql(first, count))
        done = first + count
        rate = done / max(time.perf_counter() - started, 1e-9)
        log(f"  {table}: {done:,}/{total:,} source rows ({rate:,.0f}/s)")


def generate(client: Client, sizes: Sizes) -> None:
    """Fill ``events``, ``deliveries`` and ``activity`` (the rollups fill through the views)."""
    e, d = sizes.endpoints, sizes.days
    started = time.perf_counter()
    _fill(client, "events", sizes.events, BATCH, lambda f, c: _events_sql(f, c, e, d))
    msg_batch = BATCH // 2
    _fill(client, "deliveries (messages)", sizes.messages, msg_batch,
          lambda f, c: _deliveries_sql(f, c, e, d))
    _fill(client, "activity (journey entries)", sizes.journey_entries, BATCH // 4,
          lambda f, c: _activity_sql(f, c, e, d))
    client.command("INSERT INTO bench_meta VALUES ({events:UInt64}, {endpoints:UInt64}, "
                   "{days:UInt32})", parameters=asdict(sizes))
    log(f"generated in {time.perf_counter() - started:.1f} s")


def open_database(path: Path, sizes: Sizes, *, reuse: bool) -> Client:
    """A migrated chdb database at ``path`` holding ``sizes``; generated unless reusable."""
    client = connect(f"chdb://{path}", DATABASE)
    client.command("CREATE TABLE IF NOT EXISTS bench_meta (events UInt64, endpoints UInt64, "
                   "days UInt32) ENGINE = MergeTree ORDER BY tuple()")
    meta = client.query("SELECT events, endpoints, days FROM bench_meta").result_rows
    if reuse and meta and Sizes(*map(int, meta[0])) == sizes:
        applied = migrate(client)
        log(f"reusing {path} ({sizes.events:,} events); migrations applied now: "
            f"{applied or 'none'}")
        return client
    if meta:
        log(f"{path} holds another data set ({meta[0]}); regenerating")
        for table in ("events", "deliveries", "activity", "segment_membership"):
            client.command(f"TRUNCATE TABLE IF EXISTS {table}")
        client.command("TRUNCATE TABLE bench_meta")
    migrate(client)
    for rollup in _rollup_tables(client):
        client.command(f"TRUNCATE TABLE {rollup}")
    generate(client, sizes)
    return client


def _rollup_tables(client: Client) -> list[str]:
    rows = client.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                        "AND engine = 'AggregatingMergeTree'").result_rows
    return [str(r[0]) for r in rows]


def describe(client: Client) -> dict[str, int]:
    counts = {}
    for table in ("events", "deliveries", "activity", *_rollup_tables(client)):
        counts[table] = int(scalar(client, f"SELECT count() FROM {table}"))
    counts["endpoints (bench-app events)"] = int(scalar(
        client, "SELECT uniq(endpoint_id) FROM events WHERE app_id = {a:String}", {"a": APP}))
    return counts


# -- measuring ------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    detail: str
    run: Callable[[Client], Any]


@dataclass
class Timing:
    name: str
    detail: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    runs: int


def _percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def measure(client: Client, case: Case, runs: int) -> Timing:
    case.run(client)  # warm-up, untimed
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        case.run(client)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return Timing(case.name, case.detail, _percentile(times, 0.5), _percentile(times, 0.95),
                  times[-1], runs)


def _registered(name: str, params: Mapping[str, str]) -> Callable[[Client], Any]:
    return lambda client: run_query(client, name, dict(params))


def _sql(sql: str) -> Callable[[Client], Any]:
    return lambda client: client.query(sql).result_rows


def cases(sizes: Sizes) -> tuple[list[Case], list[Case]]:
    """(baselines + product and dashboard queries, KPI cases)."""
    end = START + timedelta(days=sizes.days - 1)
    dates = {"app-id": APP, "start": START.isoformat(), "end": end.isoformat()}
    product = [
        Case("baseline: count()", "SELECT count() FROM events", _sql("SELECT count() FROM events")),
        Case("baseline: GROUP BY event_type", "every event",
             _sql("SELECT event_type, count() FROM events GROUP BY event_type")),
        Case("event-counts", "every event", _registered("event-counts", {"app-id": APP})),
        Case("active-users", "30 days", _registered("active-users", dates)),
        Case("sessions", "30 days", _registered("sessions", dates)),
        Case("retention", "30 days, days=7", _registered("retention", dates)),
        Case("funnel", "4 steps, 1 day window", _registered("funnel", {
            **dates, "steps": "_session.start,product_view,add_to_cart,_monetization.purchase"})),
        Case("revenue", "30 days", _registered("revenue", dates)),
        Case("top-events", "30 days", _registered("top-events", dates)),
        Case("campaigns-page", "30 days", _registered("campaigns-page", dates)),
        Case("journeys-page", "30 days", _registered("journeys-page", dates)),
        Case("channels-page", "30 days", _registered("channels-page", dates)),
    ]
    start_ms = int(datetime(START.year, START.month, START.day, tzinfo=UTC).timestamp() * 1000)
    whole = (start_ms, start_ms + sizes.days * 86_400_000 - 1)
    partial = (whole[0] + 5 * 3_600_000 + 17, whole[1] - 7 * 3_600_000)
    scope_ids = {KpiScope.APPLICATION: "", KpiScope.CAMPAIGN: CAMPAIGN,
                 KpiScope.JOURNEY: JOURNEY}
    kpis = []
    for label, (lo, hi) in (("whole days", whole), ("partial days", partial)):
        for name, kpi in sorted(KPIS.items()):
            for scope in sorted(kpi.scopes, key=lambda s: s.value):
                params = {"app-id": APP, "kpi-name": name, "scope": scope.value,
                          "scope-id": scope_ids[scope], "start-ms": str(lo),
                          "end-ms": str(hi)}
                kpis.append(Case(f"kpi {name}", f"{scope.value}, {label}",
                                 _registered("kpi", params)))
    return product, kpis


def format_table(timings: list[Timing], before: Mapping[str, Timing] | None = None) -> str:
    header = "| query | what | runs | p50 ms | p95 ms | max ms |"
    rule = "|---|---|---:|---:|---:|---:|"
    if before is not None:
        header = "| query | what | runs | before p50 | before p95 | p50 ms | p95 ms | max ms |"
        rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    lines = [header, rule]
    for t in timings:
        flag = " ⚠" if t.p95_ms >= TARGET_MS and not t.name.startswith("baseline") else ""
        mid = ""
        if before is not None:
            b = before.get(_key(t))
            mid = (f" {b.p50_ms:.0f} | {b.p95_ms:.0f} |" if b else " - | - |")
        lines.append(f"| {t.name} | {t.detail} | {t.runs} |{mid} {t.p50_ms:.0f} | "
                     f"{t.p95_ms:.0f}{flag} | {t.max_ms:.0f} |")
    return "\n".join(lines)


def summary(timings: list[Timing]) -> str:
    kpi = [t for t in timings if t.name.startswith("kpi ")]
    lines = []
    for label in ("whole days", "partial days"):
        group = sorted(t.p95_ms for t in kpi if t.detail.endswith(label))
        if group:
            slow = sum(1 for v in group if v >= TARGET_MS)
            lines.append(f"KPIs, {label}: {len(group)} cases, p95 median "
                         f"{group[len(group) // 2]:.0f} ms, worst {group[-1]:.0f} ms, "
                         f"{slow} at or over {TARGET_MS:.0f} ms")
    others = [t for t in timings if not t.name.startswith(("kpi ", "baseline"))]
    slow_others = [t.name for t in others if t.p95_ms >= TARGET_MS]
    lines.append(f"dashboard/product queries at or over {TARGET_MS:.0f} ms p95: "
                 f"{', '.join(slow_others) or 'none'}")
    return "\n".join(lines)


def _key(t: Timing) -> str:
    return f"{t.name} / {t.detail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--endpoints", type=int, default=None,
                        help="default 500,000 at 10M events, proportional below")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kpi-runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the chdb database here and reuse it when it matches")
    parser.add_argument("--only", default="", help="regex: measure only matching queries")
    parser.add_argument("--json", type=Path, default=None, help="save the timings here")
    parser.add_argument("--compare", type=Path, default=None,
                        help="a --json file of an earlier run: print its p50/p95 beside")
    args = parser.parse_args(argv)
    if not 1 <= args.days <= 31:
        parser.error("--days must be 1..31 (KPI ranges are at most 31 days)")
    endpoints = args.endpoints or max(100, args.events // 20)
    sizes = Sizes(args.events, endpoints, args.days)
    load_queries()

    with tempfile.TemporaryDirectory(prefix="lodestar-bench-chdb-") as scratch:
        path = args.keep or Path(scratch)
        client = open_database(path, sizes, reuse=args.keep is not None)
        for table, n in describe(client).items():
            log(f"  {table}: {n:,} rows")
        product, kpis = cases(sizes)
        pick = re.compile(args.only) if args.only else None
        timings = []
        for case, runs in [*((c, args.runs) for c in product),
                           *((c, args.kpi_runs) for c in kpis)]:
            if pick and not pick.search(f"{case.name} {case.detail}") \
                    and not case.name.startswith("baseline"):
                continue
            timing = measure(client, case, runs)
            log(f"  {case.name} [{case.detail}]: p50 {timing.p50_ms:.0f} ms, "
                f"p95 {timing.p95_ms:.0f} ms")
            timings.append(timing)
        client.close()

    before = None
    if args.compare:
        before = {_key(t): t for t in (Timing(**row) for row in json.loads(
            args.compare.read_text()))}
    print(f"{sizes.events:,} events, {sizes.endpoints:,} endpoints, {sizes.days} days; "
          f"{args.runs} runs per query, {args.kpi_runs} per KPI (after one warm-up)")
    print(format_table(timings, before))
    print()
    print(summary(timings))
    if args.json:
        args.json.write_text(json.dumps([asdict(t) for t in timings], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
