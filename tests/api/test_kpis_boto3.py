"""Contract tests: boto3's GetApplication/Campaign/JourneyDateRangeKpi against the API.

The API runs in-process (tests/api/live_api.py) on a real PostgreSQL and Kafka,
with ClickHouse embedded: it forwards the KPI queries to a worker URL, served
here by a stand-in worker (``engine.web.create_worker_web``) over this
process's chdb, loaded with the known-truth data set of
tests/analytics/kpi_dataset.py.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from botocore.exceptions import ClientError
from tests.analytics import kpi_dataset as ds
from tests.api.live_api import Api, api_settings, serve
from tests.conftest import free_port

from lodestar.engine.analytics_service import AnalyticsRuntime
from lodestar.engine.web import create_worker_web
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.clickhouse]

START = datetime.fromtimestamp(ds.WINDOW[0] / 1000, UTC)
END = datetime.fromtimestamp(ds.WINDOW[1] / 1000, UTC)


@pytest.fixture
def worker_url(settings: Settings, clickhouse_dsn: str) -> Iterator[tuple[str, Any]]:
    """A stand-in worker web serving analytics queries from an embedded ClickHouse."""
    runtime = AnalyticsRuntime(settings.with_changes(clickhouse_dsn=clickhouse_dsn),
                               f"t_{uuid.uuid4().hex[:12]}")
    writer = runtime.open()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_worker_web(runtime, {}, {}), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", writer
    finally:
        server.should_exit = True
        thread.join(30)
        writer.close()


@pytest.fixture
def api(settings: Settings, control_dsn: str, clickhouse_dsn: str,
        worker_url: tuple[str, Any]) -> Iterator[Api]:
    configured = api_settings(settings, control_dsn, clickhouse_dsn=clickhouse_dsn,
                              worker_url=worker_url[0])
    assert configured.clickhouse_embedded
    for url in serve(configured):
        yield Api(url, configured)


@pytest.fixture
def loaded(api: Api, worker_url: tuple[str, Any]) -> tuple[str, ds.Data]:
    """An application created through the API, and the data set loaded for it."""
    app_id = str(api.admin().create_app(CreateApplicationRequest={"Name": "Shop"})[
        "ApplicationResponse"]["Id"])
    data = ds.generate(seed=3, messages=1500, app=app_id)
    writer = worker_url[1]
    writer._executor.submit(ds.load, writer._client, data).result()  # on the ClickHouse thread
    return app_id, data


def _values(response: dict[str, Any]) -> dict[str, float]:
    return ds.result_values(response["KpiResult"])


def test_every_operation_answers_pinpoints_shape_with_the_known_values(
    api: Api, loaded: tuple[str, ds.Data]
) -> None:
    app_id, data = loaded
    client = api.admin()
    for name in ("successful-delivery-rate", "txn-sms-sent-grouped-by-country",
                 "txn-emails-unique-opens-grouped-by-date", "daily-active-users"):
        answer = client.get_application_date_range_kpi(
            ApplicationId=app_id, KpiName=name, StartTime=START, EndTime=END)
        body = answer["ApplicationDateRangeKpiResponse"]
        assert (body["ApplicationId"], body["KpiName"]) == (app_id, name)
        assert (body["StartTime"], body["EndTime"]) == (
            START, END.replace(microsecond=END.microsecond // 1000 * 1000))
        assert "NextToken" not in body
        want = ds.expected(data, name, app=app_id)
        assert want and _values(body) == pytest.approx(want)

    body = client.get_campaign_date_range_kpi(
        ApplicationId=app_id, CampaignId="c1",
        KpiName="hard-bounce-rate-grouped-by-campaign-activity", StartTime=START, EndTime=END,
    )["CampaignDateRangeKpiResponse"]
    assert body["CampaignId"] == "c1"
    assert body["KpiResult"]["Rows"][0]["GroupedBys"][0]["Key"] == "CampaignActivityId"
    assert _values(body) == pytest.approx(ds.expected(
        data, "hard-bounce-rate-grouped-by-campaign-activity", "campaign", "c1", app=app_id))

    body = client.get_journey_date_range_kpi(
        ApplicationId=app_id, JourneyId="j1", KpiName="emails-opened-grouped-by-journey-activity",
        StartTime=START, EndTime=END)["JourneyDateRangeKpiResponse"]
    assert body["JourneyId"] == "j1"
    assert _values(body) == pytest.approx(ds.expected(
        data, "emails-opened-grouped-by-journey-activity", "journey", "j1", app=app_id))


def test_paging_defaults_and_bad_requests(api: Api, loaded: tuple[str, ds.Data]) -> None:
    app_id, _ = loaded
    client = api.admin()
    name = "txn-emails-sent-grouped-by-date"
    whole = client.get_application_date_range_kpi(
        ApplicationId=app_id, KpiName=name, StartTime=START, EndTime=END,
    )["ApplicationDateRangeKpiResponse"]["KpiResult"]["Rows"]
    assert len(whole) == ds.DAYS
    pages: list[Any] = []
    token: dict[str, str] = {}
    while True:
        body = client.get_application_date_range_kpi(
            ApplicationId=app_id, KpiName=name, StartTime=START, EndTime=END, PageSize="2",
            **token)["ApplicationDateRangeKpiResponse"]
        assert len(body["KpiResult"]["Rows"]) <= 2
        pages += body["KpiResult"]["Rows"]
        if "NextToken" not in body:
            break
        token = {"NextToken": body["NextToken"]}
    assert pages == whole

    before = datetime.now(UTC)
    default = client.get_application_date_range_kpi(
        ApplicationId=app_id, KpiName=name)["ApplicationDateRangeKpiResponse"]
    assert default["KpiResult"] == {"Rows": []}  # the data set lies in May 2026
    assert default["EndTime"] - default["StartTime"] == timedelta(days=31)
    assert before - timedelta(seconds=1) <= default["EndTime"] <= datetime.now(UTC)

    for call, kwargs, message in (
        (client.get_application_date_range_kpi, {"KpiName": "sms-spend"},
         "No application KPI is named 'sms-spend'; valid names: daily-active-endpoints"),
        (client.get_campaign_date_range_kpi, {"CampaignId": "c1", "KpiName": "nope"},
         "valid names: attempted-deliveries-grouped-by-campaign-activity"),
        (client.get_journey_date_range_kpi,
         {"JourneyId": "j1", "KpiName": name, "StartTime": START, "EndTime": END},
         "journey-emails-sent"),
        (client.get_application_date_range_kpi,
         {"KpiName": name, "StartTime": START, "EndTime": START + timedelta(days=32)},
         "31 days or fewer"),
        (client.get_application_date_range_kpi,
         {"KpiName": name, "StartTime": START, "EndTime": END, "PageSize": "0"}, "page-size"),
    ):
        with pytest.raises(ClientError) as caught:
            call(ApplicationId=app_id, **kwargs)
        error = caught.value.response["Error"]
        assert error["Code"] == "BadRequestException"
        assert message in error["Message"]
