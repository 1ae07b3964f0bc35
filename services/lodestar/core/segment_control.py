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
    MembershipAction,
    MembershipChange,
    SegmentCatalog,
    SegmentCycleError,
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
    imported: frozenset[str] = frozenset()
    """The ids of the imported (static) segments."""

    def apply_update(self, update: SegmentUpdate) -> tuple[AppSegments, frozenset[str]]:
        """The next state and the changed segment ids (empty: nothing changed); raises
        ``SegmentCycleError`` (and changes nothing) for an update that makes a cycle."""
        definitions, deleted = dict(self.definitions), dict(self.deleted)
        if not _merge(definitions, deleted, update):
            return self, frozenset()
        return self._rebuilt(definitions, deleted), frozenset({update.segment_id})

    def apply_updates(
        self, updates: Iterable[SegmentUpdate]
    ) -> tuple[AppSegments, frozenset[str], list[tuple[SegmentUpdate, SegmentCycleError]]]:
        """Many updates, compiled once (loading the control topic): the next state, the
        changed ids and the updates refused because they made a cycle."""
        items = list(updates)
        definitions, deleted = dict(self.definitions), dict(self.deleted)
        changed = {u.segment_id for u in items if _merge(definitions, deleted, u)}
        if not changed:
            return self, frozenset(), []
        try:
            return self._rebuilt(definitions, deleted), frozenset(changed), []
        except SegmentCycleError:
            pass
        current: AppSegments = self
        refused: list[tuple[SegmentUpdate, SegmentCycleError]] = []
        done: set[str] = set()
        for update in items:  # rare: find the culprits one by one
            try:
                current, one = current.apply_update(update)
                done |= one
            except SegmentCycleError as exc:
                refused.append((update, exc))
        return current, frozenset(done), refused

    def _rebuilt(
        self, definitions: dict[str, tuple[int, SegmentDefinition]], deleted: dict[str, int]
    ) -> AppSegments:
        catalog = build_catalog(definitions, self.catalog)  # raises SegmentCycleError
        filters = tuple(sorted(
            {c for entry in catalog.entries.values() for c in entry.segment.counter_types},
            key=lambda c: c.counter_type,
        ))
        imported = frozenset(sid for sid, (_, d) in definitions.items()
                             if d.import_id is not None)
        return AppSegments(definitions, catalog, filters, deleted, imported)


def _merge(
    definitions: dict[str, tuple[int, SegmentDefinition]],
    deleted: dict[str, int],
    update: SegmentUpdate,
) -> bool:
    """Apply ``update`` to the two maps in place unless it is stale; whether it applied."""
    held = definitions.get(update.segment_id)
    if update.definition is None:
        if held is not None and update.version < held[0]:
            return False
        deleted[update.segment_id] = max(update.version, deleted.get(update.segment_id, 0))
        return definitions.pop(update.segment_id, None) is not None
    if (held is not None and update.version <= held[0]) or (
        update.version <= deleted.get(update.segment_id, 0)
    ):
        return False
    definitions[update.segment_id] = (update.version, update.definition)
    return True


_LABELS: dict[tuple[str, ...], str | None] = {}
"""``cause_label`` by cause, None when it depends on the triggers (memoised: the
causes of one catalog's changes are few)."""


def cause_label(cause: Iterable[str], triggers: Iterable[str] = ()) -> str:
    """The record's ``cause`` for a ``MembershipChange.cause``; ``triggers`` are the
    fold's causes (``PUT_EVENTS`` …), used when only source segments changed."""
    key = cause if isinstance(cause, tuple) else tuple(cause)
    if key in _LABELS:
        label = _LABELS[key]
    else:
        if len(_LABELS) >= 4096:
            _LABELS.clear()
        label = _LABELS[key] = _label_of(set(key))
    if label is not None:
        return label
    kinds = set(triggers)
    if kinds == {"PUT_EVENTS"}:
        return "event"
    if kinds == {"IMPORT"}:
        return "import"
    return "endpoint"


def _label_of(names: set[str]) -> str | None:
    """``cause_label`` when the cause alone decides it, else None."""
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
    return None


def membership_record(
    app_id: str,
    endpoint_id: str,
    user_id: str | None,
    change: MembershipChange,
    now_ms: int,
    triggers: Iterable[str] = (),
    event_id: str | None = None,
    imported: bool = False,
) -> dict[str, Any]:
    """The ``lodestar.v1.SegmentMembershipChange`` record of ``change``; an ENTER of an
    imported segment is always caused by an import, even when the endpoint was added
    before the worker knew the segment and the backfill found it."""
    label = cause_label(change.cause, triggers)
    if imported and label == "segment" and change.action is MembershipAction.ENTER:
        label = "import"
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
