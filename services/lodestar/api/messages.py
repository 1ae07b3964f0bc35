"""SendMessages and SendUsersMessages: ``POST /v1/apps/{app}/messages`` and ``…/users-messages``.

The answer comes once every queued recipient's SendRequest is acknowledged by
Kafka, not after the provider answered: queued recipients are SUCCESSFUL
(200, "Queued") and their outcome follows on ``lodestar.deliveries`` under the
returned MessageId. Recipients that cannot be sent answer at once with
Pinpoint's status (OPT_OUT, PERMANENT_FAILURE, DUPLICATE); see
``lodestar.core.send_messages``. A malformed request answers 400 listing every
problem, and nothing is queued.
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
from lodestar.core.send_messages import (
    Planned,
    SendRequestError,
    parse_message_request,
    parse_users_request,
    plan_message_request,
    plan_users_request,
)


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SendRequestError([f"the body is not valid JSON: {exc}"]) from None


async def _queue(request: Request, planned: list[Planned]) -> None:
    publisher: EventPublisher = request.app.state.publisher
    await publisher.publish_sends([p.send for p in planned if p.send is not None])


async def send_messages(request: Request) -> Response:
    """POST /v1/apps/{application-id}/messages → 200 MessageResponse."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        parsed = parse_message_request(await _body(request))
    except SendRequestError as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    found = await read_model.endpoints_by_ids(request.app.state.pool, app_id, parsed.endpoints)
    by_address, by_endpoint = plan_message_request(parsed, found, app_id=app_id,
                                                   request_id=request_id, now_ms=_now_ms())
    await _queue(request, [*by_address.values(), *by_endpoint.values()])
    body: dict[str, Any] = {"ApplicationId": app_id, "RequestId": request_id}
    if by_address:
        body["Result"] = {a: p.result.to_json() for a, p in by_address.items()}
    if by_endpoint:
        body["EndpointResult"] = {e: p.result.to_json() for e, p in by_endpoint.items()}
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id})


async def send_users_messages(request: Request) -> Response:
    """POST /v1/apps/{application-id}/users-messages → 200 SendUsersMessageResponse."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        parsed = parse_users_request(await _body(request))
    except SendRequestError as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    endpoints = await read_model.endpoints_of_users(request.app.state.pool, app_id,
                                                    parsed.users)
    planned = plan_users_request(parsed, endpoints, app_id=app_id, request_id=request_id,
                                 now_ms=_now_ms())
    await _queue(request, [p for per_user in planned.values() for p in per_user.values()])
    return JSONResponse(
        {"ApplicationId": app_id, "RequestId": request_id,
         "Result": {u: {e: p.result.to_json() for e, p in per.items()}
                    for u, per in planned.items()}},
        headers={"x-amzn-RequestId": request_id})
