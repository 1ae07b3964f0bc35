"""Pinpoint's Apps operations: CreateApp, GetApps, GetApp, DeleteApp.

Shapes follow botocore's ``pinpoint`` model: the body *is* the payload
structure (``CreateApplicationRequest`` in, ``ApplicationResponse`` or
``ApplicationsResponse`` out, no wrapper key). CreateApp also answers the
new application's first API key in two extra headers,
``x-lodestar-access-key-id`` and ``x-lodestar-secret-access-key`` (boto3
ignores headers it does not know; they are in ``ResponseMetadata``).
Who may call what is decided by ``lodestar.api.auth`` before these run.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api import paging
from lodestar.api.auth import Authenticator
from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import iso
from lodestar.control.apps import App, AppsRepository, Cursor
from lodestar.settings import Settings

ACCESS_KEY_HEADER = "x-lodestar-access-key-id"
SECRET_KEY_HEADER = "x-lodestar-secret-access-key"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


def application_arn(settings: Settings, app_id: str) -> str:
    return f"arn:aws:mobiletargeting:{settings.region}:{settings.account_id}:apps/{app_id}"


def application_response(settings: Settings, app: App) -> dict[str, Any]:
    """An ``ApplicationResponse``."""
    return {
        "Arn": application_arn(settings, app.id),
        "Id": app.id,
        "Name": app.name,
        "tags": dict(app.tags),
        "CreationDate": iso(app.created_at),
    }


def encode_token(cursor: Cursor) -> str:
    return paging.created_token(cursor.created_at, cursor.app_id)


def decode_token(token: str) -> Cursor:
    """The cursor in a ``NextToken``; ``ValueError`` when it is not one of ours."""
    return Cursor(*paging.decode_created_token(token))


def parse_create_request(body: Any) -> tuple[str, dict[str, str]]:
    """``(Name, tags)`` of a ``CreateApplicationRequest``; ``ValueError`` says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object: {\"Name\": \"…\", \"tags\": {…}}.")
    name = body.get("Name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("Name is required: a non-empty string naming the application.")
    tags = body.get("tags", {})
    if tags is None:
        tags = {}
    if not isinstance(tags, dict):
        raise ValueError("tags must be an object of string keys to string values.")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"An application has at most {MAX_TAGS} tags; got {len(tags)}.")
    for key, value in tags.items():
        if not isinstance(value, str):
            raise ValueError(f"tags[{key!r}] must be a string.")
        if not 1 <= len(key) <= MAX_TAG_KEY:
            raise ValueError(f"A tag key has 1-{MAX_TAG_KEY} characters; got {key!r}.")
        if len(value) > MAX_TAG_VALUE:
            raise ValueError(f"tags[{key!r}] has more than {MAX_TAG_VALUE} characters.")
    return name, dict(tags)


def _parts(request: Request) -> tuple[Settings, AppsRepository, Authenticator]:
    state = request.app.state
    return state.settings, state.apps, state.authenticator


async def create_application(request: Request) -> Response:
    """CreateApp: ``POST /v1/apps`` → 201 ``ApplicationResponse`` (+ the first key's headers)."""
    request_id = new_request_id()
    settings, repo, authenticator = _parts(request)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return error_response(ErrorType.BAD_REQUEST, f"The body is not valid JSON: {exc}",
                              request_id)
    try:
        name, tags = parse_create_request(body)
    except ValueError as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    app, key = await repo.create_app(name, tags)
    authenticator.remember_app(app.id)
    authenticator.remember_key(key)
    return JSONResponse(
        application_response(settings, app),
        status_code=201,
        headers={
            "x-amzn-RequestId": request_id,
            ACCESS_KEY_HEADER: key.access_key_id,
            SECRET_KEY_HEADER: key.secret,
            "Cache-Control": "no-store",
        },
    )


async def get_applications(request: Request) -> Response:
    """GetApps: ``GET /v1/apps?page-size=&token=`` → ``ApplicationsResponse``."""
    request_id = new_request_id()
    settings, repo, _ = _parts(request)
    raw_size = request.query_params.get("page-size")
    size = DEFAULT_PAGE_SIZE
    if raw_size is not None:
        try:
            size = int(raw_size)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            return error_response(
                ErrorType.BAD_REQUEST,
                f"page-size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {raw_size!r}.",
                request_id,
            )
    after = None
    token = request.query_params.get("token")
    if token:
        try:
            after = decode_token(token)
        except ValueError:
            return error_response(
                ErrorType.BAD_REQUEST,
                "The token is not valid; pass the NextToken of a previous GetApps response.",
                request_id,
            )
    apps = await repo.list_apps(size + 1, after)
    page = apps[:size]
    result: dict[str, Any] = {"Item": [application_response(settings, a) for a in page]}
    if len(apps) > size:
        result["NextToken"] = encode_token(Cursor(page[-1].created_at, page[-1].id))
    return JSONResponse(result, headers={"x-amzn-RequestId": request_id})


def _not_found(app_id: str, request_id: str) -> Response:
    return error_response(
        ErrorType.NOT_FOUND, f"Application {app_id} does not exist.", request_id
    )


async def get_application(request: Request) -> Response:
    """GetApp: ``GET /v1/apps/{application-id}`` → ``ApplicationResponse``."""
    request_id = new_request_id()
    settings, repo, _ = _parts(request)
    app_id = request.path_params["application_id"]
    app = await repo.get_app(app_id)
    if app is None:
        return _not_found(app_id, request_id)
    return JSONResponse(application_response(settings, app),
                        headers={"x-amzn-RequestId": request_id})


async def delete_application(request: Request) -> Response:
    """DeleteApp: ``DELETE /v1/apps/{application-id}`` → the deleted ``ApplicationResponse``.

    The application's API keys go with it.
    """
    request_id = new_request_id()
    settings, repo, authenticator = _parts(request)
    app_id = request.path_params["application_id"]
    keys = await repo.list_keys(app_id, include_revoked=True)
    app = await repo.delete_app(app_id)
    if app is None:
        return _not_found(app_id, request_id)
    authenticator.remember_app(app_id, exists=False)
    for key in keys:
        authenticator.keys.put(key.access_key_id, None)
    return JSONResponse(application_response(settings, app),
                        headers={"x-amzn-RequestId": request_id})
