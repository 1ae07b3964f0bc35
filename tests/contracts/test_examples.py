"""Every example of every schema round-trips through the codec.

Parametrised over the files in ``schemas/examples/<stem>/``, so a new
example is tested as soon as it is added.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.json_form import load_json_record, to_json
from lodestar.contracts.registry import TOPIC_SCHEMAS, SchemaRegistry
from lodestar.contracts.wire import HEADER_SIZE
from lodestar.core.topics import Topic
from tests.contracts.conftest import example_files, topic_name_for, with_defaults

EXAMPLES = example_files()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_example_round_trips(path: Path, registry: SchemaRegistry, codec: AvroCodec) -> None:
    entry = registry.get(path.parent.name)
    record = load_json_record(entry, path)
    topic = topic_name_for(entry, record)

    data = codec.encode_for_name(topic, record)
    decoded = codec.decode_for_name(topic, data)

    assert data[:HEADER_SIZE] == entry.header
    assert decoded == with_defaults(entry, record)
    assert codec.encode_for_name(topic, decoded) == data, "re-encoding the decoded record differs"
    assert to_json(decoded) == to_json(with_defaults(entry, record))


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 16


@pytest.mark.parametrize("stem", sorted({*TOPIC_SCHEMAS.values(), "dlq_envelope"}))
def test_every_schema_has_a_minimal_and_a_full_example(stem: str, registry: SchemaRegistry) -> None:
    examples = sorted((registry.examples_directory / stem).glob("*.json"))
    assert len(examples) >= 2, f"schemas/examples/{stem}/ needs at least two examples"


def test_every_example_directory_names_a_schema(registry: SchemaRegistry) -> None:
    directories = {p.name for p in registry.examples_directory.iterdir() if p.is_dir()}
    assert directories <= set(registry.entries), directories - set(registry.entries)


def test_every_topic_has_a_schema(registry: SchemaRegistry) -> None:
    for topic in Topic:
        assert registry.for_topic(topic).stem == TOPIC_SCHEMAS[topic]
    assert {registry.for_topic(t).stem for t in Topic} | {"dlq_envelope"} == set(registry.entries)


def test_every_send_channel_has_an_example(registry: SchemaRegistry) -> None:
    entry = registry.get("send_request")
    channels = {
        load_json_record(entry, p)["channel"]
        for p in (registry.examples_directory / "send_request").glob("*.json")
    }
    assert channels == {"EMAIL", "SMS", "PUSH", "VOICE", "CUSTOM"}
