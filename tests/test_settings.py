from __future__ import annotations

from pathlib import Path

import pytest

from lodestar.core.topics import Topic
from lodestar.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({"HOME": "/home/x", "LODESTAR_DATA_DIR": "/srv/lodestar"})
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.data_dir == Path("/srv/lodestar")
    assert s.clickhouse_dsn == "chdb:///srv/lodestar/clickhouse"
    assert s.clickhouse_embedded
    assert s.topic(Topic.EVENTS) == "lodestar.events"
    assert s.dlq(Topic.EVENTS) == "lodestar.events.dlq"
    assert s.partitions == 8 and s.sink_flush_seconds == 1.0


def test_overrides_and_masked_passwords() -> None:
    s = Settings.from_env({
        "LODESTAR_CLICKHOUSE_DSN": "https://u:secret@ch:8443/db",
        "LODESTAR_POSTGRES_DSN": "postgresql://lodestar:pw@db:5432/lodestar",
        "LODESTAR_TOPIC_PREFIX": "acme",
        "LODESTAR_SINK_FLUSH_SECONDS": "0.25",
    })
    assert not s.clickhouse_embedded
    assert s.topic(Topic.SEND_SMS) == "acme.send.sms"
    assert s.sink_flush_seconds == 0.25
    described = s.describe()
    assert "secret" not in described["clickhouse_dsn"] and "pw" not in described["postgres_dsn"]
    assert described["postgres_dsn"] == "postgresql://lodestar:***@db:5432/lodestar"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LODESTAR_PARTITIONS": "many"}, "LODESTAR_PARTITIONS must be a whole number"),
        ({"LODESTAR_PARTITIONS": "0"}, "LODESTAR_PARTITIONS must be positive"),
        ({"LODESTAR_SINK_FLUSH_SECONDS": "soon"}, "LODESTAR_SINK_FLUSH_SECONDS must be a number"),
        ({"LODESTAR_CLICKHOUSE_DSN": "clickhouse://x"}, "must start with chdb://"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
