"""Pinpoint's message-template operations (docs/templates.md):
Create/Get/Update/Delete{Email,Sms,Push,Voice,InApp}Template, ListTemplates,
ListTemplateVersions and UpdateTemplateActiveVersion.

Shapes follow botocore's ``pinpoint`` model: the request body *is* the
``EmailTemplateRequest`` (``SMSTemplateRequest``, …); Get answers the
``EmailTemplateResponse`` (…), Create 201 ``CreateTemplateMessageBody``
{Arn, Message, RequestID}, Update and Delete 202 and UpdateTemplateActiveVersion
200 ``MessageBody``. A template is validated with
``lodestar.core.templates.parse_template`` before anything is stored: an invalid
one answers 400 ``BadRequestException`` whose message starts with the
offending field's path (e.g. ``APNS.Body``, ``Headers[2].Name``).

Templates are account-wide (``/v1/templates/…``, outside every application),
so only admin keys may call these operations: ``lodestar.api.auth`` limits an
app key to ``/v1/apps/<its app>/…`` and answers 403 elsewhere.

Every change is published, after the PostgreSQL commit, on the compacted
``<prefix>.control`` topic as a ``lodestar.v1.ControlChange``: entity TEMPLATE,
entity id ``<TYPE>/<name>``, app id null, version = the highest version number
the template has issued (it never decreases, so consumers never drop a newer
record), definition = the *active* version's template response as JSON (what
sends use), or null for DELETE of the whole template.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lodestar.api.errors import ErrorType, error_response, new_request_id
from lodestar.api.paging import (
    MAX_VERSION,
    decode_token,
    decode_version_token,
    encode_token,
    iso,
    version_token,
)
from lodestar.control.templates import (
    MAX_NAME_LENGTH,
    TEMPLATE_TYPES,
    Template,
    TemplateError,
    TemplateExists,
    TemplatesRepository,
    VersionNotFound,
    valid_name,
)
from lodestar.core.templates import InAppTemplate, TemplateDefinitionError, parse_template
from lodestar.settings import Settings

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_PATH_TYPES = {"email": "EMAIL", "sms": "SMS", "push": "PUSH", "voice": "VOICE",
               "inapp": "INAPP"}
_TYPE_NAMES = {"EMAIL": "Email", "SMS": "SMS", "PUSH": "Push notification", "VOICE": "Voice",
               "INAPP": "In-app"}
_VERSION_MEMBERS = ("DefaultSubstitutions", "TemplateDescription")


class _BadRequest(Exception):
    pass


def template_arn(settings: Settings, template_type: str, name: str) -> str:
    return (f"arn:aws:mobiletargeting:{settings.region}:{settings.account_id}:"
            f"templates/{name}/{template_type}")


def template_response(settings: Settings, template: Template) -> dict[str, Any]:
    """An ``EmailTemplateResponse`` (``SMSTemplateResponse``, …) for one version."""
    return {
        **template.definition,
        "Arn": template_arn(settings, template.template_type, template.name),
        "CreationDate": iso(template.created_at),
        "LastModifiedDate": iso(template.modified_at),
        "TemplateName": template.name,
        "TemplateType": template.template_type,
        "Version": str(template.version),
        "tags": dict(template.tags),
    }


def _listed(settings: Settings, template: Template) -> dict[str, Any]:
    """A ``TemplateResponse`` (ListTemplates' item) for a template's active version."""
    out: dict[str, Any] = {
        "Arn": template_arn(settings, template.template_type, template.name),
        "CreationDate": iso(template.created_at),
        "LastModifiedDate": iso(template.modified_at),
        "TemplateName": template.name,
        "TemplateType": template.template_type,
        "Version": str(template.version),
        "tags": dict(template.tags),
    }
    out.update({k: template.definition[k] for k in _VERSION_MEMBERS
                if template.definition.get(k) is not None})
    return out


def _version_response(template: Template) -> dict[str, Any]:
    """A ``TemplateVersionResponse``: when this version was created and last written."""
    out: dict[str, Any] = {
        "CreationDate": iso(template.version_created_at),
        "LastModifiedDate": iso(template.modified_at),
        "TemplateName": template.name,
        "TemplateType": template.template_type,
        "Version": str(template.version),
    }
    out.update({k: template.definition[k] for k in _VERSION_MEMBERS
                if template.definition.get(k) is not None})
    return out


def _repo(request: Request) -> TemplatesRepository:
    state = request.app.state
    repo = getattr(state, "templates", None)
    if repo is None:
        repo = state.templates = TemplatesRepository(state.pool)
    return repo


def _ok(body: dict[str, Any], request_id: str, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status, headers={"x-amzn-RequestId": request_id})


def _message(request_id: str, status: int, message: str = "Accepted") -> Response:
    return _ok({"Message": message, "RequestID": request_id}, request_id, status)


def _bad(message: str, request_id: str) -> Response:
    return error_response(ErrorType.BAD_REQUEST, message, request_id)


def _not_found(template_type: str, name: str, request_id: str,
               version: int | None = None) -> Response:
    what = f"{_TYPE_NAMES[template_type]} template {name}"
    return error_response(
        ErrorType.NOT_FOUND,
        f"{what} does not exist." if version is None else f"{what} has no version {version}.",
        request_id,
    )


def _path_type(request: Request) -> str:
    """The template type of a per-type route (``…/email``, ``…/sms``, …)."""
    return _PATH_TYPES[request.url.path.rstrip("/").rsplit("/", 1)[-1]]


def _name(request: Request) -> str:
    name: str = request.path_params["template_name"]
    if not valid_name(name):
        raise _BadRequest(
            f"template-name {name!r} is not valid: a template name has 1 to {MAX_NAME_LENGTH} "
            "characters, letters, digits, hyphens (-) and underscores (_), and starts with a "
            "letter or digit.")
    return name


def _type_param(raw: str, what: str) -> str:
    kind = raw.upper().replace("_", "")
    if kind not in TEMPLATE_TYPES:
        raise _BadRequest(f"{what} must be one of {', '.join(TEMPLATE_TYPES)}, got {raw!r}.")
    return kind


def _version_number(raw: str, what: str = "version") -> int:
    try:
        version = int(raw)
        if not 1 <= version <= MAX_VERSION:
            raise ValueError(raw)
    except ValueError:
        raise _BadRequest(
            f"{what} must be a whole number from 1 to {MAX_VERSION}, got {raw!r}.") from None
    return version


def _version_query(request: Request) -> int | None:
    raw = request.query_params.get("version")
    return None if raw is None or raw == "" else _version_number(raw)


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
            f"page-size must be a whole number from 1 to {MAX_PAGE_SIZE}, got {raw!r}.")
    return size


async def _template_request(
    request: Request, template_type: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """(stored definition, tags) of a valid template request of ``template_type``."""
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"The body is not valid JSON: {exc}") from None
    try:
        parsed = parse_template(template_type, body)
    except TemplateDefinitionError as exc:
        raise _BadRequest(f"Invalid template: {exc.field}: {exc.message}") from None
    definition = {k: v for k, v in body.items() if k != "tags" and v is not None}
    tags = parsed.tags if isinstance(parsed, InAppTemplate) else parsed.common.tags
    return definition, dict(tags)


async def _publish(request: Request, template: Template, deleted: bool) -> None:
    """The change on ``<prefix>.control``, after the commit; ``template``: the active
    version as it now is (or, deleted, as it was)."""
    settings: Settings = request.app.state.settings
    principal = getattr(request.state, "principal", None)
    change = {
        "entity_type": "TEMPLATE",
        "entity_id": f"{template.template_type}/{template.name}",
        "app_id": None,
        "version": template.last_version,
        "operation": "DELETE" if deleted else "UPSERT",
        "definition": None if deleted else json.dumps(template_response(settings, template)),
        "actor": principal.access_key_id if principal is not None else None,
        "timestamp": int(time.time() * 1000),
    }
    await request.app.state.publisher.publish_control([change])


async def _publish_active(request: Request, template_type: str, name: str) -> None:
    active = await _repo(request).get(template_type, name)
    if active is not None:
        await _publish(request, active, deleted=False)


async def create_template(request: Request) -> Response:
    """CreateXTemplate: ``POST /v1/templates/{template-name}/{email|sms|push|voice|inapp}``
    → 201 ``CreateTemplateMessageBody``; version 1, active."""
    request_id = new_request_id()
    template_type = _path_type(request)
    try:
        name = _name(request)
        definition, tags = await _template_request(request, template_type)
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    try:
        template = await _repo(request).create(template_type, name, definition, tags)
    except TemplateExists as exc:
        return _bad(f"{exc} Update it, or delete it first.", request_id)
    await _publish(request, template, deleted=False)
    settings = request.app.state.settings
    return _ok({"Arn": template_arn(settings, template_type, name), "Message": "Created",
                "RequestID": request_id}, request_id, 201)


async def get_template(request: Request) -> Response:
    """GetXTemplate: the active version, or ``?version=``."""
    request_id = new_request_id()
    template_type = _path_type(request)
    try:
        name = _name(request)
        version = _version_query(request)
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    template = await _repo(request).get(template_type, name, version)
    if template is None:
        if version is not None and await _repo(request).get(template_type, name) is not None:
            return _not_found(template_type, name, request_id, version)
        return _not_found(template_type, name, request_id)
    return _ok(template_response(request.app.state.settings, template), request_id)


async def update_template(request: Request) -> Response:
    """UpdateXTemplate: overwrite the latest version (which ``version`` must name, when
    given), or add one with ``create-new-version=true`` → 202 ``MessageBody``."""
    request_id = new_request_id()
    template_type = _path_type(request)
    try:
        name = _name(request)
        version = _version_query(request)
        raw_new = (request.query_params.get("create-new-version") or "false").lower()
        if raw_new not in ("true", "false"):
            raise _BadRequest(f"create-new-version must be true or false, got {raw_new!r}.")
        new_version = raw_new == "true"
        if new_version and version is not None:
            raise _BadRequest("create-new-version=true cannot be combined with version: a new "
                              "version gets the next number.")
        definition, _tags = await _template_request(request, template_type)
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    try:
        written = await _repo(request).update(
            template_type, name, definition, new_version=new_version, version=version)
    except VersionNotFound:
        return _not_found(template_type, name, request_id, version)
    except TemplateError as exc:
        return _bad(str(exc), request_id)
    if written is None:
        return _not_found(template_type, name, request_id)
    if written.is_active:
        await _publish(request, written, deleted=False)
    else:
        await _publish_active(request, template_type, name)
    return _message(request_id, 202)


async def delete_template(request: Request) -> Response:
    """DeleteXTemplate: every version, or ``?version=`` → 202 ``MessageBody``."""
    request_id = new_request_id()
    template_type = _path_type(request)
    try:
        name = _name(request)
        version = _version_query(request)
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    try:
        deleted = await _repo(request).delete(template_type, name, version)
    except VersionNotFound:
        return _not_found(template_type, name, request_id, version)
    except TemplateError as exc:
        return _bad(str(exc), request_id)
    if deleted is None:
        return _not_found(template_type, name, request_id)
    await _publish(request, deleted.template, deleted=deleted.all_versions)
    return _message(request_id, 202)


async def list_templates(request: Request) -> Response:
    """ListTemplates: ``GET /v1/templates?page-size=&next-token=&prefix=&template-type=``
    → ``TemplatesResponse`` (active versions), by name then type."""
    request_id = new_request_id()
    after = None
    template_type = None
    try:
        size = _page_size(request)
        raw_type = request.query_params.get("template-type")
        if raw_type:
            template_type = _type_param(raw_type, "template-type")
        token = request.query_params.get("next-token")
        if token:
            try:
                kind, sep, name = decode_token(token).partition("/")
                if not sep or kind not in TEMPLATE_TYPES or not name:
                    raise ValueError(token)
                after = (name, kind)
            except ValueError:
                raise _BadRequest("The next-token is not valid; pass the NextToken of a "
                                  "previous ListTemplates response.") from None
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    prefix = request.query_params.get("prefix") or None
    templates = await _repo(request).list_templates(
        size + 1, after, prefix=prefix, template_type=template_type)
    page = templates[:size]
    settings = request.app.state.settings
    result: dict[str, Any] = {"Item": [_listed(settings, t) for t in page]}
    if len(templates) > size:
        last = page[-1]
        result["NextToken"] = encode_token(f"{last.template_type}/{last.name}")
    return _ok(result, request_id)


async def list_template_versions(request: Request) -> Response:
    """ListTemplateVersions: ``GET /v1/templates/{template-name}/{template-type}/versions``
    → ``TemplateVersionsResponse``, oldest first."""
    request_id = new_request_id()
    after = 0
    try:
        name = _name(request)
        template_type = _type_param(request.path_params["template_type"], "template-type")
        size = _page_size(request)
        token = request.query_params.get("next-token")
        if token:
            try:
                after = decode_version_token(token)
            except ValueError:
                raise _BadRequest("The next-token is not valid; pass the NextToken of a "
                                  "previous ListTemplateVersions response.") from None
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    versions = await _repo(request).list_versions(template_type, name, size + 1, after)
    if versions is None:
        return _not_found(template_type, name, request_id)
    page = versions[:size]
    result: dict[str, Any] = {"Item": [_version_response(v) for v in page],
                              "RequestID": request_id}
    if len(versions) > size:
        result["NextToken"] = version_token(page[-1].version)
    return _ok(result, request_id)


async def update_template_active_version(request: Request) -> Response:
    """UpdateTemplateActiveVersion: ``PUT …/{template-type}/active-version`` with
    ``{"Version": "latest" | "<n>"}`` → 200 ``MessageBody``."""
    request_id = new_request_id()
    try:
        name = _name(request)
        template_type = _type_param(request.path_params["template_type"], "template-type")
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(f"The body is not valid JSON: {exc}") from None
        raw = body.get("Version") if isinstance(body, Mapping) else None
        if not isinstance(raw, str) or not raw:
            raise _BadRequest("Version: required: 'latest' or the number of an existing "
                              "version, as a string.")
        version = None if raw.lower() == "latest" else _version_number(raw, "Version")
    except _BadRequest as exc:
        return _bad(str(exc), request_id)
    try:
        active = await _repo(request).set_active(template_type, name, version)
    except VersionNotFound:
        return _not_found(template_type, name, request_id, version)
    if active is None:
        return _not_found(template_type, name, request_id)
    await _publish(request, active, deleted=False)
    return _message(request_id, 200)
