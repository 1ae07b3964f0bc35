"""Run analytics queries from wherever ClickHouse is reachable.

With a ClickHouse server (``http(s)://`` DSN) a query runs directly in this
process. The embedded engine belongs to the worker process, so then the
worker's web server runs it (``GET {LODESTAR_WORKER_URL}/v1/analytics/query/{name}``).
Either way the answer is the registered query's JSON value
(``lodestar.analytics.registry``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import httpx

from lodestar.analytics.registry import QueryParameterError, UnknownQuery
from lodestar.settings import Settings


class AnalyticsUnavailable(RuntimeError):
    """Neither ClickHouse nor a worker answered; the message says what to do."""




_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _server_query(settings: Settings, name: str, params: Mapping[str, str]) -> Any:
    from lodestar.analytics.clickhouse import connect
    from lodestar.analytics.registry import run_query

    with _clients_lock:
        client = _clients.get(settings.clickhouse_dsn)
        if client is None:
            client = _clients[settings.clickhouse_dsn] = connect(settings.clickhouse_dsn)
        return run_query(client, name, params)


def query_analytics(settings: Settings, name: str, params: Mapping[str, str]) -> Any:
    """Run query ``name`` with ``params``; raises ``QueryParameterError`` (bad params),
    ``UnknownQuery`` or ``AnalyticsUnavailable``."""
    if not settings.clickhouse_embedded:
        return _server_query(settings, name, params)
    url = f"{settings.worker_url}/v1/analytics/query/{name}"
    try:
        response = httpx.get(url, params=dict(params), timeout=30)
    except httpx.HTTPError as exc:
        raise AnalyticsUnavailable(
            f"no worker answered at {url} ({exc}). ClickHouse is embedded, so the worker "
            "that owns it runs analytics queries: start one with `lodestar worker`, or set "
            "LODESTAR_WORKER_URL."
        ) from None
    if response.status_code == 400:
        raise QueryParameterError(response.json().get("Message", response.text))
    if response.status_code == 404:
        raise UnknownQuery(response.json().get("Message", response.text))
    if response.status_code != 200:
        raise AnalyticsUnavailable(f"{url} answered {response.status_code}: {response.text}")
    return response.json()


async def query_analytics_async(settings: Settings, name: str, params: Mapping[str, str]) -> Any:
    """``query_analytics`` off the event loop (for the API's handlers)."""
    return await asyncio.to_thread(query_analytics, settings, name, params)


def read_event_counts(
    settings: Settings, app_id: str | None = None, event_type: str | None = None
) -> dict[str, Any]:
    """``{"Counts": [{"EventType", "Count"}…], "Total": n}`` for the stored events."""
    params = {k: v for k, v in (("app-id", app_id), ("event-type", event_type)) if v}
    result: dict[str, Any] = query_analytics(settings, "event-counts", params)
    return result
