"""Properties: any valid event round-trips; a corrupted record is refused or kept intact."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.dlq import envelope_record
from lodestar.contracts.errors import EncodeError
from lodestar.contracts.json_form import load_json_record
from lodestar.contracts.registry import default_registry
from lodestar.core.topics import Topic
from tests.contracts.conftest import example_files, topic_name_for, with_defaults

CODEC = AvroCodec(default_registry())
EVENT = default_registry().get("event")

longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
doubles = st.floats(allow_nan=False)
text = st.text(max_size=20)
optional_text = st.none() | text

sessions = st.fixed_dictionaries(
    {"id": text, "start_timestamp": longs},
    optional={"stop_timestamp": st.none() | longs, "duration_ms": st.none() | longs},
)
clients = st.fixed_dictionaries(
    {},
    optional={
        name: optional_text
        for name in (
            "app_package_name", "app_title", "app_version_code", "sdk_name", "client_sdk_version",
        )
    },
)  # fmt: skip
events = st.fixed_dictionaries(
    {
        "event_id": text,
        "app_id": text,
        "endpoint_id": text,
        "event_type": text,
        "timestamp": longs,
        "arrival_timestamp": longs,
    },
    optional={
        "attributes": st.dictionaries(text, text, max_size=5),
        "metrics": st.dictionaries(text, doubles, max_size=5),
        "session": st.none() | sessions,
        "client": st.none() | clients,
        "user_id": optional_text,
    },
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_any_event_round_trips(record: dict[str, Any]) -> None:
    data = CODEC.encode(Topic.EVENTS, record)
    assert CODEC.decode(Topic.EVENTS, data) == with_defaults(EVENT, record)


# -- corrupting a valid record ------------------------------------------------------------

ANY_VALUE = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64])
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=8)
    | st.lists(text, max_size=3)
    | st.tuples(text, text)
    | st.dictionaries(text, text, max_size=3)
    | st.dictionaries(text, st.lists(text, max_size=2), max_size=2)
)
BASES = [(path, load_json_record(default_registry().get(path.parent.name), path)) for path in
         example_files()]  # fmt: skip


def _positions(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a record a value could be replaced, or a key added."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        found.append((*path, "__new_field__"))
        for key, item in value.items():
            found.append((*path, key))
            found.extend(_positions(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*path, index))
            found.extend(_positions(item, (*path, index)))
    return found


def _replace(record: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_corrupted_record_is_refused_or_written_exactly(data: st.DataObject) -> None:
    path, base = data.draw(st.sampled_from(BASES), label="example")
    entry = default_registry().get(Path(path).parent.name)
    position = data.draw(st.sampled_from(_positions(base)), label="position")
    mutated = _replace(base, position, data.draw(ANY_VALUE, label="value"))
    topic = topic_name_for(entry, base)
    try:
        written = CODEC.encode_for_name(topic, mutated)
    except EncodeError:
        return
    decoded = CODEC.decode_for_name(topic, written)
    expected = dict(envelope_record(mutated)) if entry.stem == "dlq_envelope" else mutated
    assert decoded == with_defaults(entry, _lists(expected))


def _lists(value: Any) -> Any:
    """Tuples are accepted for arrays and come back as lists."""
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(item) for item in value]
    return value
