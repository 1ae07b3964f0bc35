"""Deliveries, activity and segment membership into ClickHouse: the row mappers, every
schema example through its table, replays, erasure, and the sinks on a real Kafka."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from lodestar.analytics.clickhouse import connect, migrate
from lodestar.analytics.erasure import ERASABLE_TABLES, erase_endpoints
from lodestar.analytics.rows import delivery_row, message_parts
from lodestar.analytics.sink import (
    DELIVERIES_TABLE,
    TABLES,
    ClickHouseWriter,
    TableSpec,
    table_sink,
)
from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.json_form import load_json_record
from lodestar.contracts.registry import default_registry
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.delivery_events import Channel, DeliverySubject, sms_outcome
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import SourceRecord
from lodestar.settings import Settings

CODEC = AvroCodec.default()
REGISTRY = default_registry()
SPECS = {REGISTRY.for_topic(spec.topic).stem: spec for spec in TABLES}
EXAMPLES = sorted(p for stem in SPECS for p in (REGISTRY.examples_directory / stem).glob("*.json"))


def _record(path: Path) -> dict[str, Any]:
    spec = SPECS[path.parent.name]
    raw = load_json_record(REGISTRY.get(path.parent.name), path)
    return CODEC.decode(spec.topic, CODEC.encode(spec.topic, raw))


def test_delivery_row_promotes_pinpoint_attributes() -> None:
    subject = DeliverySubject(app_id="a", message_id="m1", channel=Channel.SMS,
                              endpoint_id="ep", campaign_id="c", campaign_activity_id="run",
                              treatment_id="1")
    record = sms_outcome(subject, 1_777_636_800_000, record_status="DELIVERED",
                         destination_phone_number="+4915550100", number_of_message_parts=3,
                         iso_country_code="de", price_in_millicents_usd=1935.0)
    row = dict(zip(DELIVERIES_TABLE.columns, delivery_row(record), strict=True))
    assert row["event_type"] == "_SMS.SUCCESS" and row["channel"] == "SMS"
    assert (row["campaign_id"], row["campaign_activity_id"], row["treatment_id"]) == (
        "c", "run", "1")
    assert (row["journey_id"], row["record_status"], row["iso_country_code"]) == (
        "", "DELIVERED", "DE")
    assert (row["message_parts"], row["price_millicents_usd"]) == (3, 1935.0)
    assert row["attributes"]["destination_phone_number"] == "+4915550100"
    assert [message_parts(v) for v in (None, "", "x", "-2", "70000")] == [0, 0, 0, 0, 65_535]


def test_every_table_has_a_sink_with_its_own_group() -> None:
    assert [s.table for s in TABLES] == ["events", "deliveries", "activity",
                                         "segment_membership"]
    groups = {s.group_id("w1") for s in TABLES}
    assert len(groups) == 4 and "w1-analytics" in groups  # events keep their group
    assert set(ERASABLE_TABLES) == {s.table for s in TABLES}


@pytest.mark.clickhouse
def test_every_example_lands_in_its_table_once_and_erasure_reaches_every_table(
    clickhouse_dsn: str, clickhouse_database: str
) -> None:
    client = connect(clickhouse_dsn, clickhouse_database)
    migrate(client)
    by_table: dict[str, list[list[Any]]] = {}
    records = [(_record(p), SPECS[p.parent.name]) for p in EXAMPLES]
    for record, spec in records:
        by_table.setdefault(spec.table, []).append(spec.row(record))
    assert set(by_table) == {s.table for s in TABLES}
    for _ in range(2):  # the second time is a replay after a crash
        for spec in TABLES:
            client.insert(spec.table, by_table[spec.table], column_names=list(spec.columns))
    for spec in TABLES:
        stored = client.query(f"SELECT count() FROM {spec.table} FINAL").result_rows[0][0]
        assert stored == len(by_table[spec.table]), spec.table

    keys = {(r["app_id"], r["endpoint_id"]) for r, _ in records if r.get("endpoint_id")}
    assert erase_endpoints(client, sorted(keys)) == len(keys)
    for table in ERASABLE_TABLES:
        left = client.query(f"SELECT count() FROM {table} WHERE endpoint_id != ''").result_rows
        assert left == [(0,)], table


class RecordingDlq:
    def __init__(self) -> None:
        self.parked: list[tuple[Topic, SourceRecord, DeadLetter]] = []

    async def publish(self, topic: Topic, record: SourceRecord, letter: DeadLetter) -> None:
        self.parked.append((topic, record, letter))


@pytest.mark.kafka
@pytest.mark.clickhouse
async def test_the_sinks_fill_their_tables_from_kafka(
    settings: Settings, clickhouse_dsn: str, clickhouse_database: str
) -> None:
    client = connect(clickhouse_dsn, clickhouse_database)
    migrate(client)
    writer = ClickHouseWriter(client)
    specs = [s for s in TABLES if s.table != "events"]
    wanted: dict[str, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for path in EXAMPLES:
            spec = SPECS[path.parent.name]
            if spec in specs:
                value = CODEC.encode(spec.topic, _record(path))
                await producer.send_and_wait(settings.topic(spec.topic), value, key=b"k")
                wanted[spec.table] = wanted.get(spec.table, 0) + 1
        await producer.send_and_wait(settings.topic(Topic.DELIVERIES), b"garbage", key=b"k")
    finally:
        await producer.stop()

    dlq = RecordingDlq()

    def sink(spec: TableSpec) -> Any:
        return table_sink(spec, bootstrap=settings.kafka_bootstrap,
                          topic_name=settings.topic(spec.topic),
                          group_id=spec.group_id(settings.worker_id), codec=CODEC,
                          writer=writer, dead_letters=dlq,  # type: ignore[arg-type]
                          batch_size=100, flush_seconds=0.2)

    sinks = [sink(spec) for spec in specs]
    tasks = [asyncio.ensure_future(s.run()) for s in sinks]
    try:
        deadline = time.monotonic() + 40
        while True:
            counts = {s.table: await writer.call(
                lambda c, t=s.table: c.query(f"SELECT count() FROM {t}").result_rows[0][0])
                for s in specs}
            if counts == wanted and dlq.parked:
                break
            assert time.monotonic() < deadline, (counts, wanted)
            await asyncio.sleep(0.3)
    finally:
        for s in sinks:
            s.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        writer.close()
    (topic, source, letter), = dlq.parked
    assert topic is Topic.DELIVERIES and letter.reason is DlqReason.DECODE_ERROR
    assert source.value == b"garbage"
