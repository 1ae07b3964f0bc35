"""Pinpoint's segment rule language (``WriteSegmentRequest``), parsed and validated.

``parse_segment(body)`` turns a ``WriteSegmentRequest`` {Name, Dimensions |
SegmentGroups} into a ``SegmentDefinition`` of plain frozen records;
``segment_predicate.compile_segment`` turns that into a predicate. Every
``SegmentDimensions`` is a flat tuple of conditions that must all hold (as in
Pinpoint, the dimensions of one SegmentDimensions combine with AND).

Times in BEFORE / AFTER / BETWEEN / ON values and in the behavioural
conditions are ISO-8601 instants (``2026-05-01T00:00:00Z``; a date alone is
its UTC midnight) or, as a Lodestar extension, times relative to the moment
of evaluation: ``NOW``, ``NOW-P7D``, ``NOW+PT12H`` (ISO-8601 durations of
weeks, days, hours, minutes and seconds).

Lodestar's behavioural conditions live under ``Dimensions.Behavioral``
(also inside each group's Dimensions), all combining with AND::

    "Behavioral": {
      "Performed": [{"EventType": "purchase", "Attributes": {"plan": "pro"},
                     "Operator": "AT_LEAST" | "AT_MOST" | "EXACTLY", "Count": 3,
                     "WithinHours": 24 | "WithinDays": 7}],
      "NotPerformedSince": [{"EventType": "login", "Since": "NOW-P14D"}],
      "FirstSeen": [{"EventType": "purchase", "Before": "...", "After": "..."}],
      "LastSeen": [{"Before": "NOW-P30D"}]
    }

``Attributes`` is an optional event-attribute equality filter: the event is
counted under the derived type ``PerformedCondition.counter_type`` (see
there). FirstSeen / LastSeen without EventType read the endpoint's
CreationDate / LastActive. Invalid definitions raise ``SegmentDefinitionError``
whose ``field`` is the offending path, e.g. ``Dimensions.Attributes.plan.AttributeType``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from lodestar.core.behaviour_counters import DAILY_BUCKETS, DAY_MS, HOUR_MS
from lodestar.core.endpoint_request import ChannelType
from lodestar.core.request_fields import FieldError, as_enum, as_object, known_keys
from lodestar.core.timestamps import TimestampError, parse_timestamp

MAX_DIMENSIONS = 100
_E = TypeVar("_E", bound=StrEnum)
MAX_WITHIN_HOURS = 48
MAX_WITHIN_DAYS = DAILY_BUCKETS


class SegmentDefinitionError(FieldError):
    """An invalid segment definition; ``field`` is the offending path."""


class AttributeType(StrEnum):
    INCLUSIVE = "INCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"
    CONTAINS = "CONTAINS"
    BEFORE = "BEFORE"
    AFTER = "AFTER"
    BETWEEN = "BETWEEN"
    ON = "ON"


class Combine(StrEnum):
    """Include / Type / SourceType of a segment group."""

    ALL = "ALL"
    ANY = "ANY"
    NONE = "NONE"


class Comparison(StrEnum):
    GREATER_THAN = "GREATER_THAN"
    LESS_THAN = "LESS_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"
    EQUAL = "EQUAL"


class CountOperator(StrEnum):
    AT_LEAST = "AT_LEAST"
    AT_MOST = "AT_MOST"
    EXACTLY = "EXACTLY"


RECENCY_DURATIONS: Mapping[str, int] = {
    "HR_24": 24 * HOUR_MS, "DAY_7": 7 * DAY_MS, "DAY_14": 14 * DAY_MS, "DAY_30": 30 * DAY_MS,
}
DEMOGRAPHIC_FIELDS = ("AppVersion", "Channel", "DeviceType", "Make", "Model", "Platform")


@dataclass(frozen=True)
class TimeRef:
    """An absolute instant (``relative`` False: ``ms`` is epoch ms) or ``now + ms``."""

    ms: int
    relative: bool = False

    def at(self, now_ms: int) -> int:
        return now_ms + self.ms if self.relative else self.ms


@dataclass(frozen=True)
class AttributeCondition:
    """``source`` is ``Attributes`` or ``User.UserAttributes``; ``times`` holds the
    parsed Values of BEFORE/AFTER/BETWEEN/ON (empty for the others)."""

    source: str
    name: str
    type: AttributeType
    values: tuple[str, ...]
    times: tuple[TimeRef, ...] = ()


@dataclass(frozen=True)
class RecencyCondition:
    duration_ms: int
    active: bool


@dataclass(frozen=True)
class SetCondition:
    """A SetDimension on ``field`` (a DEMOGRAPHIC_FIELDS name or ``Country``)."""

    field: str
    inclusive: bool
    values: frozenset[str]


@dataclass(frozen=True)
class GpsCondition:
    latitude: float
    longitude: float
    range_km: float


@dataclass(frozen=True)
class MetricCondition:
    name: str
    operator: Comparison
    value: float


@dataclass(frozen=True)
class PerformedCondition:
    event_type: str
    attributes: tuple[tuple[str, str], ...]
    operator: CountOperator
    count: int
    window_ms: int

    @property
    def counter_type(self) -> str:
        """The behaviour-counter type this condition reads: the event type itself, or
        with an attribute filter ``type[k1=v1,k2=v2]`` (keys sorted), which the engine
        records for each event of ``event_type`` whose attributes match."""
        return counter_type(self.event_type, self.attributes)


@dataclass(frozen=True)
class NotPerformedSinceCondition:
    event_type: str
    since: TimeRef


@dataclass(frozen=True)
class SeenCondition:
    """``first`` True: first seen, else last seen; ``event_type`` None: the endpoint."""

    first: bool
    event_type: str | None
    before: TimeRef | None
    after: TimeRef | None


Condition = (
    AttributeCondition | RecencyCondition | SetCondition | GpsCondition | MetricCondition
    | PerformedCondition | NotPerformedSinceCondition | SeenCondition
)


@dataclass(frozen=True)
class Dimensions:
    """One SegmentDimensions: every condition must hold (none: everything matches)."""

    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class SourceSegment:
    id: str
    version: int | None = None


@dataclass(frozen=True)
class SegmentGroup:
    """Matches when the source segments (combined by ``source_type``; none: all
    endpoints) and the dimensions (combined by ``type``; none: true) both hold."""

    dimensions: tuple[Dimensions, ...] = ()
    source_segments: tuple[SourceSegment, ...] = ()
    source_type: Combine = Combine.ANY
    type: Combine = Combine.ALL


@dataclass(frozen=True)
class SegmentGroups:
    include: Combine
    groups: tuple[SegmentGroup, ...]


@dataclass(frozen=True)
class SegmentDefinition:
    """Exactly one of ``dimensions``, ``segment_groups`` or ``import_id`` is set.
    ``import_id``: an imported (static) segment — its members are the endpoints an
    import job added to segment ``import_id`` (``EndpointState.imported_segments``)."""

    name: str | None
    dimensions: Dimensions | None = None
    segment_groups: SegmentGroups | None = None
    import_id: str | None = None


def imported_segment(segment_id: str, name: str | None = None) -> SegmentDefinition:
    """The definition of the imported segment ``segment_id``."""
    return SegmentDefinition(name, import_id=segment_id)


def counter_type(event_type: str, attributes: tuple[tuple[str, str], ...] = ()) -> str:
    if not attributes:
        return event_type
    return event_type + "[" + ",".join(f"{k}={v}" for k, v in sorted(attributes)) + "]"


def parse_segment(body: object) -> SegmentDefinition:
    """A validated ``SegmentDefinition``; raises ``SegmentDefinitionError``."""
    data = _obj(body, "WriteSegmentRequest")
    _keys(data, "", {"Name", "Dimensions", "SegmentGroups", "tags"})
    name = data.get("Name")
    if name is not None and (not isinstance(name, str) or not name):
        raise SegmentDefinitionError("Name", "must be a non-empty string")
    has_dims, has_groups = data.get("Dimensions") is not None, data.get("SegmentGroups") is not None
    if has_dims and has_groups:
        raise SegmentDefinitionError("SegmentGroups", "give Dimensions or SegmentGroups, not both")
    if not has_dims and not has_groups:
        raise SegmentDefinitionError("Dimensions", "one of Dimensions or SegmentGroups is required")
    if has_dims:
        dims = _dimensions(data["Dimensions"], "Dimensions")
        _limit(len(dims.conditions), "Dimensions")
        return SegmentDefinition(name, dimensions=dims)
    groups = _segment_groups(data["SegmentGroups"], "SegmentGroups")
    _limit(sum(len(d.conditions) for g in groups.groups for d in g.dimensions), "SegmentGroups")
    return SegmentDefinition(name, segment_groups=groups)


def _limit(count: int, path: str) -> None:
    if count > MAX_DIMENSIONS:
        raise SegmentDefinitionError(
            path, f"{count} dimensions; a segment may have at most {MAX_DIMENSIONS}"
        )


def _segment_groups(value: object, path: str) -> SegmentGroups:
    data = _obj(value, path)
    _keys(data, path, {"Include", "Groups"})
    include = _enum(Combine, data.get("Include", "ALL"), f"{path}.Include")
    groups = data.get("Groups")
    if not isinstance(groups, list) or len(groups) != 1:
        raise SegmentDefinitionError(f"{path}.Groups", "must be a list of exactly one group")
    return SegmentGroups(include, (_group(groups[0], f"{path}.Groups[0]"),))


def _group(value: object, path: str) -> SegmentGroup:
    data = _obj(value, path)
    _keys(data, path, {"Dimensions", "SourceSegments", "SourceType", "Type"})
    dims = _list(data.get("Dimensions", []), f"{path}.Dimensions")
    sources = _list(data.get("SourceSegments", []), f"{path}.SourceSegments")
    parsed_sources = []
    for i, item in enumerate(sources):
        spath = f"{path}.SourceSegments[{i}]"
        source = _obj(item, spath)
        _keys(source, spath, {"Id", "Version"})
        sid = source.get("Id")
        if not isinstance(sid, str) or not sid:
            raise SegmentDefinitionError(f"{spath}.Id", "must be a non-empty string")
        version = source.get("Version")
        if version is not None and (type(version) is not int or version < 1):
            raise SegmentDefinitionError(f"{spath}.Version", "must be a positive integer")
        parsed_sources.append(SourceSegment(sid, version))
    return SegmentGroup(
        dimensions=tuple(_dimensions(d, f"{path}.Dimensions[{i}]") for i, d in enumerate(dims)),
        source_segments=tuple(parsed_sources),
        source_type=_enum(Combine, data.get("SourceType", "ANY"), f"{path}.SourceType"),
        type=_enum(Combine, data.get("Type", "ALL"), f"{path}.Type"),
    )


def _dimensions(value: object, path: str) -> Dimensions:
    data = _obj(value, path)
    _keys(data, path, {"Attributes", "UserAttributes", "Behavior", "Demographic", "Location",
                       "Metrics", "Behavioral"})
    out: list[Condition] = []
    for key, source in (("Attributes", "Attributes"), ("UserAttributes", "User.UserAttributes")):
        for name, item in _map(data.get(key), f"{path}.{key}").items():
            out.append(_attribute(source, name, item, f"{path}.{key}.{name}"))
    if data.get("Behavior") is not None:
        out.append(_recency(data["Behavior"], f"{path}.Behavior"))
    demographic = _map(data.get("Demographic"), f"{path}.Demographic")
    _keys(demographic, f"{path}.Demographic", set(DEMOGRAPHIC_FIELDS))
    for key in DEMOGRAPHIC_FIELDS:
        if demographic.get(key) is not None:
            out.append(_set(key, demographic[key], f"{path}.Demographic.{key}"))
    location = _map(data.get("Location"), f"{path}.Location")
    _keys(location, f"{path}.Location", {"Country", "GPSPoint"})
    if location.get("Country") is not None:
        out.append(_set("Country", location["Country"], f"{path}.Location.Country"))
    if location.get("GPSPoint") is not None:
        out.append(_gps(location["GPSPoint"], f"{path}.Location.GPSPoint"))
    for name, item in _map(data.get("Metrics"), f"{path}.Metrics").items():
        mpath = f"{path}.Metrics.{name}"
        metric = _obj(item, mpath)
        _keys(metric, mpath, {"ComparisonOperator", "Value"})
        op = _enum(Comparison, metric.get("ComparisonOperator"), f"{mpath}.ComparisonOperator")
        out.append(MetricCondition(name, op, _float(metric.get("Value"), f"{mpath}.Value")))
    if data.get("Behavioral") is not None:
        out.extend(_behavioral(data["Behavioral"], f"{path}.Behavioral"))
    return Dimensions(tuple(out))


def _attribute(source: str, name: str, value: object, path: str) -> AttributeCondition:
    data = _obj(value, path)
    _keys(data, path, {"AttributeType", "Values"})
    kind = _enum(AttributeType, data.get("AttributeType", "INCLUSIVE"), f"{path}.AttributeType")
    values = _strings(data.get("Values"), f"{path}.Values")
    times: tuple[TimeRef, ...] = ()
    if kind in (AttributeType.BEFORE, AttributeType.AFTER, AttributeType.BETWEEN,
                AttributeType.ON):
        want = {AttributeType.BEFORE: 1, AttributeType.AFTER: 1, AttributeType.BETWEEN: 2}
        if kind in want and len(values) != want[kind]:
            raise SegmentDefinitionError(
                f"{path}.Values", f"{kind.value} takes exactly {want[kind]} value(s)"
            )
        times = tuple(parse_time_ref(v, f"{path}.Values[{i}]") for i, v in enumerate(values))
        if (kind is AttributeType.BETWEEN and not times[0].relative and not times[1].relative
                and times[0].ms > times[1].ms):
            raise SegmentDefinitionError(f"{path}.Values", "BETWEEN needs start <= end")
    return AttributeCondition(source, name, kind, values, times)


def _recency(value: object, path: str) -> RecencyCondition:
    data = _obj(value, path)
    _keys(data, path, {"Recency"})
    rpath = f"{path}.Recency"
    recency = _obj(data.get("Recency"), rpath)
    _keys(recency, rpath, {"Duration", "RecencyType"})
    duration = recency.get("Duration")
    if duration not in RECENCY_DURATIONS:
        raise SegmentDefinitionError(
            f"{rpath}.Duration", f"must be one of {', '.join(RECENCY_DURATIONS)}"
        )
    kind = recency.get("RecencyType")
    if kind not in ("ACTIVE", "INACTIVE"):
        raise SegmentDefinitionError(f"{rpath}.RecencyType", "must be ACTIVE or INACTIVE")
    return RecencyCondition(RECENCY_DURATIONS[str(duration)], kind == "ACTIVE")


def _set(field: str, value: object, path: str) -> SetCondition:
    data = _obj(value, path)
    _keys(data, path, {"DimensionType", "Values"})
    kind = data.get("DimensionType", "INCLUSIVE")
    if kind not in ("INCLUSIVE", "EXCLUSIVE"):
        raise SegmentDefinitionError(f"{path}.DimensionType", "must be INCLUSIVE or EXCLUSIVE")
    values = _strings(data.get("Values"), f"{path}.Values")
    if field == "Channel":
        for i, v in enumerate(values):
            _enum(ChannelType, v, f"{path}.Values[{i}]")
    if field == "DeviceType":
        values = tuple(v.upper() for v in values)
    return SetCondition(field, kind == "INCLUSIVE", frozenset(values))


def _gps(value: object, path: str) -> GpsCondition:
    data = _obj(value, path)
    _keys(data, path, {"Coordinates", "RangeInKilometers"})
    cpath = f"{path}.Coordinates"
    coords = _obj(data.get("Coordinates"), cpath)
    _keys(coords, cpath, {"Latitude", "Longitude"})
    lat = _float(coords.get("Latitude"), f"{cpath}.Latitude")
    lon = _float(coords.get("Longitude"), f"{cpath}.Longitude")
    if not -90 <= lat <= 90:
        raise SegmentDefinitionError(f"{cpath}.Latitude", "must be between -90 and 90")
    if not -180 <= lon <= 180:
        raise SegmentDefinitionError(f"{cpath}.Longitude", "must be between -180 and 180")
    rng = _float(data.get("RangeInKilometers", 100.0), f"{path}.RangeInKilometers")
    if rng < 0:
        raise SegmentDefinitionError(f"{path}.RangeInKilometers", "must not be negative")
    return GpsCondition(lat, lon, rng)


def _behavioral(value: object, path: str) -> list[Condition]:
    data = _obj(value, path)
    _keys(data, path, {"Performed", "NotPerformedSince", "FirstSeen", "LastSeen"})
    out: list[Condition] = []
    for i, item in enumerate(_list(data.get("Performed", []), f"{path}.Performed")):
        out.append(_performed(item, f"{path}.Performed[{i}]"))
    for i, item in enumerate(_list(data.get("NotPerformedSince", []),
                                   f"{path}.NotPerformedSince")):
        ipath = f"{path}.NotPerformedSince[{i}]"
        cond = _obj(item, ipath)
        _keys(cond, ipath, {"EventType", "Since"})
        out.append(NotPerformedSinceCondition(
            _name(cond.get("EventType"), f"{ipath}.EventType"),
            parse_time_ref(cond.get("Since"), f"{ipath}.Since"),
        ))
    for key in ("FirstSeen", "LastSeen"):
        for i, item in enumerate(_list(data.get(key, []), f"{path}.{key}")):
            ipath = f"{path}.{key}[{i}]"
            cond = _obj(item, ipath)
            _keys(cond, ipath, {"EventType", "Before", "After"})
            event_type = cond.get("EventType")
            before, after = cond.get("Before"), cond.get("After")
            if before is None and after is None:
                raise SegmentDefinitionError(ipath, "needs Before, After or both")
            out.append(SeenCondition(
                key == "FirstSeen",
                None if event_type is None else _name(event_type, f"{ipath}.EventType"),
                None if before is None else parse_time_ref(before, f"{ipath}.Before"),
                None if after is None else parse_time_ref(after, f"{ipath}.After"),
            ))
    return out


def _performed(value: object, path: str) -> PerformedCondition:
    data = _obj(value, path)
    _keys(data, path, {"EventType", "Attributes", "Operator", "Count", "WithinHours",
                       "WithinDays"})
    event_type = _name(data.get("EventType"), f"{path}.EventType")
    attrs = _map(data.get("Attributes"), f"{path}.Attributes")
    for key, item in attrs.items():
        if not isinstance(item, str):
            raise SegmentDefinitionError(f"{path}.Attributes.{key}", "must be a string")
        if any(c in key + item for c in "[],="):
            raise SegmentDefinitionError(f"{path}.Attributes.{key}",
                                         "must not contain '[', ']', ',' or '='")
    op = _enum(CountOperator, data.get("Operator", "AT_LEAST"), f"{path}.Operator")
    count = data.get("Count")
    if type(count) is not int or count < 0:
        raise SegmentDefinitionError(f"{path}.Count", "must be a non-negative integer")
    hours, days = data.get("WithinHours"), data.get("WithinDays")
    if (hours is None) == (days is None):
        raise SegmentDefinitionError(f"{path}.WithinHours", "give WithinHours or WithinDays")
    if hours is not None:
        if type(hours) is not int or not 1 <= hours <= MAX_WITHIN_HOURS:
            raise SegmentDefinitionError(
                f"{path}.WithinHours", f"must be an integer from 1 to {MAX_WITHIN_HOURS}"
            )
        window = hours * HOUR_MS
    else:
        if type(days) is not int or not 1 <= days <= MAX_WITHIN_DAYS:
            raise SegmentDefinitionError(
                f"{path}.WithinDays", f"must be an integer from 1 to {MAX_WITHIN_DAYS}"
            )
        window = days * DAY_MS
    return PerformedCondition(event_type, tuple(sorted(attrs.items())), op, count, window)


_RELATIVE = re.compile(
    r"NOW(?:([+-])P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?)?"
)


def parse_time_ref(value: object, path: str) -> TimeRef:
    """An ISO-8601 instant or date, or ``NOW[±<ISO duration>]``."""
    if isinstance(value, str) and value.upper().startswith("NOW"):
        match = _RELATIVE.fullmatch(value.upper())
        if match is None or (match.group(1) and not any(match.groups()[1:])):
            raise SegmentDefinitionError(path, f"{value!r} is not NOW or NOW±<ISO-8601 duration>")
        sign, weeks, days, hours, minutes, seconds = match.groups()
        ms = (int(weeks or 0) * 7 * DAY_MS + int(days or 0) * DAY_MS + int(hours or 0) * HOUR_MS
              + int(minutes or 0) * 60_000 + int(seconds or 0) * 1000)
        return TimeRef(-ms if sign == "-" else ms, relative=True)
    try:
        return TimeRef(parse_timestamp(value, path))
    except TimestampError as err:
        raise SegmentDefinitionError(path, str(err)) from None


def _obj(value: object, path: str) -> Mapping[str, Any]:
    return as_object(SegmentDefinitionError, value, path or "WriteSegmentRequest")


def _map(value: object, path: str) -> Mapping[str, Any]:
    return {} if value is None else _obj(value, path)


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise SegmentDefinitionError(path, "must be a list")
    return value


def _keys(data: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    known_keys(SegmentDefinitionError, data, path, allowed)


def _strings(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SegmentDefinitionError(path, "must be a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise SegmentDefinitionError(f"{path}[{i}]", "must be a string")
    return tuple(value)


def _name(value: object, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SegmentDefinitionError(path, "must be a non-empty string")
    return value


def _float(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SegmentDefinitionError(path, "must be a number")
    return float(value)


def _enum(kind: type[_E], value: object, path: str) -> _E:
    return as_enum(SegmentDefinitionError, kind, value, path)
