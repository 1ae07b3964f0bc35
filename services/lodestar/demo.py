"""``lodestar demo``: send Amplify-shaped events through the API, then watch them land.

Each demo endpoint sends a session (``_session.start`` … ``_session.stop``),
page views, and sometimes a ``_monetization.purchase``, as Amplify JS v6 would
(``Endpoint: {}``, events batched per request). The command then polls the
event counts until every accepted event is countable in ClickHouse or the
timeout passes, printing progress and where to look.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lodestar.analytics.reading import AnalyticsUnavailable, read_event_counts
from lodestar.settings import Settings


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def demo_batch(rng: random.Random, now: datetime) -> dict[str, Any]:
    """One endpoint's PutEvents ``EventsBatch`` for one session."""
    session_id = str(uuid.UUID(int=rng.getrandbits(128)))
    start = now - timedelta(minutes=rng.randint(1, 120))
    session = {"Id": session_id, "StartTimestamp": _iso(start)}
    events: dict[str, Any] = {}

    def add(event_type: str, at: datetime, **extra: Any) -> None:
        event = {"EventType": event_type, "Timestamp": _iso(at), "Session": dict(session), **extra}
        events[str(uuid.UUID(int=rng.getrandbits(128)))] = event

    add("_session.start", start)
    at = start
    for _ in range(rng.randint(1, 5)):
        at += timedelta(seconds=rng.randint(5, 90))
        add("pageView", at, Attributes={"url": f"/products/{rng.randint(1, 40)}"})
    if rng.random() < 0.3:
        at += timedelta(seconds=30)
        add(
            "_monetization.purchase",
            at,
            Attributes={"_currency": "USD", "_product_id": f"sku-{rng.randint(1, 9)}",
                        "_store": "web", "_transaction_id": str(uuid.uuid4())},
            Metrics={"_item_price": round(rng.uniform(1, 99), 2), "_quantity": 1},
        )
    at += timedelta(seconds=10)
    stop = {**session, "StopTimestamp": _iso(at),
            "Duration": int((at - start).total_seconds() * 1000)}
    events[str(uuid.UUID(int=rng.getrandbits(128)))] = {
        "EventType": "_session.stop", "Timestamp": _iso(at), "Session": stop,
    }
    return {"Endpoint": {}, "Events": events}


async def demo_credentials(settings: Settings, app_id: str) -> tuple[str, str]:
    """An active key of the demo application, creating the application when it is new."""
    from lodestar.api.app import open_control_plane
    from lodestar.control.apps import AppsRepository

    pool = await open_control_plane(settings)
    try:
        repo = AppsRepository(pool)
        if await repo.get_app(app_id) is None:
            _, key = await repo.create_app("Lodestar demo", app_id=app_id)
            print(f"created application {app_id!r} with access key {key.access_key_id}")
        else:
            keys = await repo.list_keys(app_id)
            key = keys[0] if keys else await repo.create_key(app_id)
        return key.access_key_id, key.secret
    finally:
        await pool.close()


def _total(settings: Settings, app_id: str) -> int:
    return int(read_event_counts(settings, app_id)["Total"])


def run_demo(settings: Settings, *, app_id: str, endpoints: int, timeout: float) -> int:
    """Send the demo traffic and wait for it; 0 when every event was counted in time."""
    api = f"http://{settings.api_host}:{settings.api_port}"
    rng = random.Random()
    now = datetime.now(UTC)
    try:
        before = _total(settings, app_id)
    except AnalyticsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    access_key_id, secret = asyncio.run(demo_credentials(settings, app_id))
    auth = {"Authorization": f"Bearer {access_key_id}:{secret}"}
    accepted = 0
    with httpx.Client(base_url=api, timeout=30, headers=auth) as client:
        batch: dict[str, Any] = {}
        pending_events = 0
        for i in range(endpoints):
            item = demo_batch(rng, now)
            if pending_events + len(item["Events"]) > 100:
                accepted += _post(client, app_id, batch)
                batch, pending_events = {}, 0
            batch[f"demo-endpoint-{i:05d}"] = item
            pending_events += len(item["Events"])
        if batch:
            accepted += _post(client, app_id, batch)
    print(f"sent {accepted} events for {endpoints} endpoints to {api}/v1/apps/{app_id}/events")

    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = _total(settings, app_id) - before
        print(f"\r  counted in ClickHouse: {seen}/{accepted}", end="", flush=True)
        if seen >= accepted:
            break
        time.sleep(1)
    print()
    if seen < accepted:
        print(f"error: only {seen} of {accepted} events were counted within {timeout:.0f}s; "
              "is `lodestar worker` running? See its log.", file=sys.stderr)
        return 1
    counts = read_event_counts(settings, app_id)
    for row in counts["Counts"]:
        print(f"  {row['EventType']:<24} {row['Count']}")
    print("Where to look:")
    print(f"  application {app_id}, access key {access_key_id} (`lodestar keys list`)")
    print(f"  lodestar events count --app-id {app_id}")
    print(f"  {settings.worker_url}/v1/analytics/event-counts?app-id={app_id}")
    print(f"  Kafka topic {settings.topic_prefix}.events on {settings.kafka_bootstrap}")
    return 0


def _post(client: httpx.Client, app_id: str, batch: dict[str, Any]) -> int:
    response = client.post(f"/v1/apps/{app_id}/events", json={"BatchItem": batch})
    response.raise_for_status()
    results = response.json()["Results"]
    return sum(
        1
        for r in results.values()
        for e in r["EventsItemResponse"].values()
        if e["StatusCode"] == 202
    )
