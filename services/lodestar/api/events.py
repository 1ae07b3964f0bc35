"""``POST /v1/apps/{application-id}/events`` — Pinpoint's PutEvents."""

from __future__ import annotations

import json
import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.event_publisher import EventPublisher
from lodestar.core.endpoint_commands import upsert_command
from lodestar.core.put_events import RequestError, parse_put_events

log = logging.getLogger(__name__)

MAX_PUT_EVENTS_BYTES = 4 * 1024 * 1024


async def put_events(request: Request) -> Response:
    """Validate the EventsRequest, publish the good events, answer per item (202)."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    raw = await request.body()
    if len(raw) > MAX_PUT_EVENTS_BYTES:
        return error_response(
            ErrorType.PAYLOAD_TOO_LARGE,
            f"A PutEvents body is at most 4 MB; this one is {len(raw)} bytes. "
            "Send fewer events per request.",
            request_id,
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error_response(
            ErrorType.BAD_REQUEST, f"The body is not valid JSON: {exc}", request_id
        )
    try:
        outcome = parse_put_events(app_id, body, arrival_ms=int(time.time() * 1000))
    except RequestError as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)

    publisher: EventPublisher = request.app.state.publisher
    now_ms = int(time.time() * 1000)
    upserts = [
        upsert_command(app_id, endpoint_id, endpoint, f"{request_id}:{endpoint_id}", now_ms)
        for endpoint_id, endpoint in outcome.endpoint_upserts.items()
    ]
    try:
        await publisher.publish_commands(upserts)
        await publisher.publish(outcome.accepted)
    except Exception:
        log.exception("publishing %d events failed", len(outcome.accepted))
        return error_response(
            ErrorType.INTERNAL,
            "The events could not be stored in Kafka; nothing was accepted. Retry the request.",
            request_id,
        )
    return JSONResponse(
        outcome.as_pinpoint(), status_code=202, headers={"x-amzn-RequestId": request_id}
    )
