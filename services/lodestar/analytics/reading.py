"""Read event counts from wherever ClickHouse is reachable.

With a ClickHouse server (``http(s)://`` DSN) the query runs directly. The
embedded engine belongs to the worker process, so then the worker's web
server answers (``LODESTAR_WORKER_URL``).
"""

from __future__ import annotations

from typing import Any

import httpx

from lodestar.settings import Settings


class EventCountsUnavailable(RuntimeError):
    """Neither ClickHouse nor a worker answered; the message says what to do."""


def read_event_counts(
    settings: Settings, app_id: str | None = None, event_type: str | None = None
) -> dict[str, Any]:
    """``{"Counts": [{"EventType", "Count"}…], "Total": n}`` for the stored events."""
    if not settings.clickhouse_embedded:
        from lodestar.analytics.clickhouse import connect
        from lodestar.analytics.queries import event_counts

        rows = event_counts(connect(settings.clickhouse_dsn), app_id, event_type)
        return {
            "Counts": [{"EventType": r.event_type, "Count": r.count} for r in rows],
            "Total": sum(r.count for r in rows),
        }
    params = {k: v for k, v in (("app-id", app_id), ("event-type", event_type)) if v}
    url = f"{settings.worker_url}/v1/analytics/event-counts"
    try:
        response = httpx.get(url, params=params, timeout=15)
    except httpx.HTTPError as exc:
        raise EventCountsUnavailable(
            f"no worker answered at {url} ({exc}). ClickHouse is embedded, so the worker "
            "that owns it serves the counts: start one with `lodestar worker`, or set "
            "LODESTAR_WORKER_URL."
        ) from None
    if response.status_code != 200:
        raise EventCountsUnavailable(f"{url} answered {response.status_code}: {response.text}")
    data: dict[str, Any] = response.json()
    return data
