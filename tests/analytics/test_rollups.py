"""The daily rollups (migration 0005) against the rows they summarise: filled by the
materialized views, rebuilt from the ``*_source`` views after an erasure, and what the
KPIs read for whole days."""

from __future__ import annotations

from typing import Any

import pytest
from tests.analytics import kpi_dataset as ds

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.erasure import ROLLUPS, erase_endpoints, rebuild_rollup
from lodestar.analytics.kpis import kpi_result
from lodestar.core.kpi_catalog import KPIS, KpiScope
from lodestar.core.kpi_dates import KpiDateRange

pytestmark = pytest.mark.clickhouse

NAMES = ["successful-delivery-rate-grouped-by-date", "unique-deliveries-grouped-by-campaign",
         "txn-emails-unique-opens", "txn-sms-error-distribution", "push-open-rate",
         "daily-active-users", "daily-active-endpoints", "txn-sms-sent-grouped-by-country"]


def _check(client: Any, data: ds.Data, *, rollups: bool = True) -> None:
    for name in NAMES:
        got = kpi_result(client, KPIS[name], KpiScope.APPLICATION, "", ds.APP,
                         KpiDateRange(*ds.WINDOW), rollups=rollups)
        assert ds.result_values(got) == pytest.approx(ds.expected(data, name)), name


def test_erasure_rebuilds_the_rollups_and_the_kpis_read_them(
    clickhouse_dsn: str, clickhouse_database: str
) -> None:
    client = connect(clickhouse_dsn, clickhouse_database)
    migrate(client)
    data = ds.generate(seed=19, messages=1200)
    ds.load(client, data)
    _check(client, data)

    gone = {"ep1", "ep2", "ep7", "ep12"}
    keys = [(ds.APP, e) for e in sorted(gone)]
    assert erase_endpoints(client, keys) == len(gone)
    left = ds.Data([r for r in data.deliveries if r["endpoint_id"] not in gone],
                   [r for r in data.events if r["endpoint_id"] not in gone])
    assert len(left.deliveries) < len(data.deliveries) and len(left.events) < len(data.events)
    _check(client, left)  # whole days: the rebuilt rollups
    _check(client, left, rollups=False)
    _check_product_rollups(client, gone)

    # the whole-day answers come from the rollups: emptied, they answer nothing ...
    for rollup in (r for rollups in ROLLUPS.values() for r in rollups):
        client.command(f"TRUNCATE TABLE {rollup}")
    name = NAMES[0]
    empty = kpi_result(client, KPIS[name], KpiScope.APPLICATION, "", ds.APP,
                       KpiDateRange(*ds.WINDOW))
    assert empty == {"Rows": []}
    # ... and rebuilt from their source views (the migration's backfill), the same again
    for table, rollups in ROLLUPS.items():
        days = client.query(f"SELECT DISTINCT app_id, event_date FROM {table}").result_rows
        for rollup in rollups:
            rebuild_rollup(client, rollup, days)
    _check(client, left)
    _check_product_rollups(client, gone)


# the rollups of migrations 0006 and 0007, finalized: (table, its source view, the finalized SELECT)
_PRODUCT_ROLLUPS = {
    "events_active_daily": "SELECT DISTINCT app_id, kind, event_date, key_hash FROM {t} "
                           "ORDER BY ALL",
    "events_types_daily": "SELECT app_id, event_date, event_type, uniqExactMerge(events), "
                          "uniqCombinedMerge(14)(endpoints) FROM {t} GROUP BY ALL ORDER BY ALL",
    "deliveries_channels_daily": "SELECT app_id, event_date, channel, iso_country_code, "
                                 "price_millicents_usd, uniqExactMerge(sent), "
                                 "uniqExactMerge(delivered), uniqExactMerge(bounced), "
                                 "uniqExactMerge(complained), uniqExactMerge(opted_out), "
                                 "uniqExactMerge(priced_events) "
                                 "FROM {t} GROUP BY ALL ORDER BY ALL",
}


def _check_product_rollups(client: Any, gone: set[str]) -> None:
    """Each product rollup holds what its source view computes from the rows left, and no
    key of an erased endpoint."""
    for rollup, sql in _PRODUCT_ROLLUPS.items():
        stored = client.query(sql.format(t=rollup)).result_rows
        assert stored, rollup
        assert stored == client.query(sql.format(t=f"{rollup}_source")).result_rows, rollup
    erased = client.query(
        "SELECT count() FROM events_active_daily WHERE app_id = {app:String} "
        "AND kind = 'endpoint' "
        "AND key_hash IN (SELECT cityHash64(arrayJoin({gone:Array(String)})))",
        parameters={"app": ds.APP, "gone": sorted(gone)}).result_rows[0][0]
    assert erased == 0
