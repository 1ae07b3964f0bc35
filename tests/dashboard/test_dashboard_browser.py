"""The dashboards in Debian's headless Chromium (selenium + /usr/bin/chromedriver).

The stack: the real API (in-process, on the test's PostgreSQL and Kafka) whose
analytics route asks a stand-in worker web (``engine.web.create_worker_web``
on an in-process chdb seeded with tests/dashboard/seed.py) — the path a
single-node deployment takes with embedded ClickHouse. Each page must load
without console errors and draw its charts from the seeded data; a
screenshot of each is kept in tests/dashboard/artifacts/.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tests.api.live_api import ADMIN, serve
from tests.asgi_server import serve_asgi
from tests.dashboard.seed import END, START, Data, generate, load, retarget

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.sink import ClickHouseWriter
from lodestar.control.apps import AppsRepository
from lodestar.control.migrate import migrate as migrate_control
from lodestar.engine.analytics_service import AnalyticsRuntime
from lodestar.engine.web import create_worker_web
from lodestar.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.clickhouse]

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AUTH = {"Authorization": f"Bearer {ADMIN[0]}:{ADMIN[1]}"}


@dataclass
class Stack:
    url: str
    app_id: str
    data: Data
    control_dsn: str


def _serve_in_thread(app: Any) -> Iterator[str]:
    with serve_asgi(app) as url:
        yield url


@pytest.fixture
async def control_dsn(postgres_dsn: str) -> str:
    await migrate_control(postgres_dsn)
    return postgres_dsn


@pytest.fixture
def stack(
    settings: Settings, control_dsn: str, clickhouse_dsn: str, clickhouse_database: str
) -> Iterator[Stack]:
    dsn = clickhouse_dsn  # chdb allows one engine path per process: the session's
    client = connect(dsn, clickhouse_database)
    migrate(client)
    runtime = AnalyticsRuntime(settings.with_changes(clickhouse_dsn=dsn), clickhouse_database)
    runtime.writer = ClickHouseWriter(client)
    runtime.ready.set()
    worker = _serve_in_thread(create_worker_web(runtime, {}, {}))
    worker_url = next(worker)
    if not dsn.startswith("chdb:"):  # a server: the API queries it itself, in this database
        dsn = f"{dsn.rstrip('/')}/{clickhouse_database}"
    api_settings = settings.with_changes(
        postgres_dsn=control_dsn, admin_access_key_id=ADMIN[0],
        admin_secret_access_key=ADMIN[1], clickhouse_dsn=dsn, worker_url=worker_url,
    )
    api = serve(api_settings)
    url = next(api)
    try:
        created = httpx.post(f"{url}/v1/apps", json={"Name": "Shop"}, headers=AUTH, timeout=30)
        assert created.status_code == 201, created.text
        app_id = created.json()["Id"]
        data = retarget(generate(seed=3), app_id)
        load(client, data)
        yield Stack(url, app_id, data, control_dsn)
    finally:
        for started in (api, worker):
            next(started, None)
        runtime.writer.close()


def test_analytics_route_and_static_assets(stack: Stack) -> None:
    base = f"{stack.url}/v1/apps/{stack.app_id}/analytics"
    window = {"start": START.isoformat(), "end": END.isoformat()}
    ok = httpx.get(f"{base}/top-events", params=window, headers=AUTH, timeout=30)
    assert ok.status_code == 200, ok.text
    body = ok.json()["AnalyticsQueryResponse"]
    assert (body["ApplicationId"], body["QueryName"]) == (stack.app_id, "top-events")
    assert body["Result"]["Events"][0]["EventType"] == "_session.start"
    # the path's application wins over an app-id in the query string
    other = httpx.get(f"{base}/top-events", params={**window, "app-id": "app-other"},
                      headers=AUTH, timeout=30)
    assert other.json()["AnalyticsQueryResponse"]["Result"] == body["Result"]

    bad = httpx.get(f"{base}/funnel", params={"steps": "one"}, headers=AUTH, timeout=30)
    assert bad.status_code == 400 and "steps" in bad.json()["Message"]
    assert bad.headers["x-amzn-ErrorType"] == "BadRequestException"
    unknown = httpx.get(f"{base}/no-such-query", headers=AUTH, timeout=30)
    assert unknown.status_code == 404
    assert httpx.get(f"{base}/top-events", timeout=30).status_code == 403
    missing_app = httpx.get(f"{stack.url}/v1/apps/nope/analytics/top-events", headers=AUTH,
                            timeout=30)
    assert missing_app.status_code == 404

    page = httpx.get(f"{stack.url}/dashboard", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script = httpx.get(f"{stack.url}/dashboard/charts.js", timeout=30)
    assert script.headers["content-type"].startswith("text/javascript")
    assert "export function lineChart" in script.text
    assert httpx.get(f"{stack.url}/dashboard/secret.py", timeout=30).status_code == 404
    # every asset is local: the page links only /dashboard/…, the scripts fetch only /v1/…
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert links and all(link.startswith(("/dashboard/", "#")) for link in links), links
    for name in ("charts.js", "dashboard.js", "dashboard.css"):
        text = httpx.get(f"{stack.url}/dashboard/{name}", timeout=30).text
        assert re.findall(r"https?://[^\s\"'`]+", text) in ([], ["http://www.w3.org/2000/svg"])
        assert "@import" not in text and "url(" not in text
    assert httpx.get(f"{stack.url}/dashboard/", timeout=30, follow_redirects=True).url.path == (
        "/dashboard")


# -- the browser ------------------------------------------------------------------------


@pytest.fixture
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(f"the dashboard tests need {CHROMIUM} and {CHROMEDRIVER} "
                    "(apt-get install chromium chromium-driver)", pytrace=False)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def wait_for(driver: Any, check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.1)
    status = driver.find_element("id", "status").text
    login = driver.find_element("id", "login-error").get_attribute("textContent")
    pytest.fail(f"timed out waiting for {what}; page status: {status!r}, key dialog: {login!r}")


def page_ready(driver: Any, page: str) -> None:
    wait_for(driver, lambda: driver.execute_script(
        "return document.body.dataset.ready === 'true' && document.body.dataset.page === "
        f"'{page}' && !document.getElementById('status').textContent.startsWith('Loading')"),
        f"the {page} page")
    status = driver.find_element("id", "status")
    assert "error" not in (status.get_attribute("class") or ""), status.text


def console_errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def values(driver: Any, css: str, attribute: str = "data-value") -> list[float]:
    return [float(e.get_attribute(attribute))
            for e in driver.find_elements("css selector", css)]


def shoot(driver: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000


def expected_dau(data: Data, app_id: str) -> list[int]:
    active: dict[Any, set[str]] = defaultdict(set)
    for e in data.events:
        if e.app_id == app_id:
            active[e.time.date()].add(e.endpoint_id)
    return [len(active[START + timedelta(days=i)]) for i in range((END - START).days + 1)]


def test_every_page_renders_its_charts(stack: Stack, driver: Any) -> None:
    hash_ = f"#overview?app={stack.app_id}&start={START.isoformat()}&end={END.isoformat()}"
    driver.get(f"{stack.url}/dashboard{hash_}")
    wait_for(driver, lambda: driver.find_element("id", "login").get_attribute("open") is not None,
             "the key dialog")
    driver.find_element("id", "key-id").send_keys(ADMIN[0])
    driver.find_element("id", "key-secret").send_keys(ADMIN[1])
    driver.find_element("css selector", "#login-form button[type=submit]").click()

    # overview
    page_ready(driver, "overview")
    days = (END - START).days + 1
    wait_for(driver, lambda: driver.find_elements("css selector", "#chart-funnel rect.bar"),
             "the funnel")
    shoot(driver, "overview")  # first, so a failing assertion still leaves it
    selected = driver.find_element("id", "app").get_attribute("value")
    assert selected == stack.app_id
    dau = values(driver, "#chart-active g[data-series=DAU] circle.point")
    assert dau == expected_dau(stack.data, stack.app_id)
    mau = values(driver, "#chart-active g[data-series=MAU] circle.point")
    assert len(mau) == days and all(m >= d for m, d in zip(mau, dau, strict=True))
    assert len(driver.find_elements("css selector", "#chart-sessions rect.bar")) == days
    cells = driver.find_elements("css selector", "#chart-retention rect.cell")
    cohorts = {c.get_attribute("data-row") for c in cells}
    assert len(cells) == len(cohorts) * 8 and len(cohorts) > 5
    day0 = values(driver, "#chart-retention rect.cell[data-column='day 0']")
    assert day0 == [1.0] * len(cohorts)
    top = driver.find_elements("css selector", "#chart-top-events rect.bar")
    assert top[0].get_attribute("data-label") == "_session.start"
    assert len(driver.find_elements("css selector", "#overview-tiles .tile")) >= 5

    # the date range picker narrows every chart
    driver.execute_script(
        "document.getElementById('start').value = arguments[0];"
        "document.getElementById('end').value = arguments[1];",
        (START + timedelta(days=7)).isoformat(), (START + timedelta(days=13)).isoformat())
    driver.find_element("css selector", "#controls button[type=submit]").click()
    wait_for(driver, lambda: len(driver.find_elements(
        "css selector", "#chart-active g[data-series=DAU] circle.point")) == 7, "7 days")
    assert values(driver, "#chart-active g[data-series=DAU] circle.point") == (
        expected_dau(stack.data, stack.app_id)[7:14])
    assert f"start={(START + timedelta(days=7)).isoformat()}" in driver.current_url
    driver.get(f"{stack.url}/dashboard{hash_}")
    page_ready(driver, "overview")

    # campaigns
    driver.find_element("css selector", "#pages a[data-page=campaigns]").click()
    page_ready(driver, "campaigns")
    shoot(driver, "campaigns")
    cards = driver.find_elements("css selector", "#campaign-list article")
    assert sorted(c.get_attribute("data-campaign") for c in cards) == ["c-1", "c-2"]
    c1 = next(c for c in cards if c.get_attribute("data-campaign") == "c-1")
    sent = [float(b.get_attribute("data-value")) for b in c1.find_elements(
        "css selector", "rect.bar[data-label=Sent]")]
    assert sent == [240.0, 240.0]
    assert len(c1.find_elements("css selector", "rect.bar")) == 10
    assert c1.find_element("css selector", ".verdict").text == "Winner: treatment 1"
    c2 = next(c for c in cards if c.get_attribute("data-campaign") == "c-2")
    assert c2.find_element("css selector", ".verdict").text.startswith("No winner yet")

    # journeys
    driver.find_element("css selector", "#pages a[data-page=journeys]").click()
    page_ready(driver, "journeys")
    shoot(driver, "journeys")
    (journey,) = driver.find_elements("css selector", "#journey-list article")
    entered = values(driver, "#journey-list g[data-series=ENTERED] rect.bar[data-label=ENTRY]")
    assert entered == [float(len({s.endpoint_id for s in stack.data.steps
                                  if s.activity_type == "ENTRY"}))]
    assert "endpoints entered" in journey.find_element("css selector", "h2").text

    # channels
    driver.find_element("css selector", "#pages a[data-page=channels]").click()
    page_ready(driver, "channels")
    shoot(driver, "channels")
    sms_sent = values(driver, "#chart-channels g[data-series=Sent] rect.bar[data-label=SMS]")
    assert sms_sent == [120.0]
    spend = driver.find_elements("css selector", "#chart-spend rect.bar")
    assert sorted(s.get_attribute("data-label") for s in spend) == ["SMS DE", "SMS FR", "SMS US"]
    truth = sum(d.price for d in stack.data.deliveries if d.app_id == stack.app_id) / 100_000
    assert sum(values(driver, "#chart-spend rect.bar")) == pytest.approx(truth, rel=1e-6)
    assert driver.find_elements("css selector", "#chart-channel-days circle.point")

    # an application key: it names its application instead of listing them
    key = asyncio.run(_app_key(stack.control_dsn, stack.app_id))
    driver.find_element("id", "sign-out").click()
    wait_for(driver, lambda: driver.find_element("id", "login").get_attribute("open") is not None,
             "the key dialog again")
    driver.find_element("id", "key-id").send_keys(key.access_key_id)
    driver.find_element("id", "key-secret").send_keys(key.secret)
    driver.find_element("id", "key-app").send_keys(stack.app_id)
    driver.find_element("css selector", "#login-form button[type=submit]").click()
    page_ready(driver, "channels")
    wait_for(driver, lambda: driver.find_element("id", "app-id").is_displayed(), "the app id")
    assert not driver.find_element("id", "app").is_displayed()
    assert driver.find_element("id", "app-id").get_attribute("value") == stack.app_id
    assert values(driver, "#chart-channels g[data-series=Sent] rect.bar[data-label=SMS]") == [
        120.0]

    errors = console_errors(driver)
    assert errors == [], errors


async def _app_key(dsn: str, app_id: str) -> Any:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        return await AppsRepository(pool).create_key(app_id)
    finally:
        await pool.close()
