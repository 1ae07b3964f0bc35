"""Pinpoint's KPIs measured in ClickHouse (the catalog and formulas: ``core.kpi_catalog``).

``kpi_result(client, kpi, scope, scope_id, app_id, date_range)`` answers
Pinpoint's ``KpiResult`` (``{"Rows": […]}``); the registered analytics query
``kpi`` runs it for the API (params ``app-id``, ``kpi-name``, ``scope``,
``scope-id``, ``start-ms``, ``end-ms``).

Every query reads without FINAL and counts distinct ids instead — messages
as distinct ``message_id``, events as distinct ``event_id``, recipients as
distinct endpoint ids — so rows a replay wrote twice (not yet merged by the
ReplacingMergeTree) are never counted twice, and the several lifecycle
events of one message (``_SMS.BUFFERED`` then ``_SMS.SUCCESS``) count once.
Ids are counted by their 64-bit CityHash (``kpi_aggregates``): a third faster than
hashing the strings, and exact unless two of the ids counted collide
(probability below 1e-5 at ten million ids). Filters lead with the tables'
sort-key prefix: ``app_id``, ``event_date`` (then ``event_type`` on
``deliveries``; ``event_type`` first on ``events``). A range of whole UTC days
reads the daily rollups of migration 0005 instead (``deliveries_daily``,
``events_daily``: per measure, a uniqExact state of the same hashes under the
same condition); other ranges merge the rollups' states of their inner days with
states computed from the rows of their first and last day (filtered on
``event_time`` too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from clickhouse_connect.driver.client import Client

from lodestar.analytics.kpi_aggregates import (
    DELIVERY_AGGREGATES,
    DELIVERY_GROUPS,
    EVENT_AGGREGATES,
    EVENT_GROUPS,
    MESSAGE,
    SMS_VALUE_SUMS,
    sql_in,
    state,
)
from lodestar.analytics.registry import QueryParameterError, analytics_query
from lodestar.core.kpi_catalog import (
    Grouping,
    KpiDefinition,
    KpiScope,
    Measure,
    Population,
    Source,
    UnknownKpi,
    kpi_rows,
    lookup_kpi,
)
from lodestar.core.kpi_dates import KpiDateRange

Measured = dict[str, dict[Measure, float]]
SourceQuery = Callable[[Client, KpiDefinition, KpiScope, Mapping[str, Any], list[Measure]],
                       Measured]



_DAYS = (
    "app_id = {app_id:String} "
    "AND event_date BETWEEN toDate(fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')) "
    "AND toDate(fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC'))"
)
_TIMES = (
    " AND event_time BETWEEN fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC') "
    "AND fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"
)


# A range that is not whole days: its inner days (whole, read from the rollups) and its
# first and last day (partial, read from the rows within the range's times).
_INNER_DAYS = (
    "app_id = {app_id:String} "
    "AND event_date > toDate(fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')) "
    "AND event_date < toDate(fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC'))"
)
_EDGE_DAYS = (
    "app_id = {app_id:String} "
    "AND event_date IN (toDate(fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')), "
    "toDate(fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')))" + _TIMES
)


def _whole_days(params: Mapping[str, Any]) -> bool:
    return KpiDateRange(params["start_ms"], params["end_ms"]).whole_days


def _window(params: Mapping[str, Any]) -> str:
    """The app and date-range clause; whole UTC days need no ``event_time`` filter."""
    return _DAYS if _whole_days(params) else _DAYS + _TIMES


def _scope_filter(source: Source, kpi: KpiDefinition, scope: KpiScope,
                  campaign: str | None = None) -> str:
    """The clause picking the scope's (or the application population's) rows; ``campaign``
    is the campaign id's expression (by default the source table's)."""
    if campaign is None:
        campaign = "attributes['campaign_id']" if source is Source.EVENTS else "campaign_id"
    if scope is KpiScope.CAMPAIGN:
        return f"{campaign} = {{scope_id:String}}"
    if scope is KpiScope.JOURNEY:
        if source is Source.EVENTS:
            raise ValueError("journey KPIs are not measured from events")
        return "journey_id = {scope_id:String}"
    if kpi.population is Population.CAMPAIGNS:
        return f"{campaign} != ''"
    if kpi.population is Population.TRANSACTIONAL:
        if source is Source.EVENTS:
            raise ValueError("transactional KPIs are not measured from events")
        return "campaign_id = '' AND journey_id = ''"
    return "1"


def _group(groups: Mapping[Grouping, str], kpi: KpiDefinition) -> str:
    if kpi.group_by is None:
        return "''"
    if kpi.group_by not in groups:
        raise ValueError(f"{kpi.name}: cannot group its measures by {kpi.group_by}")
    return groups[kpi.group_by]


def _type_filter(types: list[tuple[str, ...] | None]) -> str:
    if any(t is None for t in types):
        return ""
    wanted = tuple(sorted({name for group in types if group for name in group}))
    return f" AND event_type IN {sql_in(wanted)}"


def _run(client: Client, sql: str, params: Mapping[str, Any],
         measures: list[Measure]) -> Measured:
    out: Measured = {}
    for row in client.query(sql, parameters=dict(params)).result_rows:
        out[str(row[0])] = {m: float(v) for m, v in zip(measures, row[1:], strict=True)}
    return out


def _deliveries(client: Client, kpi: KpiDefinition, scope: KpiScope,
                params: Mapping[str, Any], measures: list[Measure]) -> Measured:
    aggregates = ", ".join(DELIVERY_AGGREGATES[m][0] for m in measures)
    types = _type_filter([DELIVERY_AGGREGATES[m][1] for m in measures])
    sql = (f"SELECT {_group(DELIVERY_GROUPS, kpi)} AS g, {aggregates} FROM deliveries "
           f"WHERE {_window(params)} AND {_scope_filter(Source.DELIVERIES, kpi, scope)}{types} "
           "GROUP BY g")
    return _run(client, sql, params, measures)


def _sms_values(client: Client, kpi: KpiDefinition, scope: KpiScope,
                params: Mapping[str, Any], measures: list[Measure]) -> Measured:
    """Sums of SMS parts or prices: each distinct (message, value) of the counted events
    adds its value once (a BUFFERED and a SUCCESS event of one message count once)."""
    merged: Measured = {}
    for m in measures:
        column, types, _state = SMS_VALUE_SUMS[m]
        sql = (f"SELECT g, sum(v) FROM (SELECT DISTINCT {_group(DELIVERY_GROUPS, kpi)} AS g, "
               f"{MESSAGE} AS message, {column} AS v FROM deliveries "
               f"WHERE {_window(params)} AND {_scope_filter(Source.DELIVERIES, kpi, scope)} "
               f"AND event_type IN {sql_in(types)}) GROUP BY g")
        for group, values in _run(client, sql, params, [m]).items():
            merged.setdefault(group, {}).update(values)
    return merged


def _events(client: Client, kpi: KpiDefinition, scope: KpiScope,
            params: Mapping[str, Any], measures: list[Measure]) -> Measured:
    aggregates = ", ".join(EVENT_AGGREGATES[m][0] for m in measures)
    types = _type_filter([EVENT_AGGREGATES[m][1] for m in measures])
    sql = (f"SELECT {_group(EVENT_GROUPS, kpi)} AS g, {aggregates} FROM events "
           f"WHERE {_window(params)} AND {_scope_filter(Source.EVENTS, kpi, scope)}{types} "
           "GROUP BY g")
    return _run(client, sql, params, measures)


# The daily rollups of migration 0005: a column per measure (named as the measure) holding
# uniqExact states of the same hashes under the same conditions as the aggregates above.
_ROLLUPS = {Source.DELIVERIES: "deliveries_daily", Source.EVENTS: "events_daily"}
_ROLLUP_GROUPS = {
    Source.DELIVERIES: DELIVERY_GROUPS,
    Source.EVENTS: {Grouping.DATE: "toString(event_date)", Grouping.CAMPAIGN: "campaign_id",
                    Grouping.CAMPAIGN_ACTIVITY: "campaign_activity_id"},
}


# source → (its table, its aggregates over the rows, its group expressions over the rows)
_RAW: dict[Source, tuple[str, Mapping[Measure, tuple[str, tuple[str, ...] | None]],
                         Mapping[Grouping, str]]] = {
    Source.DELIVERIES: ("deliveries", DELIVERY_AGGREGATES, DELIVERY_GROUPS),
    Source.EVENTS: ("events", EVENT_AGGREGATES, EVENT_GROUPS),
}


def _rollup(source: Source) -> SourceQuery:
    def query(client: Client, kpi: KpiDefinition, scope: KpiScope,
              params: Mapping[str, Any], measures: list[Measure]) -> Measured:
        """Whole days: the rollup's states merged. Otherwise the rollup's states of the inner
        days merged with the states of the two edge days' rows within the times."""
        aggregates = ", ".join(f"uniqExactMerge({m.value})" for m in measures)
        rollup_scope = _scope_filter(source, kpi, scope, "campaign_id")
        rollup_group = _group(_ROLLUP_GROUPS[source], kpi)
        if _whole_days(params):
            sql = (f"SELECT {rollup_group} AS g, {aggregates} FROM {_ROLLUPS[source]} "
                   f"WHERE {_DAYS} AND {rollup_scope} GROUP BY g")
            return _run(client, sql, params, measures)
        table, raw_aggregates, raw_groups = _RAW[source]
        columns = ", ".join(m.value for m in measures)
        states = ", ".join(f"{state(raw_aggregates[m][0])} AS {m.value}" for m in measures)
        types = _type_filter([raw_aggregates[m][1] for m in measures])
        sql = (f"SELECT g, {aggregates} FROM ("
               f"SELECT {rollup_group} AS g, {columns} FROM {_ROLLUPS[source]} "
               f"WHERE {_INNER_DAYS} AND {rollup_scope} "
               f"UNION ALL SELECT {_group(raw_groups, kpi)} AS g, {states} FROM {table} "
               f"WHERE {_EDGE_DAYS} AND {_scope_filter(source, kpi, scope)}{types} GROUP BY g"
               ") GROUP BY g")
        return _run(client, sql, params, measures)

    return query


def _rollup_sms_values(client: Client, kpi: KpiDefinition, scope: KpiScope,
                       params: Mapping[str, Any], measures: list[Measure]) -> Measured:
    """``_sms_values`` from ``deliveries_daily``, where parts and prices are dimensions:
    the sum over each value of the value times its distinct messages (for a range that is
    not whole days, the inner days' states merged with the edge days' rows' states)."""
    merged: Measured = {}
    group = _group(DELIVERY_GROUPS, kpi)
    where = _scope_filter(Source.DELIVERIES, kpi, scope)
    for m in measures:
        column, types, rollup_state = SMS_VALUE_SUMS[m]
        if _whole_days(params):
            states = (f"SELECT {group} AS g, {column} AS v, {rollup_state} AS s "
                      f"FROM deliveries_daily WHERE {_DAYS} AND {where}")
        else:
            states = (f"SELECT {group} AS g, {column} AS v, {rollup_state} AS s "
                      f"FROM deliveries_daily WHERE {_INNER_DAYS} AND {where} "
                      f"UNION ALL SELECT {group} AS g, {column} AS v, "
                      f"uniqExactStateIf({MESSAGE}, event_type IN {sql_in(types)}) AS s "
                      f"FROM deliveries WHERE {_EDGE_DAYS} AND {where} "
                      f"AND event_type IN {sql_in(types)} GROUP BY g, v")
        sql = (f"SELECT g, sum(v * n) FROM (SELECT g, v, uniqExactMerge(s) AS n "
               f"FROM ({states}) GROUP BY g, v) GROUP BY g")
        for g, values in _run(client, sql, params, [m]).items():
            merged.setdefault(g, {}).update(values)
    return merged


_SOURCES: dict[Source, SourceQuery] = {
    Source.DELIVERIES: _deliveries, Source.SMS_VALUES: _sms_values, Source.EVENTS: _events,
}
_ROLLUP_SOURCES: dict[Source, SourceQuery] = {
    Source.DELIVERIES: _rollup(Source.DELIVERIES), Source.SMS_VALUES: _rollup_sms_values,
    Source.EVENTS: _rollup(Source.EVENTS),
}


def measure(client: Client, kpi: KpiDefinition, scope: KpiScope, scope_id: str, app_id: str,
            date_range: KpiDateRange, *, rollups: bool = True) -> Measured:
    """The KPI's measures per group value (one query per source table). With ``rollups``
    (the default) a range of whole UTC days reads the daily rollups, and any other range
    the rollups for its inner days and the rows of its first and last day; without, the
    rows."""
    params = {"app_id": app_id, "scope_id": scope_id, "start_ms": date_range.start_ms,
              "end_ms": date_range.end_ms}
    sources = _ROLLUP_SOURCES if rollups else _SOURCES
    merged: Measured = {}
    for source, fn in sources.items():
        wanted = [m for m in kpi.measures if m.source is source]
        if wanted:
            for group, values in fn(client, kpi, scope, params, wanted).items():
                merged.setdefault(group, {}).update(values)
    return merged


def kpi_result(client: Client, kpi: KpiDefinition, scope: KpiScope, scope_id: str,
               app_id: str, date_range: KpiDateRange, *, rollups: bool = True) -> dict[str, Any]:
    """Pinpoint's ``KpiResult`` of ``kpi`` for the scope and dates."""
    measured = measure(client, kpi, scope, scope_id, app_id, date_range, rollups=rollups)
    return {"Rows": kpi_rows(kpi, measured)}


def _int_param(params: Mapping[str, str], name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise QueryParameterError(f"{name} is required, in epoch milliseconds.") from None


@analytics_query("kpi")
def kpi_query(client: Client, params: Mapping[str, str]) -> dict[str, Any]:
    """``KpiResult`` for params ``app-id``, ``kpi-name``, ``scope`` (application, campaign,
    journey), ``scope-id`` (the campaign or journey id), ``start-ms``, ``end-ms``."""
    app_id = params.get("app-id") or ""
    if not app_id:
        raise QueryParameterError("app-id is required.")
    try:
        scope = KpiScope(params.get("scope") or KpiScope.APPLICATION.value)
    except ValueError:
        raise QueryParameterError("scope must be application, campaign or journey.") from None
    scope_id = params.get("scope-id") or ""
    if scope is not KpiScope.APPLICATION and not scope_id:
        raise QueryParameterError(f"scope-id (the {scope.value} id) is required.")
    try:
        kpi = lookup_kpi(params.get("kpi-name") or "", scope)
    except UnknownKpi as exc:
        raise QueryParameterError(str(exc)) from None
    date_range = KpiDateRange(_int_param(params, "start-ms"), _int_param(params, "end-ms"))
    return kpi_result(client, kpi, scope, scope_id, app_id, date_range)
