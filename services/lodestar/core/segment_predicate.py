"""A ``SegmentDefinition`` compiled once into a predicate over ``EndpointState``.

``compile_segment(definition)`` gives a ``CompiledSegment`` with

- ``matches(state, now_ms, memberships)``: whether the endpoint is in the
  segment at ``now_ms``; ``memberships`` maps source segment ids to current
  membership (absent: not a member);
- ``inputs``: the change names (``ProfileChange.changed_fields`` /
  ``behaviour_changed`` spellings, plus ``Segment.<id>`` for source segments)
  the answer depends on — a change naming none of them cannot change it;
- ``next_flip_ms(state, now_ms)``: the earliest time after ``now_ms`` at which
  the answer could change with no new input (``None``: never). It may be
  earlier than the real flip, never later; while a condition off the clock
  settles an ALL (false) or an ANY / NONE (true), it is ``None``;
- ``counter_types``: the ``PerformedCondition`` counter types that carry an
  attribute filter, which the engine must record (``derived_counter_types``).

Equal conditions compile to one shared leaf (``generic_checks`` exposes them),
so a catalog can test each distinct leaf once per change.

Semantics (Lodestar's reading where Pinpoint leaves it open):

- Attributes / UserAttributes: a missing key has no values. INCLUSIVE: some
  value is one of Values; EXCLUSIVE: no value is; CONTAINS: some value contains
  one of Values. BEFORE / AFTER / BETWEEN / ON read each endpoint value as an
  ISO-8601 instant (values that do not parse are ignored) and hold when some
  value is strictly before / strictly after / within (inclusive) / on the same
  UTC calendar date as one of the Values.
- Recency: ACTIVE when ``last_active_ms >= now - Duration``; INACTIVE otherwise
  (an endpoint never active is INACTIVE).
- Demographic: AppVersion, Make, Model, Platform compare the Demographic field
  exactly; Channel compares ChannelType; DeviceType compares ``device_type``
  (MOBILE for the push channels APNS*, GCM, ADM, BAIDU, PUSH; else none).
  INCLUSIVE needs the field set and in Values; EXCLUSIVE holds when it is not
  in Values (also when unset). Location.Country likewise.
- GPSPoint: great-circle (haversine) distance on a sphere of radius 6371.0088 km
  from the endpoint's Latitude/Longitude is at most RangeInKilometers; an
  endpoint without coordinates does not match.
- Metrics: a missing metric does not match.
- Performed: ``count_since(counters, counter_type, now - window, now)``
  compared with Count. NotPerformedSince: the type's last seen is absent or
  before Since. FirstSeen / LastSeen: first/last seen of the type (or the
  endpoint's CreationDate / LastActive) is before Before and after After;
  absent never matches.
- Groups: see ``segment_definition.SegmentGroup``; Include combines the groups.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from lodestar.core.behaviour_counters import (
    DAILY_BUCKETS,
    DAY_MS,
    HOUR_MS,
    HOURLY_BUCKETS,
    BehaviourCounters,
    TypeCounts,
    count_since,
    first_seen,
    last_seen,
    remember,
)
from lodestar.core.endpoint_request import ChannelType
from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_definition import (
    AttributeCondition,
    AttributeType,
    Combine,
    Comparison,
    Condition,
    CountOperator,
    Dimensions,
    GpsCondition,
    MetricCondition,
    NotPerformedSinceCondition,
    PerformedCondition,
    RecencyCondition,
    SeenCondition,
    SegmentDefinition,
    SegmentGroup,
    SetCondition,
    TimeRef,
)
from lodestar.core.timestamps import EPOCH, MILLISECOND

EARTH_RADIUS_KM = 6371.0088
IMPORTED_SEGMENTS = "ImportedSegments"
SEGMENT_PREFIX = "Segment."
PUSH_CHANNELS = frozenset({
    ChannelType.PUSH, ChannelType.GCM, ChannelType.APNS, ChannelType.APNS_SANDBOX,
    ChannelType.APNS_VOIP, ChannelType.APNS_VOIP_SANDBOX, ChannelType.ADM, ChannelType.BAIDU,
})

Memberships = Mapping[str, object]
"""Source segment id → a truthy value when the endpoint is a member (absent: not)."""
_Match = Callable[[EndpointState, int, Memberships], bool]
_Flip = Callable[[EndpointState, int], int | None]
_Stable = Callable[[EndpointState, EndpointState, int], bool]
_Evaluate = Callable[[EndpointState, int, Memberships], tuple[bool, int | None]]
"""``match`` and ``flip`` in one call: ``(matches, next flip)``."""


@dataclass(frozen=True)
class Threshold:
    """A Performed leaf at a fixed resolution: ``count_since(counter, now - window, now)``
    compared with ``count`` by ``operator``. When events raise that count from ``old``
    to ``new``, the leaf needs evaluating only if AT_LEAST / AT_MOST crossed ``count``
    or, for EXACTLY, ``count <= new`` (below it the count can only fall, never to it);
    an index finds those without evaluating the others."""

    counter: str
    window_ms: int
    operator: CountOperator
    count: int


@dataclass(frozen=True)
class _Node:
    match: _Match
    flip: _Flip
    inputs: frozenset[str]
    threshold: Threshold | None = None
    stable: _Stable | None = None
    """For a leaf on the clock: whether going from one state to another (that differ
    only in inputs it reads) keeps its answer now and brings its next change no
    earlier. None: never assumed. Leaves off the clock need only the same answer."""
    children: tuple[_Node, ...] = ()
    evaluate: _Evaluate | None = None
    """``(match, flip)`` in one call, when that is cheaper than two (``_combine``)."""

    @property
    def timed(self) -> bool:
        """Whether the answer can change with the clock alone (some leaf can flip)."""
        if self.children:
            return any(c.timed for c in self.children)
        return self.flip is not _no_flip

    @property
    def leaves(self) -> tuple[_Node, ...]:
        return tuple(x for c in self.children for x in c.leaves) if self.children else (self,)


@dataclass(frozen=True)
class CompiledSegment:
    definition: SegmentDefinition
    inputs: frozenset[str]
    counter_types: frozenset[PerformedCondition]
    _root: _Node
    _leaves: tuple[_Node, ...] = ()
    timed: bool = True
    """False when no condition depends on the clock: ``next_flip_ms`` is always None."""
    match: _Match = field(init=False, repr=False, compare=False)
    """``matches`` as a plain function (the root's), for hot loops."""
    flip: _Flip = field(init=False, repr=False, compare=False)
    """``next_flip_ms`` as a plain function (the root's), for hot loops."""
    evaluate: _Evaluate | None = field(init=False, repr=False, compare=False)
    """``(match(...), flip(...))`` in one call when the root offers it (it then skips
    work the two calls would repeat), else None."""

    _checks: tuple[tuple[frozenset[str], _Stable | None], ...] = field(
        init=False, repr=False, compare=False)
    """Per leaf: its inputs and its stability test (None: never stable)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "match", self._root.match)
        object.__setattr__(self, "flip", self._root.flip)
        object.__setattr__(self, "evaluate", self._root.evaluate if self.timed else None)
        object.__setattr__(self, "_checks", tuple(
            (leaf.inputs, leaf.stable if leaf.stable is not None else (
                None if leaf.flip is not _no_flip else _same_answer(leaf.match)))
            for leaf in self._leaves))

    @property
    def thresholds(self) -> tuple[Threshold, ...]:
        return tuple(x.threshold for x in self._leaves if x.threshold is not None)

    @property
    def generic_inputs(self) -> frozenset[str]:
        """Inputs read by a leaf that is not a ``Threshold``."""
        return frozenset(i for x in self._leaves if x.threshold is None for i in x.inputs)

    @property
    def generic_checks(self) -> tuple[tuple[object, frozenset[str], _Stable | None], ...]:
        """Per leaf that is not a ``Threshold``: the leaf (an identity: segments compiled
        from equal conditions share it), its inputs and its stability test (None: never
        stable; see ``unchanged_by``). A ``Threshold`` leaf's answer differs exactly when
        its count crosses its target (``SegmentCatalog.crossed``)."""
        return tuple((leaf, inputs, stable)
                     for leaf, (inputs, stable) in zip(self._leaves, self._checks, strict=True)
                     if leaf.threshold is None)

    def matches(self, state: EndpointState, now_ms: int, memberships: Memberships) -> bool:
        return self._root.match(state, now_ms, memberships)

    def unchanged_by(
        self, before: EndpointState, after: EndpointState, now_ms: int, changed: frozenset[str]
    ) -> bool:
        """True when going from ``before`` to ``after`` (which differ only in
        ``changed``) can neither change the answer at ``now_ms`` nor bring its next
        flip earlier: every leaf reading a changed input is stable (see ``_Node``).
        Then a stored membership and due time remain valid."""
        for inputs, stable in self._checks:
            if inputs.isdisjoint(changed):
                continue
            if stable is None or not stable(before, after, now_ms):
                return False
        return True

    def next_flip_ms(self, state: EndpointState, now_ms: int) -> int | None:
        return self._root.flip(state, now_ms)


def compile_segment(definition: SegmentDefinition) -> CompiledSegment:
    if definition.import_id is not None:
        root = _imported(definition.import_id)
        return CompiledSegment(definition, frozenset({IMPORTED_SEGMENTS}), frozenset(), root,
                               root.leaves, False)
    if definition.dimensions is not None:
        root = _dimensions(definition.dimensions)
        conditions = list(definition.dimensions.conditions)
    else:
        assert definition.segment_groups is not None
        groups = definition.segment_groups
        root = _combine(groups.include, [_group(g) for g in groups.groups])
        conditions = [c for g in groups.groups for d in g.dimensions for c in d.conditions]
    filtered = frozenset(
        c for c in conditions if isinstance(c, PerformedCondition) and c.attributes
    )
    return CompiledSegment(definition, root.inputs, filtered, root, root.leaves, root.timed)


def derived_counter_types(
    event_type: str, attributes: Mapping[str, str], filters: Iterable[PerformedCondition]
) -> list[str]:
    """The extra counter types an event of ``event_type`` with ``attributes`` counts under."""
    out: list[str] = []
    for counter, wanted in _filters_by_type(filters).get(event_type, ()):
        for k, v in wanted:
            if attributes.get(k) != v:
                break
        else:
            out.append(counter)
    return out


_Filters = Mapping[str, tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]
_BY_TYPE: dict[int, tuple[object, _Filters]] = {}


def _filters_by_type(filters: Iterable[PerformedCondition]) -> _Filters:
    """``filters`` with attributes, by event type: their distinct ``(counter type,
    attributes)``, sorted by counter type; memoised per filters object (the engine
    passes one tuple per catalog for every event)."""
    held = _BY_TYPE.get(id(filters))
    if held is not None and held[0] is filters:
        return held[1]
    work: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {}
    for f in filters:
        if f.attributes:
            work.setdefault(f.event_type, {})[f.counter_type] = f.attributes
    index = {event_type: tuple(sorted(counters.items())) for event_type, counters in work.items()}
    if isinstance(filters, tuple):  # immutable: safe to keep (and keeps the id unique)
        if len(_BY_TYPE) >= 64:
            _BY_TYPE.clear()
        _BY_TYPE[id(filters)] = (filters, index)
    return index


def device_type(state: EndpointState) -> str | None:
    return "MOBILE" if state.channel_type in PUSH_CHANNELS else None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


# --- combinators ------------------------------------------------------------------------

def _const(value: bool) -> _Node:
    return _Node(lambda s, n, m: value, _no_flip, frozenset())


def _combine(how: Combine, nodes: list[_Node]) -> _Node:
    """ALL / ANY / NONE over ``nodes``. One function call per child and none for a
    single child (ALL or ANY of one node is that node); ``match`` asks the children
    off the clock first (cheap, and for ALL often decisive); ``flip`` asks only the
    children that can flip, and none while a child off the clock that reads no
    source segment settles the answer (``_settled``)."""
    if not nodes:
        return _const(True)
    if len(nodes) == 1 and how is not Combine.NONE:
        return nodes[0]
    items = tuple(nodes)
    by_clock = sorted(items, key=lambda x: x.timed)
    ordered = tuple(x.match for x in by_clock)
    match = _all_of(ordered) if how is Combine.ALL else _any_of(ordered, how is Combine.NONE)
    flip = inner = _earliest_of(tuple(x.flip for x in items if x.timed))
    deciding = [x for x in items if not x.timed and not any(
        name.startswith(SEGMENT_PREFIX) for name in x.inputs)]
    deciders = tuple(x.match for x in deciding)
    evaluate = None
    if flip is not _no_flip and deciders:
        flip = _settled(flip, deciders, how is Combine.ALL)
        rest = tuple(x.match for x in by_clock if all(x is not d for d in deciding))
        evaluate = _settled_evaluation(how, deciders, rest, inner)
    return _Node(match, flip, frozenset(i for x in items for i in x.inputs), children=items,
                 evaluate=evaluate)


def _settled(flip: _Flip, deciders: tuple[_Match, ...], all_of: bool) -> _Flip:
    """``flip``, or None while one of ``deciders`` (children off the clock that read no
    source segment) is false for ALL / true for ANY and NONE: that child keeps its
    answer, and with it the node's, until one of its inputs changes — and such a
    change re-evaluates the segment (and its due time) anyway."""
    if all_of:
        def settled_flip(s: EndpointState, n: int) -> int | None:
            for decider in deciders:
                if not decider(s, n, _NO_MEMBERSHIPS):
                    return None
            return flip(s, n)
    else:
        def settled_flip(s: EndpointState, n: int) -> int | None:
            for decider in deciders:
                if decider(s, n, _NO_MEMBERSHIPS):
                    return None
            return flip(s, n)

    return settled_flip


def _settled_evaluation(
    how: Combine, deciders: tuple[_Match, ...], rest: tuple[_Match, ...], flip: _Flip
) -> _Evaluate:
    """``(match, _settled(flip, deciders))`` of a node whose children are ``deciders``
    (see ``_settled``) and ``rest`` (at least one, on the clock), in one call: each
    decider is asked once, and a settling one ends the evaluation."""
    assert rest
    if how is Combine.ALL:
        others = rest[0] if len(rest) == 1 else _all_of(rest)

        def all_evaluate(s: EndpointState, n: int, m: Memberships) -> tuple[bool, int | None]:
            for decider in deciders:
                if not decider(s, n, m):
                    return False, None
            return others(s, n, m), flip(s, n)

        return all_evaluate
    negate = how is Combine.NONE
    some = _any_of(rest, False)

    def any_evaluate(s: EndpointState, n: int, m: Memberships) -> tuple[bool, int | None]:
        for decider in deciders:
            if decider(s, n, m):
                return not negate, None
        return some(s, n, m) is not negate, flip(s, n)

    return any_evaluate


def _all_of(matches: tuple[_Match, ...]) -> _Match:
    """Whether every one of ``matches`` holds (short-circuit, no generator)."""
    if len(matches) == 2:
        first, second = matches

        def both(s: EndpointState, n: int, m: Memberships) -> bool:
            return first(s, n, m) and second(s, n, m)

        return both

    def every(s: EndpointState, n: int, m: Memberships) -> bool:
        for f in matches:  # noqa: SIM110 - a loop calls no generator per evaluation
            if not f(s, n, m):
                return False
        return True

    return every


def _any_of(matches: tuple[_Match, ...], negate: bool) -> _Match:
    """Whether some one of ``matches`` holds (``negate``: none does)."""
    def some(s: EndpointState, n: int, m: Memberships) -> bool:
        for f in matches:
            if f(s, n, m):
                return not negate
        return negate

    return some


def _earliest_of(flips: tuple[_Flip, ...]) -> _Flip:
    """The earliest answer of ``flips`` (None: none flips)."""
    if not flips:
        return _no_flip
    if len(flips) == 1:
        return flips[0]

    def flip(s: EndpointState, n: int) -> int | None:
        best: int | None = None
        for f in flips:
            t = f(s, n)
            if t is not None and (best is None or t < best):
                best = t
        return best

    return flip


def _group(group: SegmentGroup) -> _Node:
    dims = _combine(group.type, [_dimensions(d) for d in group.dimensions])
    if not group.source_segments:
        return dims
    sources = _combine(group.source_type, [_source(s.id) for s in group.source_segments])
    return _combine(Combine.ALL, [sources, dims])


def _imported(segment_id: str) -> _Node:
    return _Node(lambda s, n, m: segment_id in s.imported_segments, _no_flip,
                 frozenset({IMPORTED_SEGMENTS}))


def _source(segment_id: str) -> _Node:
    return _Node(lambda s, n, m: bool(m.get(segment_id, False)), _no_flip,
                 frozenset({SEGMENT_PREFIX + segment_id}))


def _dimensions(dimensions: Dimensions) -> _Node:
    return _combine(Combine.ALL, [_condition(c) for c in dimensions.conditions])


_LEAVES: dict[Condition, _Node] = {}
_LEAVES_LIMIT = 16_384


def _condition(c: Condition) -> _Node:
    """The leaf of ``c``, shared by every segment compiled with an equal condition (so
    that an evaluation can test a leaf once for all the segments that hold it)."""
    node = _LEAVES.get(c)
    if node is None:
        if len(_LEAVES) >= _LEAVES_LIMIT:
            _LEAVES.clear()
        node = _LEAVES[c] = _compile_condition(c)
    return node


def _compile_condition(c: Condition) -> _Node:
    if isinstance(c, AttributeCondition):
        return _attribute(c)
    if isinstance(c, RecencyCondition):
        return _recency(c)
    if isinstance(c, SetCondition):
        return _set(c)
    if isinstance(c, GpsCondition):
        return _gps(c)
    if isinstance(c, MetricCondition):
        return _metric(c)
    if isinstance(c, PerformedCondition):
        return _performed(c)
    if isinstance(c, NotPerformedSinceCondition):
        return _not_performed(c)
    return _seen(c)


def _no_flip(s: EndpointState, n: int) -> int | None:
    return None


# --- endpoint fields --------------------------------------------------------------------

def _attribute(c: AttributeCondition) -> _Node:
    def values(s: EndpointState) -> tuple[str, ...]:
        if c.source == "Attributes":
            return tuple(s.attributes.get(c.name, ()))
        return tuple(s.user.user_attributes.get(c.name, ())) if s.user else ()

    wanted = frozenset(c.values)
    kind = c.type
    name = c.name
    inputs = frozenset({f"{c.source}.{c.name}"})
    if kind in (AttributeType.INCLUSIVE, AttributeType.EXCLUSIVE):
        # the common case, one C call: some value is (INCLUSIVE) / none is (EXCLUSIVE) wanted
        inclusive = kind is AttributeType.INCLUSIVE
        if c.source == "Attributes":
            def set_match(s: EndpointState, n: int, m: Memberships) -> bool:
                return wanted.isdisjoint(s.attributes.get(name, ())) is not inclusive
        else:
            def set_match(s: EndpointState, n: int, m: Memberships) -> bool:
                have = s.user.user_attributes.get(name, ()) if s.user else ()
                return wanted.isdisjoint(have) is not inclusive
        return _Node(set_match, _no_flip, inputs)

    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        have = values(s)
        if kind is AttributeType.CONTAINS:
            return any(w in v for v in have for w in c.values)
        times = [t for t in map(_instant, have) if t is not None]
        bounds = [ref.at(n) for ref in c.times]
        if kind is AttributeType.BEFORE:
            return any(t < bounds[0] for t in times)
        if kind is AttributeType.AFTER:
            return any(t > bounds[0] for t in times)
        if kind is AttributeType.BETWEEN:
            return any(bounds[0] <= t <= bounds[1] for t in times)
        days = {b // DAY_MS for b in bounds}
        return any(t // DAY_MS in days for t in times)

    relative = [ref for ref in c.times if ref.relative]

    def flip(s: EndpointState, n: int) -> int | None:
        times = [t for t in map(_instant, values(s)) if t is not None]
        if not times:
            return None
        if kind is AttributeType.ON:
            days = {t // DAY_MS for t in times}
            candidates = [(d + k) * DAY_MS - r.ms for d in days for k in (0, 1) for r in relative]
            return _first_change(match, s, n, candidates)
        return _first_change(match, s, n, _crossings(times, relative, n))

    if not relative:
        return _Node(match, _no_flip, inputs)

    def stable(b: EndpointState, a: EndpointState, n: int) -> bool:
        return values(b) == values(a)  # the same values: the same leaf

    return _Node(match, flip, inputs, stable=stable)


def _crossings(values: Iterable[int], refs: Iterable[TimeRef], now: int) -> list[int]:
    """Times after ``now`` at which ``now + ref`` reaches or passes one of ``values``."""
    return [t for v in values for r in refs for t in (v - r.ms, v - r.ms + 1) if t > now]


_NO_MEMBERSHIPS: Memberships = {}


def _first_change(match: _Match, s: EndpointState, n: int, candidates: Iterable[int]) -> int | None:
    """The first of ``candidates`` (the only instants a leaf can change) where it does."""
    now_value = match(s, n, _NO_MEMBERSHIPS)
    for t in sorted(set(candidates)):
        if t > n and match(s, t, _NO_MEMBERSHIPS) != now_value:
            return t
    return None


@lru_cache(maxsize=65_536)
def _instant(value: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - EPOCH) // MILLISECOND


def _recency(c: RecencyCondition) -> _Node:
    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        active = s.last_active_ms is not None and s.last_active_ms >= n - c.duration_ms
        return active == c.active

    def flip(s: EndpointState, n: int) -> int | None:
        if s.last_active_ms is None:
            return None
        t = s.last_active_ms + c.duration_ms + 1
        return t if t > n else None

    return _Node(match, flip, frozenset({"LastActive"}), stable=_same_answer(match))


_SET_FIELDS: Mapping[str, tuple[str, Callable[[EndpointState], str | None]]] = {
    "AppVersion": ("Demographic.AppVersion",
                   lambda s: s.demographic.app_version if s.demographic else None),
    "Make": ("Demographic.Make", lambda s: s.demographic.make if s.demographic else None),
    "Model": ("Demographic.Model", lambda s: s.demographic.model if s.demographic else None),
    "Platform": ("Demographic.Platform",
                 lambda s: s.demographic.platform if s.demographic else None),
    "Channel": ("ChannelType", lambda s: s.channel_type.value if s.channel_type else None),
    "DeviceType": ("ChannelType", device_type),
    "Country": ("Location.Country", lambda s: s.location.country if s.location else None),
}


def _set(c: SetCondition) -> _Node:
    name, read = _SET_FIELDS[c.field]

    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        value = read(s)
        inside = value is not None and value in c.values
        return inside if c.inclusive else not inside

    return _Node(match, _no_flip, frozenset({name}))


def _gps(c: GpsCondition) -> _Node:
    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        loc = s.location
        if loc is None or loc.latitude is None or loc.longitude is None:
            return False
        return haversine_km(c.latitude, c.longitude, loc.latitude, loc.longitude) <= c.range_km

    return _Node(match, _no_flip, frozenset({"Location.Latitude", "Location.Longitude"}))


_COMPARE: Mapping[Comparison, Callable[[float, float], bool]] = {
    Comparison.GREATER_THAN: lambda a, b: a > b,
    Comparison.LESS_THAN: lambda a, b: a < b,
    Comparison.GREATER_THAN_OR_EQUAL: lambda a, b: a >= b,
    Comparison.LESS_THAN_OR_EQUAL: lambda a, b: a <= b,
    Comparison.EQUAL: lambda a, b: a == b,
}


def _metric(c: MetricCondition) -> _Node:
    compare = _COMPARE[c.operator]

    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        value = s.metrics.get(c.name)
        return value is not None and compare(value, c.value)

    return _Node(match, _no_flip, frozenset({f"Metrics.{c.name}"}))


# --- behaviour --------------------------------------------------------------------------


def _performed(c: PerformedCondition) -> _Node:
    key, window, target = c.counter_type, c.window_ms, c.count
    # count_since counts a window of at most 47 h in hours and one of 48 h or more in
    # days, whatever the clock (``now - window`` is then always before the first
    # retained hour); the count only falls as buckets leave the window (or retention),
    # and the flip follows from the buckets alone: the count and the flip then read one
    # memoised ``_leaving``. Windows strictly between (not expressible in whole hours)
    # switch resolution and take the general path.
    fixed = _resolution(window)
    fall = _FALLS[c.operator]
    empty = _NOTHING

    def leaving(s: EndpointState, n: int) -> _Leaving:
        assert fixed is not None
        counts = s.counters.types.get(key)
        if counts is None:
            return empty
        memo = s.counters.memo
        known: _Leaving | None = memo.get((key, window, n))
        if known is None:
            known = remember(memo, (key, window, n), _leaving(counts, n, window, fixed))
        return known

    match: _Match
    if fixed is not None:  # the memo looked up in place: no call when it answers
        if c.operator is CountOperator.AT_LEAST:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                known = s.counters.memo.get((key, window, n))
                return (leaving(s, n) if known is None else known)[0] >= target
        elif c.operator is CountOperator.AT_MOST:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                known = s.counters.memo.get((key, window, n))
                return (leaving(s, n) if known is None else known)[0] <= target
        else:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                known = s.counters.memo.get((key, window, n))
                return (leaving(s, n) if known is None else known)[0] == target

        def fixed_flip(s: EndpointState, n: int) -> int | None:
            known = s.counters.memo.get((key, window, n))
            return fall(leaving(s, n) if known is None else known, target)
    else:
        def count(s: EndpointState, n: int) -> int:
            return count_since(s.counters, key, n - window, n)

        if c.operator is CountOperator.AT_LEAST:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                return count(s, n) >= target
        elif c.operator is CountOperator.AT_MOST:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                return count(s, n) <= target
        else:
            def match(s: EndpointState, n: int, m: Memberships) -> bool:
                return count(s, n) == target

    def flip(s: EndpointState, n: int) -> int | None:
        counts = s.counters.types.get(key)
        if counts is None:
            return None
        # The count is a step function of time that changes only when a bucket
        # enters or leaves the window; try those instants in order.
        candidates: set[int] = set()
        for size, buckets in ((HOUR_MS, counts.hours), (DAY_MS, counts.days)):
            for index, _ in buckets:
                start = index * size
                candidates.update((start, start + window + 1,
                                   (start // DAY_MS + 90) * DAY_MS))
        return _first_change(match, s, n, candidates)

    # Added events raise the count at every instant, so AT_LEAST / AT_MOST can only
    # flip later; EXACTLY may hit the target earlier and is always re-evaluated.
    if fixed is None:
        return _Node(match, flip, frozenset({f"Events.{key}"}))
    threshold = Threshold(key, window, c.operator, c.count)
    if c.operator is not CountOperator.EXACTLY:
        return _Node(match, fixed_flip, frozenset({f"Events.{key}"}), threshold,
                     _same_answer(match))

    def below(b: EndpointState, a: EndpointState, n: int) -> bool:
        return count_since(a.counters, key, n - window, n) < c.count

    return _Node(match, fixed_flip, frozenset({f"Events.{key}"}), threshold, below)


_LAST_HOURLY, _FIRST_DAILY = (HOURLY_BUCKETS - 1) * HOUR_MS, HOURLY_BUCKETS * HOUR_MS


def _resolution(window: int) -> tuple[int, int] | None:
    """(bucket size ms, buckets retained) of a window counted at one fixed resolution
    whatever the clock (see ``_performed``), else None."""
    if window <= _LAST_HOURLY:
        return HOUR_MS, HOURLY_BUCKETS
    return (DAY_MS, DAILY_BUCKETS) if window >= _FIRST_DAILY else None


def falling_counts(
    counters: BehaviourCounters, key: str, window: int, now: int
) -> tuple[int, tuple[tuple[int, int], ...]] | None:
    """For a ``Threshold`` window: the count of ``key`` in the window at ``now`` and, in
    time order, when each of its buckets leaves it and with how many events (with no
    new events the count only falls, step by step). None for a window not counted at
    one fixed resolution. Memoised on ``counters`` (shared with the leaves' flips)."""
    held = window_buckets(counters, key, window, now)
    if held is None:
        return None
    count, span, size, offset = held
    return count, tuple([(i * size + offset, k) for i, k in span])


def window_buckets(counters: BehaviourCounters, key: str, window: int, now: int
                   ) -> _Leaving | None:
    """``falling_counts`` as ``_leaving`` holds it: the count, the window's buckets
    ``(index, events)`` in time order, and the bucket size and offset that give when
    each leaves (``index * size + offset``). None for a window not counted at one fixed
    resolution. Memoised on ``counters`` (shared with the leaves)."""
    fixed = _resolution(window)
    if fixed is None:
        return None
    counts = counters.types.get(key)
    if counts is None:
        return _NOTHING
    memo = counters.memo
    known: _Leaving | None = memo.get((key, window, now))
    if known is None:
        known = remember(memo, (key, window, now), _leaving(counts, now, window, fixed))
    return known


_Leaving = tuple[int, tuple[tuple[int, int], ...], int, int]
"""A fixed-resolution window at one instant (``_leaving``): its count, its buckets
``(index, events)`` in time order, and the size and offset such that bucket ``i``
leaves the window at ``i * size + offset``."""
_NOTHING: _Leaving = (0, (), 0, 0)


def _leaving(
    counts: TypeCounts, now: int, window: int, resolution: tuple[int, int]
) -> _Leaving:
    """The count in a window counted at one fixed resolution (size ms, buckets retained)
    and its buckets, in time order, with what gives when each leaves (``_Leaving``):
    bucket ``i`` leaves at ``i * size + window + 1`` or when retention drops it,
    whichever is first (both grow with ``i``, so bucket order is time order; the same
    term is the smaller for every ``i``, so it is ``i * size + offset``)."""
    size, retained = resolution
    buckets = counts.hours if size == HOUR_MS else counts.days
    first, last = -(-(now - window) // size), now // size
    if size == DAY_MS:
        first = max(first, now // DAY_MS - (DAILY_BUCKETS - 1))
    if first > last:
        return _NOTHING
    span = buckets[bisect_left(buckets, (first,)):bisect_left(buckets, (last + 1,))]
    if not span:
        return _NOTHING
    return sum([k for _, k in span]), span, size, min(window + 1, retained * size)


def _at_least_flip(leaving: _Leaving, target: int) -> int | None:
    """When ``count >= target`` first changes after now, given the window's count and its
    buckets' leaving times (``_leaving``): only a count at the target can fall below it."""
    count, span, size, offset = leaving
    if count < target:
        return None
    for i, k in span:
        count -= k
        if count < target:
            return i * size + offset
    return None


def _at_most_flip(leaving: _Leaving, target: int) -> int | None:
    """As ``_at_least_flip`` for ``count <= target`` (true stays true as the count falls)."""
    count, span, size, offset = leaving
    if count <= target:
        return None
    for i, k in span:
        count -= k
        if count <= target:
            return i * size + offset
    return None


def _exactly_flip(leaving: _Leaving, target: int) -> int | None:
    """As ``_at_least_flip`` for ``count == target``."""
    count, span, size, offset = leaving
    if count == target:
        for i, k in span:
            if k:
                return i * size + offset
        return None
    if count < target:
        return None
    for i, k in span:
        count -= k
        if count <= target:
            return i * size + offset if count == target else None
    return None


_FALLS: Mapping[CountOperator, Callable[[_Leaving, int], int | None]] = {
    CountOperator.AT_LEAST: _at_least_flip,
    CountOperator.AT_MOST: _at_most_flip,
    CountOperator.EXACTLY: _exactly_flip,
}


def _same_answer(match: _Match) -> _Stable:
    """``stable`` for leaves whose next change only moves later as their inputs grow."""
    def stable(b: EndpointState, a: EndpointState, n: int) -> bool:
        return match(b, n, _NO_MEMBERSHIPS) == match(a, n, _NO_MEMBERSHIPS)

    return stable


def _not_performed(c: NotPerformedSinceCondition) -> _Node:
    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        last = last_seen(s.counters, c.event_type)
        return last is None or last < c.since.at(n)

    def flip(s: EndpointState, n: int) -> int | None:
        last = last_seen(s.counters, c.event_type)
        if last is None or not c.since.relative:
            return None
        return _first_change(match, s, n, _crossings([last], [c.since], n))

    # events only move the last time later, and with it the moment Since passes it
    return _Node(match, flip, frozenset({f"Events.{c.event_type}"}),
                 stable=_same_answer(match))


def _seen(c: SeenCondition) -> _Node:
    def value(s: EndpointState) -> int | None:
        if c.event_type is not None:
            return (first_seen if c.first else last_seen)(s.counters, c.event_type)
        return s.creation_date if c.first else s.last_active_ms

    def match(s: EndpointState, n: int, m: Memberships) -> bool:
        v = value(s)
        if v is None:
            return False
        return (c.before is None or v < c.before.at(n)) and (c.after is None or v > c.after.at(n))

    refs = [r for r in (c.before, c.after) if r is not None and r.relative]

    def flip(s: EndpointState, n: int) -> int | None:
        v = value(s)
        if v is None or not refs:
            return None
        return _first_change(match, s, n, _crossings([v], refs, n))

    if c.event_type is not None:
        inputs = frozenset({f"Events.{c.event_type}"})
    else:
        inputs = frozenset() if c.first else frozenset({"LastActive"})
    if not refs:
        return _Node(match, _no_flip, inputs)

    def stable(b: EndpointState, a: EndpointState, n: int) -> bool:
        # first seen may move earlier (a back-dated event): only the same time is safe;
        # last seen only moves later, so are its crossings — unless it was unknown
        old, new = value(b), value(a)
        if c.first or old is None:
            return old == new
        return match(b, n, _NO_MEMBERSHIPS) == match(a, n, _NO_MEMBERSHIPS)

    return _Node(match, flip, inputs, stable=stable)
