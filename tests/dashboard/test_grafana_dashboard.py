"""deploy/grafana: the dashboard's panels query the provisioned ClickHouse data source,
and every panel's SQL, with the plugin's macros expanded, runs on the seeded tables and
agrees with Lodestar's own queries."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from ruamel.yaml import YAML
from tests.dashboard.seed import APP, END, START, generate, load

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.registry import run_query

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
PLUGIN = "grafana-clickhouse-datasource"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "lodestar-dashboard.json").read_text())


def test_panels_use_the_provisioned_clickhouse_source(dashboard: dict[str, Any]) -> None:
    provisioned = YAML(typ="safe").load(
        (GRAFANA / "provisioning" / "datasources" / "lodestar-clickhouse.yaml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == PLUGIN
    wanted = {"type": PLUGIN, "uid": source["uid"]}
    titles = [p["title"] for p in dashboard["panels"]]
    for needed in ("DAU", "Sessions per day", "Session length", "by channel", "Bounce rate"):
        assert any(needed in t for t in titles), needed
    for p in dashboard["panels"]:
        assert p["datasource"] == wanted
        assert all(t["datasource"] == wanted and t["rawSql"] for t in p["targets"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    providers = YAML(typ="safe").load(
        (GRAFANA / "provisioning" / "dashboards" / "lodestar.yaml").read_text())
    assert providers["providers"][0]["options"]["path"]


FROM = datetime(START.year, START.month, START.day, tzinfo=UTC)
TO = datetime(END.year, END.month, END.day, 23, 59, 59, tzinfo=UTC)


def expand(sql: str) -> str:
    """The plugin's macros and the dashboard's variable, as Grafana would expand them."""
    start, stop = int(FROM.timestamp()), int(TO.timestamp())
    sql = re.sub(r"\$__timeFilter\((\w+)\)",
                 lambda m: f"{m[1]} >= toDateTime({start}) AND {m[1]} <= toDateTime({stop})",
                 sql)
    sql = sql.replace("$__fromTime", f"toDateTime({start})")
    sql = sql.replace("$__toTime", f"toDateTime({stop})")
    sql = sql.replace("${app_id}", APP)
    assert "$" not in sql, sql
    return sql


@pytest.fixture(scope="module")
def client(clickhouse_dsn: str) -> Iterator[Client]:
    ch = connect(clickhouse_dsn, f"t_grafana_{uuid.uuid4().hex[:10]}")
    migrate(ch)
    load(ch, generate(seed=9))
    yield ch
    ch.command("DROP DATABASE IF EXISTS {db:Identifier}", parameters={"db": ch.database})
    ch.close()


@pytest.mark.clickhouse
def test_every_panel_query_runs_and_agrees(dashboard: dict[str, Any], client: Client) -> None:
    results = {}
    for p in dashboard["panels"]:
        query = client.query(expand(p["targets"][0]["rawSql"]))
        assert query.result_rows, p["title"]
        results[p["title"]] = query
    apps = client.query(dashboard["templating"]["list"][0]["query"]).result_rows
    assert (APP,) in apps

    active = results["Active endpoints (DAU / WAU / MAU)"]
    ours = run_query(client, "active-users", {"app-id": APP, "start": START.isoformat(),
                                              "end": END.isoformat()})["Days"]
    assert [(r[0].date().isoformat(), r[1], r[3]) for r in active.result_rows] == [
        (d["Date"], d["DailyActiveEndpoints"], d["MonthlyActiveEndpoints"])
        for d in ours if d["DailyActiveEndpoints"] or d["MonthlyActiveEndpoints"]
    ]
    sessions = run_query(client, "sessions", {"app-id": APP, "start": START.isoformat(),
                                              "end": END.isoformat()})
    per_day = results["Sessions per day"].result_rows
    assert sum(r[1] for r in per_day) == sessions["Total"]["Sessions"]
    bounce = results["Bounce rate by channel"].result_rows
    assert {r[1] for r in bounce} >= {"EMAIL", "SMS"}
    assert all(r[2] is None or 0 <= r[2] <= 1 for r in bounce)
    assert results["Top events"].result_rows[0][0] == "_session.start"
    assert max(r[0] for r in per_day) <= TO.replace(tzinfo=None) + timedelta(seconds=1)
