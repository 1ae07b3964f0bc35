"""The worker's analytics runtime: shared by every sink, closed after the last one."""

from __future__ import annotations

import pytest

from lodestar.analytics.sink import TABLES
from lodestar.contracts.codec import AvroCodec
from lodestar.engine.analytics_service import AnalyticsRuntime, analytics_sink_services
from lodestar.settings import Settings

pytestmark = pytest.mark.clickhouse


async def test_the_first_sink_opens_and_the_last_closes(
    base_settings: Settings, clickhouse_dsn: str, clickhouse_database: str
) -> None:
    runtime = AnalyticsRuntime(base_settings.with_changes(clickhouse_dsn=clickhouse_dsn),
                               clickhouse_database)
    first = await runtime.acquire()
    second = await runtime.acquire()
    assert first is second and runtime.ready.is_set()
    tables = await first.call(lambda c: {r[0] for r in c.query("SHOW TABLES").result_rows})
    assert {"events", "deliveries", "activity", "segment_membership"} <= tables
    await runtime.release()
    assert runtime.writer is first  # one sink still writes
    assert await first.call(lambda c: c.query("SELECT 1").result_rows) == [(1,)]
    await runtime.release()
    assert runtime.writer is None and not runtime.ready.is_set()
    assert len(analytics_sink_services(base_settings, AvroCodec.default(), runtime)) == len(
        TABLES)
