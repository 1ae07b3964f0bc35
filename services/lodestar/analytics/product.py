"""Product analytics over the ``events`` table: active users, sessions, retention,
funnels, revenue and top events (registered analytics queries).

Every query takes ``app-id`` (required) and ``start`` / ``end`` (ISO dates,
inclusive, UTC; default: the 30 days ending today; at most ``MAX_DAYS`` apart)
and answers a JSON value whose days are ISO date strings.

``events`` is a ReplacingMergeTree: a replayed batch may still sit unmerged
beside the original. Distinct counts (endpoints, sessions, funnel levels) are
unaffected by such duplicates; sums and counts of events count each (day,
endpoint id, event id) once — the table's deduplication key, as ``FINAL`` would.
Several queries read the daily rollups of migration 0006 (``events_active_daily``,
``events_types_daily``) instead of the rows; ids are told apart by their 64-bit
CityHash where that is cheaper (exact unless two ids collide, as for the KPIs).
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
    kinds = ["endpoint"]
    if users:
        names += ["DailyActiveUsers", "WeeklyActiveUsers", "MonthlyActiveUsers"]
        kinds.append("user")
    found: dict[str, dict[date, tuple[int, int, int]]] = {kind: {} for kind in kinds}
    first = w.start
    while first <= w.end:
        last = min(w.end, first + timedelta(days=_CHUNK_DAYS - 1))
        for kind, counts in _rolling_active(client, w.app_id, kinds, first, last).items():
            found[kind].update(counts)
        first = last + timedelta(days=1)
    out = []
    for d in w.days:
        values = [v for kind in kinds for v in found[kind].get(d, (0, 0, 0))]
        out.append({"Date": d.isoformat(), **dict(zip(names, values, strict=True))})
    return {"Days": out, "UsersCounted": users}


_SPANS = (1, 7, 30)  # daily, weekly, monthly windows (days)
_LOOKBACK = _SPANS[-1] - 1
_CHUNK_DAYS = 64 - _LOOKBACK  # target days per query: they and their look-back fit 64 bits


def _rolling_active(client: Client, app_id: str, kinds: list[str], first: date,
                    last: date) -> dict[str, dict[date, tuple[int, int, int]]]:
    """``{kind: {day: (daily, weekly, monthly)}}`` for the days ``first..last`` (at most
    ``_CHUNK_DAYS``): distinct non-empty endpoint or user ids (``kind`` ``endpoint`` or
    ``user``), read from the rollup ``events_active_daily`` (migration 0006: a row per key
    hash and day it was active).

    Each key's active days from ``first - 29`` to ``last`` become the bits of a 64-bit
    mask (bit 0: ``first - 29``); keys are counted per distinct mask, and a mask is active
    in the window of span s ending on target day t when it has a bit in ``t-s+1..t``.
    """
    n = (last - first).days + 1
    if not 1 <= n <= _CHUNK_DAYS:
        raise ValueError(f"a chunk of {n} days")
    targets = f"range({_LOOKBACK}, {_LOOKBACK + n})"
    sums = ", ".join(
        f"sumForEach(arrayMap(t -> if(bitAnd(mask, bitShiftLeft(toUInt64({(1 << span) - 1}), "
        f"t - {span - 1})) != 0, keys, 0), {targets}))"
        for span in _SPANS
    )
    rows = client.query(
        f"SELECT kind, {sums} FROM ("
        "  SELECT kind, mask, count() AS keys FROM ("
        "    SELECT kind, groupBitOr(bitShiftLeft(toUInt64(1), "
        "      toUInt8(event_date - {base:Date}))) AS mask "
        "    FROM events_active_daily WHERE app_id = {app_id:String} "
        "    AND kind IN {kinds:Array(String)} "
        "    AND event_date BETWEEN {base:Date} AND {last:Date} "
        "    AND key_hash != cityHash64('') "
        "    GROUP BY kind, key_hash) "
        "  GROUP BY kind, mask) "
        "GROUP BY kind",
        parameters={"app_id": app_id, "kinds": kinds, "last": last,
                    "base": first - timedelta(days=_LOOKBACK)},
    ).result_rows
    out: dict[str, dict[date, tuple[int, int, int]]] = {}
    for kind, daily, weekly, monthly in rows:
        out[str(kind)] = {first + timedelta(days=i): (int(daily[i]), int(weekly[i]),
                                                      int(monthly[i])) for i in range(n)}
    return out


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
    "P90Seconds"}…], "Total": {same without Date}}``. Sessions are told apart by the
    64-bit CityHash of their id (as the KPIs count ids), and one pass answers the days
    and the total (``GROUPING SETS``).
    """
    w = window(params)
    per_session = (
        "SELECT cityHash64(session_id) AS session, "
        "minIf(event_time, event_type = {start_type:String}) AS started, "
        "countIf(event_type = {stop_type:String}) > 0 AS completed, "
        "dateDiff('millisecond', started, maxIf(event_time, event_type = {stop_type:String})) "
        "   / 1000.0 AS seconds "
        "FROM events WHERE app_id = {app_id:String} AND session_id != '' "
        "AND event_type IN ({start_type:String}, {stop_type:String}) "
        "AND event_date BETWEEN {start:Date} AND {end:Date} + 1 "
        "GROUP BY session HAVING countIf(event_type = {start_type:String}) > 0 "
        "AND toDate(started) BETWEEN {start:Date} AND {end:Date}"
    )
    stats = (
        "count(), countIf(completed), avgIf(seconds, completed), "
        "quantilesExactInclusiveIf(0.5, 0.9)(seconds, completed)"
    )
    sql_params = w.sql_params(start_type=SESSION_START, stop_type=SESSION_STOP)
    rows = client.query(
        f"SELECT grouping(day) AS is_total, toDate(started) AS day, {stats} "
        f"FROM ({per_session}) GROUP BY GROUPING SETS ((day), ())",
        parameters=sql_params,
    ).result_rows
    found = {r[1]: r[2:] for r in rows if not r[0]}
    total = next((r[2:] for r in rows if r[0]), None)
    days = [{"Date": d.isoformat(), **_session_stats(found.get(d))} for d in w.days]
    return {"Days": days, "Total": _session_stats(total)}


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
    past ``end`` are not observed yet and answer null. Reads the endpoint-days of
    ``events_active_daily`` (migration 0006). ``{"Days": N, "Cohorts":
    [{"Date", "Size", "Returned": [n0..nN], "Rates": [r0..rN]}…]}`` (day 0 is the
    cohort itself, rate 1.0).
    """
    w = window(params)
    n = int_param(params, "days", 7, 1, MAX_RETENTION_DAYS)
    rows = client.query(
        "SELECT cohort, k, count() FROM ("
        "  SELECT bitmapToArray(groupBitmapState(toUInt32(event_date - {start:Date}))) AS days, "
        "  arrayMin(days) AS cohort FROM events_active_daily "
        "  WHERE app_id = {app_id:String} AND kind = 'endpoint' "
        "  AND event_date BETWEEN {start:Date} AND {end:Date} "
        "  GROUP BY key_hash) "
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
    Endpoints are told apart by the 64-bit CityHash of their id.
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
        f"  SELECT cityHash64(endpoint_id) AS endpoint, windowFunnel({seconds * 1000})"
        f"    (toUInt64(toUnixTimestamp64Milli(event_time)), {conditions}) AS level "
        "  FROM events WHERE app_id = {app_id:String} AND event_type IN {types:Array(String)} "
        "  AND event_date BETWEEN {start:Date} AND {last:Date} "
        "  AND (event_type != {s0:String} OR event_date <= {end:Date}) "
        "  GROUP BY endpoint) WHERE level > 0 GROUP BY level",
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
    in attribute ``_currency`` (empty when absent). Sums count each purchase once, as
    ``FINAL`` would: rows are first collapsed per day and CityHash of (endpoint id, event
    id) — the table's own deduplication key — which is cheaper than ``FINAL``; one pass
    answers the days and the totals (``GROUPING SETS``).
    ``{"Days": [{"Date", "Currency", "Purchases", "Units", "Revenue", "Payers"}…],
    "Totals": [{"Currency", "Purchases", "Units", "Revenue", "Payers"}…]}``."""
    w = window(params)
    units = "if(mapContains(metrics, '_quantity'), metrics['_quantity'], 1.0)"
    purchases = (
        "SELECT event_date, any(attributes['_currency']) AS currency, "
        f"any({units}) AS units, any(metrics['_item_price'] * {units}) AS amount, "
        "any(cityHash64(endpoint_id)) AS payer "
        "FROM events WHERE app_id = {app_id:String} AND event_type = {purchase:String} "
        "AND event_date BETWEEN {start:Date} AND {end:Date} "
        "GROUP BY event_date, cityHash64(endpoint_id, event_id)"
    )
    rows = client.query(
        "SELECT grouping(event_date) AS is_total, event_date, currency, "
        f"count(), sum(units), sum(amount), uniqExact(payer) FROM ({purchases}) "
        "GROUP BY GROUPING SETS ((event_date, currency), (currency)) "
        "ORDER BY is_total, event_date, currency",
        parameters=w.sql_params(purchase=PURCHASE),
    ).result_rows
    days = [r[1:] for r in rows if not r[0]]
    totals = [r[2:] for r in rows if r[0]]

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
    """The most recorded event types (``limit``, default 10, at most 100).
    ``{"Events": [{"EventType", "Count", "Endpoints"}…]}``, most first; ``Endpoints``
    is ClickHouse's ``uniqCombined(14)`` (exact for small sets, then within about 1%).
    Reads the rollup ``events_types_daily`` (migration 0006): per day and type, the
    distinct (endpoint, event id) hashes — what ``count()`` over ``events FINAL`` counts;
    a replayed row has its original's day, so the days' counts add up — and a
    ``uniqCombined(14)`` state of the endpoints (merged over the days, as endpoints
    recur)."""
    w = window(params)
    limit = int_param(params, "limit", 10, 1, 100)
    where = ("FROM events_types_daily WHERE app_id = {app_id:String} "
             "AND event_date BETWEEN {start:Date} AND {end:Date}")
    sql_params = w.sql_params(limit=limit)
    counts = client.query(
        "SELECT event_type, sum(n) AS total FROM ("
        f"  SELECT event_type, event_date, uniqExactMerge(events) AS n {where} "
        "  GROUP BY event_type, event_date) "
        "GROUP BY event_type ORDER BY total DESC, event_type LIMIT {limit:UInt32}",
        parameters=sql_params,
    ).result_rows
    endpoints = {str(t): int(e) for t, e in client.query(
        f"SELECT event_type, uniqCombinedMerge(14)(endpoints) {where} "
        "AND event_type IN {types:Array(String)} GROUP BY event_type",
        parameters={**sql_params, "types": [str(t) for t, _n in counts]},
    ).result_rows}
    return {"Events": [{"EventType": str(t), "Count": int(n), "Endpoints": endpoints[str(t)]}
                       for t, n in counts]}
