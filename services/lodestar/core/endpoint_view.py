"""Pinpoint's ``EndpointResponse`` from the endpoint of a ``lodestar.v1.EndpointChange``.

The read model stores what ``GetEndpoint`` answers; this is the one place
that turns the Avro endpoint (snake_case, epoch millis) into Pinpoint's shape
(PascalCase, ISO-8601 dates, ``CohortId`` as a string). Absent optional
fields are left out, as Pinpoint does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestar.core.endpoint_request import DEMOGRAPHIC_NAMES, LOCATION_NAMES
from lodestar.core.timestamps import iso_millis, parse_timestamp


def _sub_record(value: Mapping[str, Any] | None, names: Mapping[str, str]) -> dict[str, Any]:
    if not value:
        return {}
    return {
        pinpoint: value[ours] for ours, pinpoint in names.items() if value.get(ours) is not None
    }


def endpoint_response(app_id: str, endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """``EndpointResponse`` for the ``endpoint`` record of an EndpointChange."""
    out: dict[str, Any] = {"ApplicationId": app_id, "Id": endpoint["id"]}
    if endpoint.get("address") is not None:
        out["Address"] = endpoint["address"]
    if endpoint.get("channel_type") is not None:
        out["ChannelType"] = endpoint["channel_type"]
    out["Attributes"] = {k: list(v) for k, v in (endpoint.get("attributes") or {}).items()}
    out["CohortId"] = str(endpoint["cohort_id"])
    out["CreationDate"] = iso_millis(endpoint["creation_date"])
    demographic = _sub_record(endpoint.get("demographic"), DEMOGRAPHIC_NAMES)
    if demographic:
        out["Demographic"] = demographic
    if endpoint.get("effective_date") is not None:
        out["EffectiveDate"] = iso_millis(endpoint["effective_date"])
    out["EndpointStatus"] = endpoint.get("endpoint_status") or "ACTIVE"
    location = _sub_record(endpoint.get("location"), LOCATION_NAMES)
    if location:
        out["Location"] = location
    out["Metrics"] = dict(endpoint.get("metrics") or {})
    out["OptOut"] = endpoint.get("opt_out") or "NONE"
    if endpoint.get("request_id") is not None:
        out["RequestId"] = endpoint["request_id"]
    user = endpoint.get("user") or {}
    user_out: dict[str, Any] = {}
    if user.get("user_id") is not None:
        user_out["UserId"] = user["user_id"]
    if user.get("user_attributes"):
        user_out["UserAttributes"] = {k: list(v) for k, v in user["user_attributes"].items()}
    if user_out:
        out["User"] = user_out
    return out


def endpoint_record(response: Mapping[str, Any]) -> dict[str, Any]:
    """The Avro ``Endpoint`` record (snake_case, epoch millis) for an ``EndpointResponse``
    as the read model stores it: the inverse of ``endpoint_response``."""
    out: dict[str, Any] = {
        "id": response["Id"],
        "channel_type": response.get("ChannelType"),
        "address": response.get("Address"),
        "attributes": {k: list(v) for k, v in (response.get("Attributes") or {}).items()},
        "metrics": {k: float(v) for k, v in (response.get("Metrics") or {}).items()},
        "demographic": _from_pinpoint(response.get("Demographic"), DEMOGRAPHIC_NAMES),
        "location": _from_pinpoint(response.get("Location"), LOCATION_NAMES),
        "opt_out": response.get("OptOut") or "NONE",
        "endpoint_status": response.get("EndpointStatus") or "ACTIVE",
        "effective_date": _millis(response.get("EffectiveDate")),
        "creation_date": _millis(response.get("CreationDate")) or 0,
        "cohort_id": int(response.get("CohortId") or 0),
        "request_id": response.get("RequestId"),
        "user": None,
    }
    user = response.get("User") or {}
    if user:
        out["user"] = {
            "user_id": user.get("UserId"),
            "user_attributes": {k: list(v) for k, v in (user.get("UserAttributes") or {}).items()},
        }
    return out


def _from_pinpoint(value: Mapping[str, Any] | None, names: Mapping[str, str]
                   ) -> dict[str, Any] | None:
    if not value:
        return None
    return {ours: value.get(pinpoint) for ours, pinpoint in names.items()}


def _millis(value: object) -> int | None:
    if value is None:
        return None
    return parse_timestamp(value, "date")
