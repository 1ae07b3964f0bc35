"""Endpoints and users: Pinpoint's endpoint operations.

Writes (UpdateEndpoint, UpdateEndpointsBatch, DeleteEndpoint,
DeleteUserEndpoints, RemoveAttributes) validate in ``lodestar.core`` and
publish ``EndpointCommand`` records; the engine applies them in order per
endpoint. Reads (GetEndpoint, GetUserEndpoints) answer from the PostgreSQL
read model the engine's projection keeps (readable within about a second of
the engine applying a change; docs/endpoints.md).

Cross-partition rules that need other endpoints are enforced here, against
the read model: at most 15 endpoints per UserId, and an endpoint taking an
Address another endpoint of the app holds makes that one INACTIVE.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.event_publisher import EventPublisher
from lodestar.control import endpoint_read_model as read_model
from lodestar.core.endpoint_commands import (
    AttributeType,
    delete_command,
    remove_attributes_command,
    upsert_command,
)
from lodestar.core.endpoint_request import (
    EndpointRequest,
    EndpointRequestError,
    parse_endpoint_batch,
    parse_endpoint_id,
    parse_endpoint_request,
)
from lodestar.core.endpoint_rules import address_takeover, check_user_capacity


def _now_ms() -> int:
    return int(time.time() * 1000)


def _accepted(request_id: str) -> Response:
    return JSONResponse(
        {"Message": "Accepted", "RequestID": request_id},
        status_code=202,
        headers={"x-amzn-RequestId": request_id},
    )


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EndpointRequestError("", f"the body is not valid JSON: {exc}") from None


def _bad_request(exc: Exception, request_id: str) -> Response:
    return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)


def _not_found(what: str, request_id: str) -> Response:
    return error_response(ErrorType.NOT_FOUND, f"Resource not found: {what}", request_id)


async def _address_and_user_commands(
    request: Request, app_id: str, items: list[tuple[str, EndpointRequest]], request_id: str
) -> list[dict[str, Any]]:
    """DEACTIVATE commands for endpoints whose Address is taken; raises on the user cap.

    Two read-model queries per request, whatever the number of items.
    """
    pool = request.app.state.pool
    adding: dict[str, set[str]] = {}
    for endpoint_id, item in items:
        if item.user is not None and item.user.user_id:
            adding.setdefault(item.user.user_id, set()).add(endpoint_id)
    if adding:
        existing = await read_model.endpoint_ids_of_users(pool, app_id, adding)
        for user_id, endpoint_ids in adding.items():
            check_user_capacity(user_id, existing.get(user_id, []), endpoint_ids)
    taken = [(e, i.address) for e, i in items if i.address is not None]
    if not taken:
        return []
    holders = await read_model.holders_of_addresses(pool, app_id, [a for _, a in taken])
    now = _now_ms()
    commands: list[dict[str, Any]] = []
    for endpoint_id, address in taken:
        commands += address_takeover(app_id, endpoint_id, holders.get(address, []), request_id, now)
    return commands


async def update_endpoint(request: Request) -> Response:
    """PUT /v1/apps/{application-id}/endpoints/{endpoint-id} → 202 MessageBody."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        endpoint_id = parse_endpoint_id(request.path_params["endpoint_id"], "endpoint-id")
        item = parse_endpoint_request(await _json_body(request))
        commands = await _address_and_user_commands(
            request, app_id, [(endpoint_id, item)], request_id
        )
    except EndpointRequestError as exc:
        return _bad_request(exc, request_id)
    upsert = upsert_command(app_id, endpoint_id, item.to_pinpoint(), request_id, _now_ms())
    publisher: EventPublisher = request.app.state.publisher
    await publisher.publish_commands([upsert, *commands])
    return _accepted(request_id)


async def update_endpoints_batch(request: Request) -> Response:
    """PUT /v1/apps/{application-id}/endpoints with {"Item": [...]} → 202 MessageBody."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        items = parse_endpoint_batch(await _json_body(request))
        pairs = [(i.id, i.request) for i in items]
        commands = await _address_and_user_commands(request, app_id, pairs, request_id)
    except EndpointRequestError as exc:
        return _bad_request(exc, request_id)
    now = _now_ms()
    upserts = [
        upsert_command(app_id, i.id, i.request.to_pinpoint(), f"{request_id}:{n}", now)
        for n, i in enumerate(items)
    ]
    await request.app.state.publisher.publish_commands([*upserts, *commands])
    return _accepted(request_id)


async def get_endpoint(request: Request) -> Response:
    """GET /v1/apps/{application-id}/endpoints/{endpoint-id} → EndpointResponse."""
    request_id = new_request_id()
    app_id, endpoint_id = request.path_params["application_id"], request.path_params["endpoint_id"]
    found = await read_model.get_endpoint(request.app.state.pool, app_id, endpoint_id)
    if found is None:
        return _not_found(f"endpoint {endpoint_id}", request_id)
    return JSONResponse(found, headers={"x-amzn-RequestId": request_id})


async def delete_endpoint(request: Request) -> Response:
    """DELETE /v1/apps/{application-id}/endpoints/{endpoint-id} → 202 EndpointResponse."""
    request_id = new_request_id()
    app_id, endpoint_id = request.path_params["application_id"], request.path_params["endpoint_id"]
    found = await read_model.get_endpoint(request.app.state.pool, app_id, endpoint_id)
    if found is None:
        return _not_found(f"endpoint {endpoint_id}", request_id)
    command = delete_command(app_id, endpoint_id, request_id, _now_ms())
    await request.app.state.publisher.publish_commands([command])
    return JSONResponse(found, status_code=202, headers={"x-amzn-RequestId": request_id})


async def get_user_endpoints(request: Request) -> Response:
    """GET /v1/apps/{application-id}/users/{user-id} → {"Item": [EndpointResponse…]}."""
    request_id = new_request_id()
    app_id, user_id = request.path_params["application_id"], request.path_params["user_id"]
    items = await read_model.user_endpoints(request.app.state.pool, app_id, user_id)
    if not items:
        return _not_found(f"user {user_id}", request_id)
    return JSONResponse({"Item": items}, headers={"x-amzn-RequestId": request_id})


async def delete_user_endpoints(request: Request) -> Response:
    """DELETE /v1/apps/{application-id}/users/{user-id} → 202 {"Item": [deleted…]}."""
    request_id = new_request_id()
    app_id, user_id = request.path_params["application_id"], request.path_params["user_id"]
    items = await read_model.user_endpoints(request.app.state.pool, app_id, user_id)
    if not items:
        return _not_found(f"user {user_id}", request_id)
    now = _now_ms()
    commands = [delete_command(app_id, e["Id"], f"{request_id}:{e['Id']}", now) for e in items]
    await request.app.state.publisher.publish_commands(commands)
    return JSONResponse({"Item": items}, status_code=202, headers={"x-amzn-RequestId": request_id})


async def remove_attributes(request: Request) -> Response:
    """PUT /v1/apps/{application-id}/attributes/{attribute-type} {"Blacklist": [...]}.

    Answers Pinpoint's AttributesResource: ApplicationId, AttributeType and the
    attribute names removed (``Attributes``).
    """
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    raw_type = request.path_params["attribute_type"]
    try:
        attribute_type = AttributeType(raw_type)
    except ValueError:
        expected = ", ".join(t.value for t in AttributeType)
        return error_response(
            ErrorType.BAD_REQUEST,
            f"unknown attribute-type {raw_type!r}; expected one of {expected}",
            request_id,
        )
    try:
        body = await _json_body(request)
    except EndpointRequestError as exc:
        return _bad_request(exc, request_id)
    names = body.get("Blacklist") if isinstance(body, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        return error_response(
            ErrorType.BAD_REQUEST,
            "Blacklist is required and must be a list of attribute names",
            request_id,
        )
    command = remove_attributes_command(app_id, attribute_type, names, request_id, _now_ms())
    await request.app.state.publisher.publish_commands([command])
    return JSONResponse(
        {"ApplicationId": app_id, "AttributeType": raw_type,
         "Attributes": command["attribute_names"]},
        headers={"x-amzn-RequestId": request_id},
    )
