"""Kafka record keys: which record goes to which partition.

Everything about one endpoint shares a partition, so the engine owns an
endpoint's state in one place:

- events, endpoints, segment-membership, activity: the endpoint id;
- send.*: the endpoint id, or the address for sends to raw addresses;
- deliveries: the endpoint id, or the message id when there is none;
- control (compacted): ``<entity_type>/<app_id>/<entity_id>``, app id empty
  for entities outside an app (templates), so compaction keeps the latest
  state of each entity;
- ``<topic>.dlq``: the original record's key, unchanged.

Keys are UTF-8 strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestar.contracts.errors import EncodeError
from lodestar.contracts.registry import TOPIC_SCHEMAS
from lodestar.core.topics import SEND_TOPICS, Topic


def endpoint_key(endpoint_id: str) -> bytes:
    """Key of a record about ``endpoint_id``."""
    return endpoint_id.encode()


def control_key(entity_type: str, app_id: str | None, entity_id: str) -> bytes:
    """Key of a control-topic record, e.g. ``b"SEGMENT/<app id>/<segment id>"``."""
    return f"{entity_type}/{app_id or ''}/{entity_id}".encode()


def record_key(topic: Topic, record: Mapping[str, Any]) -> bytes:
    """The key of ``record`` on ``topic``; ``EncodeError`` if the fields it needs are missing."""
    if topic is Topic.CONTROL:
        return control_key(
            str(_field(topic, record, "entity_type")),
            record.get("app_id"),
            _field(topic, record, "entity_id"),
        )
    if topic in SEND_TOPICS:
        return (record.get("endpoint_id") or _field(topic, record, "address")).encode()
    if topic is Topic.DELIVERIES:
        return (record.get("endpoint_id") or _field(topic, record, "message_id")).encode()
    if topic is Topic.USER_INDEX:
        return f"{_field(topic, record, 'app_id')}/{_field(topic, record, 'user_id')}".encode()
    return endpoint_key(_field(topic, record, "endpoint_id"))


def _field(topic: Topic, record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        stem = TOPIC_SCHEMAS[topic]
        raise EncodeError(
            f"{stem}: field {name!r}: needed for the key of topic {topic.value}, got {value!r}",
            schema=stem,
            path=name,
        )
    return value
