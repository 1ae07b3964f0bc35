"""Pinpoint-shaped error answers: ``{"Message", "RequestID"}`` plus ``x-amzn-ErrorType``.

boto3 and Amplify read the error name from the ``x-amzn-ErrorType`` header
and the text from ``Message``; every handler answers errors through here.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from starlette.responses import JSONResponse


class ErrorType(StrEnum):
    """Pinpoint's exception names, with their HTTP status."""

    BAD_REQUEST = "BadRequestException"
    FORBIDDEN = "ForbiddenException"
    NOT_FOUND = "NotFoundException"
    METHOD_NOT_ALLOWED = "MethodNotAllowedException"
    PAYLOAD_TOO_LARGE = "PayloadTooLargeException"
    TOO_MANY_REQUESTS = "TooManyRequestsException"
    INTERNAL = "InternalServerErrorException"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS = {
    ErrorType.BAD_REQUEST: 400,
    ErrorType.FORBIDDEN: 403,
    ErrorType.NOT_FOUND: 404,
    ErrorType.METHOD_NOT_ALLOWED: 405,
    ErrorType.PAYLOAD_TOO_LARGE: 413,
    ErrorType.TOO_MANY_REQUESTS: 429,
    ErrorType.INTERNAL: 500,
}


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_response(kind: ErrorType, message: str, request_id: str | None = None) -> JSONResponse:
    """An error answer in Pinpoint's shape."""
    rid = request_id or new_request_id()
    return JSONResponse(
        {"Message": message, "RequestID": rid},
        status_code=kind.status,
        headers={"x-amzn-ErrorType": kind.value, "x-amzn-RequestId": rid},
    )
