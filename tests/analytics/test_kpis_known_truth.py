"""Every KPI and each grouping, measured in ClickHouse, against answers computed in Python.

The data set (tests/analytics/kpi_dataset.py) is generated with a seed: campaign,
journey and transactional messages on email, SMS and push over several days, some
outside the window, some for another app, a third of the rows written twice (a
replay). The expected values are computed from the records with Pinpoint's
definitions, independently of the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.analytics import kpi_dataset as ds

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.kpis import kpi_query, kpi_result
from lodestar.analytics.registry import QueryParameterError
from lodestar.core.kpi_catalog import KPIS, KpiScope
from lodestar.core.kpi_dates import KpiDateRange

pytestmark = pytest.mark.clickhouse


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, clickhouse_dsn: str) -> Iterator[
        tuple[Any, ds.Data]]:
    import uuid

    client = connect(clickhouse_dsn, f"t_{uuid.uuid4().hex[:12]}")
    migrate(client)
    data = ds.generate(seed=7)
    ds.load(client, data)
    yield client, data


def _cases() -> list[tuple[str, KpiScope, str]]:
    cases = []
    for name, kpi in sorted(KPIS.items()):
        if KpiScope.APPLICATION in kpi.scopes:
            cases.append((name, KpiScope.APPLICATION, ""))
        if KpiScope.CAMPAIGN in kpi.scopes:
            cases += [(name, KpiScope.CAMPAIGN, "c1"), (name, KpiScope.CAMPAIGN, "c2")]
        if KpiScope.JOURNEY in kpi.scopes:
            cases += [(name, KpiScope.JOURNEY, "j1"), (name, KpiScope.JOURNEY, "j2")]
    return cases


def test_the_expectations_cover_exactly_the_catalog() -> None:
    assert set(ds.EXPECTED_DEFS) == set(KPIS)


HOUR = 3_600_000
PARTIAL = (ds.BASE_MS + 5 * HOUR + 17, ds.WINDOW[1] - 7 * HOUR)  # not whole days: the rows


@pytest.mark.parametrize(("window", "rollups"), [(ds.WINDOW, True), (ds.WINDOW, False),
                                                 (PARTIAL, True), (PARTIAL, False)],
                         ids=["whole-days-rollups", "whole-days-rows",
                              "partial-days-rollups-and-edge-rows", "partial-days-rows"])
@pytest.mark.parametrize(("name", "scope", "scope_id"), _cases())
def test_kpi_matches_the_hand_computed_answer(
    loaded: tuple[Any, ds.Data], name: str, scope: KpiScope, scope_id: str,
    window: tuple[int, int], rollups: bool,
) -> None:
    client, data = loaded
    result = kpi_result(client, KPIS[name], scope, scope_id, ds.APP, KpiDateRange(*window),
                        rollups=rollups)
    want = ds.expected(data, name, scope.value, scope_id, window=window)
    assert want, f"the data set gives {name} no value: it would not test anything"
    got = ds.result_values(result)
    assert got.keys() == want.keys()
    for group, value in want.items():
        assert got[group] == pytest.approx(value, rel=1e-9), group
    groups = [row.get("GroupedBys", [{}])[0].get("Value") for row in result["Rows"]]
    assert groups == sorted(groups)


def test_a_narrower_window_and_another_app(loaded: tuple[Any, ds.Data]) -> None:
    client, data = loaded
    window = (ds.BASE_MS + ds.DAY_MS + 3_600_000, ds.BASE_MS + 2 * ds.DAY_MS + 7_200_000)
    for name in ("txn-emails-sent-grouped-by-date", "successful-delivery-rate",
                 "daily-active-endpoints"):
        got = ds.result_values(kpi_result(client, KPIS[name], KpiScope.APPLICATION, "",
                                          ds.APP, KpiDateRange(*window)))
        assert got == pytest.approx(ds.expected(data, name, window=window))
    other = kpi_result(client, KPIS["txn-sms-sent"], KpiScope.APPLICATION, "", ds.OTHER_APP,
                       KpiDateRange(*ds.WINDOW))
    assert ds.result_values(other) == pytest.approx(
        ds.expected(data, "txn-sms-sent", app=ds.OTHER_APP))
    nothing = kpi_result(client, KPIS["txn-sms-sent"], KpiScope.APPLICATION, "", "no-such-app",
                         KpiDateRange(*ds.WINDOW))
    assert nothing == {"Rows": []}


def test_the_registered_query_checks_its_parameters(loaded: tuple[Any, ds.Data]) -> None:
    client, data = loaded
    params = {"app-id": ds.APP, "kpi-name": "sms-spend", "scope": "campaign", "scope-id": "c1",
              "start-ms": str(ds.WINDOW[0]), "end-ms": str(ds.WINDOW[1])}
    assert ds.result_values(kpi_query(client, params)) == pytest.approx(
        ds.expected(data, "sms-spend", "campaign", "c1"))
    with pytest.raises(QueryParameterError, match=r"valid names: .*hard-bounce-rate"):
        kpi_query(client, {**params, "kpi-name": "txn-sms-sent"})
    with pytest.raises(QueryParameterError, match="scope-id"):
        kpi_query(client, {**params, "scope-id": ""})
    with pytest.raises(QueryParameterError, match="start-ms"):
        kpi_query(client, {**params, "start-ms": "soon"})
