"""Pinpoint's import and export jobs: CreateImportJob, GetImportJob(s), GetSegmentImportJobs,
CreateExportJob, GetExportJob(s), GetSegmentExportJobs.

Shapes follow botocore's ``pinpoint`` model: the body *is* the
``ImportJobRequest`` / ``ExportJobRequest`` and the answer *is* the
``ImportJobResponse`` / ``ExportJobResponse`` (or ``…JobsResponse`` {Item,
NextToken}, newest first). A job is stored in PostgreSQL (``control/jobs.py``)
and run by the API's ``JobRunner`` (``api/job_runner.py``); see docs/imports.md.

Sources stand in for Pinpoint's S3 URLs: ``file:///abs/path`` (a file, or a
directory whose files are all imported) on the API's host, and ``http(s)://``
URLs; ``s3://`` is refused with 400 because Lodestar does not reach S3.
Exports write to ``file:///dir`` only.

``create_import_job`` / ``create_export_job`` are also what ``lodestar import``
calls, so the CLI and the API create jobs the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import MAX_VERSION, created_token, decode_created_token, iso
from lodestar.api.segments import segment_response
from lodestar.control.jobs import EXPORT, IMPORT, Job, JobCursor, JobsRepository
from lodestar.control.segments import IMPORT as IMPORT_SEGMENT
from lodestar.control.segments import Segment, SegmentsRepository
from lodestar.core.endpoint_import import ImportFormat
from lodestar.settings import Settings

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_IMPORT_KEYS = ("DefineSegment", "ExternalId", "Format", "RegisterEndpoints", "RoleArn",
                "S3Url", "SegmentId", "SegmentName")
_EXPORT_KEYS = ("RoleArn", "S3UrlPrefix", "SegmentId", "SegmentVersion")
S3_REFUSED = ("Lodestar does not reach Amazon S3: copy the files next to Lodestar and use "
              "file:///absolute/path, or serve them and use an https:// URL")


class JobRequestError(Exception):
    """A create request Lodestar refuses; ``kind`` is the Pinpoint error to answer."""

    def __init__(self, kind: ErrorType, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _bad(message: str) -> JobRequestError:
    return JobRequestError(ErrorType.BAD_REQUEST, message)


def file_path(url: str, field: str) -> Path:
    """The absolute path of a ``file:///…`` URL (``file://localhost/…`` too)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise _bad(f"{field} {url!r} must be file:///absolute/path (a path on the Lodestar "
                   "host)")
    return Path(unquote(parts.path))


def source_kind(url: str, field: str = "S3Url") -> str:
    """``file`` or ``http`` for an accepted source URL; raises ``JobRequestError`` otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "s3":
        raise _bad(f"{field} {url!r}: {S3_REFUSED}.")
    if scheme == "file":
        return "file"
    if scheme in ("http", "https") and urlsplit(url).netloc:
        return "http"
    raise _bad(f"{field} {url!r} must be a file:///absolute/path or an http(s):// URL.")


def _string(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"{key} is required.")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise _bad(f"{key} must be a non-empty string.")
    return value


def _boolean(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{key} must be true or false.")
    return value


@dataclass(frozen=True)
class CreatedJob:
    job: Job
    segment: Segment | None  # the IMPORT segment defined or given a new version


def import_definition(definition: dict[str, Any], size: int = 0,
                      channel_counts: dict[str, int] | None = None) -> dict[str, Any]:
    """The stored definition of an IMPORT segment: Pinpoint's SegmentImportResource."""
    out: dict[str, Any] = {"ChannelCounts": dict(channel_counts or {}),
                           "Format": definition["Format"], "S3Url": definition["S3Url"],
                           "Size": size}
    for key in ("ExternalId", "RoleArn"):
        if definition.get(key) is not None:
            out[key] = definition[key]
    return {"ImportDefinition": dict(sorted(out.items()))}


async def publish_segment(publisher: Any, settings: Settings, segment: Segment,
                          actor: str | None) -> None:
    """The segment's change on ``<prefix>.control``, as ``api.segments`` publishes it."""
    change = {
        "entity_type": "SEGMENT",
        "entity_id": segment.id,
        "app_id": segment.app_id,
        "version": segment.version,
        "operation": "UPSERT",
        "definition": json.dumps(segment_response(settings, segment)),
        "actor": actor,
        "timestamp": int(segment.modified_at.timestamp() * 1000),
    }
    await publisher.publish_control([change])


async def create_import_job(
    pool: asyncpg.Pool, publisher: Any, settings: Settings, app_id: str, body: object,
    actor: str | None = None,
) -> CreatedJob:
    """Validate an ImportJobRequest, define or version its segment, store the job (CREATED)."""
    if not isinstance(body, dict):
        raise _bad("The body must be an ImportJobRequest JSON object.")
    fmt = _string(body, "Format", required=True)
    if fmt not in ImportFormat.__members__:
        raise _bad(f"Format {fmt!r} must be CSV or JSON.")
    url = _string(body, "S3Url", required=True)
    assert url is not None
    if source_kind(url) == "file":
        path = file_path(url, "S3Url")
        if not path.exists():
            raise _bad(f"S3Url {url!r}: {path} does not exist on the Lodestar host.")
    for key in ("ExternalId", "RoleArn", "SegmentName"):
        _string(body, key)
    define = _boolean(body, "DefineSegment") or False
    register = _boolean(body, "RegisterEndpoints")
    register = True if register is None else register
    segment_id = _string(body, "SegmentId")
    name = _string(body, "SegmentName")
    if define and segment_id is None and not (name and name.strip()):
        raise _bad("SegmentName is required when DefineSegment is true (the name of the "
                   "segment the job creates).")
    if not register and not define and segment_id is None:
        raise _bad("The job would do nothing: set RegisterEndpoints, DefineSegment with a "
                   "SegmentName, or SegmentId.")
    definition = {k: body[k] for k in _IMPORT_KEYS if body.get(k) is not None}
    definition["RegisterEndpoints"] = register
    segments = SegmentsRepository(pool)
    segment: Segment | None = None
    if segment_id is not None:
        current = await segments.get(app_id, segment_id)
        if current is None:
            raise JobRequestError(ErrorType.NOT_FOUND,
                                  f"Segment {segment_id} does not exist in application {app_id}.")
        if current.segment_type != IMPORT_SEGMENT:
            raise _bad(f"SegmentId {segment_id} is a {current.segment_type} segment; an import "
                       "job adds only to IMPORT segments (those import jobs define).")
        size = current.definition.get("ImportDefinition", {}).get("Size", 0)
        counts = current.definition.get("ImportDefinition", {}).get("ChannelCounts", {})
        segment = await segments.update(app_id, segment_id, name,
                                        import_definition(definition, size, counts))
    elif define:
        try:
            segment = await segments.create(app_id, name, import_definition(definition),
                                            segment_type=IMPORT_SEGMENT)
        except asyncpg.ForeignKeyViolationError:
            raise JobRequestError(ErrorType.NOT_FOUND,
                                  f"Application {app_id} does not exist.") from None
    if segment is not None:
        definition["SegmentId"] = segment.id
        definition["DefineSegment"] = define
        if segment.name is not None:
            definition["SegmentName"] = segment.name
    try:
        job = await JobsRepository(pool).create(
            app_id, IMPORT, dict(sorted(definition.items())),
            segment.id if segment else None)
    except asyncpg.ForeignKeyViolationError:
        raise JobRequestError(ErrorType.NOT_FOUND,
                              f"Application {app_id} does not exist.") from None
    if segment is not None:
        await publish_segment(publisher, settings, segment, actor)
    return CreatedJob(job, segment)


async def create_export_job(pool: asyncpg.Pool, app_id: str, body: object) -> Job:
    """Validate an ExportJobRequest and store the job (CREATED)."""
    if not isinstance(body, dict):
        raise _bad("The body must be an ExportJobRequest JSON object.")
    prefix = _string(body, "S3UrlPrefix", required=True)
    assert prefix is not None
    _string(body, "RoleArn")
    if urlsplit(prefix).scheme.lower() != "file":
        source_kind(prefix, "S3UrlPrefix")  # s3:// gets its own message
        raise _bad(f"S3UrlPrefix {prefix!r}: exports are written to a directory of the "
                   "Lodestar host; use file:///absolute/dir.")
    directory = file_path(prefix, "S3UrlPrefix")
    if directory.exists() and not directory.is_dir():
        raise _bad(f"S3UrlPrefix {prefix!r}: {directory} is a file, not a directory.")
    if not directory.exists() and not directory.parent.is_dir():
        raise _bad(f"S3UrlPrefix {prefix!r}: {directory.parent} does not exist on the "
                   "Lodestar host.")
    segment_id = _string(body, "SegmentId")
    version = body.get("SegmentVersion")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or not (
                1 <= version <= MAX_VERSION):
            raise _bad("SegmentVersion must be a whole number from 1.")
        if segment_id is None:
            raise _bad("SegmentVersion needs SegmentId.")
    if segment_id is not None:
        segments = SegmentsRepository(pool)
        found = (await segments.get(app_id, segment_id) if version is None
                 else await segments.get_version(app_id, segment_id, version))
        if found is None:
            which = "" if version is None else f" version {version}"
            raise JobRequestError(ErrorType.NOT_FOUND, f"Segment {segment_id}{which} does not "
                                  f"exist in application {app_id}.")
    definition = {k: body[k] for k in _EXPORT_KEYS if body.get(k) is not None}
    try:
        return await JobsRepository(pool).create(app_id, EXPORT, definition, segment_id)
    except asyncpg.ForeignKeyViolationError:
        raise JobRequestError(ErrorType.NOT_FOUND,
                              f"Application {app_id} does not exist.") from None


def job_response(job: Job) -> dict[str, Any]:
    """An ``ImportJobResponse`` or ``ExportJobResponse``."""
    p = job.progress
    out: dict[str, Any] = {
        "ApplicationId": job.app_id,
        "CompletedPieces": p.completed_pieces,
        "CreationDate": iso(job.created_at),
        "Definition": job.definition,
        "FailedPieces": p.failed_pieces,
        "Failures": list(p.failures),
        "Id": job.id,
        "JobStatus": job.status.value,
        "TotalFailures": p.total_failures,
        "TotalPieces": p.total_pieces,
        "TotalProcessed": p.total_processed,
        "Type": job.job_type,
    }
    if job.completed_at is not None:
        out["CompletionDate"] = iso(job.completed_at)
    return out


# --------------------------------------------------------------------------- handlers


def _ok(body: dict[str, Any], request_id: str, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": request_id})


def _actor(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.access_key_id if principal is not None else None


async def _body(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad(f"The body is not valid JSON: {exc}") from None


def _wake(request: Request) -> None:
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()


async def create_import(request: Request) -> Response:
    """CreateImportJob: ``POST /v1/apps/{application-id}/jobs/import`` → 201."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    state = request.app.state
    try:
        created = await create_import_job(state.pool, state.publisher, state.settings, app_id,
                                          await _body(request), _actor(request))
    except JobRequestError as exc:
        return error_response(exc.kind, str(exc), request_id)
    _wake(request)
    return _ok(job_response(created.job), request_id, 201)


async def create_export(request: Request) -> Response:
    """CreateExportJob: ``POST /v1/apps/{application-id}/jobs/export`` → 202."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    try:
        job = await create_export_job(request.app.state.pool, app_id, await _body(request))
    except JobRequestError as exc:
        return error_response(exc.kind, str(exc), request_id)
    _wake(request)
    return _ok(job_response(job), request_id, 202)


async def _get(request: Request, job_type: str) -> Response:
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    job_id = request.path_params["job_id"]
    job = await JobsRepository(request.app.state.pool).get(app_id, job_id, job_type)
    if job is None:
        return error_response(ErrorType.NOT_FOUND, f"{job_type.capitalize()} job {job_id} does "
                              f"not exist in application {app_id}.", request_id)
    return _ok(job_response(job), request_id)


async def get_import_job(request: Request) -> Response:
    """GetImportJob: ``GET …/jobs/import/{job-id}``."""
    return await _get(request, IMPORT)


async def get_export_job(request: Request) -> Response:
    """GetExportJob: ``GET …/jobs/export/{job-id}``."""
    return await _get(request, EXPORT)


def _cursor(token: str) -> JobCursor:
    try:
        return JobCursor(*decode_created_token(token))
    except ValueError:
        raise _bad("The token is not valid; pass the NextToken of a previous page.") from None


async def _list(request: Request, job_type: str, by_segment: bool) -> Response:
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    pool = request.app.state.pool
    segment_id = request.path_params.get("segment_id") if by_segment else None
    try:
        raw = request.query_params.get("page-size")
        size = DEFAULT_PAGE_SIZE
        if raw is not None:
            size = int(raw) if raw.isdigit() else 0
            if not 1 <= size <= MAX_PAGE_SIZE:
                raise _bad(f"page-size must be a whole number from 1 to {MAX_PAGE_SIZE}, "
                           f"got {raw!r}.")
        token = request.query_params.get("token")
        after = _cursor(token) if token else None
    except JobRequestError as exc:
        return error_response(exc.kind, str(exc), request_id)
    if segment_id is not None and await SegmentsRepository(pool).get(app_id, segment_id) is None:
        return error_response(ErrorType.NOT_FOUND, f"Segment {segment_id} does not exist in "
                              f"application {app_id}.", request_id)
    jobs = await JobsRepository(pool).list_jobs(app_id, job_type, size + 1, after, segment_id)
    page = jobs[:size]
    result: dict[str, Any] = {"Item": [job_response(j) for j in page]}
    if len(jobs) > size:
        last = page[-1]
        result["NextToken"] = created_token(last.created_at, last.id)
    return _ok(result, request_id)


async def get_import_jobs(request: Request) -> Response:
    """GetImportJobs: ``GET …/jobs/import`` → newest first."""
    return await _list(request, IMPORT, by_segment=False)


async def get_export_jobs(request: Request) -> Response:
    """GetExportJobs: ``GET …/jobs/export`` → newest first."""
    return await _list(request, EXPORT, by_segment=False)


async def get_segment_import_jobs(request: Request) -> Response:
    """GetSegmentImportJobs: ``GET …/segments/{segment-id}/jobs/import``."""
    return await _list(request, IMPORT, by_segment=True)


async def get_segment_export_jobs(request: Request) -> Response:
    """GetSegmentExportJobs: ``GET …/segments/{segment-id}/jobs/export``."""
    return await _list(request, EXPORT, by_segment=True)


def now_ms() -> int:
    return int(time.time() * 1000)
