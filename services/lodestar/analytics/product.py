"""Product analytics over the ``events`` table: active users, sessions, retention,
funnels, revenue and top events (registered analytics queries).

Every query takes ``app-id`` (required) and ``start`` / ``end`` (ISO dates,
inclusive, UTC; default: the 30 days ending today; at most ``MAX_DAYS`` apart)
and answers a JSON value whose days are ISO date strings.

``events`` is a ReplacingMergeTree: a replayed batch may still sit unmerged
beside the original. Distinct counts (endpoints, sessions, funnel levels) are
unaffected by such duplicates; sums and counts of events read ``FINAL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.registry import QueryParameterError, analytics_query

MAX_DAYS = 366
PURCHASE = "_monetization.purchase"
SESSION_START = "_session.start"
SESSION_STOP = "_session.stop"
MAX_FUNNEL_STEPS = 10
MAX_RETENTION_DAYS = 30
# Rows a replay duplicates share their sort key, hence their day and their monthly
# partition: FINAL may deduplicate each partition on its own (and in parallel).
FINAL_SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"


# -- parameters ---------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One application's inclusive date range."""

    app_id: str
    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def sql_params(self, **extra: Any) -> dict[str, Any]:
        return {"app_id": self.app_id, "start": self.start, "end": self.end, **extra}


def window(params: Mapping[str, str], today: date | None = None) -> Window:
    """The ``app-id``, ``start`` and ``end`` parameters; ``QueryParameterError`` when bad."""
    app_id = params.get("app-id", "")
    if not app_id:
        raise QueryParameterError("app-id is required")
    end = _date(params, "end") or today or datetime.now(UTC).date()
    start = _date(params, "start") or end - timedelta(days=29)
    if start > end:
        raise QueryParameterError(f"start ({start}) is after end ({end})")
    if (end - start).days >= MAX_DAYS:
        raise QueryParameterError(f"start and end may be at most {MAX_DAYS} days apart")
    return Window(app_id, start, end)


def _date(params: Mapping[str, str], name: str) -> date | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise QueryParameterError(f"{name} must be an ISO date (YYYY-MM-DD), got {raw!r}") from None


def int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number parameter within ``[low, high]``."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise QueryParameterError(f"{name} must be a whole number from {low} to {high}, "
                                  f"got {raw!r}")
    return value


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _events_have_user_id(client: Client) -> bool:
    rows = client.query(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' AND name = 'user_id'"
    ).result_rows
    return bool(rows and rows[0][0])


# -- active users ---------------------------------------------------------------------


@analytics_query("active-users")
def active_users(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """DAU/WAU/MAU per day: distinct endpoints with an event on the day, in the 7 days
    and in the 30 days ending on it (and distinct non-empty user ids when ``events``
    has a ``user_id`` column). ``{"Days": [{"Date", "DailyActiveEndpoints",
    "WeeklyActiveEndpoints", "MonthlyActiveEndpoints"[, "…Users"]}…], "UsersCounted"}``."""
    w = window(params)
    users = _events_have_user_id(client)
    names = ["DailyActiveEndpoints", "WeeklyActiveEndpoints", "MonthlyActiveEndpoints"]
    series = [_rolling_active(client, w, "endpoint_id")]
    if users:
        names += ["DailyActiveUsers", "WeeklyActiveUsers", "MonthlyActiveUsers"]
        series.append(_rolling_active(client, w, "user_id"))
    out = []
    for d in w.days:
        values = [v for found in series for v in found.get(d, (0, 0, 0))]
        out.append({"Date": d.isoformat(), **dict(zip(names, values, strict=True))})
    return {"Days": out, "UsersCounted": users}


_SPANS = (1, 7, 30)  # daily, weekly, monthly windows (days)


def _rolling_active(client: Client, w: Window, key: str) -> dict[date, tuple[int, int, int]]:
    """``{day: (daily, weekly, monthly)}`` distinct non-empty ``key`` values.

    Each key's active days (offsets from ``start - 29``) are merged, per window
    span, into the runs of target days its windows cover; a run adds +1 on its
    first day and -1 after its last, so a running sum over the days counts each
    key once per day without expanding every key to every day.
    """
    runs = []
    for kind, span in enumerate(_SPANS):
        firsts = (f"arrayFilter((a, i) -> i = 1 OR a - days[i - 1] > {span}, days, "
                  "arrayEnumerate(days))")
        lasts = (f"arrayFilter((a, i) -> i = length(days) OR days[i + 1] - a > {span}, days, "
                 "arrayEnumerate(days))")
        runs.append(f"arrayMap(a -> tuple({kind}, toInt32(a), 1), {firsts})")
        runs.append(f"arrayMap(a -> tuple({kind}, toInt32(a) + {span}, -1), {lasts})")
    rows = client.query(
        "SELECT run.1 AS kind, run.2 AS day, sum(run.3) FROM ("
        "  SELECT arraySort(bitmapToArray(groupBitmapState("
        "    toUInt32(event_date - ({start:Date} - 29))))) AS days "
        "  FROM events WHERE app_id = {app_id:String} "
        f"  AND {key} != '' "
        "  AND event_date BETWEEN {start:Date} - 29 AND {end:Date} "
        f"  GROUP BY {key}) "
        f"ARRAY JOIN arrayConcat({', '.join(runs)}) AS run "
        "GROUP BY kind, day",
        parameters=w.sql_params(),
    ).result_rows
    deltas: list[dict[int, int]] = [{} for _ in _SPANS]
    for kind, day, delta in rows:
        deltas[int(kind)][int(day)] = int(delta)
    last = 29 + (w.end - w.start).days
    counts = []
    for by_day in deltas:
        running, series = 0, []
        for offset in range(last + 1):
            running += by_day.get(offset, 0)
            series.append(running)
        counts.append(series)
    return {w.start + timedelta(days=t - 29): (counts[0][t], counts[1][t], counts[2][t])
            for t in range(29, last + 1)}


# -- sessions -------------------------------------------------------------------------


@analytics_query("sessions")
def sessions(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """Sessions per day of their start, and session length.

    A session is a non-empty ``session_id`` with a ``_session.start`` event,
    counted on the day of its (earliest) start. When it also has a
    ``_session.stop`` event it is completed and lasts until the latest stop:
    only completed sessions have a length. Only the start and stop events are
    read (the sort key leads with the event type, so this stays cheap); stops
    up to a day after ``end`` complete sessions crossing midnight. Quantiles
    interpolate linearly (``quantileExactInclusive``). ``{"Days": [{"Date",
    "Sessions", "CompletedSessions", "AverageSeconds", "P50Seconds",
    "P90Seconds"}…], "Total": {same without Date}}``.
    """
    w = window(params)
    per_session = (
        "SELECT session_id, minIf(event_time, event_type = {start_type:String}) AS started, "
        "countIf(event_type = {stop_type:String}) > 0 AS completed, "
        "dateDiff('millisecond', started, maxIf(event_time, event_type = {stop_type:String})) "
        "   / 1000.0 AS seconds "
        "FROM events WHERE app_id = {app_id:String} AND session_id != '' "
        "AND event_type IN ({start_type:String}, {stop_type:String}) "
        "AND event_date BETWEEN {start:Date} AND {end:Date} + 1 "
        "GROUP BY session_id HAVING countIf(event_type = {start_type:String}) > 0 "
        "AND toDate(started) BETWEEN {start:Date} AND {end:Date}"
    )
    stats = (
        "count(), countIf(completed), avgIf(seconds, completed), "
        "quantilesExactInclusiveIf(0.5, 0.9)(seconds, completed)"
    )
    sql_params = w.sql_params(start_type=SESSION_START, stop_type=SESSION_STOP)
    rows = client.query(
        f"SELECT toDate(started) AS day, {stats} FROM ({per_session}) GROUP BY day ORDER BY day",
        parameters=sql_params,
    ).result_rows
    total = client.query(f"SELECT {stats} FROM ({per_session})", parameters=sql_params)
    found = {r[0]: r[1:] for r in rows}
    days = [{"Date": d.isoformat(), **_session_stats(found.get(d))} for d in w.days]
    return {"Days": days, "Total": _session_stats(total.result_rows[0])}


def _session_stats(row: Any) -> dict[str, Any]:
    if not row or not row[0]:
        return {"Sessions": 0, "CompletedSessions": 0, "AverageSeconds": None,
                "P50Seconds": None, "P90Seconds": None}
    count, completed, average, quantiles = row
    has = bool(completed)
    return {
        "Sessions": int(count),
        "CompletedSessions": int(completed),
        "AverageSeconds": round(float(average), 3) if has else None,
        "P50Seconds": round(float(quantiles[0]), 3) if has else None,
        "P90Seconds": round(float(quantiles[1]), 3) if has else None,
    }


# -- retention ------------------------------------------------------------------------


@analytics_query("retention")
def retention(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """N-day retention cohorts (``days``: N, default 7, at most 30).

    An endpoint's cohort is the first day within ``start..end`` it recorded any
    event; it is retained on day k when it recorded an event k days later. Days
    past ``end`` are not observed yet and answer null. ``{"Days": N, "Cohorts":
    [{"Date", "Size", "Returned": [n0..nN], "Rates": [r0..rN]}…]}`` (day 0 is the
    cohort itself, rate 1.0).
    """
    w = window(params)
    n = int_param(params, "days", 7, 1, MAX_RETENTION_DAYS)
    rows = client.query(
        "SELECT cohort, k, count() FROM ("
        "  SELECT bitmapToArray(groupBitmapState(toUInt32(event_date - {start:Date}))) AS days, "
        "  arrayMin(days) AS cohort FROM events "
        "  WHERE app_id = {app_id:String} AND event_date BETWEEN {start:Date} AND {end:Date} "
        "  GROUP BY endpoint_id) "
        "ARRAY JOIN arrayMap(a -> a - cohort, days) AS k "
        "WHERE k <= {n:UInt32} GROUP BY cohort, k",
        parameters=w.sql_params(n=n),
    ).result_rows
    counts: dict[date, dict[int, int]] = {}
    for offset, k, count in rows:
        counts.setdefault(w.start + timedelta(days=int(offset)), {})[int(k)] = int(count)
    cohorts = []
    for day, by_k in sorted(counts.items()):
        size = by_k.get(0, 0)
        returned: list[int | None] = [
            by_k.get(k, 0) if day + timedelta(days=k) <= w.end else None for k in range(n + 1)
        ]
        rates = [None if r is None else round(r / size, 4) if size else 0.0 for r in returned]
        cohorts.append(
            {"Date": day.isoformat(), "Size": size, "Returned": returned, "Rates": rates}
        )
    return {"Days": n, "Cohorts": cohorts}


# -- funnels --------------------------------------------------------------------------


@analytics_query("funnel")
def funnel(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """A funnel over ``steps`` (comma-separated event types, 2 to 10) with ClickHouse's
    ``windowFunnel``: an endpoint reaches step k when it recorded steps 1..k in order,
    all within ``window`` seconds (default 86400) of its step 1, with step 1 between
    ``start`` and ``end`` (later steps may fall up to the window after ``end``).
    ``{"WindowSeconds", "Steps": [{"EventType", "Count", "ConversionFromPrevious",
    "ConversionFromFirst"}…]}``; conversions are fractions, null after a zero step.
    """
    w = window(params)
    steps = [s.strip() for s in params.get("steps", "").split(",") if s.strip()]
    if not 2 <= len(steps) <= MAX_FUNNEL_STEPS:
        raise QueryParameterError(
            f"steps must list 2 to {MAX_FUNNEL_STEPS} event types separated by commas"
        )
    seconds = int_param(params, "window", 86400, 1, 90 * 86400)
    conditions = ", ".join(f"event_type = {{s{i}:String}}" for i in range(len(steps)))
    step_params = {f"s{i}": s for i, s in enumerate(steps)}
    rows = client.query(
        "SELECT level, count() FROM ("
        f"  SELECT endpoint_id, windowFunnel({seconds * 1000})"
        f"    (toUInt64(toUnixTimestamp64Milli(event_time)), {conditions}) AS level "
        "  FROM events WHERE app_id = {app_id:String} AND event_type IN {types:Array(String)} "
        "  AND event_date BETWEEN {start:Date} AND {last:Date} "
        "  AND (event_type != {s0:String} OR event_date <= {end:Date}) "
        "  GROUP BY endpoint_id) WHERE level > 0 GROUP BY level",
        parameters=w.sql_params(
            types=sorted(set(steps)), last=w.end + timedelta(days=seconds // 86400 + 1),
            **step_params,
        ),
    ).result_rows
    at_level = {int(level): int(count) for level, count in rows}
    out = []
    first = previous = 0
    for i, step in enumerate(steps, start=1):
        count = sum(c for level, c in at_level.items() if level >= i)
        if i == 1:
            first = previous = count
        out.append({
            "EventType": step,
            "Count": count,
            "ConversionFromPrevious": round(count / previous, 4) if previous else None,
            "ConversionFromFirst": round(count / first, 4) if first else None,
        })
        previous = count
    return {"WindowSeconds": seconds, "Steps": out}


# -- revenue --------------------------------------------------------------------------


@analytics_query("revenue")
def revenue(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """Revenue from ``_monetization.purchase`` events, as Amplify records them: price in
    metric ``_item_price``, quantity in metric ``_quantity`` (1 when absent), currency
    in attribute ``_currency`` (empty when absent). Read ``FINAL`` (sums).
    ``{"Days": [{"Date", "Currency", "Purchases", "Units", "Revenue", "Payers"}…],
    "Totals": [{"Currency", "Purchases", "Units", "Revenue", "Payers"}…]}``."""
    w = window(params)
    base = (
        "FROM events FINAL WHERE app_id = {app_id:String} AND event_type = {purchase:String} "
        "AND event_date BETWEEN {start:Date} AND {end:Date}"
    )
    units = "if(mapContains(metrics, '_quantity'), metrics['_quantity'], 1.0)"
    values = (
        f"count(), sum({units}), sum(metrics['_item_price'] * {units}), uniqExact(endpoint_id)"
    )
    sql_params = w.sql_params(purchase=PURCHASE)
    days = client.query(
        f"SELECT event_date, attributes['_currency'] AS currency, {values} {base} "
        f"GROUP BY event_date, currency ORDER BY event_date, currency{FINAL_SETTINGS}",
        parameters=sql_params,
    ).result_rows
    totals = client.query(
        f"SELECT attributes['_currency'] AS currency, {values} {base} "
        f"GROUP BY currency ORDER BY currency{FINAL_SETTINGS}",
        parameters=sql_params,
    ).result_rows

    def shape(count: Any, units_: Any, amount: Any, payers: Any) -> dict[str, Any]:
        return {"Purchases": int(count), "Units": round(float(units_), 6),
                "Revenue": round(float(amount), 6), "Payers": int(payers)}

    return {
        "Days": [{"Date": _day(d), "Currency": c, **shape(*rest)} for d, c, *rest in days],
        "Totals": [{"Currency": c, **shape(*rest)} for c, *rest in totals],
    }


# -- top events -----------------------------------------------------------------------


@analytics_query("top-events")
def top_events(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """The most recorded event types (``limit``, default 10, at most 100), read ``FINAL``.
    ``{"Events": [{"EventType", "Count", "Endpoints"}…]}``, most first; ``Endpoints``
    is ClickHouse's ``uniq`` (exact up to tens of thousands, then within about 1%)."""
    w = window(params)
    limit = int_param(params, "limit", 10, 1, 100)
    rows = client.query(
        "SELECT event_type, count() AS n, uniq(endpoint_id) FROM events FINAL "
        "WHERE app_id = {app_id:String} AND event_date BETWEEN {start:Date} AND {end:Date} "
        "GROUP BY event_type ORDER BY n DESC, event_type LIMIT {limit:UInt32}"
        + FINAL_SETTINGS,
        parameters=w.sql_params(limit=limit),
    ).result_rows
    return {"Events": [{"EventType": str(t), "Count": int(n), "Endpoints": int(e)}
                       for t, n, e in rows]}
