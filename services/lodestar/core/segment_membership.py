"""Incremental segment membership of one endpoint: the pure evaluator the engine calls.

- ``build_catalog(definitions)`` compiles ``{segment id: (version, SegmentDefinition)}``
  into an immutable ``SegmentCatalog``: the compiled segments, an index from
  input name (``Attributes.plan``, ``Events.buy``, ``LastActive`` …) to the
  segments that read it, and a dependency order in which every
  segment-of-segments comes after its sources (a cycle raises
  ``SegmentCycleError``). A source id missing from the catalog is never a member.
- ``EndpointMemberships`` is what the engine stores per endpoint: the segments
  the endpoint is in (id → version it was last evaluated at) and, per segment
  with a time-dependent condition, the next time it is due for a re-check
  (``CompiledSegment.next_flip_ms``). ``next_due_ms`` is the key for the
  per-partition due-time index.
- ``reevaluate(catalog, memberships, state, changed, now_ms)`` after a profile
  change: only the segments reading one of ``changed`` (a ``ProfileChange``'s
  ``changed_fields + behaviour_changed``), plus, transitively and in dependency
  order, the segments whose source segments changed membership in this call.
  ``memberships=None`` means never evaluated (a created endpoint): every
  segment is evaluated. ``state=None`` (deleted endpoint) exits everything.
- ``due(...)`` re-checks the segments whose due time is ``<= now_ms`` (cause TIME);
  ``backfill(...)`` evaluates the given segments from scratch (a new or updated
  segment; ids no longer in the catalog are exited, cause REMOVED).
- ``full_recompute(catalog, state, now_ms)`` is the reference evaluation.

Every call returns the new ``EndpointMemberships`` and the ``MembershipChange``
list (ENTER/EXIT, in evaluation order); replaying the changes from empty gives
the membership.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, NamedTuple

from lodestar.core.behaviour_counters import BehaviourCounters, window_counts
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_definition import CountOperator, SegmentDefinition
from lodestar.core.segment_predicate import (
    SEGMENT_PREFIX,
    CompiledSegment,
    compile_segment,
    window_buckets,
)

EVENTS_PREFIX = "Events."

CAUSE_TIME = "TIME"
CAUSE_DELETED = "DELETED"
CAUSE_CREATED = "CREATED"
CAUSE_BACKFILL = "BACKFILL"
CAUSE_REMOVED = "REMOVED"


class SegmentCycleError(ValueError):
    """Segments that (transitively) use themselves as a source; ``segment_ids`` names them."""

    def __init__(self, segment_ids: Iterable[str]) -> None:
        self.segment_ids = tuple(sorted(segment_ids))
        super().__init__(
            "segments form a cycle through SourceSegments: " + ", ".join(self.segment_ids)
        )


class MembershipAction(StrEnum):
    ENTER = "ENTER"
    EXIT = "EXIT"


class MembershipChange(NamedTuple):
    """``cause``: the changed input names that triggered the evaluation (a source
    segment as ``Segment.<id>``), or TIME / DELETED / CREATED / BACKFILL / REMOVED.
    A named tuple: one is made per published change, and a tuple is made faster
    than a frozen dataclass."""

    segment_id: str
    version: int
    action: MembershipAction
    cause: tuple[str, ...]


@dataclass(frozen=True)
class CatalogEntry:
    segment_id: str
    version: int
    segment: CompiledSegment
    sources: frozenset[str]
    generic_inputs: frozenset[str] = frozenset()
    """Inputs this segment reads through a leaf that is not a ``Threshold``."""


GenericLeaf = tuple[int, Callable[[EndpointState, EndpointState, int], bool] | None,
                    frozenset[str]]
"""A leaf that is not a ``Threshold``: a number unique in its catalog, its stability
test (None: never stable; see ``CompiledSegment.unchanged_by``) and the segments
holding it."""

Row = tuple[str, int, Callable[[EndpointState, int, Mapping[str, object]], bool],
            Callable[[EndpointState, int], int | None] | None,
            Callable[[EndpointState, int, Mapping[str, object]], tuple[bool, int | None]] | None,
            tuple[int, ...]]
"""A segment as ``_run`` evaluates it: id, version, ``match``, ``flip`` (None when
not timed), ``evaluate`` (both in one call, when the segment offers it; else None)
and the positions of its dependents."""


@dataclass(frozen=True)
class ThresholdGroup:
    """The ``Threshold`` leaves on one (counter, window), by count: ascending
    ``(count, segment id)`` pairs for AT_LEAST, AT_MOST and EXACTLY."""

    at_least: tuple[tuple[int, str], ...]
    at_most: tuple[tuple[int, str], ...]
    exactly: tuple[tuple[int, str], ...] = ()
    _columns: tuple[tuple[int, ...], tuple[str, ...], tuple[int, ...], tuple[str, ...]] = (
        field(init=False, repr=False, compare=False))
    """The counts and the ids of ``at_least`` and of ``at_most``, apart (for slicing)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_columns", (
            tuple(n for n, _ in self.at_least), tuple(sid for _, sid in self.at_least),
            tuple(n for n, _ in self.at_most), tuple(sid for _, sid in self.at_most)))

    def crossed(
        self, old: int, new: int,
        falls_old: Callable[[], Container[int] | None] = lambda: None,
        falls_new: Callable[[], Container[int] | None] = lambda: None,
    ) -> set[str]:
        """Segments with a leaf whose answer differs between the counts ``old`` and
        ``new``, or whose next flip may come earlier than the stored due time.

        ``falls_old()`` / ``falls_new()`` (asked only when needed): the counts each one
        passes through as its buckets leave the window (``_reached``; None: unknown).
        An EXACTLY leaf whose target is neither count is false for both; it flips later
        only when the count falls to its target. It is skipped when the new count never
        does, or when events were only added (``new > old``: the new count is at least
        the old one at every later instant, so it falls to the target no earlier) and
        the old count did — the stored due time is no later than the old flip. Every
        count falls to 0 in the end."""
        hits: set[str] = set()
        self.cross_into(hits, old, new, falls_old, falls_new)
        return hits

    def cross_into(
        self, hits: set[str], old: int, new: int,
        falls_old: Callable[[], Container[int] | None] = lambda: None,
        falls_new: Callable[[], Container[int] | None] = lambda: None,
    ) -> None:
        """``crossed``, added to ``hits``."""
        low, high = (old, new) if old < new else (new, old)
        least_counts, least_ids, most_counts, most_ids = self._columns
        # AT_LEAST n differs iff low < n <= high; AT_MOST n differs iff low <= n < high
        if least_ids:
            hits.update(least_ids[bisect_right(least_counts, low):
                                  bisect_right(least_counts, high)])
        if most_ids:
            hits.update(most_ids[bisect_left(most_counts, low):bisect_left(most_counts, high)])
        after: Container[int] | None = None
        before: Container[int] | None = None
        asked_after = asked_before = False
        for n, sid in self.exactly:
            if n > high:
                break
            if n != old and n != new:
                if n == 0 and new > old:
                    continue  # both fall to 0; the new one no earlier
                if not asked_after:
                    after, asked_after = falls_new(), True
                if after is not None and n not in after:
                    continue
                if n < old and new > old:
                    if not asked_before:
                        before, asked_before = falls_old(), True
                    if before is not None and n in before:
                        continue
            hits.add(sid)


@dataclass(frozen=True)
class SegmentCatalog:
    entries: Mapping[str, CatalogEntry]
    by_input: Mapping[str, frozenset[str]]
    dependents: Mapping[str, frozenset[str]]
    order: tuple[str, ...]
    position: Mapping[str, int]

    thresholds: Mapping[str, Mapping[tuple[str, int], ThresholdGroup]] = field(
        default_factory=dict)
    """Input name (``Events.<counter>``) → (counter, window) → its threshold leaves."""
    generic_by_input: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Input name → the segments reading it through a leaf that is not a ``Threshold``."""
    threshold_windows: Mapping[str, tuple[str, tuple[int, ...], tuple[ThresholdGroup, ...]]] = (
        field(default_factory=dict))
    """``thresholds`` as (counter, windows, their groups in the same order)."""
    generic_leaves: Mapping[str, tuple[GenericLeaf, ...]] = field(default_factory=dict)
    """Input name → the distinct leaves reading it that are not a ``Threshold``, each
    once however many segments hold it (``GenericLeaf``)."""
    rows: tuple[Row, ...] = ()
    """Per position in ``order``: what ``_run`` needs of that segment (``Row``)."""
    inputs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Segment id → its compiled segment's ``inputs``."""

    def affected(self, changed: Iterable[str]) -> frozenset[str]:
        """The segments reading any of ``changed`` directly (not via sources)."""
        return frozenset(s for name in changed for s in self.by_input.get(name, ()))

    def crossed(
        self, before: EndpointState, after: EndpointState, changed: Iterable[str], now_ms: int
    ) -> set[str]:
        """Segments with a threshold leaf on ``changed`` that answers differently for the
        two states at ``now_ms`` (two counts per (counter, window), then a bisection)."""
        hits: set[str] = set()
        by_counter = self.threshold_windows
        for name in changed:
            held = by_counter.get(name)
            if held is None:
                continue
            counter, windows, groups = held
            olds = window_counts(before.counters, counter, windows, now_ms)
            news = window_counts(after.counters, counter, windows, now_ms)
            if olds == news:
                continue
            for old, new, window, group in zip(olds, news, windows, groups, strict=True):
                if old == new:
                    continue
                if not group.exactly:  # ``cross_into`` without EXACTLY leaves, in place
                    low, high = (old, new) if old < new else (new, old)
                    least_counts, least_ids, most_counts, most_ids = group._columns
                    if least_ids:
                        hits.update(least_ids[bisect_right(least_counts, low):
                                              bisect_right(least_counts, high)])
                    if most_ids:
                        hits.update(most_ids[bisect_left(most_counts, low):
                                             bisect_left(most_counts, high)])
                    continue
                group.cross_into(
                    hits, old, new,
                    partial(_reached, before.counters, counter, window, now_ms, old),
                    partial(_reached, after.counters, counter, window, now_ms, new))
        return hits


def _reached(
    counters: BehaviourCounters, counter: str, window: int, now_ms: int, count: int
) -> frozenset[int] | None:
    """The counts the count of ``counter`` in ``window`` passes through as its buckets
    leave (``falling_counts``, read as ``window_buckets``), from ``count`` down to 0;
    None (unknown) when the window has no fixed resolution or its count is not
    ``count``."""
    falling = window_buckets(counters, counter, window, now_ms)
    if falling is None or falling[0] != count:
        return None
    out = {count}
    for _, k in falling[1]:
        count -= k
        out.add(count)
    return frozenset(out)


def build_catalog(
    definitions: Mapping[str, tuple[int, SegmentDefinition]],
    previous: SegmentCatalog | None = None,
) -> SegmentCatalog:
    """Compile ``definitions``; segments unchanged since ``previous`` are not recompiled."""
    entries: dict[str, CatalogEntry] = {}
    by_input: dict[str, set[str]] = {}
    for sid, (version, definition) in definitions.items():
        held = previous.entries.get(sid) if previous is not None else None
        if held is not None and held.version == version and (
            held.segment.definition is definition
        ):
            compiled = held.segment
        else:
            compiled = compile_segment(definition)
        sources = frozenset(
            name[len(SEGMENT_PREFIX):] for name in compiled.inputs
            if name.startswith(SEGMENT_PREFIX)
        )
        entries[sid] = CatalogEntry(sid, version, compiled, sources, compiled.generic_inputs)
        for name in compiled.inputs:
            if not name.startswith(SEGMENT_PREFIX):
                by_input.setdefault(name, set()).add(sid)
    dependents: dict[str, set[str]] = {sid: set() for sid in entries}
    waiting: dict[str, int] = {}
    for sid, entry in entries.items():
        known = [s for s in entry.sources if s in entries]
        waiting[sid] = len(known)
        for source in known:
            dependents[source].add(sid)
    ready = sorted(sid for sid, n in waiting.items() if n == 0)
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        sid = heapq.heappop(ready)
        order.append(sid)
        for dep in dependents[sid]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                heapq.heappush(ready, dep)
    if len(order) != len(entries):
        raise SegmentCycleError(sid for sid, n in waiting.items() if n > 0)
    position = {sid: i for i, sid in enumerate(order)}
    thresholds = _threshold_index(entries.values())
    rows = tuple(
        (sid, entries[sid].version, entries[sid].segment.match,
         entries[sid].segment.flip if entries[sid].segment.timed else None,
         entries[sid].segment.evaluate,
         tuple(sorted(position[d] for d in dependents[sid])))
        for sid in order
    )
    return SegmentCatalog(
        entries=entries,
        by_input={k: frozenset(v) for k, v in by_input.items()},
        dependents={k: frozenset(v) for k, v in dependents.items() if v},
        order=tuple(order),
        position=position,
        thresholds=thresholds,
        threshold_windows={
            name: (name[len(EVENTS_PREFIX):], tuple(w for _, w in groups),
                   tuple(groups.values()))
            for name, groups in thresholds.items()},
        generic_by_input=_generic_index(entries.values()),
        generic_leaves=_generic_leaves(entries.values()),
        rows=rows,
        inputs={sid: entry.segment.inputs for sid, entry in entries.items()},
    )


def _generic_leaves(entries: Iterable[CatalogEntry]) -> dict[str, tuple[GenericLeaf, ...]]:
    held: dict[int, tuple[frozenset[str], Any, set[str]]] = {}
    for entry in entries:  # the leaves are alive (held by the entries): ids are unique
        for leaf, inputs, stable in entry.segment.generic_checks:
            known = held.get(id(leaf))
            if known is None:
                held[id(leaf)] = (inputs, stable, {entry.segment_id})
            else:
                known[2].add(entry.segment_id)
    work: dict[str, list[GenericLeaf]] = {}
    for number, (inputs, stable, sids) in enumerate(held.values()):
        for name in inputs:
            work.setdefault(name, []).append((number, stable, frozenset(sids)))
    return {name: tuple(leaves) for name, leaves in work.items()}


def _generic_index(entries: Iterable[CatalogEntry]) -> dict[str, frozenset[str]]:
    work: dict[str, set[str]] = {}
    for entry in entries:
        for name in entry.generic_inputs:
            work.setdefault(name, set()).add(entry.segment_id)
    return {name: frozenset(sids) for name, sids in work.items()}


def _threshold_index(
    entries: Iterable[CatalogEntry],
) -> dict[str, dict[tuple[str, int], ThresholdGroup]]:
    slot = {CountOperator.AT_LEAST: 0, CountOperator.AT_MOST: 1, CountOperator.EXACTLY: 2}
    work: dict[tuple[str, int], tuple[list[tuple[int, str]], ...]] = {}
    for entry in entries:
        for t in entry.segment.thresholds:
            lists = work.setdefault((t.counter, t.window_ms), ([], [], []))
            lists[slot[t.operator]].append((t.count, entry.segment_id))
    index: dict[str, dict[tuple[str, int], ThresholdGroup]] = {}
    for (counter, window), (at_least, at_most, exactly) in work.items():
        index.setdefault(EVENTS_PREFIX + counter, {})[(counter, window)] = ThresholdGroup(
            tuple(sorted(at_least)), tuple(sorted(at_most)), tuple(sorted(exactly)))
    return index


@dataclass(frozen=True)
class EndpointMemberships:
    """``segments``: id → version of the segments the endpoint is in; ``due``: id →
    epoch ms at which that segment must be re-checked (``due``).

    Stored form (``to_dict``), grouped so that it is small and decodes in a few C
    calls: ``{"in": {"<version>": "<id> <id> …"}, "at": {"<due ms>": "<id> …"}}``
    (ids joined by single spaces). ``from_dict`` also reads the first form,
    ``{"segments": {id: version}, "due": {id: due ms}}``, which ``to_dict`` still
    writes when an id contains a space."""

    segments: Mapping[str, int] = field(default_factory=dict)
    due: Mapping[str, int] = field(default_factory=dict)
    _stored: dict[str, Any] | None = field(
        default=None, repr=False, compare=False, hash=False)
    """The stored form this value was read from or last written as (never mutated)."""

    @property
    def segment_ids(self) -> frozenset[str]:
        return frozenset(self.segments)

    @property
    def next_due_ms(self) -> int | None:
        return min(self.due.values(), default=None)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (see the class docstring); callers must not mutate it."""
        if self._stored is None:
            stored = _grouped(self.segments, "in", _grouped(self.due, "at", {}))
            if stored is None:
                stored = {"segments": dict(self.segments), "due": dict(self.due)}
            object.__setattr__(self, "_stored", stored)
        assert self._stored is not None
        return self._stored

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointMemberships:
        """Either stored form (see the class docstring)."""
        held = dict(data)
        if "in" in data or "at" in data:
            return cls(_ungrouped(data.get("in")), _ungrouped(data.get("at")), held)
        return cls(  # the first form: written again in the grouped one
            segments={str(k): int(v) for k, v in dict(data.get("segments") or {}).items()},
            due={str(k): int(v) for k, v in dict(data.get("due") or {}).items()},
        )

    @staticmethod
    def next_due_of(data: Mapping[str, Any] | None) -> int | None:
        """``next_due_ms`` of a stored form, without decoding it."""
        if not data:
            return None
        if "at" in data:
            return min(map(int, data["at"]), default=None)
        return min((int(v) for v in (data.get("due") or {}).values()), default=None)


def _grouped(
    values: Mapping[str, int], name: str, into: dict[str, Any] | None
) -> dict[str, Any] | None:
    """``into`` plus ``name``: the ids of ``values`` grouped by value and joined by spaces;
    None when ``into`` is None or an id holds a space (not representable)."""
    if into is None:
        return None
    distinct = set(values.values())
    if len(distinct) <= 1:  # one group (every version alike is the rule): no sorting
        joined = {str(value): " ".join(values) for value in distinct}
    else:  # by ascending value, the ids of a group in their order
        groups: dict[int, list[str]] = {}
        for sid, value in values.items():
            group = groups.get(value)
            if group is None:
                groups[value] = [sid]
            else:
                group.append(sid)
        joined = {str(value): " ".join(groups[value]) for value in sorted(groups)}
    if sum(text.count(" ") for text in joined.values()) != len(values) - len(joined):
        return None
    into[name] = joined
    return into



def _ungrouped(groups: Mapping[str, str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for value, ids in (groups or {}).items():
        if " " in ids:
            out.update(dict.fromkeys(ids.split(" "), int(value)))
        else:  # one id (most due times are one segment's)
            out[ids] = int(value)
    return out


EMPTY = EndpointMemberships()
Outcome = tuple[EndpointMemberships, list[MembershipChange]]


def full_recompute(
    catalog: SegmentCatalog, state: EndpointState | None, now_ms: int
) -> frozenset[str]:
    """The segment ids ``state`` is in at ``now_ms``, evaluated from scratch."""
    if state is None:
        return frozenset()
    member: dict[str, bool] = {}
    for sid in catalog.order:
        if catalog.entries[sid].segment.matches(state, now_ms, member):
            member[sid] = True
    return frozenset(member)


def reevaluate(
    catalog: SegmentCatalog,
    memberships: EndpointMemberships | None,
    state: EndpointState | None,
    changed: Iterable[str],
    now_ms: int,
    previous: EndpointState | None = None,
) -> Outcome:
    """After a profile change; see the module docstring. With ``previous`` (the state
    before the change), an affected segment whose changed leaves are stable (no
    threshold crossed; ``CompiledSegment.unchanged_by``) keeps its stored
    membership and due time."""
    names = frozenset(changed)
    if state is None:
        return _exit_all(catalog, memberships or EMPTY)
    causes: dict[frozenset[str], tuple[str, ...]] = {}  # by the segment's inputs
    inputs_of = catalog.inputs

    def cause_of(sid: str) -> tuple[str, ...]:
        inputs = inputs_of[sid]
        cause = causes.get(inputs)
        if cause is None:
            cause = causes[inputs] = tuple(sorted(names & inputs)) or (CAUSE_CREATED,)
        return cause

    if memberships is None:
        return _run(catalog, EMPTY, state, now_ms, catalog.order, cause_of)
    if previous is None:
        return _run(catalog, memberships, state, now_ms, catalog.affected(names), cause_of)
    # Only segments with a crossed threshold, or a leaf off the threshold index whose
    # change is not stable, can change: the others keep membership and due time. One
    # whose due time has passed, or that was evaluated at an older version, is left to
    # the TICK re-check or the backfill that is on its way.
    # A leaf is tested once for all the segments holding it (equal conditions compile
    # to one leaf); a segment is evaluated when one of its leaves on a changed input
    # is not stable — what ``CompiledSegment.unchanged_by`` tests segment by segment.
    seeds = catalog.crossed(previous, state, names, now_ms)
    generic = catalog.generic_leaves
    tested: set[int] = set()
    for name in names:
        for number, stable, sids in generic.get(name, ()):
            if number in tested:
                continue
            tested.add(number)
            if stable is None or not stable(previous, state, now_ms):
                seeds |= sids
    return _run(catalog, memberships, state, now_ms, seeds, cause_of)


def blank_memberships(
    catalog: SegmentCatalog, blank: EndpointState, now_ms: int
) -> EndpointMemberships:
    """The membership of ``blank`` (an endpoint with nothing set) at ``now_ms``: the
    baseline ``created`` starts from, computed once for all endpoints created at once."""
    return _run(catalog, EMPTY, blank, now_ms, catalog.order, lambda sid: (CAUSE_CREATED,))[0]


def created(
    catalog: SegmentCatalog,
    state: EndpointState,
    changed: Iterable[str],
    now_ms: int,
    blank: EndpointState,
    baseline: EndpointMemberships,
) -> Outcome:
    """A new endpoint (``changed``: everything its first changes set, compared with
    ``blank``, which has its CreationDate): start from ``baseline``
    (``blank_memberships(catalog, blank, now_ms)``) and evaluate only the segments the
    difference can affect (``reevaluate`` with ``previous=blank``). Every segment it
    is in is an ENTER, in dependency order. Equal to evaluating every segment."""
    memberships, changes = reevaluate(catalog, baseline, state, changed, now_ms, blank)
    caused = {c.segment_id: c.cause for c in changes if c.action is MembershipAction.ENTER}
    position = catalog.position
    held = memberships.segments
    enters = [
        MembershipChange(sid, held[sid], MembershipAction.ENTER,
                         caused.get(sid, (CAUSE_CREATED,)))
        for sid in sorted([sid for sid in held if sid in position], key=position.__getitem__)
    ]
    return memberships, enters


def due(
    catalog: SegmentCatalog,
    memberships: EndpointMemberships,
    state: EndpointState | None,
    now_ms: int,
) -> Outcome:
    """Re-check the segments due at or before ``now_ms`` (cause TIME)."""
    if state is None:
        return _exit_all(catalog, memberships)
    seeds = [sid for sid, t in memberships.due.items() if t <= now_ms and sid in catalog.entries]
    stale = {sid: t for sid, t in memberships.due.items() if sid not in catalog.entries}
    if stale:
        memberships = EndpointMemberships(
            memberships.segments, {k: v for k, v in memberships.due.items() if k not in stale}
        )
    return _run(catalog, memberships, state, now_ms, seeds, lambda sid: (CAUSE_TIME,))


def backfill(
    catalog: SegmentCatalog,
    memberships: EndpointMemberships | None,
    state: EndpointState | None,
    now_ms: int,
    segment_ids: Iterable[str],
) -> Outcome:
    """Evaluate ``segment_ids`` from scratch (cause BACKFILL), then their dependents
    whose sources changed; an id not in the catalog is exited (cause REMOVED)."""
    current = memberships or EMPTY
    ids = set(segment_ids)
    changes: list[MembershipChange] = []
    removed = {sid for sid in ids if sid not in catalog.entries}
    if removed:
        segments = dict(current.segments)
        for sid in sorted(removed):
            if sid in segments:
                changes.append(MembershipChange(
                    sid, segments.pop(sid), MembershipAction.EXIT, (CAUSE_REMOVED,)))
        current = EndpointMemberships(
            segments, {k: v for k, v in current.due.items() if k not in removed}
        )
    if state is None:
        result, more = _exit_all(catalog, current)
        return result, changes + more
    result, more = _run(catalog, current, state, now_ms, ids - removed,
                        lambda sid: (CAUSE_BACKFILL,))
    return result, changes + more


def _exit_all(catalog: SegmentCatalog, memberships: EndpointMemberships) -> Outcome:
    def key(sid: str) -> tuple[int, str]:
        return (-catalog.position.get(sid, -1), sid)

    changes = [
        MembershipChange(sid, version, MembershipAction.EXIT, (CAUSE_DELETED,))
        for sid, version in sorted(memberships.segments.items(), key=lambda kv: key(kv[0]))
    ]
    return EMPTY, changes


def _run(
    catalog: SegmentCatalog,
    memberships: EndpointMemberships,
    state: EndpointState,
    now_ms: int,
    seeds: Iterable[str],
    cause_of: Callable[[str], tuple[str, ...]],
) -> Outcome:
    """Evaluate ``seeds`` in dependency order, following membership changes to
    dependents; ``cause_of(id)`` names a seed's cause (asked only when it changes)."""
    position = catalog.position
    queue = sorted([position[sid] for sid in seeds])  # a sorted list is a heap
    if not queue:
        return memberships, []
    rows = catalog.rows
    segments = dict(memberships.segments)  # also the source memberships (versions ≥ 1)
    due_at = dict(memberships.due)
    via: dict[int, set[str]] = {}  # dependents queued because a source changed
    changes: list[MembershipChange] = []
    pop, push = heapq.heappop, heapq.heappush
    enter, leave = MembershipAction.ENTER, MembershipAction.EXIT
    while queue:
        at = pop(queue)
        sid, version, match, flip, evaluate, dependents = rows[at]
        if evaluate is not None:
            inside, when = evaluate(state, now_ms, segments)
        else:
            inside = match(state, now_ms, segments)
            when = None if flip is None else flip(state, now_ms)
        if when is None:
            due_at.pop(sid, None)
        else:
            due_at[sid] = when
        was = sid in segments
        if inside:
            if was:
                segments[sid] = version
                continue
            segments[sid] = version
        elif was:
            del segments[sid]
        else:
            continue
        cause = tuple(sorted(via[at])) if at in via else cause_of(sid)
        changes.append(MembershipChange(sid, version, enter if inside else leave, cause))
        for dep in dependents:
            if dep not in via:
                via[dep] = set()
                push(queue, dep)
            via[dep].add(SEGMENT_PREFIX + sid)
    if not changes and due_at == memberships.due and segments == memberships.segments:
        return memberships, changes  # as stored: no new stored form to build
    return EndpointMemberships(segments, due_at), changes
