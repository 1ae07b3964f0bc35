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

    # the whole-day answers come from the rollups: emptied, they answer nothing ...
    for rollup in ROLLUPS.values():
        client.command(f"TRUNCATE TABLE {rollup}")
    name = NAMES[0]
    empty = kpi_result(client, KPIS[name], KpiScope.APPLICATION, "", ds.APP,
                       KpiDateRange(*ds.WINDOW))
    assert empty == {"Rows": []}
    # ... and rebuilt from their source views (the migration's backfill), the same again
    for table, rollup in ROLLUPS.items():
        days = client.query(f"SELECT DISTINCT app_id, event_date FROM {table}").result_rows
        rebuild_rollup(client, rollup, days)
    _check(client, left)
