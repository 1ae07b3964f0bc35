"""Segment definitions as the engine learns them from ``lodestar.control``, and the
``lodestar.v1.SegmentMembershipChange`` records it publishes.

- ``segment_from_control(record)`` reads a ControlChange of entity type SEGMENT:
  a ``SegmentUpdate`` (app, id, version, definition — ``None`` when deleted).
  The definition is the SegmentResponse JSON the API published; an IMPORT
  segment becomes ``imported_segment(id)``. Raises ``SegmentDefinitionError``
  when the definition does not parse.
- ``AppSegments`` is one application's segments: the definitions, the compiled
  ``SegmentCatalog`` and the attribute-filtered Performed conditions whose
  derived counter types the engine must record. ``apply_update`` gives the
  next ``AppSegments`` and which segment ids changed; an update older than the
  version held changes nothing, and an update that would make a cycle through
  SourceSegments is refused (``SegmentCycleError``) and changes nothing.
- ``membership_record(...)`` builds the published record; ``cause_label`` maps
  an evaluation's cause to the schema's open set (event, endpoint, segment,
  import, time, deleted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lodestar.core.segment_definition import (
    PerformedCondition,
    SegmentDefinition,
    imported_segment,
    parse_segment,
)
from lodestar.core.segment_membership import (
    CAUSE_BACKFILL,
    CAUSE_CREATED,
    CAUSE_DELETED,
    CAUSE_REMOVED,
    CAUSE_TIME,
    MembershipChange,
    SegmentCatalog,
    build_catalog,
)
from lodestar.core.segment_predicate import IMPORTED_SEGMENTS, SEGMENT_PREFIX

SEGMENT_ENTITY = "SEGMENT"
IMPORT_TYPE = "IMPORT"
_BEHAVIOUR_NAMES = ("LastActive", "Sessions")
_EVENTS_PREFIX = "Events."


@dataclass(frozen=True)
class SegmentUpdate:
    app_id: str
    segment_id: str
    version: int
    definition: SegmentDefinition | None


def segment_from_control(record: Mapping[str, Any]) -> SegmentUpdate:
    """The segment change in a SEGMENT ControlChange record (see the module docstring)."""
    if record["entity_type"] != SEGMENT_ENTITY:
        raise ValueError(f"not a segment change: {record['entity_type']}")
    app_id, segment_id = str(record["app_id"]), str(record["entity_id"])
    version = int(record["version"])
    if record["operation"] == "DELETE" or record.get("definition") is None:
        return SegmentUpdate(app_id, segment_id, version, None)
    body = json.loads(record["definition"])
    name = body.get("Name")
    if body.get("SegmentType") == IMPORT_TYPE:
        return SegmentUpdate(app_id, segment_id, version, imported_segment(segment_id, name))
    request = {k: body[k] for k in ("Name", "Dimensions", "SegmentGroups") if body.get(k)}
    return SegmentUpdate(app_id, segment_id, version, parse_segment(request))


@dataclass(frozen=True)
class AppSegments:
    """One application's segments: id → (version, definition), compiled."""

    definitions: Mapping[str, tuple[int, SegmentDefinition]] = field(default_factory=dict)
    catalog: SegmentCatalog = field(default_factory=lambda: build_catalog({}))
    filters: tuple[PerformedCondition, ...] = ()
    deleted: Mapping[str, int] = field(default_factory=dict)
    """Ids deleted, with the version of the deletion (so a late older upsert is ignored)."""

    def apply_update(self, update: SegmentUpdate) -> tuple[AppSegments, frozenset[str]]:
        """The next state and the changed segment ids (empty: nothing changed)."""
        held = self.definitions.get(update.segment_id)
        if update.definition is None:
            stale = held is not None and update.version < held[0]
        else:
            stale = (held is not None and update.version <= held[0]) or (
                update.segment_id in self.deleted
                and update.version <= self.deleted[update.segment_id]
            )
        if stale:
            return self, frozenset()
        definitions = dict(self.definitions)
        deleted = dict(self.deleted)
        if update.definition is None:
            if held is None:
                deleted[update.segment_id] = update.version
                return AppSegments(definitions, self.catalog, self.filters, deleted), frozenset()
            definitions.pop(update.segment_id)
            deleted[update.segment_id] = update.version
        else:
            definitions[update.segment_id] = (update.version, update.definition)
            deleted.pop(update.segment_id, None)
        catalog = build_catalog(definitions)  # raises SegmentCycleError: nothing changes
        filters = tuple(sorted(
            {c for entry in catalog.entries.values() for c in entry.segment.counter_types},
            key=lambda c: c.counter_type,
        ))
        return AppSegments(definitions, catalog, filters, deleted), frozenset({update.segment_id})


def cause_label(cause: Iterable[str], triggers: Iterable[str] = ()) -> str:
    """The record's ``cause`` for a ``MembershipChange.cause``; ``triggers`` are the
    fold's causes (``PUT_EVENTS`` …), used when only source segments changed."""
    names = set(cause)
    if CAUSE_TIME in names:
        return "time"
    if names & {CAUSE_DELETED, CAUSE_REMOVED}:
        return "deleted"
    if CAUSE_BACKFILL in names:
        return "segment"
    if IMPORTED_SEGMENTS in names:
        return "import"
    if any(n in _BEHAVIOUR_NAMES or n.startswith(_EVENTS_PREFIX) for n in names):
        return "event"
    if any(not n.startswith(SEGMENT_PREFIX) and n != CAUSE_CREATED for n in names):
        return "endpoint"
    kinds = set(triggers)
    if kinds == {"PUT_EVENTS"}:
        return "event"
    if kinds == {"IMPORT"}:
        return "import"
    return "endpoint"


def membership_record(
    app_id: str,
    endpoint_id: str,
    user_id: str | None,
    change: MembershipChange,
    now_ms: int,
    triggers: Iterable[str] = (),
    event_id: str | None = None,
) -> dict[str, Any]:
    """The ``lodestar.v1.SegmentMembershipChange`` record of ``change``."""
    label = cause_label(change.cause, triggers)
    return {
        "app_id": app_id,
        "segment_id": change.segment_id,
        "segment_version": change.version,
        "endpoint_id": endpoint_id,
        "user_id": user_id,
        "change": change.action.value,
        "cause": label,
        "event_id": event_id if label == "event" else None,
        "timestamp": now_ms,
    }
