"""Loading schemas: where they are found, topic names, and older schema versions."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.registry import (
    RegistryError,
    SchemaRegistry,
    default_registry,
    load_registry,
    parse_topic_name,
    schemas_directory,
)
from lodestar.contracts.wire import MAGIC, fingerprint64
from lodestar.core.topics import Topic

REPO = Path(__file__).resolve().parents[2]


def test_schemas_are_found_at_the_repository_root_in_an_editable_install() -> None:
    assert schemas_directory() == REPO / "schemas"


def test_default_registry_is_loaded_once() -> None:
    assert default_registry() is default_registry()


@pytest.mark.parametrize(
    ("name", "topic", "dead_letter"),
    [
        ("events", Topic.EVENTS, False),
        ("lodestar.events", Topic.EVENTS, False),
        ("t1a2b.segment-membership", Topic.SEGMENT_MEMBERSHIP, False),
        ("lodestar.send.email", Topic.SEND_EMAIL, False),
        ("lodestar.send.email.dlq", Topic.SEND_EMAIL, True),
        ("lodestar.deliveries.dlq", Topic.DELIVERIES, True),
    ],
)
def test_topic_names(name: str, topic: Topic, dead_letter: bool) -> None:
    assert parse_topic_name(name) == (topic, dead_letter)


def test_schema_for_topic_names(registry: SchemaRegistry) -> None:
    assert registry.for_topic_name("lodestar.send.voice").stem == "send_request"
    assert registry.for_topic_name("lodestar.control.dlq").stem == "dlq_envelope"
    with pytest.raises(KeyError, match="not a Lodestar topic"):
        registry.for_topic_name("lodestar.unknown")


def test_a_missing_schema_file_is_reported(tmp_path: Path) -> None:
    for path in (REPO / "schemas").glob("*.avsc"):
        if path.stem != "delivery":
            shutil.copy(path, tmp_path)
    with pytest.raises(RegistryError, match="no schema file for delivery"):
        load_registry(tmp_path)


def test_an_unparseable_schema_is_reported(tmp_path: Path) -> None:
    (tmp_path / "event.avsc").write_text('{"type": "record", "name": "E", "fields": [{"name": 1}]}')
    with pytest.raises(RegistryError, match=r"event\.avsc"):
        load_registry(tmp_path)


def test_bytes_written_with_an_older_version_decode_into_the_current_schema(
    tmp_path: Path,
) -> None:
    for path in (REPO / "schemas").glob("*.avsc"):
        shutil.copy(path, tmp_path)
    current = json.loads((REPO / "schemas" / "event.avsc").read_text())
    old = {
        **current,
        "fields": [f for f in current["fields"] if f["name"] not in ("user_id", "client")],
    }
    (tmp_path / "history" / "event").mkdir(parents=True)
    (tmp_path / "history" / "event" / "0.avsc").write_text(json.dumps(old))

    parsed_old = parse_schema(old)
    body = io.BytesIO()
    schemaless_writer(
        body,
        parsed_old,
        {
            "event_id": "e-old",
            "app_id": "a",
            "endpoint_id": "ep",
            "event_type": "_session.start",
            "timestamp": 1,
            "arrival_timestamp": 2,
        },
    )
    data = MAGIC + fingerprint64(to_parsing_canonical_form(parsed_old)) + body.getvalue()

    codec = AvroCodec(load_registry(tmp_path))
    record = codec.decode(Topic.EVENTS, data)
    assert record["event_id"] == "e-old"
    assert record["timestamp"] == 1  # still epoch millis, not a datetime
    assert record["user_id"] is None and record["client"] is None
    assert AvroCodec(default_registry()).registry.writer(data[2:10]) is None


def test_history_of_an_unknown_schema_is_reported(tmp_path: Path) -> None:
    for path in (REPO / "schemas").glob("*.avsc"):
        shutil.copy(path, tmp_path)
    (tmp_path / "history" / "nothing").mkdir(parents=True)
    shutil.copy(REPO / "schemas" / "event.avsc", tmp_path / "history" / "nothing" / "0.avsc")
    with pytest.raises(RegistryError, match="history of unknown schema 'nothing'"):
        load_registry(tmp_path)
