"""Pinpoint's ``EndpointRequest``: validation into an immutable value.

The same fields arrive as the body of UpdateEndpoint, as each ``Item`` of
UpdateEndpointsBatch (plus ``Id``) and as the ``Endpoint`` (PublicEndpoint) of
a PutEvents ``EventsBatch``. ``parse_endpoint_request`` turns one into an
``EndpointRequest`` whose attributes are snake_case and ``None`` when the
client did not send the field; ``parse_endpoint_batch`` does the batch.
Both raise ``EndpointRequestError`` (a ``ValueError``) naming the field and
the problem; the batch prefixes ``Item[i]: `` so the client finds the item.

Rules (reference §3, §9): ChannelType is one of Pinpoint's 13 values;
Attributes and User.UserAttributes map names (≤ 50 characters) to lists of
≤ 50 strings of ≤ 100 characters; Metrics map names to finite numbers;
OptOut is ALL or NONE; EndpointStatus ACTIVE or INACTIVE; EffectiveDate is
ISO-8601 (kept as epoch ms); Location.Country is two ASCII letters (kept
upper-case), Latitude -90..90 and Longitude -180..180 (both rounded to one
decimal place, as Pinpoint does); the JSON of the endpoint is ≤ 15 KB.

Pinpoint caps attribute names at 250 per *app* across Attributes, Metrics and
UserAttributes. Lodestar applies that cap per *endpoint* (request and merged
profile): an app-wide count needs shared state the pure core and a
partitioned engine do not have, and the per-endpoint cap is what bounds the
size of each profile. Unknown fields (e.g. ``CohortId`` or ``CreationDate``
when a client writes back a GetEndpoint response) are ignored, like Pinpoint
does; ``null`` means "not sent".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from lodestar.core.timestamps import iso_millis, parse_timestamp

MAX_ATTRIBUTE_NAME_LENGTH = 50
MAX_ATTRIBUTE_VALUE_LENGTH = 100
MAX_VALUES_PER_ATTRIBUTE = 50
MAX_KEYS_PER_ENDPOINT = 250
MAX_ENDPOINT_BYTES = 15 * 1024
MAX_BATCH_ITEMS = 100

AttributeMap = Mapping[str, tuple[str, ...]]
MetricMap = Mapping[str, float]


class ChannelType(StrEnum):
    """Pinpoint's ChannelType (the symbols of ``lodestar.v1.ChannelType``)."""

    PUSH = "PUSH"
    GCM = "GCM"
    APNS = "APNS"
    APNS_SANDBOX = "APNS_SANDBOX"
    APNS_VOIP = "APNS_VOIP"
    APNS_VOIP_SANDBOX = "APNS_VOIP_SANDBOX"
    ADM = "ADM"
    SMS = "SMS"
    VOICE = "VOICE"
    EMAIL = "EMAIL"
    BAIDU = "BAIDU"
    CUSTOM = "CUSTOM"
    IN_APP = "IN_APP"


class OptOut(StrEnum):
    """ALL: the endpoint receives no messages."""

    NONE = "NONE"
    ALL = "ALL"


class EndpointStatus(StrEnum):
    """INACTIVE endpoints receive no messages."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class EndpointRequestError(ValueError):
    """An endpoint request is invalid; ``str(error)`` is the message for the client.

    ``field`` is the dotted Pinpoint path of the offending field (``""`` for
    the body as a whole), e.g. ``ChannelType``, ``Attributes.plan`` or
    ``Item[3].Location.Latitude``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Demographic:
    """Pinpoint EndpointDemographic; ``None`` means not reported."""

    app_version: str | None = None
    locale: str | None = None
    make: str | None = None
    model: str | None = None
    model_version: str | None = None
    platform: str | None = None
    platform_version: str | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class Location:
    """Pinpoint EndpointLocation; ``None`` means not reported."""

    city: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    postal_code: str | None = None
    region: str | None = None


DEMOGRAPHIC_NAMES: Mapping[str, str] = {
    "app_version": "AppVersion",
    "locale": "Locale",
    "make": "Make",
    "model": "Model",
    "model_version": "ModelVersion",
    "platform": "Platform",
    "platform_version": "PlatformVersion",
    "timezone": "Timezone",
}
"""snake_case attribute of ``Demographic`` → Pinpoint name."""

LOCATION_NAMES: Mapping[str, str] = {
    "city": "City",
    "country": "Country",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "postal_code": "PostalCode",
    "region": "Region",
}
"""snake_case attribute of ``Location`` → Pinpoint name."""


@dataclass(frozen=True)
class EndpointUser:
    """Pinpoint EndpointUser. In a request, absent and ``{}`` UserAttributes are alike."""

    user_id: str | None = None
    user_attributes: AttributeMap = field(default_factory=dict)


@dataclass(frozen=True)
class EndpointRequest:
    """A validated EndpointRequest; every attribute is ``None`` when not sent."""

    address: str | None = None
    channel_type: ChannelType | None = None
    attributes: AttributeMap | None = None
    demographic: Demographic | None = None
    effective_date: int | None = None
    endpoint_status: EndpointStatus | None = None
    location: Location | None = None
    metrics: MetricMap | None = None
    opt_out: OptOut | None = None
    request_id: str | None = None
    user: EndpointUser | None = None

    def to_pinpoint(self) -> dict[str, Any]:
        """The request as Pinpoint JSON (only the fields sent); parses back to ``self``."""
        out: dict[str, Any] = {}
        if self.address is not None:
            out["Address"] = self.address
        if self.attributes is not None:
            out["Attributes"] = attribute_map_to_json(self.attributes)
        if self.channel_type is not None:
            out["ChannelType"] = self.channel_type.value
        if self.demographic is not None:
            out["Demographic"] = sub_record_to_pinpoint(self.demographic, DEMOGRAPHIC_NAMES)
        if self.effective_date is not None:
            out["EffectiveDate"] = iso_millis(self.effective_date)
        if self.endpoint_status is not None:
            out["EndpointStatus"] = self.endpoint_status.value
        if self.location is not None:
            out["Location"] = sub_record_to_pinpoint(self.location, LOCATION_NAMES)
        if self.metrics is not None:
            out["Metrics"] = dict(self.metrics)
        if self.opt_out is not None:
            out["OptOut"] = self.opt_out.value
        if self.request_id is not None:
            out["RequestId"] = self.request_id
        if self.user is not None:
            user: dict[str, Any] = {}
            if self.user.user_id is not None:
                user["UserId"] = self.user.user_id
            if self.user.user_attributes:
                user["UserAttributes"] = attribute_map_to_json(self.user.user_attributes)
            out["User"] = user
        return out


@dataclass(frozen=True)
class EndpointBatchItem:
    """One ``Item`` of UpdateEndpointsBatch: the endpoint id and its request."""

    id: str
    request: EndpointRequest


def parse_endpoint_request(body: object) -> EndpointRequest:
    """Validate a decoded EndpointRequest / PublicEndpoint JSON object.

    Raises ``EndpointRequestError`` on the first invalid field.
    """
    if not isinstance(body, Mapping):
        raise EndpointRequestError("", "the endpoint must be a JSON object")
    attributes = _attribute_map(body.get("Attributes"), "Attributes")
    metrics = _metrics(body.get("Metrics"))
    user = _user(body.get("User"))
    keys = len(attributes or {}) + len(metrics or {}) + len(user.user_attributes if user else {})
    if keys > MAX_KEYS_PER_ENDPOINT:
        raise EndpointRequestError(
            "",
            f"an endpoint holds at most {MAX_KEYS_PER_ENDPOINT} Attributes, Metrics and "
            f"User.UserAttributes keys together; this one has {keys}",
        )
    request = EndpointRequest(
        address=_string(body.get("Address"), "Address"),
        channel_type=_enum(ChannelType, body.get("ChannelType"), "ChannelType"),
        attributes=attributes,
        demographic=_demographic(body.get("Demographic")),
        effective_date=_effective_date(body.get("EffectiveDate")),
        endpoint_status=_enum(EndpointStatus, body.get("EndpointStatus"), "EndpointStatus"),
        location=_location(body.get("Location")),
        metrics=metrics,
        opt_out=_enum(OptOut, body.get("OptOut"), "OptOut"),
        request_id=_string(body.get("RequestId"), "RequestId"),
        user=user,
    )
    size = json_size(request.to_pinpoint())
    if size > MAX_ENDPOINT_BYTES:
        raise EndpointRequestError(
            "",
            f"the endpoint is {size} bytes of JSON; at most {MAX_ENDPOINT_BYTES} (15 KB) "
            "are allowed",
        )
    return request


def parse_endpoint_batch(body: object) -> list[EndpointBatchItem]:
    """Validate an UpdateEndpointsBatch body ``{"Item": [EndpointBatchItem, …]}``.

    At most ``MAX_BATCH_ITEMS`` items, each with a valid ``Id``; the whole
    batch is rejected on the first bad item, whose index the message names.
    An empty ``Item`` list is valid and yields no items.
    """
    if not isinstance(body, Mapping):
        raise EndpointRequestError("", "the request body must be a JSON object with an Item list")
    items = body.get("Item")
    if not isinstance(items, list):
        raise EndpointRequestError("Item", "Item is required and must be a list of endpoints")
    if len(items) > MAX_BATCH_ITEMS:
        raise EndpointRequestError(
            "Item",
            f"UpdateEndpointsBatch takes at most {MAX_BATCH_ITEMS} items; "
            f"this request has {len(items)}",
        )
    parsed: list[EndpointBatchItem] = []
    for index, item in enumerate(items):
        where = f"Item[{index}]"
        try:
            if not isinstance(item, Mapping):
                raise EndpointRequestError("", "each item must be a JSON object")
            endpoint_id = parse_endpoint_id(item.get("Id"))
            parsed.append(EndpointBatchItem(endpoint_id, parse_endpoint_request(item)))
        except EndpointRequestError as bad:
            path = f"{where}.{bad.field}" if bad.field else where
            raise EndpointRequestError(path, f"{where}: {bad}") from None
    return parsed


def parse_endpoint_id(value: object, name: str = "Id") -> str:
    """An endpoint id: a non-empty string without ``$``, ``{`` or ``}`` (Pinpoint's rule)."""
    if not isinstance(value, str) or not value.strip():
        raise EndpointRequestError(name, f"{name} is required and must be a non-empty string")
    bad = sorted({c for c in value if c in "${}"})
    if bad:
        raise EndpointRequestError(
            name, f"{name} {value[:60]!r} must not contain {', '.join(repr(c) for c in bad)}"
        )
    return value


def merge_requests(first: EndpointRequest, second: EndpointRequest) -> EndpointRequest:
    """One request equivalent to applying ``first`` then ``second`` with ``apply_update``.

    Fields and map keys of ``second`` win; Demographic and Location merge
    per sub-field. EndpointStatus and EffectiveDate are ``second``'s alone,
    because every update resets them (to ACTIVE and to now) when absent.
    """
    user: EndpointUser | None = None
    if first.user is not None or second.user is not None:
        a = first.user or EndpointUser()
        b = second.user or EndpointUser()
        user = EndpointUser(
            user_id=b.user_id if b.user_id is not None else a.user_id,
            user_attributes={**a.user_attributes, **b.user_attributes},
        )
    return EndpointRequest(
        address=_second_or_first(first.address, second.address),
        channel_type=_second_or_first(first.channel_type, second.channel_type),
        attributes=_merge_maps(first.attributes, second.attributes),
        demographic=merge_sub_record(first.demographic, second.demographic),
        effective_date=second.effective_date,
        endpoint_status=second.endpoint_status,
        location=merge_sub_record(first.location, second.location),
        metrics=_merge_maps(first.metrics, second.metrics),
        opt_out=_second_or_first(first.opt_out, second.opt_out),
        request_id=_second_or_first(first.request_id, second.request_id),
        user=user,
    )


_R = TypeVar("_R", Demographic, Location)
_V = TypeVar("_V")


def merge_sub_record(old: _R | None, new: _R | None) -> _R | None:
    """Demographic/Location merge: sub-fields set in ``new`` replace those of ``old``."""
    if new is None:
        return old
    if old is None:
        return new
    changes = {f.name: getattr(new, f.name) for f in fields(new)}
    return replace(old, **{k: v for k, v in changes.items() if v is not None})


def sub_record_to_pinpoint(
    record: Demographic | Location, names: Mapping[str, str]
) -> dict[str, Any]:
    """The set sub-fields of a Demographic or Location under their Pinpoint names."""
    return {
        names[f.name]: getattr(record, f.name)
        for f in fields(record)
        if getattr(record, f.name) is not None
    }


def attribute_map_to_json(values: AttributeMap) -> dict[str, list[str]]:
    """An attribute map with JSON lists instead of tuples."""
    return {name: list(items) for name, items in values.items()}


def json_size(value: object) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (the measure of the 15 KB limit)."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _second_or_first(first: _V | None, second: _V | None) -> _V | None:
    return second if second is not None else first


def _merge_maps(
    first: Mapping[str, _V] | None, second: Mapping[str, _V] | None
) -> Mapping[str, _V] | None:
    if first is None and second is None:
        return None
    return {**(first or {}), **(second or {})}


def _string(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EndpointRequestError(name, f"{name} must be a string")
    return value


_E = TypeVar("_E", ChannelType, OptOut, EndpointStatus)


def _enum(kind: type[_E], value: object, name: str) -> _E | None:
    if value is None:
        return None
    if isinstance(value, str) and value in kind.__members__:
        return kind(value)
    shown = repr(value) if isinstance(value, str) else f"of type {type(value).__name__}"
    expected = ", ".join(member.value for member in kind)
    raise EndpointRequestError(name, f"unknown {name} {shown}; expected one of {expected}")


def _effective_date(value: object) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value, "EffectiveDate")
    except ValueError as bad:
        raise EndpointRequestError("EffectiveDate", str(bad)) from None


def _name(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EndpointRequestError(name, f"{name} names must be non-empty strings")
    if len(value) > MAX_ATTRIBUTE_NAME_LENGTH:
        raise EndpointRequestError(
            name,
            f"{name} name {value[:60]!r} is longer than {MAX_ATTRIBUTE_NAME_LENGTH} characters",
        )
    return value


def _attribute_map(value: object, name: str) -> AttributeMap | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EndpointRequestError(name, f"{name} must be an object mapping names to string lists")
    out: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        key = _name(key, name)
        path = f"{name}.{key}"
        if not isinstance(items, list | tuple):
            raise EndpointRequestError(path, f"{path} must be a list of strings")
        if len(items) > MAX_VALUES_PER_ATTRIBUTE:
            raise EndpointRequestError(
                path,
                f"{path} has {len(items)} values; at most {MAX_VALUES_PER_ATTRIBUTE} are allowed",
            )
        for item in items:
            if not isinstance(item, str):
                raise EndpointRequestError(path, f"{path} must be a list of strings")
            if len(item) > MAX_ATTRIBUTE_VALUE_LENGTH:
                raise EndpointRequestError(
                    path,
                    f"{path} has a value longer than {MAX_ATTRIBUTE_VALUE_LENGTH} characters: "
                    f"{item[:40]!r}…",
                )
        out[key] = tuple(items)
    return out


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EndpointRequestError(name, f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise EndpointRequestError(name, f"{name} must be a finite number")
    return number


def _metrics(value: object) -> MetricMap | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EndpointRequestError("Metrics", "Metrics must be an object mapping names to numbers")
    return {
        key: _number(item, f"Metrics.{key}")
        for key, item in ((_name(k, "Metrics"), v) for k, v in value.items())
    }


def _object(value: object, name: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise EndpointRequestError(name, f"{name} must be an object")
    return value


def _demographic(value: object) -> Demographic | None:
    body = _object(value, "Demographic")
    if body is None:
        return None
    return Demographic(
        **{
            attr: _string(body.get(pinpoint), f"Demographic.{pinpoint}")
            for attr, pinpoint in DEMOGRAPHIC_NAMES.items()
        }
    )


def _coordinate(value: object, name: str, limit: float) -> float | None:
    if value is None:
        return None
    number = _number(value, name)
    if not -limit <= number <= limit:
        raise EndpointRequestError(name, f"{name} {number} is outside -{limit:g}..{limit:g}")
    return round(number, 1)


def _location(value: object) -> Location | None:
    body = _object(value, "Location")
    if body is None:
        return None
    country = _string(body.get("Country"), "Location.Country")
    if country is not None:
        if len(country) != 2 or not (country.isascii() and country.isalpha()):
            raise EndpointRequestError(
                "Location.Country",
                f"Location.Country {country[:20]!r} must be a two-letter ISO 3166-1 alpha-2 code",
            )
        country = country.upper()
    return Location(
        city=_string(body.get("City"), "Location.City"),
        country=country,
        latitude=_coordinate(body.get("Latitude"), "Location.Latitude", 90.0),
        longitude=_coordinate(body.get("Longitude"), "Location.Longitude", 180.0),
        postal_code=_string(body.get("PostalCode"), "Location.PostalCode"),
        region=_string(body.get("Region"), "Location.Region"),
    )


def _user(value: object) -> EndpointUser | None:
    body = _object(value, "User")
    if body is None:
        return None
    attributes = _attribute_map(body.get("UserAttributes"), "User.UserAttributes")
    return EndpointUser(
        user_id=_string(body.get("UserId"), "User.UserId"),
        user_attributes=attributes or {},
    )
