"""The Avro schemas of Lodestar's topics, loaded from ``schemas/*.avsc``.

Contracts:

- Each ``<stem>.avsc`` is one self-contained schema (named types it shares
  with another file are repeated there; a test keeps the copies identical).
- ``schemas/history/<stem>/*.avsc`` may hold earlier versions of ``<stem>``:
  bytes written with them still decode, resolved into the current schema.
- The directory is the package data ``lodestar/contracts/schemas`` of a
  built wheel, else the repository's top-level ``schemas/`` (editable
  installs, tests).
- Nothing is read at import time: ``default_registry()`` loads once, on first
  use, and caches the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from fastavro import parse_schema
from fastavro.schema import to_parsing_canonical_form

from lodestar.contracts.wire import fingerprint64, header
from lodestar.core.topics import DLQ_SUFFIX, Topic

DEAD_LETTER_STEM: Final = "dlq_envelope"
DISCRIMINATOR_PROPERTY: Final = "lodestar.discriminator"

TOPIC_SCHEMAS: Final[Mapping[Topic, str]] = MappingProxyType(
    {
        Topic.EVENTS: "event",
        Topic.ENDPOINT_COMMANDS: "endpoint_command",
        Topic.ENDPOINTS: "endpoint_change",
        Topic.USER_INDEX: "user_index_change",
        Topic.CONTROL: "control",
        Topic.SEGMENT_MEMBERSHIP: "segment_membership",
        Topic.ACTIVITY: "activity",
        Topic.SEND_EMAIL: "send_request",
        Topic.SEND_SMS: "send_request",
        Topic.SEND_PUSH: "send_request",
        Topic.SEND_VOICE: "send_request",
        Topic.SEND_CUSTOM: "send_request",
        Topic.DELIVERIES: "delivery",
    }
)
"""Schema file stem of every topic; every ``<topic>.dlq`` uses ``dlq_envelope``."""

SEND_CHANNELS: Final[Mapping[Topic, str]] = MappingProxyType(
    {
        Topic.SEND_EMAIL: "EMAIL",
        Topic.SEND_SMS: "SMS",
        Topic.SEND_PUSH: "PUSH",
        Topic.SEND_VOICE: "VOICE",
        Topic.SEND_CUSTOM: "CUSTOM",
    }
)
"""The ``channel`` a send request must carry on each send topic."""


class RegistryError(RuntimeError):
    """The schema directory is missing, unreadable or inconsistent."""


@dataclass(frozen=True, slots=True)
class Discriminator:
    """A top-level union field whose branch is chosen by another field's value.

    Declared in the .avsc as the field property ``lodestar.discriminator``:
    ``{"field": "channel", "branches": {"EMAIL": "lodestar.v1.EmailContent", …}}``.
    """

    field: str
    by: str
    branches: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class SchemaEntry:
    """One parsed schema and everything the codec needs to use it.

    ``parsed`` keeps logical types (for messages and documentation); ``wire``
    is the same schema with logical types removed, so timestamps cross the
    codec as epoch-millisecond ints; both have the same fingerprint.
    """

    stem: str
    full_name: str
    path: Path
    definition: Mapping[str, Any]
    parsed: dict[str, Any]
    wire: dict[str, Any]
    named: Mapping[str, Any]
    canonical_form: str
    fingerprint: bytes
    header: bytes
    discriminators: tuple[Discriminator, ...]


@dataclass(frozen=True, slots=True)
class WriterSchema:
    """A schema bytes may have been written with, and the current schema it resolves to.

    ``reader_wire`` is None when the writer schema is the current one (no
    resolution needed).
    """

    fingerprint: bytes
    entry: SchemaEntry
    wire: dict[str, Any]
    reader_wire: dict[str, Any] | None


class SchemaRegistry:
    """Every Lodestar schema by stem, by topic and by fingerprint."""

    def __init__(
        self,
        directory: Path,
        entries: Mapping[str, SchemaEntry],
        writers: Mapping[bytes, WriterSchema],
    ) -> None:
        missing = sorted({*TOPIC_SCHEMAS.values(), DEAD_LETTER_STEM} - entries.keys())
        if missing:
            raise RegistryError(f"{directory}: no schema file for {', '.join(missing)}")
        self.directory = directory
        self._entries = MappingProxyType(dict(entries))
        self._writers = MappingProxyType(dict(writers))

    def __iter__(self) -> Iterator[SchemaEntry]:
        return iter(self._entries.values())

    @property
    def entries(self) -> Mapping[str, SchemaEntry]:
        """Current schemas by file stem."""
        return self._entries

    @property
    def examples_directory(self) -> Path:
        """Where ``<stem>/*.json`` example records live."""
        return self.directory / "examples"

    def get(self, stem: str) -> SchemaEntry:
        """The schema of file ``<stem>.avsc``."""
        try:
            return self._entries[stem]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise KeyError(f"no schema {stem!r}; known: {known}") from None

    def for_topic(self, topic: Topic) -> SchemaEntry:
        """The schema of ``topic``'s values."""
        return self._entries[TOPIC_SCHEMAS[topic]]

    def for_topic_name(self, name: str) -> SchemaEntry:
        """The schema of a topic given by name: logical (``events``), physical
        (``lodestar.events``) or dead-letter (``lodestar.events.dlq``)."""
        topic, dead_letter = parse_topic_name(name)
        return self.dead_letter if dead_letter else self.for_topic(topic)

    @property
    def dead_letter(self) -> SchemaEntry:
        """The envelope schema of every ``<topic>.dlq``."""
        return self._entries[DEAD_LETTER_STEM]

    def writer(self, schema_fingerprint: bytes) -> WriterSchema | None:
        """The schema that wrote bytes carrying ``schema_fingerprint``, if known."""
        return self._writers.get(schema_fingerprint)


def parse_topic_name(name: str) -> tuple[Topic, bool]:
    """The ``Topic`` a logical or physical topic name refers to, and whether it is its DLQ.

    ``lodestar.send.email`` → ``(Topic.SEND_EMAIL, False)``;
    ``lodestar.events.dlq`` → ``(Topic.EVENTS, True)``. ``KeyError`` if neither.
    """
    base, dead_letter = name, False
    if name.endswith("." + DLQ_SUFFIX):
        base, dead_letter = name[: -len(DLQ_SUFFIX) - 1], True
    for topic in sorted(Topic, key=lambda t: len(t.value), reverse=True):
        if base == topic.value or base.endswith("." + topic.value):
            return topic, dead_letter
    raise KeyError(f"{name!r} is not a Lodestar topic")


def schemas_directory() -> Path:
    """The installed package data, else the repository's top-level ``schemas/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parents[2] / "schemas"):
        if candidate.is_dir():
            return candidate
    raise RegistryError(f"no schemas directory next to {here} or at the repository root")


def load_registry(directory: Path | None = None) -> SchemaRegistry:
    """Read and parse every schema under ``directory`` (default ``schemas_directory()``)."""
    root = directory if directory is not None else schemas_directory()
    paths = sorted(root.glob("*.avsc"))
    if not paths:
        raise RegistryError(f"{root}: no .avsc files")
    entries = {path.stem: _load_entry(path) for path in paths}
    writers = {
        e.fingerprint: WriterSchema(e.fingerprint, e, e.wire, None) for e in entries.values()
    }
    for path in sorted(root.glob("history/*/*.avsc")):
        current = entries.get(path.parent.name)
        if current is None:
            raise RegistryError(f"{path}: history of unknown schema {path.parent.name!r}")
        old = _load_entry(path)
        if old.full_name != current.full_name:
            raise RegistryError(f"{path}: names {old.full_name}, expected {current.full_name}")
        resolved = WriterSchema(old.fingerprint, current, old.wire, current.wire)
        writers.setdefault(old.fingerprint, resolved)
    return SchemaRegistry(root, entries, writers)


@cache
def default_registry() -> SchemaRegistry:
    """The registry of the installed schemas, loaded on first call and cached."""
    return load_registry()


def _load_entry(path: Path) -> SchemaEntry:
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
        named: dict[str, Any] = {}
        parsed = parse_schema(definition, named)
        wire = parse_schema(_without_logical_types(definition), {})
    except Exception as exc:  # unreadable file, bad JSON, or any fastavro parse error
        raise RegistryError(f"{path}: {exc}") from exc
    if not isinstance(parsed, dict) or parsed.get("type") != "record" or not isinstance(wire, dict):
        raise RegistryError(f"{path}: a topic schema must be a record")
    canonical = to_parsing_canonical_form(parsed)
    if to_parsing_canonical_form(wire) != canonical:
        raise RegistryError(f"{path}: removing logical types changed the canonical form")
    fp = fingerprint64(canonical)
    return SchemaEntry(
        stem=path.stem,
        full_name=str(parsed["name"]),
        path=path,
        definition=MappingProxyType(definition),
        parsed=parsed,
        wire=wire,
        named=MappingProxyType(named),
        canonical_form=canonical,
        fingerprint=fp,
        header=header(fp),
        discriminators=_discriminators(path, parsed),
    )


def _without_logical_types(schema: Any) -> Any:
    """A copy of schema JSON where ``{"type": "long", "logicalType": …}`` is just ``"long"``."""
    if isinstance(schema, list):
        return [_without_logical_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "logicalType" in schema and isinstance(schema.get("type"), str):
        stripped = {k: v for k, v in schema.items() if k != "logicalType"}
        return schema["type"] if set(stripped) == {"type"} else stripped
    return {key: _without_logical_types(value) for key, value in schema.items()}


def _discriminators(path: Path, parsed: Mapping[str, Any]) -> tuple[Discriminator, ...]:
    found: list[Discriminator] = []
    field_names = {f["name"] for f in parsed["fields"]}
    for field in parsed["fields"]:
        spec = field.get(DISCRIMINATOR_PROPERTY)
        if spec is None:
            continue
        by, branches = spec.get("field"), spec.get("branches")
        union = field["type"]
        names: set[str] = set()
        if isinstance(union, list):
            names = {b["name"] if isinstance(b, dict) else b for b in union}
        if (
            not names
            or by not in field_names
            or not isinstance(branches, dict)
            or not set(branches.values()) <= names
        ):
            raise RegistryError(f"{path}: field {field['name']!r}: bad {DISCRIMINATOR_PROPERTY}")
        found.append(Discriminator(field["name"], by, MappingProxyType(dict(branches))))
    return tuple(found)
