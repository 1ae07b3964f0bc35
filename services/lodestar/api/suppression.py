"""An application's suppression list (Lodestar extension; docs/feedback-and-suppression.md).

- ``GET /v1/apps/{application-id}/suppressed-destinations?page-size=&token=&channel=&reason=``
  → ``{"SuppressedDestinationsResponse": {"Item": [...], "NextToken"}}``, ordered by
  channel then address;
- ``GET …/suppressed-destinations/{channel}/{address}`` → ``{"SuppressedDestination": …}``
  or 404;
- ``PUT …`` adds the address with reason MANUAL (an existing entry keeps its reason)
  → ``{"SuppressedDestination": …}`` as it now is;
- ``DELETE …`` removes it → ``{"SuppressedDestination": …}`` as it was, or 404.

Items are in the SES/Pinpoint style: ``ApplicationId``, ``Channel``, ``Address``,
``Reason`` (BOUNCE, COMPLAINT, MANUAL), ``CreationDate``, ``LastUpdateTime``,
``Attributes`` {``MessageId``, ``FeedbackId``} of the report that added it.
Authenticated like every ``/v1`` route.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import decode_token, encode_token, iso
from lodestar.control.suppression import Suppression, SuppressionRepository
from lodestar.core.delivery_events import Channel
from lodestar.core.email_feedback import SuppressionReason, email_address

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_ADDRESS_LENGTH = 1024
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
CHANNELS = tuple(c.value for c in Channel)
REASONS = tuple(r.value for r in SuppressionReason)


class _BadRequest(ValueError):
    pass


def destination_response(s: Suppression) -> dict[str, Any]:
    """One ``SuppressedDestination``."""
    attributes = {k: v for k, v in (("MessageId", s.source_message_id),
                                    ("FeedbackId", s.feedback_id)) if v is not None}
    return {
        "ApplicationId": s.app_id,
        "Channel": s.channel.value,
        "Address": s.address,
        "Reason": s.reason.value,
        "CreationDate": iso(s.created_at),
        "LastUpdateTime": iso(s.updated_at),
        "Attributes": attributes,
    }


def _ok(body: dict[str, Any], request_id: str) -> Response:
    return JSONResponse(body, headers={"x-amzn-RequestId": request_id})


def _repo(request: Request) -> SuppressionRepository:
    return SuppressionRepository(request.app.state.pool)


def _channel(raw: str) -> Channel:
    try:
        return Channel(raw.upper())
    except ValueError:
        raise _BadRequest(f"channel {raw!r} is not one of {', '.join(CHANNELS)}.") from None


def _address(channel: Channel, raw: str) -> str:
    """The address as stored; ``_BadRequest`` when it cannot be one on ``channel``."""
    address = raw.strip()
    if not address or len(address) > MAX_ADDRESS_LENGTH:
        raise _BadRequest(f"The address must be 1 to {MAX_ADDRESS_LENGTH} characters.")
    if channel is Channel.EMAIL:
        parsed = email_address(address)
        if parsed is None or parsed != address.lower():
            raise _BadRequest(f"{raw!r} is not an email address (a bare user@domain).")
        return parsed
    if channel in (Channel.SMS, Channel.VOICE) and not E164.fullmatch(address):
        raise _BadRequest(f"{raw!r} is not an E.164 phone number such as +14155550100.")
    return address


def _target(request: Request) -> tuple[str, Channel, str]:
    channel = _channel(request.path_params["channel"])
    return (request.path_params["application_id"], channel,
            _address(channel, request.path_params["address"]))


def _not_suppressed(app_id: str, channel: Channel, address: str, request_id: str) -> Response:
    return error_response(
        ErrorType.NOT_FOUND,
        f"{address} is not on the {channel.value} suppression list of application {app_id}.",
        request_id)


async def get_suppressed_destinations(request: Request) -> Response:
    """List the application's suppressed destinations, a page at a time."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    query = request.query_params
    try:
        raw_size = query.get("page-size")
        try:
            size = DEFAULT_PAGE_SIZE if raw_size is None else int(raw_size)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _BadRequest(f"page-size must be a whole number from 1 to {MAX_PAGE_SIZE}, "
                              f"got {raw_size!r}.")
        after = None
        token = query.get("token")
        if token:
            try:
                channel, sep, address = decode_token(token).partition("|")
                if not sep or channel not in CHANNELS or not address:
                    raise ValueError(token)
            except ValueError:
                raise _BadRequest("The token is not valid; pass the NextToken of a previous "
                                  "answer.") from None
            after = (channel, address)
        only_channel = _channel(query["channel"]) if query.get("channel") else None
        reason = query.get("reason")
        if reason is not None and reason.upper() not in REASONS:
            raise _BadRequest(f"reason {reason!r} is not one of {', '.join(REASONS)}.")
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    page = await _repo(request).list_destinations(
        app_id, size + 1, after, channel=only_channel,
        reason=None if reason is None else reason.upper())
    body: dict[str, Any] = {"Item": [destination_response(s) for s in page[:size]]}
    if len(page) > size:
        last = page[size - 1]
        body["NextToken"] = encode_token(f"{last.channel.value}|{last.address}")
    return _ok({"SuppressedDestinationsResponse": body}, request_id)


async def get_suppressed_destination(request: Request) -> Response:
    request_id = new_request_id()
    try:
        app_id, channel, address = _target(request)
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    found = await _repo(request).get(app_id, channel, address)
    if found is None:
        return _not_suppressed(app_id, channel, address, request_id)
    return _ok({"SuppressedDestination": destination_response(found)}, request_id)


async def put_suppressed_destination(request: Request) -> Response:
    """Add the address (reason MANUAL); an existing entry keeps its reason."""
    request_id = new_request_id()
    try:
        app_id, channel, address = _target(request)
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    added = await _repo(request).add(app_id, channel, address, SuppressionReason.MANUAL)
    return _ok({"SuppressedDestination": destination_response(added.suppression)}, request_id)


async def delete_suppressed_destination(request: Request) -> Response:
    request_id = new_request_id()
    try:
        app_id, channel, address = _target(request)
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    removed = await _repo(request).remove(app_id, channel, address)
    if removed is None:
        return _not_suppressed(app_id, channel, address, request_id)
    return _ok({"SuppressedDestination": destination_response(removed)}, request_id)


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """These routes' OpenAPI path items and component schemas (read by ``api.openapi``)."""
    refs = "#/components/responses/"
    rid = {"x-amzn-RequestId": {"$ref": "#/components/headers/RequestId"}}
    who = "Who may call it: an admin key, or a key of this application."
    app = {"name": "application-id", "in": "path", "required": True,
           "description": "The application (project) id.", "schema": {"type": "string"}}
    target = [app,
              {"name": "channel", "in": "path", "required": True,
               "description": "The channel (any case).",
               "schema": {"type": "string", "enum": list(CHANNELS)}},
              {"name": "address", "in": "path", "required": True,
               "description": "The address, URL-encoded: an email address (matched "
               "case-insensitively), an E.164 phone number for SMS and VOICE, a token for "
               "PUSH, a URL or id for CUSTOM.",
               "schema": {"type": "string", "minLength": 1, "maxLength": MAX_ADDRESS_LENGTH}}]
    one = {"200": {"description": "The destination.", "headers": rid,
                   "content": {"application/json": {"schema": {
                       "type": "object", "required": ["SuppressedDestination"],
                       "properties": {"SuppressedDestination": {
                           "$ref": "#/components/schemas/SuppressedDestination"}}}}}},
           "400": {"$ref": refs + "BadRequest",
                   "description": "Unknown channel, or not an address of that channel."},
           "403": {"$ref": refs + "Forbidden"}}
    missing = {"404": {"$ref": refs + "NotFound", "description": "The address is not "
                       "suppressed on that channel (or no such application)."},
               "500": {"$ref": refs + "InternalServerError"}}

    def op(op_id: str, summary: str, text: str, responses: dict[str, Any],
           params: list[dict[str, Any]]) -> dict[str, Any]:
        return {"operationId": op_id, "tags": ["Suppression"],
                "summary": f"{summary} (Lodestar extension)",
                "description": f"Lodestar extension, not a Pinpoint operation. {text} {who}",
                "x-lodestar-extension": True, "parameters": params, "responses": responses}

    schemas = {"SuppressedDestination": {
        "description": "Lodestar extension. An address no sender of the application reaches "
        "on a channel.",
        "type": "object",
        "required": ["ApplicationId", "Channel", "Address", "Reason", "CreationDate",
                     "LastUpdateTime", "Attributes"],
        "properties": {
            "ApplicationId": {"type": "string"},
            "Channel": {"type": "string", "enum": list(CHANNELS)},
            "Address": {"type": "string", "description": "As stored: email lower-cased."},
            "Reason": {"type": "string", "enum": list(REASONS),
                       "description": "Why: the first reason it was added for, unless a "
                       "complaint came later."},
            "CreationDate": {"type": "string", "format": "date-time"},
            "LastUpdateTime": {"type": "string", "format": "date-time",
                               "description": "When it was last added again."},
            "Attributes": {"type": "object", "properties": {
                "MessageId": {"type": "string"}, "FeedbackId": {"type": "string"}},
                "description": "The message and feedback ids of the report that added it."},
        },
    }}
    listing = op(
        "ListSuppressedDestinations", "List suppressed destinations",
        "The application's suppression list ordered by channel then address, a page at a "
        "time.",
        {"200": {"description": "A page of destinations.", "headers": rid,
                 "content": {"application/json": {"schema": {
                     "type": "object", "required": ["SuppressedDestinationsResponse"],
                     "properties": {"SuppressedDestinationsResponse": {
                         "type": "object", "required": ["Item"],
                         "properties": {
                             "Item": {"type": "array", "items": {
                                 "$ref": "#/components/schemas/SuppressedDestination"}},
                             "NextToken": {"type": "string", "description": "Pass as "
                                           "`token` for the next page; absent on the last."},
                         }}}}}}},
         "400": {"$ref": refs + "BadRequest",
                 "description": "A bad page-size, token, channel or reason."},
         "403": {"$ref": refs + "Forbidden"},
         "404": {"$ref": refs + "NotFound", "description": "No such application."},
         "500": {"$ref": refs + "InternalServerError"}},
        [app,
         {"name": "page-size", "in": "query", "required": False,
          "schema": {"type": "string", "pattern": "^[0-9]+$"},
          "description": f"Items per page, 1 to {MAX_PAGE_SIZE} (default "
          f"{DEFAULT_PAGE_SIZE})."},
         {"name": "token", "in": "query", "required": False, "schema": {"type": "string"},
          "description": "The NextToken of the previous page."},
         {"name": "channel", "in": "query", "required": False,
          "schema": {"type": "string", "enum": list(CHANNELS)},
          "description": "Only this channel."},
         {"name": "reason", "in": "query", "required": False,
          "schema": {"type": "string", "enum": list(REASONS)},
          "description": "Only this reason."}])
    item = {
        "get": op("GetSuppressedDestination", "Get a suppressed destination",
                  "Whether the address is suppressed on the channel, and why.",
                  {**one, **missing}, target),
        "put": op("PutSuppressedDestination", "Suppress a destination",
                  "Adds the address with reason MANUAL; an address already suppressed keeps "
                  "its reason (its LastUpdateTime moves). No body.",
                  {**one, "404": {"$ref": refs + "NotFound",
                                  "description": "No such application."},
                   "500": {"$ref": refs + "InternalServerError"}}, target),
        "delete": op("DeleteSuppressedDestination", "Remove a suppressed destination",
                     "Removes the address from the list; answers the entry as it was. Senders "
                     "reach it again.", {**one, **missing}, target),
    }
    base = "/v1/apps/{application-id}/suppressed-destinations"
    return {base: {"get": listing}, f"{base}/{{channel}}/{{address}}": item}, schemas
