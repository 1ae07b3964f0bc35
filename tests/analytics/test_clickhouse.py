from __future__ import annotations

import pytest

from lodestar.analytics.clickhouse import connect, migrate, migration_files, scalar
from lodestar.analytics.queries import event_counts
from lodestar.analytics.rows import EVENT_COLUMNS, event_row

pytestmark = pytest.mark.clickhouse


def record(event_id: str, event_type: str, endpoint: str = "ep-1") -> dict:
    return {
        "event_id": event_id,
        "app_id": "app-1",
        "endpoint_id": endpoint,
        "event_type": event_type,
        "timestamp": 1_777_636_800_000,
        "arrival_timestamp": 1_777_636_801_000,
        "attributes": {"url": "/a"},
        "metrics": {"n": 2.0},
        "session": {"id": "s-1", "start_timestamp": 1, "stop_timestamp": None, "duration_ms": None},
        "client": None,
    }


def test_create_insert_query_through_clickhouse_connect(
    clickhouse_dsn: str, clickhouse_database: str
) -> None:
    client = connect(clickhouse_dsn, clickhouse_database)
    assert migrate(client) == [v for v, _ in migration_files()]
    assert migrate(client) == []

    rows = [event_row(record(f"e{i}", "pageView")) for i in range(5)]
    rows.append(event_row(record("s1", "_session.start")))
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))
    # the same batch replayed (a crash before the offset commit) is not counted twice
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))

    counts = {c.event_type: c.count for c in event_counts(client, "app-1")}
    assert counts == {"pageView": 5, "_session.start": 1}
    assert event_counts(client, "other-app") == []
    assert scalar(client, "SELECT session_id FROM events LIMIT 1") == "s-1"
    assert scalar(client, "SELECT attributes['url'] FROM events LIMIT 1") == "/a"
    assert scalar(client, "SELECT toUnixTimestamp64Milli(event_time) FROM events LIMIT 1") == (
        1_777_636_800_000
    )


def test_erasing_endpoints_deletes_only_their_rows(
    clickhouse_dsn: str, clickhouse_database: str
) -> None:
    from lodestar.analytics.erasure import erase_endpoints, erasure_key

    client = connect(clickhouse_dsn, clickhouse_database)
    migrate(client)
    rows = [event_row(record(f"e{i}", "pageView", endpoint=f"ep-{i % 3}")) for i in range(9)]
    client.insert("events", rows, column_names=list(EVENT_COLUMNS))

    deleted = {"kind": "DELETED", "app_id": "app-1", "endpoint_id": "ep-1"}
    assert erasure_key({**deleted, "kind": "UPSERTED"}) is None
    assert erase_endpoints(client, [erasure_key(deleted), None, erasure_key(deleted)]) == 1
    left = client.query("SELECT endpoint_id, count() FROM events FINAL GROUP BY endpoint_id "
                        "ORDER BY endpoint_id").result_rows
    assert left == [("ep-0", 3), ("ep-2", 3)]
    assert erase_endpoints(client, [None]) == 0


def test_ttl_removes_raw_rows_older_than_the_retention(
    clickhouse_dsn: str, clickhouse_database: str
) -> None:
    import time

    from lodestar.analytics.clickhouse import TTL_COLUMNS, apply_ttl

    client = connect(clickhouse_dsn, clickhouse_database)
    migrate(client)
    now = int(time.time() * 1000)
    old = dict(record("old", "pageView"), timestamp=now - 400 * 86_400_000)
    new = dict(record("new", "pageView"), timestamp=now - 86_400_000)
    client.insert("events", [event_row(old), event_row(new)], column_names=list(EVENT_COLUMNS))
    apply_ttl(client, 30)
    for table in TTL_COLUMNS:
        assert "toIntervalDay(30)" in scalar(client, f"SHOW CREATE TABLE {table}")
    client.command("OPTIMIZE TABLE events FINAL")
    assert [r[0] for r in client.query("SELECT event_id FROM events").result_rows] == ["new"]
    apply_ttl(client, 0)  # keep forever again
    assert "TTL" not in scalar(client, "SHOW CREATE TABLE events")
    apply_ttl(client, 0)  # idempotent
    with pytest.raises(ValueError):
        apply_ttl(client, -1)
