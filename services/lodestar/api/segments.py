"""Pinpoint's segment operations: CreateSegment, GetSegments, GetSegment, UpdateSegment,
DeleteSegment, GetSegmentVersions, GetSegmentVersion.

Shapes follow botocore's ``pinpoint`` model: the request body *is* the
``WriteSegmentRequest`` and the answer *is* the ``SegmentResponse`` (or
``SegmentsResponse`` {Item, NextToken}). A definition is validated with
``lodestar.core.segment_definition.parse_segment`` before anything is stored:
an invalid one answers 400 ``BadRequestException`` whose message starts with
the offending field's path (e.g. ``Dimensions.Attributes.plan.AttributeType``).
Source segments named in SegmentGroups must exist in the same application.

Every create, update and delete is published, after the PostgreSQL commit, on
the compacted ``<prefix>.control`` topic as a ``lodestar.v1.ControlChange``
(entity SEGMENT; the SegmentResponse as JSON, or null for DELETE).
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import (
    MAX_VERSION,
    created_token,
    decode_created_token,
    decode_version_token,
    iso,
    version_token,
)
from lodestar.control.segments import (
    Segment,
    SegmentCursor,
    SegmentsRepository,
    SourceSegmentsNotFound,
)
from lodestar.core.segment_definition import SegmentDefinitionError, parse_segment
from lodestar.settings import Settings

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_STORED_KEYS = ("Dimensions", "SegmentGroups", "tags")


class _BadRequest(Exception):
    pass


def segment_arn(settings: Settings, app_id: str, segment_id: str) -> str:
    return (f"arn:aws:mobiletargeting:{settings.region}:{settings.account_id}:"
            f"apps/{app_id}/segments/{segment_id}")


def segment_response(settings: Settings, segment: Segment) -> dict[str, Any]:
    """A ``SegmentResponse`` for one version of a segment."""
    out: dict[str, Any] = {
        "ApplicationId": segment.app_id,
        "Arn": segment_arn(settings, segment.app_id, segment.id),
        "CreationDate": iso(segment.created_at),
        "Id": segment.id,
        "LastModifiedDate": iso(segment.modified_at),
        "SegmentType": segment.segment_type,
        "Version": segment.version,
    }
    if segment.name is not None:
        out["Name"] = segment.name
    for key in _STORED_KEYS:
        if segment.definition.get(key) is not None:
            out[key] = segment.definition[key]
    if segment.definition.get("ImportDefinition") is not None:  # an IMPORT segment (api/jobs.py)
        out["ImportDefinition"] = segment.definition["ImportDefinition"]
    return out


def _repo(request: Request) -> SegmentsRepository:
    state = request.app.state
    repo = getattr(state, "segments", None)
    if repo is None:
        repo = state.segments = SegmentsRepository(state.pool)
    return repo


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page-size")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _BadRequest(
            f"page-size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {raw!r}."
        )
    return size


async def _write_request(request: Request) -> tuple[str | None, dict[str, Any], list[Any]]:
    """(Name, stored definition, source segments) of a valid ``WriteSegmentRequest``."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"The body is not valid JSON: {exc}") from None
    try:
        parsed = parse_segment(body)
    except SegmentDefinitionError as exc:
        raise _BadRequest(f"Invalid segment definition: {exc.field}: {exc.message}") from None
    definition = {k: body[k] for k in _STORED_KEYS if body.get(k) is not None}
    sources = []
    if parsed.segment_groups is not None:
        sources = [(s.id, s.version) for g in parsed.segment_groups.groups
                   for s in g.source_segments]
    return parsed.name, definition, sources


def _sources_missing(exc: SourceSegmentsNotFound, request_id: str) -> Response:
    return error_response(
        ErrorType.BAD_REQUEST,
        f"SegmentGroups.Groups[0].SourceSegments: {exc}; a source segment must exist in "
        "this application.",
        request_id,
    )


def _segment_not_found(app_id: str, segment_id: str, request_id: str) -> Response:
    return error_response(
        ErrorType.NOT_FOUND,
        f"Segment {segment_id} does not exist in application {app_id}.",
        request_id,
    )


def _ok(body: dict[str, Any], request_id: str, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": request_id})


async def _publish(request: Request, segment: Segment, deleted: bool) -> None:
    """The change on ``<prefix>.control``, after the commit."""
    settings: Settings = request.app.state.settings
    principal = getattr(request.state, "principal", None)
    change = {
        "entity_type": "SEGMENT",
        "entity_id": segment.id,
        "app_id": segment.app_id,
        "version": segment.version,
        "operation": "DELETE" if deleted else "UPSERT",
        "definition": None if deleted else json.dumps(segment_response(settings, segment)),
        "actor": principal.access_key_id if principal is not None else None,
        "timestamp": int(time.time() * 1000) if deleted
        else int(segment.modified_at.timestamp() * 1000),
    }
    await request.app.state.publisher.publish_control([change])


async def create_segment(request: Request) -> Response:
    """CreateSegment: ``POST /v1/apps/{application-id}/segments`` → 201 ``SegmentResponse``."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        name, definition, sources = await _write_request(request)
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    try:
        segment = await _repo(request).create(app_id, name, definition, sources)
    except SourceSegmentsNotFound as exc:
        return _sources_missing(exc, request_id)
    await _publish(request, segment, deleted=False)
    return _ok(segment_response(request.app.state.settings, segment), request_id, 201)


async def update_segment(request: Request) -> Response:
    """UpdateSegment: ``PUT …/segments/{segment-id}`` → the new version's ``SegmentResponse``."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    try:
        name, definition, sources = await _write_request(request)
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    try:
        segment = await _repo(request).update(app_id, segment_id, name, definition, sources)
    except SourceSegmentsNotFound as exc:
        return _sources_missing(exc, request_id)
    if segment is None:
        return _segment_not_found(app_id, segment_id, request_id)
    await _publish(request, segment, deleted=False)
    return _ok(segment_response(request.app.state.settings, segment), request_id)


async def get_segment(request: Request) -> Response:
    """GetSegment: ``GET …/segments/{segment-id}`` → the latest version."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    segment = await _repo(request).get(app_id, segment_id)
    if segment is None:
        return _segment_not_found(app_id, segment_id, request_id)
    return _ok(segment_response(request.app.state.settings, segment), request_id)


async def delete_segment(request: Request) -> Response:
    """DeleteSegment: ``DELETE …/segments/{segment-id}`` → the segment as it was."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    segment = await _repo(request).delete(app_id, segment_id)
    if segment is None:
        return _segment_not_found(app_id, segment_id, request_id)
    await _publish(request, segment, deleted=True)
    return _ok(segment_response(request.app.state.settings, segment), request_id)


async def get_segments(request: Request) -> Response:
    """GetSegments: ``GET …/segments?page-size=&token=`` → ``SegmentsResponse``, oldest first."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    after = None
    try:
        size = _page_size(request)
        token = request.query_params.get("token")
        if token:
            try:
                after = SegmentCursor(*decode_created_token(token))
            except ValueError:
                raise _BadRequest("The token is not valid; pass the NextToken of a previous "
                                  "GetSegments response.") from None
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    segments = await _repo(request).list_segments(app_id, size + 1, after)
    page = segments[:size]
    settings = request.app.state.settings
    result: dict[str, Any] = {"Item": [segment_response(settings, s) for s in page]}
    if len(segments) > size:
        last = page[-1]
        result["NextToken"] = created_token(last.created_at, last.id)
    return _ok(result, request_id)


async def get_segment_versions(request: Request) -> Response:
    """GetSegmentVersions: ``GET …/segments/{segment-id}/versions`` → versions, oldest first."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    after = 0
    try:
        size = _page_size(request)
        token = request.query_params.get("token")
        if token:
            try:
                after = decode_version_token(token)
            except ValueError:
                raise _BadRequest("The token is not valid; pass the NextToken of a previous "
                                  "GetSegmentVersions response.") from None
    except _BadRequest as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    versions = await _repo(request).list_versions(app_id, segment_id, size + 1, after)
    if versions is None:
        return _segment_not_found(app_id, segment_id, request_id)
    page = versions[:size]
    settings = request.app.state.settings
    result: dict[str, Any] = {"Item": [segment_response(settings, s) for s in page]}
    if len(versions) > size:
        result["NextToken"] = version_token(page[-1].version)
    return _ok(result, request_id)


async def get_segment_version(request: Request) -> Response:
    """GetSegmentVersion: ``GET …/segments/{segment-id}/versions/{version}``."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    raw = request.path_params["version"]
    try:
        version = int(raw)
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(raw)
    except ValueError:
        return error_response(
            ErrorType.BAD_REQUEST,
            f"version must be a whole number from 1 to {MAX_VERSION}, got {raw!r}.", request_id,
        )
    segment = await _repo(request).get_version(app_id, segment_id, version)
    if segment is None:
        return error_response(
            ErrorType.NOT_FOUND,
            f"Segment {segment_id} has no version {version} in application {app_id}.",
            request_id,
        )
    return _ok(segment_response(request.app.state.settings, segment), request_id)
