"""The HTTP API's OpenAPI 3.1 document: ``GET /openapi.json``, rendered at ``GET /docs``.

The document is generated, committed, and served as committed:

- ``python -m lodestar.api.openapi --write`` builds it and writes
  ``services/lodestar/api/openapi/openapi.json`` (package data, what the API
  serves) and ``docs/openapi.json`` (the same bytes, for readers of the repo);
  ``python -m lodestar.api.openapi`` prints it, ``--check`` says whether the
  two files are current.
- The builder reads botocore's ``pinpoint`` service model for what must match
  Pinpoint exactly: each operation's method, URI, success status, path and
  query parameters, and the payload shapes (field names, types, required
  members, enums). Lodestar's own knowledge is laid over it from this module:
  limits (taken from the constants the validators use, so a changed limit
  makes the committed document stale), the errors each handler answers,
  Lodestar-only routes, and all the descriptions (none are copied from the
  model).
- At run time only the committed JSON is read: botocore is a test dependency.
  tests/api/test_openapi.py fails when the committed files are not what the
  builder makes, differ from each other, or disagree with the route table.

The data folder ``openapi/`` sits next to this module and has no
``__init__.py``, so ``lodestar.api.openapi`` stays this module.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

DOCUMENT_PATH = Path(__file__).resolve().with_name("openapi") / "openapi.json"
"""The packaged document the API serves."""

OPENAPI_MEDIA_TYPE = "application/json"


# --------------------------------------------------------------------------- serving


@functools.cache
def document_bytes() -> bytes:
    """The committed document, as served."""
    return DOCUMENT_PATH.read_bytes()


def document() -> dict[str, Any]:
    """The committed document, decoded (a fresh copy each call)."""
    loaded: dict[str, Any] = json.loads(document_bytes())
    return loaded


async def openapi_json(request: Request) -> Response:
    """``GET /openapi.json``: the OpenAPI document (no credentials needed)."""
    return Response(document_bytes(), media_type=OPENAPI_MEDIA_TYPE)


async def docs_page(request: Request) -> Response:
    """``GET /docs``: the document as one self-contained HTML page (no script, no asset)."""
    return HTMLResponse(_docs_html())


def openapi_routes() -> list[Route]:
    """The routes serving the document: ``GET /openapi.json`` and ``GET /docs``."""
    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
    ]


# --------------------------------------------------------------------------- HTML page

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1b1b;line-height:1.45}
table{border-collapse:collapse;width:100%;margin:0.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:0.3rem 0.5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}code{font-family:ui-monospace,monospace;font-size:0.92em}
.desc{white-space:pre-wrap}.m{font-weight:bold;font-family:ui-monospace,monospace}
"""
_CONSTRAINTS = (
    "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "minItems", "maxItems", "maxProperties", "default",
)  # fmt: skip
_NESTED = (("propertyNames", "keys"), ("additionalProperties", "values"), ("items", "items"))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def _type_html(schema: Mapping[str, Any]) -> str:
    name = _ref_name(schema)
    if name is not None:
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + _type_html(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return "map of string to " + _type_html(schema["additionalProperties"])
    return _e(kind)


def _constraints(schema: Mapping[str, Any]) -> list[str]:
    out = [f"{k} {json.dumps(schema[k], ensure_ascii=False)}" for k in _CONSTRAINTS if k in schema]
    for key, label in _NESTED:
        inner = schema.get(key)
        if isinstance(inner, Mapping) and not _ref_name(inner):
            out.extend(f"{label}: {c}" for c in _constraints(inner))
    return out


def _schema_html(name: str, schema: Mapping[str, Any]) -> str:
    parts = [f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>']
    if schema.get("description"):
        parts.append(f'<p class="desc">{_e(schema["description"])}</p>')
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        details = "; ".join(_constraints(schema))
        parts.append(f"<p>{_type_html(schema)}{': ' + _e(details) if details else ''}</p>")
        return "".join(parts)
    required = set(schema.get("required", ()))
    rows = ["<tr><th>Field</th><th>Type</th><th>Required</th><th>Constraints</th>"
            "<th>Description</th></tr>"]
    for field_name, prop in properties.items():
        rows.append(
            f"<tr><td><code>{_e(field_name)}</code></td><td>{_type_html(prop)}</td>"
            f"<td>{'yes' if field_name in required else ''}</td>"
            f"<td>{'<br>'.join(_e(c) for c in _constraints(prop))}</td>"
            f"<td class=\"desc\">{_e(prop.get('description', ''))}</td></tr>"
        )
    parts.append("<table>" + "".join(rows) + "</table>")
    return "".join(parts)


def _body_html(content: Mapping[str, Any] | None) -> str:
    if not content:
        return ""
    media, entry = next(iter(content.items()))
    schema = entry.get("schema", {})
    return f"{_type_html(schema)} <small>({_e(media)})</small>"


@functools.cache
def _docs_html() -> str:
    doc = document()
    info = doc["info"]
    components = doc.get("components", {})
    responses = components.get("responses", {})
    default_security = doc.get("security", [])
    rows = ["<tr><th>Operation</th><th>Method and path</th><th>Auth</th><th>Request body</th>"
            "<th>Responses</th><th>Summary</th></tr>"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if not isinstance(op, Mapping) or "operationId" not in op:
                continue
            answers = []
            for status, answer in op["responses"].items():
                target = responses.get(_ref_name(answer) or "")
                if target is not None:  # an error: name Pinpoint's exception
                    kind = target["headers"]["x-amzn-ErrorType"]["schema"]["const"]
                    answers.append(f"<b>{_e(status)}</b> <code>{_e(kind)}</code>")
                else:
                    body = _body_html(answer.get("content"))
                    answers.append(f"<b>{_e(status)}</b> {body}".rstrip())
            query = [p["name"] for p in op.get("parameters", ()) if p["in"] == "query"]
            query_html = f"<br><small>?{_e('&'.join(q + '=' for q in query))}</small>"
            security = op.get("security", default_security)
            auth = " or ".join(sorted({k for s in security for k in s})) or "none"
            request_body = _body_html(op.get("requestBody", {}).get("content"))
            rows.append(
                f"<tr><td><code>{_e(op['operationId'])}</code></td>"
                f'<td><span class="m">{_e(method.upper())}</span> <code>{_e(path)}</code>'
                f"{query_html if query else ''}</td>"
                f"<td>{_e(auth)}</td><td>{request_body}</td><td>{'<br>'.join(answers)}</td>"
                f"<td>{_e(op.get('summary', ''))}</td></tr>"
            )
    schemes = ["<tr><th>Scheme</th><th>Type</th><th>Description</th></tr>"]
    for name, scheme in components.get("securitySchemes", {}).items():
        kind = scheme.get("scheme") or f"{scheme.get('in', '')} {scheme.get('name', '')}"
        schemes.append(
            f"<tr><td><code>{_e(name)}</code></td><td>{_e(scheme['type'])} ({_e(kind)})</td>"
            f"<td class=\"desc\">{_e(scheme.get('description', ''))}</td></tr>"
        )
    errors = ["<tr><th>Status</th><th>Response</th><th>Description</th></tr>"]
    for name, answer in responses.items():
        error_type = answer.get("headers", {}).get("x-amzn-ErrorType", {})
        kind = error_type.get("schema", {}).get("const", name)
        errors.append(
            f"<tr><td>{_e(answer.get('x-status', ''))}</td><td><code>{_e(kind)}</code></td>"
            f"<td class=\"desc\">{_e(answer.get('description', ''))}</td></tr>"
        )
    schemas = "".join(_schema_html(n, s) for n, s in components.get("schemas", {}).items())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(info['title'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(info['title'])} <small>{_e(info['version'])}</small></h1>"
        f'<p class="desc">{_e(info.get("description", ""))}</p>'
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI '
        f"{_e(doc['openapi'])}).</p>"
        f"<h2>Authentication</h2><table>{''.join(schemes)}</table>"
        f"<h2>Operations</h2><table>{''.join(rows)}</table>"
        f"<h2>Errors</h2><table>{''.join(errors)}</table>"
        f"<h2>Schemas</h2>{schemas}</body></html>"
    )


# --------------------------------------------------------------------------- generation
#
# Everything below runs only when the document is (re)built; it imports botocore.

_REQUEST_ID_HEADER = {
    "description": "The id of this request (also `RequestID` in error and MessageBody bodies).",
    "schema": {"type": "string"},
}

_NAME_KEYS = {"minLength": 1}


@dataclass(frozen=True)
class _PinpointOp:
    """What Lodestar adds to one of botocore's operations."""

    tag: str
    summary: str
    description: str
    who: str  # which keys may call it
    errors: Mapping[int, str | None]  # status → description for this operation (None: generic)
    success: str  # description of the success answer
    headers: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _limits() -> dict[str, Any]:
    """The limits the validators apply, by name (imported here so the builder follows code)."""
    from lodestar.api import apps, auth, events, sigv4
    from lodestar.core import endpoint_request, put_events

    return {
        "event_keys": put_events.MAX_KEYS_PER_EVENT,
        "event_key_length": put_events.MAX_KEY_LENGTH,
        "event_value_length": put_events.MAX_ATTRIBUTE_VALUE_LENGTH,
        "event_type_length": put_events.MAX_EVENT_TYPE_LENGTH,
        "events_per_request": put_events.MAX_EVENTS_PER_REQUEST,
        "put_events_bytes": events.MAX_PUT_EVENTS_BYTES,
        "attr_name_length": endpoint_request.MAX_ATTRIBUTE_NAME_LENGTH,
        "attr_value_length": endpoint_request.MAX_ATTRIBUTE_VALUE_LENGTH,
        "values_per_attr": endpoint_request.MAX_VALUES_PER_ATTRIBUTE,
        "keys_per_endpoint": endpoint_request.MAX_KEYS_PER_ENDPOINT,
        "endpoint_bytes": endpoint_request.MAX_ENDPOINT_BYTES,
        "batch_items": endpoint_request.MAX_BATCH_ITEMS,
        "page_size": apps.DEFAULT_PAGE_SIZE,
        "max_page_size": apps.MAX_PAGE_SIZE,
        "tags": apps.MAX_TAGS,
        "tag_key": apps.MAX_TAG_KEY,
        "tag_value": apps.MAX_TAG_VALUE,
        "signed_body_mb": auth.MAX_SIGNED_BODY_BYTES // (1024 * 1024),
        "skew_minutes": int(sigv4.MAX_CLOCK_SKEW.total_seconds() // 60),
        "service": sigv4.SERVICE,
    }


def _endpoint_fields(lim: Mapping[str, Any], *, response: bool) -> dict[str, Any]:
    """Overlay for the fields shared by PublicEndpoint, EndpointRequest, EndpointBatchItem
    and EndpointResponse."""
    from lodestar.core.endpoint_request import EndpointStatus, OptOut

    attribute_map = {
        "propertyNames": {**_NAME_KEYS, "maxLength": lim["attr_name_length"]},
        "additionalProperties": {
            "maxItems": lim["values_per_attr"],
            "items": {"maxLength": lim["attr_value_length"]},
        },
    }
    fields = {
        "Address": {
            "description": "Where messages go: a device token, an E.164 phone number "
            "(`+12065550100`) or an email address, depending on ChannelType. Writing an "
            "Address another endpoint of the application holds makes that endpoint INACTIVE.",
        },
        "Attributes": {
            "description": f"Custom attributes: a name (at most {lim['attr_name_length']} "
            f"characters) maps to at most {lim['values_per_attr']} values of at most "
            f"{lim['attr_value_length']} characters. Usable as segment criteria.",
            **attribute_map,
        },
        "ChannelType": {"description": "The channel messages to this endpoint use."},
        "Demographic": {"description": "Device and locale of the endpoint."},
        "EffectiveDate": {
            "format": "date-time",
            "description": "When the endpoint was last updated, ISO 8601 (UTC when it has no "
            "offset); it counts the endpoint as active that day.",
        },
        "EndpointStatus": {
            "enum": [s.value for s in EndpointStatus],
            "description": "ACTIVE: messages are sent to the endpoint; INACTIVE: they are not. "
            "Every create or update sets ACTIVE unless the request says otherwise.",
        },
        "Location": {"description": "Where the endpoint is."},
        "Metrics": {
            "description": f"Custom metrics: a name (at most {lim['attr_name_length']} "
            "characters) maps to a number.",
            "propertyNames": {**_NAME_KEYS, "maxLength": lim["attr_name_length"]},
        },
        "OptOut": {
            "enum": [o.value for o in OptOut],
            "description": "ALL: the user opted out of every message; NONE: not opted out.",
        },
        "RequestId": {"description": "The id of the request that last updated the endpoint."},
        "User": {"description": "The user the endpoint belongs to, and the user's attributes."},
    }
    if response:
        fields["EndpointStatus"]["default"] = EndpointStatus.ACTIVE.value
        fields["OptOut"]["default"] = OptOut.NONE.value
    return fields


def _schema_overlay(lim: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per component schema: description, extra ``required`` members, per-field keywords."""
    from lodestar.core.endpoint_commands import AttributeType

    endpoint_id = {"minLength": 1, "pattern": r"^[^${}]+$"}
    request_rules = (
        f"At most {lim['keys_per_endpoint']} Attributes, Metrics and User.UserAttributes "
        f"names together, and at most {lim['endpoint_bytes'] // 1024} KB as compact JSON. "
        "Unknown fields are ignored; `null` means not sent."
    )
    item_status = {
        "StatusCode": {
            "enum": [202, 400],
            "description": "202: accepted; 400: invalid (Message says why).",
        },
        "Message": {"description": "`Accepted`, or why the item was refused."},
    }
    return {
        "EventsRequest": {
            "description": "PutEvents' body: events grouped by endpoint. Items are validated one "
            "by one: an event or endpoint that breaks a rule below is answered 400 in the "
            "EventsResponse while the rest is accepted. Only a body that is not an "
            f"EventsRequest, or that holds more than {lim['events_per_request']} events in "
            "total, is refused with HTTP 400.",
            "properties": {
                "BatchItem": {
                    "description": "Endpoint id (without `$`, `{` or `}`) to its EventsBatch.",
                    "propertyNames": endpoint_id,
                },
            },
        },
        "EventsBatch": {
            "description": "One endpoint's events, and optionally the endpoint itself.",
            "properties": {
                "Endpoint": {
                    "description": "The endpoint to create or update before its events "
                    "apply; `{}` leaves it as it is.",
                },
                "Events": {
                    "description": "Event id to Event.",
                    "maxProperties": lim["events_per_request"],
                    "propertyNames": {"minLength": 1},
                },
            },
        },
        "Event": {
            "description": f"One event. At most {lim['event_keys']} Attributes and Metrics "
            "names together.",
            "properties": {
                "AppPackageName": {"description": "Package name of the app sending the event."},
                "AppTitle": {"description": "Title of the app sending the event."},
                "AppVersionCode": {"description": "Version of the app sending the event."},
                "Attributes": {
                    "description": f"Custom attributes: name (at most "
                    f"{lim['event_key_length']} characters) to a string of at most "
                    f"{lim['event_value_length']} characters.",
                    "maxProperties": lim["event_keys"],
                    "propertyNames": {**_NAME_KEYS, "maxLength": lim["event_key_length"]},
                    "additionalProperties": {"maxLength": lim["event_value_length"]},
                },
                "ClientSdkVersion": {"description": "Version of the SDK sending the event."},
                "EventType": {
                    "description": "The event's name, e.g. `_session.start` or `pageView`.",
                    "minLength": 1,
                    "maxLength": lim["event_type_length"],
                },
                "Metrics": {
                    "description": f"Custom metrics: name (at most {lim['event_key_length']} "
                    "characters) to a number.",
                    "maxProperties": lim["event_keys"],
                    "propertyNames": {**_NAME_KEYS, "maxLength": lim["event_key_length"]},
                },
                "SdkName": {"description": "Name of the SDK sending the event."},
                "Session": {"description": "The session the event belongs to."},
                "Timestamp": {
                    "format": "date-time",
                    "description": "When the event happened, ISO 8601 (UTC when it has no "
                    "offset), e.g. `2026-05-01T12:00:00.000Z`.",
                },
            },
        },
        "Session": {
            "description": "A session of the app.",
            "properties": {
                "Duration": {"minimum": 0, "description": "Length of the session, in ms."},
                "Id": {"minLength": 1, "description": "The session's id."},
                "StartTimestamp": {"format": "date-time", "description": "When it started."},
                "StopTimestamp": {"format": "date-time", "description": "When it stopped."},
            },
        },
        "PublicEndpoint": {
            "description": "The endpoint sent with events: EndpointRequest's fields. "
            + request_rules,
            "properties": _endpoint_fields(lim, response=False),
        },
        "EventsResponse": {
            "description": "PutEvents' answer: one ItemResponse per BatchItem key.",
            "required": ["Results"],
            "properties": {"Results": {"description": "Endpoint id to its ItemResponse."}},
        },
        "ItemResponse": {
            "description": "The outcome for one endpoint of a PutEvents request.",
            "required": ["EndpointItemResponse", "EventsItemResponse"],
            "properties": {
                "EndpointItemResponse": {"description": "The outcome for the endpoint."},
                "EventsItemResponse": {"description": "Event id to the outcome for the event."},
            },
        },
        "EndpointItemResponse": {
            "description": "The outcome for an endpoint.",
            "required": ["Message", "StatusCode"],
            "properties": item_status,
        },
        "EventItemResponse": {
            "description": "The outcome for an event. SDKs count an event delivered only on "
            "StatusCode 202 with Message `Accepted`.",
            "required": ["Message", "StatusCode"],
            "properties": item_status,
        },
        "EndpointRequest": {
            "description": "UpdateEndpoint's body: the fields to set; absent fields keep their "
            "values, map entries merge. " + request_rules,
            "properties": _endpoint_fields(lim, response=False),
        },
        "EndpointBatchRequest": {
            "description": "UpdateEndpointsBatch's body. The whole batch is refused (400) on "
            "the first invalid item; the message names it as `Item[i]`.",
            "properties": {
                "Item": {
                    "description": f"The endpoints to create or update, at most "
                    f"{lim['batch_items']}.",
                    "maxItems": lim["batch_items"],
                },
            },
        },
        "EndpointBatchItem": {
            "description": "One endpoint of a batch: EndpointRequest's fields and its Id. "
            + request_rules,
            "required": ["Id"],
            "properties": {
                **_endpoint_fields(lim, response=False),
                "Id": {
                    "description": "The endpoint's id, without `$`, `{` or `}`.",
                    **endpoint_id,
                },
            },
        },
        "EndpointResponse": {
            "description": "An endpoint as stored. Reads reflect a write within about a second "
            "of the engine applying it.",
            "required": [
                "ApplicationId", "Id", "Attributes", "CohortId", "CreationDate",
                "EndpointStatus", "Metrics", "OptOut",
            ],
            "properties": {
                **_endpoint_fields(lim, response=True),
                "ApplicationId": {"description": "The application's id."},
                "CohortId": {
                    "pattern": "^(0|[1-9][0-9]?)$",
                    "description": "A random cohort, `0` to `99` (about 1% of the endpoints "
                    "each), for holdout and treatment allocation.",
                },
                "CreationDate": {"format": "date-time", "description": "When it was created."},
                "Id": {"description": "The endpoint's id."},
            },
        },
        "EndpointsResponse": {
            "description": "The endpoints of a user.",
            "properties": {"Item": {"minItems": 1, "description": "The user's endpoints."}},
        },
        "MessageBody": {
            "description": "The answer of accepted writes: `{\"Message\": \"Accepted\", "
            "\"RequestID\": …}`.",
            "required": ["Message", "RequestID"],
            "properties": {
                "Message": {"description": "`Accepted`.", "examples": ["Accepted"]},
                "RequestID": {"description": "The id of the request."},
            },
        },
        "UpdateAttributesRequest": {
            "description": "RemoveAttributes' body.",
            "required": ["Blacklist"],
            "properties": {
                "Blacklist": {
                    "description": "Exact names of the attributes to remove from every "
                    "endpoint of the application (glob patterns are not supported).",
                    "items": {"minLength": 1},
                },
            },
        },
        "AttributesResource": {
            "description": "What RemoveAttributes removes.",
            "required": ["Attributes"],
            "properties": {
                "ApplicationId": {"description": "The application's id."},
                "AttributeType": {
                    "enum": [t.value for t in AttributeType],
                    "description": "Which attributes: endpoint custom attributes, endpoint "
                    "metrics, or user attributes.",
                },
                "Attributes": {"description": "The names removed, sorted, without repeats."},
            },
        },
        "CreateApplicationRequest": {
            "description": "CreateApp's body.",
            "properties": {
                "Name": {"minLength": 1, "description": "The application's display name."},
                "tags": {
                    "description": f"At most {lim['tags']} tags: key (1 to {lim['tag_key']} "
                    f"characters) to value (at most {lim['tag_value']} characters).",
                    "maxProperties": lim["tags"],
                    "propertyNames": {"minLength": 1, "maxLength": lim["tag_key"]},
                    "additionalProperties": {"maxLength": lim["tag_value"]},
                },
            },
        },
        "ApplicationResponse": {
            "description": "An application (a Pinpoint project).",
            "required": ["tags", "CreationDate"],
            "properties": {
                "Arn": {
                    "description": "`arn:aws:mobiletargeting:<LODESTAR_REGION>:"
                    "<LODESTAR_ACCOUNT_ID>:apps/<Id>`.",
                },
                "Id": {"description": "The application id, as in `/v1/apps/{application-id}`."},
                "Name": {"description": "The display name."},
                "tags": {"description": "The application's tags."},
                "CreationDate": {"format": "date-time", "description": "When it was created."},
            },
        },
        "ApplicationsResponse": {
            "description": "A page of applications, oldest first.",
            "required": ["Item"],
            "properties": {
                "Item": {"description": "The applications of this page."},
                "NextToken": {
                    "description": "Pass as `token` to get the next page; absent on the last.",
                },
            },
        },
        "EndpointDemographic": {
            "description": "Device and locale of an endpoint.",
            "properties": {
                "AppVersion": {"description": "Version of the app on the device."},
                "Locale": {"description": "ISO 639-1 language and ISO 3166-1 country, "
                           "e.g. `en_US`."},
                "Make": {"description": "Manufacturer, e.g. `apple`."},
                "Model": {"description": "Model, e.g. `iPhone`."},
                "ModelVersion": {"description": "Model version."},
                "Platform": {"description": "Platform, e.g. `ios`."},
                "PlatformVersion": {"description": "Platform version."},
                "Timezone": {"description": "Time zone name, e.g. `America/Los_Angeles`."},
            },
        },
        "EndpointLocation": {
            "description": "Where an endpoint is. Coordinates are rounded to one decimal place.",
            "properties": {
                "City": {"description": "City."},
                "Country": {
                    "pattern": "^[A-Za-z]{2}$",
                    "description": "ISO 3166-1 alpha-2 code, e.g. `US` (stored upper-case).",
                },
                "Latitude": {"minimum": -90, "maximum": 90, "description": "Latitude."},
                "Longitude": {"minimum": -180, "maximum": 180, "description": "Longitude."},
                "PostalCode": {"description": "Postal or ZIP code."},
                "Region": {"description": "Region, e.g. a state or province."},
            },
        },
        "EndpointUser": {
            "description": "The user an endpoint belongs to.",
            "properties": {
                "UserAttributes": {
                    "description": f"User attributes: a name (at most "
                    f"{lim['attr_name_length']} characters) maps to at most "
                    f"{lim['values_per_attr']} values of at most {lim['attr_value_length']} "
                    "characters.",
                    "propertyNames": {**_NAME_KEYS, "maxLength": lim["attr_name_length"]},
                    "additionalProperties": {
                        "maxItems": lim["values_per_attr"],
                        "items": {"maxLength": lim["attr_value_length"]},
                    },
                },
                "UserId": {"description": "The user's id (GetUserEndpoints' `user-id`)."},
            },
        },
        "ChannelType": {"description": "Pinpoint's channel types."},
        **_job_schema_overlay(),
    }


_APP_ID = "The application (project) id."
_ENDPOINT_ID = {
    "description": "The endpoint id; it cannot contain `$`, `{` or `}`.",
    "schema": {"minLength": 1},
}
_USER_ID = {"description": "The endpoint's `User.UserId`."}
_ANY_KEY = "an admin key, or a key of this application"


def _pinpoint_ops(lim: Mapping[str, Any]) -> dict[str, _PinpointOp]:
    """Lodestar's knowledge of each Pinpoint operation it serves, in route-table order."""
    from lodestar.api.apps import ACCESS_KEY_HEADER, SECRET_KEY_HEADER
    from lodestar.core.endpoint_commands import AttributeType

    no_app = "The application does not exist (answered after authentication)."
    signed_too_large = f"A SigV4-signed body larger than {lim['signed_body_mb']} MB."
    return {
        "CreateApp": _PinpointOp(
            tag="Apps", summary="Create an application",
            description="Creates an application and its first app key. The key is answered "
            "only here, in two extra headers (boto3 exposes them in ResponseMetadata).",
            who="an admin key",
            errors={400: "The body is not JSON, Name is missing or blank, or tags break a limit.",
                    403: None, 413: signed_too_large, 500: None},
            success="The application created.",
            headers={
                ACCESS_KEY_HEADER: {"description": "The new application's first access key id.",
                                    "schema": {"type": "string"}},
                SECRET_KEY_HEADER: {"description": "Its secret access key, sent only here.",
                                    "schema": {"type": "string"}},
                "Cache-Control": {"description": "`no-store`.", "schema": {"type": "string"}},
            },
        ),
        "GetApps": _PinpointOp(
            tag="Apps", summary="List applications",
            description="Lists applications, oldest first, a page at a time.",
            who="an admin key",
            errors={400: "page-size is not a whole number in range, or token is not one of ours.",
                    403: None, 500: None},
            success="A page of applications.",
            parameters={
                "page-size": {
                    "description": "How many applications per page.",
                    "schema": {"type": "integer", "minimum": 1,
                               "maximum": lim["max_page_size"], "default": lim["page_size"]},
                },
                "token": {"description": "The NextToken of the previous page."},
            },
        ),
        "GetApp": _PinpointOp(
            tag="Apps", summary="Get an application", description="Reads one application.",
            who=_ANY_KEY, errors={403: None, 404: "No such application.", 500: None},
            success="The application.",
        ),
        "DeleteApp": _PinpointOp(
            tag="Apps", summary="Delete an application",
            description="Deletes an application and all its API keys.",
            who="an admin key", errors={403: None, 404: "No such application.", 500: None},
            success="The application as it was.",
        ),
        "PutEvents": _PinpointOp(
            tag="Events", summary="Record events",
            description="Records events and, when an EventsBatch carries a non-empty Endpoint, "
            "creates or updates that endpoint first. Each endpoint and each event is answered "
            "on its own (202 or 400) in the EventsResponse; accepted events are published to "
            "Kafka before the answer.",
            who=_ANY_KEY,
            errors={400: "The body is not JSON, has no BatchItem map, or holds more than "
                    f"{lim['events_per_request']} events.",
                    403: None, 404: no_app,
                    413: f"The body is larger than {lim['put_events_bytes'] // (1024 * 1024)} MB "
                    f"(or, signed, {lim['signed_body_mb']} MB).",
                    500: "The events could not be stored; none was accepted. Retry."},
            success="Accepted; per-item outcomes inside.",
        ),
        "UpdateEndpointsBatch": _PinpointOp(
            tag="Endpoints", summary="Create or update endpoints",
            description=f"Creates or updates up to {lim['batch_items']} endpoints. A user "
            "has at most 15 endpoints.",
            who=_ANY_KEY,
            errors={400: "An item is invalid (the message names it), or a user would have "
                    "more than 15 endpoints.",
                    403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="Accepted; the engine applies the changes in order per endpoint.",
        ),
        "UpdateEndpoint": _PinpointOp(
            tag="Endpoints", summary="Create or update an endpoint",
            description="Creates the endpoint or updates the fields sent. A user has at most "
            "15 endpoints.",
            who=_ANY_KEY,
            errors={400: "The body or the endpoint id is invalid, or the user would have more "
                    "than 15 endpoints.",
                    403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="Accepted; the engine applies the change.",
            parameters={"endpoint-id": {**_ENDPOINT_ID,
                                        "schema": {"minLength": 1, "pattern": r"^[^${}]+$"}}},
        ),
        "GetEndpoint": _PinpointOp(
            tag="Endpoints", summary="Get an endpoint", description="Reads one endpoint.",
            who=_ANY_KEY, errors={403: None, 404: "No such endpoint (or application).",
                                  500: None},
            success="The endpoint.", parameters={"endpoint-id": _ENDPOINT_ID},
        ),
        "DeleteEndpoint": _PinpointOp(
            tag="Endpoints", summary="Delete an endpoint",
            description="Deletes an endpoint; answers it as it was.",
            who=_ANY_KEY, errors={403: None, 404: "No such endpoint (or application).",
                                  500: None},
            success="Accepted; the endpoint as it was.",
            parameters={"endpoint-id": _ENDPOINT_ID},
        ),
        "GetUserEndpoints": _PinpointOp(
            tag="Users", summary="Get a user's endpoints",
            description="Reads every endpoint whose User.UserId is `user-id`.",
            who=_ANY_KEY, errors={403: None, 404: "The user has no endpoint (or no such "
                                  "application).", 500: None},
            success="The user's endpoints.", parameters={"user-id": _USER_ID},
        ),
        "DeleteUserEndpoints": _PinpointOp(
            tag="Users", summary="Delete a user's endpoints",
            description="Deletes every endpoint whose User.UserId is `user-id`.",
            who=_ANY_KEY, errors={403: None, 404: "The user has no endpoint (or no such "
                                  "application).", 500: None},
            success="Accepted; the endpoints as they were.", parameters={"user-id": _USER_ID},
        ),
        "RemoveAttributes": _PinpointOp(
            tag="Endpoints", summary="Remove attributes from every endpoint",
            description="Removes the named attributes of one type from every endpoint of the "
            "application.",
            who=_ANY_KEY,
            errors={400: "Unknown attribute-type, or Blacklist is not a list of names.",
                    403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="The attributes removed.",
            parameters={"attribute-type": {
                "description": "Which attributes to remove.",
                "schema": {"enum": [t.value for t in AttributeType]},
            }},
        ),
        **_segment_ops(no_app, signed_too_large),
        **_job_ops(no_app, signed_too_large),
        **_template_ops(signed_too_large),
        **_message_ops(no_app, signed_too_large),
        **_kpi_ops(no_app),
    }


def _kpi_ops(no_app: str) -> dict[str, _PinpointOp]:
    """Get{Application,Campaign,Journey}DateRangeKpi (lodestar.api.kpis; docs/analytics.md)."""
    from lodestar.api.kpis import MAX_PAGE_SIZE
    from lodestar.core.kpi_catalog import KpiScope, kpi_names
    from lodestar.core.kpi_dates import MAX_RANGE_DAYS

    def op(scope: KpiScope, what: str) -> _PinpointOp:
        names = kpi_names(scope)
        return _PinpointOp(
            tag="Analytics", summary=f"Get a KPI of {what} over a date range",
            description=f"Answers one KPI of {what} from ClickHouse, grouped as its name says "
            "(docs/analytics.md gives every formula). Counts distinct message and event ids, "
            "so replayed deliveries are never counted twice. Rows are empty when there is no "
            "data.",
            who=_ANY_KEY,
            errors={400: f"The KPI name is not one of the {len(names)} {scope.value} KPIs "
                    "(the message lists them), the dates are not ISO-8601, start-time is after "
                    f"end-time, the range is longer than {MAX_RANGE_DAYS} days, or paging is "
                    "malformed.",
                    403: None, 404: no_app,
                    500: "No worker (embedded ClickHouse) or ClickHouse server answered."},
            success="The KPI's rows.",
            parameters={
                "kpi-name": {"description": "The KPI.", "schema": {"enum": names}},
                "start-time": {"description": "First moment of the range (ISO-8601, UTC, "
                               f"inclusive); default: {MAX_RANGE_DAYS} days before end-time."},
                "end-time": {"description": "Last moment of the range (inclusive); "
                             "default: now."},
                "page-size": {"description": "Rows per page (Pinpoint does not page KPIs; "
                              "Lodestar does when asked).",
                              "schema": {"minimum": 1, "maximum": MAX_PAGE_SIZE}},
                "next-token": {"description": "The NextToken of the previous page."},
            },
        )

    return {
        "GetApplicationDateRangeKpi": op(KpiScope.APPLICATION, "an application"),
        "GetCampaignDateRangeKpi": op(KpiScope.CAMPAIGN, "a campaign"),
        "GetJourneyDateRangeKpi": op(KpiScope.JOURNEY, "a journey"),
    }


def _job_schema_overlay() -> dict[str, dict[str, Any]]:
    """Import/export job shapes (lodestar.api.jobs; docs/imports.md)."""
    from lodestar.api.jobs import S3_REFUSED
    from lodestar.control.jobs import MAX_FAILURES

    role = {"description": "Accepted and echoed; Lodestar assumes no IAM role."}
    job = {
        "CompletedPieces": {"description": "Files read to the end."},
        "FailedPieces": {"description": "Files that could not be imported (unreadable, not "
                         "UTF-8, bad CSV header)."},
        "Failures": {"description": f"The first {MAX_FAILURES} failure messages, each naming "
                     "the file, the row and the field."},
        "TotalFailures": {"description": "Records refused."},
        "TotalPieces": {"description": "Files of the source (exports: files written)."},
        "TotalProcessed": {"description": "Records imported (exports: endpoints written)."},
    }
    return {
        "ImportJobRequest": {
            "description": "CreateImportJob's body. RegisterEndpoints defaults to true.",
            "properties": {
                "S3Url": {"description": "`file:///absolute/path` (a file, or a directory "
                          "whose files are all imported) on the Lodestar host, or an "
                          f"`http(s)://` URL. `s3://` is refused: {S3_REFUSED}."},
                "RoleArn": role,
                "DefineSegment": {"description": "Create an IMPORT segment of the imported "
                                  "endpoints; needs SegmentName."},
                "SegmentId": {"description": "Add the endpoints to this IMPORT segment "
                              "(written as its next version)."},
            },
        },
        "ExportJobRequest": {
            "description": "CreateExportJob's body.",
            "properties": {
                "S3UrlPrefix": {"description": "`file:///absolute/dir` on the Lodestar host; "
                                "files go to `<dir>/<job id>/part-NNNNN.json`."},
                "RoleArn": role,
                "SegmentVersion": {"description": "Only members admitted at this version."},
            },
        },
        "ImportJobResponse": {"description": "An import job and its progress.",
                              "properties": job},
        "ExportJobResponse": {"description": "An export job and its progress.",
                              "properties": job},
    }


def _job_ops(no_app: str, signed_too_large: str) -> dict[str, _PinpointOp]:
    """CreateImportJob … GetSegmentExportJobs (lodestar.api.jobs)."""
    from lodestar.api.jobs import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

    paging = {
        "page-size": {
            "description": "How many jobs per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                       "default": DEFAULT_PAGE_SIZE},
        },
        "token": {"description": "The NextToken of the previous page."},
    }
    bad_page = "page-size is not a whole number in range, or token is not one of ours."
    job_id = {"job-id": {"description": "The job id (32 lowercase hex characters)."}}
    segment_id = {"segment-id": {"description": "The segment id."}}
    runs = ("The API's job runner runs it in the background (docs/imports.md); poll the "
            "job for its status and counts.")
    return {
        "CreateImportJob": _PinpointOp(
            tag="Segments", summary="Import endpoints (and define an imported segment)",
            description="Imports endpoints from a CSV or newline-delimited JSON source and, "
            "with DefineSegment or SegmentId, makes them members of an IMPORT segment. "
            + runs,
            who=_ANY_KEY,
            errors={400: "The body is invalid, the source is s3:// or does not exist, or "
                    "DefineSegment lacks SegmentName; the message says what to fix.",
                    403: None, 404: "No such application, or SegmentId does not exist.",
                    413: signed_too_large, 500: None},
            success="The job created.",
        ),
        "GetImportJobs": _PinpointOp(
            tag="Segments", summary="List import jobs",
            description="Lists the application's import jobs, newest first.",
            who=_ANY_KEY, errors={400: bad_page, 403: None, 404: no_app, 500: None},
            success="A page of jobs.", parameters=paging,
        ),
        "GetImportJob": _PinpointOp(
            tag="Segments", summary="Get an import job",
            description="Reads an import job: status, counts and failures.",
            who=_ANY_KEY, errors={403: None, 404: "No such job (or application).", 500: None},
            success="The job.", parameters=job_id,
        ),
        "CreateExportJob": _PinpointOp(
            tag="Segments", summary="Export endpoints to files",
            description="Writes the application's endpoints (or a segment's members) as "
            "newline-delimited EndpointResponse JSON into a directory. " + runs,
            who=_ANY_KEY,
            errors={400: "The body is invalid or S3UrlPrefix is not a file:/// directory.",
                    403: None, 404: "No such application, or segment (version).",
                    413: signed_too_large, 500: None},
            success="The job created.",
        ),
        "GetExportJobs": _PinpointOp(
            tag="Segments", summary="List export jobs",
            description="Lists the application's export jobs, newest first.",
            who=_ANY_KEY, errors={400: bad_page, 403: None, 404: no_app, 500: None},
            success="A page of jobs.", parameters=paging,
        ),
        "GetExportJob": _PinpointOp(
            tag="Segments", summary="Get an export job",
            description="Reads an export job: status and counts.",
            who=_ANY_KEY, errors={403: None, 404: "No such job (or application).", 500: None},
            success="The job.", parameters=job_id,
        ),
        "GetSegmentImportJobs": _PinpointOp(
            tag="Segments", summary="List a segment's import jobs",
            description="Lists the import jobs that added to a segment, newest first.",
            who=_ANY_KEY,
            errors={400: bad_page, 403: None, 404: "No such segment (or application).",
                    500: None},
            success="A page of jobs.", parameters={**segment_id, **paging},
        ),
        "GetSegmentExportJobs": _PinpointOp(
            tag="Segments", summary="List a segment's export jobs",
            description="Lists the export jobs of a segment, newest first.",
            who=_ANY_KEY,
            errors={400: bad_page, 403: None, 404: "No such segment (or application).",
                    500: None},
            success="A page of jobs.", parameters={**segment_id, **paging},
        ),
    }


def _template_ops(signed_too_large: str) -> dict[str, _PinpointOp]:
    """Create/Get/Update/Delete<Type>Template, ListTemplates, ListTemplateVersions,
    UpdateTemplateActiveVersion (lodestar.api.templates; docs/templates.md)."""
    from lodestar.api.templates import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
    from lodestar.control.templates import MAX_NAME_LENGTH, MAX_VERSIONS, NAME_PATTERN

    who = "an admin key (templates are account-wide; app keys are refused with 403)"
    name = {"template-name": {
        "description": f"The template's name: 1 to {MAX_NAME_LENGTH} letters, digits, `-` and "
        "`_`, starting with a letter or digit; unique per template type.",
        "schema": {"pattern": f"^{NAME_PATTERN.pattern}$"},
    }}
    bad_name = "template-name breaks the naming rule"
    version = {"version": {"description": "A version number (from 1)."}}
    kind = {"template-type": {"description": "EMAIL, SMS, PUSH, VOICE or INAPP.",
                              "schema": {"enum": ["EMAIL", "SMS", "PUSH", "VOICE", "INAPP"]}}}
    paging = {
        "page-size": {
            "description": "How many items per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                       "default": DEFAULT_PAGE_SIZE},
        },
        "next-token": {"description": "The NextToken of the previous page."},
    }
    published = ("Published after the commit on the compacted `<prefix>.control` topic as a "
                 "`lodestar.v1.ControlChange` (entity TEMPLATE, id `<TYPE>/<name>`, no app), "
                 "carrying the active version.")
    invalid = ("The body is not JSON or the template is invalid (the message names the field, "
               f"e.g. `Headers[0].Name` or `APNS.Body`), or {bad_name}. Nothing is stored.")
    ops: dict[str, _PinpointOp] = {}
    for op, title in (("Email", "an email"), ("Sms", "an SMS"), ("Push", "a push"),
                      ("Voice", "a voice"), ("InApp", "an in-app")):
        stored = " In-app templates are stored as given (they take no variables)." \
            if op == "InApp" else ""
        missing = f"No such {title} template (or version)."
        ops[f"Create{op}Template"] = _PinpointOp(
            tag="Templates", summary=f"Create {title} template",
            description=f"Creates the template at version 1, which becomes the active version; "
            f"its Handlebars parts are compiled and checked first.{stored} {published}",
            who=who,
            errors={400: f"{invalid} Also when a template of this type and name exists.",
                    403: None, 500: None},
            success="Created: the template's Arn.", parameters=name,
        )
        ops[f"Get{op}Template"] = _PinpointOp(
            tag="Templates", summary=f"Get {title} template",
            description="Reads the active version, or the version given.",
            who=who, errors={400: f"version is not a whole number, or {bad_name}.", 403: None,
                             404: missing, 500: None},
            success="The template version.", parameters={**name, **version},
        )
        ops[f"Update{op}Template"] = _PinpointOp(
            tag="Templates", summary=f"Update {title} template",
            description="Overwrites the latest version (`version`, when given, must be the "
            "latest), or with `create-new-version=true` adds the next version, which does not "
            f"become active by itself (at most {MAX_VERSIONS} versions; numbers are never "
            f"reused). Tags are ignored, as in Pinpoint. {published}",
            who=who,
            errors={400: f"{invalid} Also when `version` is not the latest, is combined with "
                    "create-new-version=true, or the template has too many versions.",
                    403: None, 404: missing, 413: signed_too_large, 500: None},
            success="Accepted.",
            parameters={**name, **version, "create-new-version": {
                "description": "true: add a version instead of overwriting the latest."}},
        )
        ops[f"Delete{op}Template"] = _PinpointOp(
            tag="Templates", summary=f"Delete {title} template",
            description="Deletes every version, or only `version`. The active version cannot "
            "be deleted while other versions exist; deleting the only version deletes the "
            f"template. {published}",
            who=who,
            errors={400: f"version is not a whole number, is the active version, or {bad_name}.",
                    403: None, 404: missing, 500: None},
            success="Accepted.", parameters={**name, **version},
        )
    ops["ListTemplates"] = _PinpointOp(
        tag="Templates", summary="List templates",
        description="Lists every template (its active version) ordered by name (byte order) "
        "and type, a page at a time.",
        who=who,
        errors={400: "page-size, next-token or template-type is not valid.", 403: None,
                500: None},
        success="A page of templates.",
        parameters={**paging, "prefix": {"description": "Only names starting with this."},
                    "template-type": kind["template-type"]},
    )
    ops["ListTemplateVersions"] = _PinpointOp(
        tag="Templates", summary="List a template's versions",
        description="Lists the versions of a template, oldest first, a page at a time.",
        who=who,
        errors={400: f"page-size, next-token or template-type is not valid, or {bad_name}.",
                403: None, 404: "No such template.", 500: None},
        success="A page of versions.", parameters={**name, **kind, **paging},
    )
    ops["UpdateTemplateActiveVersion"] = _PinpointOp(
        tag="Templates", summary="Choose a template's active version",
        description="Makes `latest` (the highest existing version) or the version given the "
        f"active one: what GetXTemplate answers without `version` and what sends use. "
        f"{published}",
        who=who,
        errors={400: f"Version is missing or not `latest` or a number, or {bad_name}.",
                403: None, 404: "No such template or version.", 413: signed_too_large,
                500: None},
        success="Accepted.", parameters={**name, **kind},
    )
    return ops


def _segment_ops(no_app: str, signed_too_large: str) -> dict[str, _PinpointOp]:
    """CreateSegment … GetSegmentVersion (lodestar.api.segments)."""
    from lodestar.api.segments import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

    invalid = ("The body is not JSON or the definition is invalid (the message names the "
               "field, e.g. Dimensions.Attributes.plan.AttributeType), or a source segment "
               "does not exist in the application. Nothing is stored.")
    no_segment = "No such segment (or application)."
    segment_id = {"description": "The segment id (32 lowercase hex characters)."}
    paging = {
        "page-size": {
            "description": "How many items per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
                       "default": DEFAULT_PAGE_SIZE},
        },
        "token": {"description": "The NextToken of the previous page."},
    }
    published = ("Published after the commit on the compacted `<prefix>.control` topic as a "
                 "`lodestar.v1.ControlChange` (entity SEGMENT).")
    return {
        "CreateSegment": _PinpointOp(
            tag="Segments", summary="Create a segment",
            description="Creates a dimensional segment at version 1 from Dimensions or "
            f"SegmentGroups. {published}",
            who=_ANY_KEY,
            errors={400: invalid, 403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="The segment created.",
        ),
        "GetSegments": _PinpointOp(
            tag="Segments", summary="List segments",
            description="Lists the application's segments (latest versions), oldest first, "
            "a page at a time.",
            who=_ANY_KEY,
            errors={400: "page-size is not a whole number in range, or token is not one of "
                    "ours.", 403: None, 404: no_app, 500: None},
            success="A page of segments.", parameters=paging,
        ),
        "GetSegment": _PinpointOp(
            tag="Segments", summary="Get a segment",
            description="Reads the latest version of a segment.",
            who=_ANY_KEY, errors={403: None, 404: no_segment, 500: None},
            success="The segment.", parameters={"segment-id": segment_id},
        ),
        "UpdateSegment": _PinpointOp(
            tag="Segments", summary="Update a segment",
            description="Writes the segment's next version (versions are never reused); "
            f"a request without Name keeps the current name. {published}",
            who=_ANY_KEY,
            errors={400: invalid, 403: None, 404: no_segment, 413: signed_too_large,
                    500: None},
            success="The new version.", parameters={"segment-id": segment_id},
        ),
        "DeleteSegment": _PinpointOp(
            tag="Segments", summary="Delete a segment",
            description=f"Deletes a segment and all its versions. {published}",
            who=_ANY_KEY, errors={403: None, 404: no_segment, 500: None},
            success="The segment as it was.", parameters={"segment-id": segment_id},
        ),
        "GetSegmentVersions": _PinpointOp(
            tag="Segments", summary="List a segment's versions",
            description="Lists every version of a segment, oldest first, a page at a time.",
            who=_ANY_KEY,
            errors={400: "page-size is not a whole number in range, or token is not one of "
                    "ours.", 403: None, 404: no_segment, 500: None},
            success="A page of versions.", parameters={"segment-id": segment_id, **paging},
        ),
        "GetSegmentVersion": _PinpointOp(
            tag="Segments", summary="Get one version of a segment",
            description="Reads one version of a segment.",
            who=_ANY_KEY,
            errors={400: "version is not a whole number from 1.", 403: None,
                    404: "No such segment, version or application.", 500: None},
            success="That version.",
            parameters={"segment-id": segment_id,
                        "version": {"description": "The version number, from 1."}},
        ),
    }


def _message_ops(no_app: str, signed_too_large: str) -> dict[str, _PinpointOp]:
    """SendMessages and SendUsersMessages (lodestar.api.messages)."""
    from lodestar.core.send_messages import MAX_RECIPIENTS

    invalid = ("The body is not JSON, MessageConfiguration is missing or names an unsupported "
               "message, a recipient's configuration is malformed, an address lacks a known "
               f"ChannelType, or there are more than {MAX_RECIPIENTS} recipients. The message "
               "lists every problem; nothing is queued.")
    queued = ("The answer comes once each recipient's SendRequest is acknowledged by Kafka on "
              "`<prefix>.send.<channel>`, not after the provider answered: a queued recipient "
              "is SUCCESSFUL (StatusCode 200, StatusMessage `Queued`) and its outcome follows "
              "on `<prefix>.deliveries` under the returned MessageId. Recipients that cannot "
              "be sent answer at once: OPT_OUT (OptOut ALL), PERMANENT_FAILURE (no such or "
              "INACTIVE endpoint, no message for its channel), DUPLICATE (same channel and "
              "address earlier in the request). Message ids derive from the RequestId, so "
              "senders deliver each at most once.")
    return {
        "SendMessages": _PinpointOp(
            tag="Messages", summary="Send a message to addresses and endpoints",
            description=f"Sends a transactional message. {queued}",
            who=_ANY_KEY,
            errors={400: invalid, 403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="A result per address (Result) and per endpoint (EndpointResult).",
        ),
        "SendUsersMessages": _PinpointOp(
            tag="Messages", summary="Send a message to every endpoint of users",
            description=f"Sends a transactional message to each user's endpoints. {queued}",
            who=_ANY_KEY,
            errors={400: invalid, 403: None, 404: no_app, 413: signed_too_large, 500: None},
            success="A result per user and endpoint.",
        ),
    }


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base`` (nested mappings merge; other values replace)."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = json.loads(json.dumps(value))  # a copy
    return base


def _ref(name: str, kind: str = "schemas") -> dict[str, Any]:
    return {"$ref": f"#/components/{kind}/{name}"}


class _Shapes:
    """botocore shapes translated to JSON Schema; structures and enums become components."""

    _SCALARS = {
        "string": {"type": "string"},
        "integer": {"type": "integer"},
        "long": {"type": "integer"},
        "double": {"type": "number"},
        "float": {"type": "number"},
        "boolean": {"type": "boolean"},
        "timestamp": {"type": "string", "format": "date-time"},
        "blob": {"type": "string", "contentEncoding": "base64"},
    }

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def inline(self, shape: Any) -> dict[str, Any]:
        kind = shape.type_name
        if kind == "structure" or (kind == "string" and shape.enum):
            self.component(shape)
            return _ref(shape.name)
        if kind == "list":
            return {"type": "array", "items": self.inline(shape.member)}
        if kind == "map":
            out: dict[str, Any] = {"type": "object"}
            if shape.key.enum:
                out["propertyNames"] = {"enum": list(shape.key.enum)}
            out["additionalProperties"] = self.inline(shape.value)
            return out
        if kind not in self._SCALARS:
            raise ValueError(f"no JSON Schema for botocore type {kind!r} ({shape.name})")
        return dict(self._SCALARS[kind])

    def component(self, shape: Any) -> None:
        if shape.name in self.components:
            return
        if shape.type_name == "string":
            self.components[shape.name] = {"type": "string", "enum": list(shape.enum)}
            return
        schema: dict[str, Any] = {"type": "object"}
        self.components[shape.name] = schema  # before members: shapes may recurse
        if shape.required_members:
            schema["required"] = list(shape.required_members)
        schema["properties"] = {
            name: self.inline(member) for name, member in shape.members.items()
        }


def _apply_overlay(components: dict[str, dict[str, Any]], overlay: Mapping[str, Any]) -> None:
    for name, extra in overlay.items():
        if name not in components:
            raise ValueError(f"overlay for {name}, which no documented operation uses")
        schema = components[name]
        properties = schema.get("properties", {})
        unknown = set(extra.get("properties", {})) - set(properties)
        if unknown:
            raise ValueError(f"overlay of {name} names fields the model lacks: {unknown}")
        required = list(schema.get("required", []))
        required += [r for r in extra.get("required", []) if r not in required]
        for field_name, keywords in extra.get("properties", {}).items():
            prop = properties[field_name]
            if "$ref" in prop and set(keywords) - {"description"}:
                raise ValueError(f"{name}.{field_name} is a $ref: only its description may be set")
            _merge(prop, keywords)
        updated = {"description": extra.get("description"), **schema, "required": required}
        components[name] = {
            k: updated[k]
            for k in ("description", "type", "enum", "required", "properties")
            if updated.get(k)
        }


def _error_responses() -> dict[str, Any]:
    from lodestar.api.errors import ErrorType

    what = {
        ErrorType.BAD_REQUEST: "The request is invalid; Message says what to fix.",
        ErrorType.FORBIDDEN: "No credentials, bad credentials, a revoked key, or a key not "
        "allowed to call this (an app key outside its application, or on an admin "
        "operation). Message says what to fix.",
        ErrorType.NOT_FOUND: "The resource does not exist, or no route serves the path.",
        ErrorType.METHOD_NOT_ALLOWED: "A served path called with a method it does not serve.",
        ErrorType.PAYLOAD_TOO_LARGE: "The request body is too large.",
        ErrorType.TOO_MANY_REQUESTS: "Pinpoint's throttling answer. Lodestar does not throttle "
        "and does not send it yet; Pinpoint clients retry on it.",
        ErrorType.INTERNAL: "Lodestar failed to handle the request; retry it, and see the API "
        "log.",
    }
    return {
        kind.value.removesuffix("Exception"): {
            "description": what[kind],
            "x-status": kind.status,
            "headers": {
                "x-amzn-ErrorType": {
                    "description": "Pinpoint's exception name, which boto3 and Amplify read.",
                    "required": True,
                    "schema": {"type": "string", "const": kind.value},
                },
                "x-amzn-RequestId": _ref("RequestId", "headers"),
            },
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        for kind in ErrorType
    }


def _operation(model: Any, op_id: str, extra: _PinpointOp, shapes: _Shapes) -> dict[str, Any]:
    from lodestar.api.errors import ErrorType

    op_model = model.operation_model(op_id)
    out: dict[str, Any] = {
        "operationId": op_id,
        "tags": [extra.tag],
        "summary": extra.summary,
        "description": f"{extra.description}\n\nPinpoint operation `{op_id}`. Who may call it: "
        f"{extra.who}.",
    }
    parameters: list[dict[str, Any]] = []
    body_member = op_model.input_shape.serialization.get("payload")
    unknown = set(extra.parameters)
    for member in op_model.input_shape.members.values():
        where = member.serialization.get("location")
        if where not in ("uri", "querystring"):
            continue
        name = member.serialization["name"]
        unknown.discard(name)
        param: dict[str, Any] = {
            "name": name,
            "in": "path" if where == "uri" else "query",
            "required": where == "uri",
            "schema": shapes.inline(member),
        }
        if name == "application-id":
            param["description"] = _APP_ID
        _merge(param, extra.parameters.get(name, {}))
        parameters.append({k: param[k] for k in ("name", "in", "description", "required",
                                                  "schema") if k in param})
    if unknown:
        raise ValueError(f"{op_id}: the model has no parameters {unknown}")
    if parameters:
        out["parameters"] = parameters
    if body_member:
        body_shape = op_model.input_shape.members[body_member]
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": shapes.inline(body_shape)}},
        }
    status = str(op_model.http["responseCode"])
    success: dict[str, Any] = {
        "description": extra.success,
        "headers": {"x-amzn-RequestId": _ref("RequestId", "headers"), **extra.headers},
    }
    payload = op_model.output_shape.serialization.get("payload")
    if payload:
        schema = shapes.inline(op_model.output_shape.members[payload])
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {status: success}
    kinds = {kind.status: kind for kind in ErrorType}
    modelled = {e.name for e in op_model.error_shapes}
    for code, text in sorted(extra.errors.items()):
        kind = kinds[code]
        if kind.value not in modelled:
            raise ValueError(f"{op_id}: Pinpoint's model has no {kind.value} for it")
        answer = _ref(kind.value.removesuffix("Exception"), "responses")
        if text:
            answer["description"] = text
        responses[str(code)] = answer
    out["responses"] = responses
    return out


def _lodestar_paths() -> dict[str, dict[str, Any]]:
    """Routes of Lodestar's own (no Pinpoint counterpart, no credentials)."""
    return {
        "/healthz": {"get": {
            "operationId": "GetHealth",
            "tags": ["Lodestar"],
            "summary": "Liveness check",
            "description": "Answers 200 while the API process serves requests. Needs no "
            "credentials.",
            "security": [],
            "responses": {"200": {
                "description": "The API is up.",
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"],
                    "properties": {"status": {"const": "ok"}},
                }}},
            }},
        }},
        "/openapi.json": {"get": {
            "operationId": "GetOpenApiDocument",
            "tags": ["Lodestar"],
            "summary": "This OpenAPI document",
            "description": "The OpenAPI 3.1 document of this API (also `docs/openapi.json` in "
            "the repository). Needs no credentials.",
            "security": [],
            "responses": {"200": {
                "description": "The document.",
                "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}},
            }},
        }},
        "/docs": {"get": {
            "operationId": "GetApiDocs",
            "tags": ["Lodestar"],
            "summary": "This document as an HTML page",
            "description": "A self-contained HTML page (no script, no external asset) listing "
            "the operations, errors and schemas. Needs no credentials.",
            "security": [],
            "responses": {"200": {
                "description": "The page.",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }},
        }},
        **_tracking_paths(),
    }


def _tracking_paths() -> dict[str, dict[str, Any]]:
    """The email tracking routes (lodestar.api.tracking; docs/email.md)."""
    token = [{"name": "token", "in": "path", "required": True,
              "description": "A tracking token signed under LODESTAR_SMTP_TRACKING_SECRET "
              "(`<payload>.<mac>`, see docs/email.md).",
              "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$"}}]
    text = {"text/plain": {"schema": {"type": "string"}}}
    # a plain-text 404, not Pinpoint's JSON error: documented as the 4XX range
    not_found = {"description": "404, plain text: the token is not a valid one of this kind, "
                 "or tracking is off (LODESTAR_SMTP_TRACKING_SECRET unset).", "content": text}
    creds = ("Needs no credentials: the signed token is the credential. Answers 404 while "
             "LODESTAR_SMTP_TRACKING_SECRET is unset.")
    unsubscribe = ("Verifies an unsubscribe token, publishes `_email.unsubscribe` on the "
                   "deliveries topic and an UPSERT endpoint command setting `OptOut: ALL` on "
                   "the token's endpoint. " + creds)
    return {
        "/t/o/{token}": {"get": {
            "operationId": "TrackEmailOpen",
            "tags": ["Lodestar"],
            "summary": "Email open tracking pixel",
            "description": "Verifies an open token and publishes `_email.open` on the "
            "deliveries topic. An invalid token gets the same pixel and publishes nothing. "
            + creds,
            "security": [],
            "parameters": token,
            "responses": {
                "200": {"description": "A 1x1 transparent GIF, not to be cached.",
                        "content": {"image/gif": {"schema": {"type": "string",
                                                             "format": "binary"}}}},
                "4XX": not_found,
            },
        }},
        "/t/c/{token}": {"get": {
            "operationId": "TrackEmailClick",
            "tags": ["Lodestar"],
            "summary": "Email click redirect",
            "description": "Verifies a click token, publishes `_email.click` (the target URL "
            "in the `feedback` attribute) on the deliveries topic and redirects to the "
            "target. " + creds,
            "security": [],
            "parameters": token,
            "responses": {
                "302": {"description": "Redirect to the link's original target.",
                        "headers": {"Location": {"schema": {"type": "string",
                                                            "format": "uri"}}}},
                "4XX": not_found,
            },
        }},
        "/t/u/{token}": {
            "get": {
                "operationId": "EmailUnsubscribePage",
                "tags": ["Lodestar"],
                "summary": "Email unsubscribe (link): a confirmation page",
                "description": "Answers a page whose button POSTs to the same URL; changes "
                               "nothing, so link-scanning mail filters cannot unsubscribe "
                               "anyone. " + creds,
                "security": [],
                "parameters": token,
                "responses": {
                    "200": {"description": "The page asking to confirm.",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "4XX": not_found,
                },
            },
            "post": {
                "operationId": "EmailOneClickUnsubscribe",
                "tags": ["Lodestar"],
                "summary": "Email one-click unsubscribe (RFC 8058)",
                "description": "What a mail client POSTs for `List-Unsubscribe-Post: "
                "List-Unsubscribe=One-Click`. " + unsubscribe,
                "security": [],
                "parameters": token,
                "requestBody": {"required": False, "content": {
                    "application/x-www-form-urlencoded": {"schema": {
                        "type": "object",
                        "properties": {"List-Unsubscribe": {"const": "One-Click"}},
                    }},
                }},
                "responses": {
                    "200": {"description": "Unsubscribed.", "content": text},
                    "4XX": not_found,
                },
            },
        },
    }


def _lodestar_extensions() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Lodestar's own operations under ``/v1/`` (no Pinpoint counterpart), authenticated like
    Pinpoint's: (paths, component schemas). Each is marked ``x-lodestar-extension: true``."""
    from lodestar.api.errors import ErrorType
    from lodestar.control.segment_membership import COMPLETED, IN_PROGRESS, PENDING

    def error(kind: ErrorType, text: str | None = None) -> dict[str, Any]:
        answer = _ref(kind.value.removesuffix("Exception"), "responses")
        return {**answer, "description": text} if text else answer

    count = {"type": "integer", "minimum": 0}
    schemas: dict[str, dict[str, Any]] = {
        "SegmentMembership": {
            "description": "Lodestar extension. A segment's members now, and the backfill of "
            "its latest version.",
            "type": "object",
            "required": ["ApplicationId", "SegmentId", "Version", "Size", "ChannelCounts",
                         "Backfill"],
            "properties": {
                "ApplicationId": {"type": "string", "description": "The application's id."},
                "SegmentId": {"type": "string", "description": "The segment's id."},
                "Version": {"type": "integer", "minimum": 1,
                            "description": "The segment's latest version."},
                "Size": {**count, "description": "How many endpoints are members now (whatever "
                         "version admitted them)."},
                "ChannelCounts": {
                    "type": "object",
                    "description": "Members per ChannelType, like Pinpoint's ChannelCounts; "
                    "channels without members are left out. A member whose endpoint the "
                    "read model does not hold (not projected yet, or deleted) counts in Size "
                    "but under no channel.",
                    "propertyNames": _ref("ChannelType"),
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
                "Backfill": _ref("SegmentBackfillStatus"),
            },
        },
        "SegmentBackfillStatus": {
            "description": "Lodestar extension. How far the workers have got evaluating one "
            "segment version over the endpoints of their partitions.",
            "type": "object",
            "required": ["Version", "State", "EndpointsEvaluated", "EndpointsTotal",
                         "PartitionsCompleted", "Partitions"],
            "properties": {
                "Version": {"type": "integer", "minimum": 1,
                            "description": "The segment version evaluated."},
                "State": {
                    "type": "string", "enum": [PENDING, IN_PROGRESS, COMPLETED],
                    "description": "PENDING: no partition has reported yet; IN_PROGRESS: some "
                    "have; COMPLETED: every partition has finished.",
                },
                "EndpointsEvaluated": {**count, "description": "Endpoints evaluated so far, "
                                       "summed over the partitions that reported."},
                "EndpointsTotal": {**count, "description": "Endpoints to evaluate, summed "
                                   "over the partitions that reported."},
                "PartitionsCompleted": {**count, "description": "Partitions whose backfill "
                                        "has finished."},
                "Partitions": {"type": "integer", "minimum": 1,
                               "description": "Partitions of the topics "
                               "(`LODESTAR_PARTITIONS`)."},
            },
        },
    }
    membership = {"get": {
        "operationId": "GetSegmentMembership",
        "tags": ["Segments"],
        "summary": "Segment membership and backfill status (Lodestar extension)",
        "description": "Lodestar extension, not a Pinpoint operation (boto3's `pinpoint` client "
        "has no method for it; sign the GET yourself or use Bearer credentials, or run "
        "`lodestar segments status`). Answers how many endpoints are in the segment now, per "
        "channel, and the progress of the backfill of its latest version. Read from "
        "PostgreSQL, which the engine updates within about a second of a membership change. "
        f"Who may call it: {_ANY_KEY}.",
        "x-lodestar-extension": True,
        "parameters": [
            {"name": "application-id", "in": "path", "description": _APP_ID, "required": True,
             "schema": {"type": "string"}},
            {"name": "segment-id", "in": "path",
             "description": "The segment id (32 lowercase hex characters).", "required": True,
             "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {
                "description": "The segment's membership and backfill status.",
                "headers": {"x-amzn-RequestId": _ref("RequestId", "headers")},
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["SegmentMembershipResponse"],
                    "properties": {"SegmentMembershipResponse": _ref("SegmentMembership")},
                }}},
            },
            "403": error(ErrorType.FORBIDDEN),
            "404": error(ErrorType.NOT_FOUND, "No such segment (or application)."),
            "500": error(ErrorType.INTERNAL),
        },
    }}
    return {"/v1/apps/{application-id}/segments/{segment-id}/membership": membership}, schemas


def _info_description() -> str:
    from lodestar.api.errors import ErrorType

    errors = ", ".join(f"{k.status} `{k.value}`" for k in ErrorType)
    return (
        "Lodestar's HTTP API follows Amazon Pinpoint's REST API (2016-12-01, `rest-json`): "
        "the same paths, operation ids, JSON field names and status codes, so boto3's "
        "`pinpoint` client and the AWS CLI work against it given `endpoint_url` and a Lodestar "
        "access key. Bodies are the payload structures themselves, never wrapped in a key "
        "named after the shape. Lodestar's own operations under `/v1/` (marked "
        "`x-lodestar-extension`, authenticated the same way) wrap their answer in one key, "
        "e.g. `{\"SegmentMembershipResponse\": …}`.\n\n"
        "Errors answer `{\"Message\", \"RequestID\"}` with Pinpoint's exception name in the "
        f"`x-amzn-ErrorType` header: {errors}. Under `/v1/` authentication comes first: a "
        "request without valid credentials is answered 403 whatever the path. Then a path no "
        "route serves answers 404 and a served path called with another method 405. Lodestar "
        "does not throttle, so it never answers 429.\n\n"
        "Only the operations listed here are served; Pinpoint's others (campaigns, "
        "journeys, messages, analytics, channels, ...) answer 404."
    )


def build_document() -> dict[str, Any]:
    """Build the document from botocore's ``pinpoint`` model and Lodestar's overlay.

    Needs botocore (a test/dev dependency); the API never calls this.
    """
    import botocore.session

    import lodestar
    from lodestar.core.endpoint_request import ChannelType

    model = botocore.session.get_session().get_service_model("pinpoint")
    lim = _limits()
    shapes = _Shapes()
    paths: dict[str, dict[str, Any]] = {"/healthz": _lodestar_paths()["/healthz"]}
    for op_id, extra in _pinpoint_ops(lim).items():
        http = model.operation_model(op_id).http
        paths.setdefault(http["requestUri"], {})[http["method"].lower()] = _operation(
            model, op_id, extra, shapes
        )
    extension_paths, extension_schemas = _lodestar_extensions()
    from lodestar.api import dashboard, email_feedback, sms_inbound, suppression

    for more_paths, more_schemas in (email_feedback.openapi_paths(),
                                     suppression.openapi_paths(),
                                     dashboard.openapi_paths(),
                                     sms_inbound.openapi_paths()):
        extension_paths.update(more_paths)
        extension_schemas.update(more_schemas)
    paths.update(extension_paths)
    for path, item in _lodestar_paths().items():
        paths.setdefault(path, item)

    error_shapes = {e.name: e for e in model.operation_model("PutEvents").error_shapes}
    members = {tuple(e.members) for e in error_shapes.values()}
    if members != {("Message", "RequestID")}:
        raise ValueError(f"Pinpoint's exceptions changed shape: {members}")
    schemas = shapes.components
    _apply_overlay(schemas, _schema_overlay(lim))
    if set(extension_schemas) & set(schemas):
        raise ValueError("a Lodestar extension schema has the name of one of Pinpoint's")
    schemas.update(extension_schemas)
    if schemas["ChannelType"]["enum"] != [c.value for c in ChannelType]:
        raise ValueError("lodestar.core ChannelType differs from Pinpoint's model")
    shapes.component(error_shapes["BadRequestException"])
    exception = schemas.pop("BadRequestException")
    schemas["Error"] = {
        "description": "Every error's body. The exception name is in `x-amzn-ErrorType`.",
        "type": "object",
        "required": ["Message", "RequestID"],
        "properties": {
            name: {**exception["properties"][name], "description": text}
            for name, text in (("Message", "What went wrong and what to do about it."),
                               ("RequestID", "The id of the request."))
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lodestar HTTP API",
            "version": lodestar.__version__,
            "summary": "Amazon Pinpoint's REST API, served by Lodestar.",
            "description": _info_description(),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "The Lodestar API serving this document."}],
        "security": [{"sigv4": []}, {"bearer": []}],
        "tags": [
            {"name": "Apps", "description": "Applications (Pinpoint projects)."},
            {"name": "Events", "description": "Recording events."},
            {"name": "Endpoints", "description": "Endpoints and their attributes."},
            {"name": "Users", "description": "All the endpoints of a user."},
            {"name": "Messages", "description": "Transactional sends (SendMessages)."},
            {"name": "Analytics", "description": "Pinpoint's KPIs (date-range metrics)."},
            {"name": "Lodestar", "description": "Lodestar's own routes; no credentials."},
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "responses": _error_responses(),
            "headers": {"RequestId": _REQUEST_ID_HEADER},
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4, as boto3's `pinpoint` client, the "
                    "AWS CLI and `curl --aws-sigv4` sign: `Authorization: AWS4-HMAC-SHA256 "
                    "Credential=<access key id>/<yyyymmdd>/<region>/"
                    f"{lim['service']}/aws4_request, SignedHeaders=..., Signature=...` plus "
                    "`X-Amz-Date`. Service name `mobiletargeting`, any region name. `host` and "
                    "`x-amz-date` must be signed, the request time must be within "
                    f"{lim['skew_minutes']} minutes of the server's, and a signed body is "
                    f"read whole, up to {lim['signed_body_mb']} MB. OpenAPI has no SigV4 "
                    "scheme, so it is described as an API key in the `Authorization` header; "
                    "generic tools cannot sign with it. See docs/authentication.md.",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "<access key id>:<secret access key>",
                    "description": "`Authorization: Bearer <access key id>:<secret access "
                    "key>`, for clients that cannot sign. The secret itself is sent: use it "
                    "only over TLS.",
                },
            },
        },
    }


_FIRST_KEYS = ("description", "$ref", "type", "format", "const", "enum", "required")


def _tidy(value: Any) -> Any:
    """Schemas with their description and type keywords first, for readers of the JSON."""
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    first = [k for k in _FIRST_KEYS if k in value] if ("type" in value or "$ref" in value) else []
    rest = [k for k in value if k not in first]
    return {k: _tidy(value[k]) for k in (*first, *rest)}


def render(doc: Mapping[str, Any]) -> str:
    """The document as committed: 2-space indented UTF-8 JSON and a final newline."""
    return json.dumps(_tidy(doc), indent=2, ensure_ascii=False) + "\n"


def _repo_docs_path() -> Path:
    return Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def _targets() -> Iterable[Path]:
    return (DOCUMENT_PATH, _repo_docs_path())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lodestar.api.openapi",
        description="Build the API's OpenAPI document from botocore's pinpoint model.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true",
                        help="write the package copy and docs/openapi.json")
    action.add_argument("--check", action="store_true",
                        help="exit 1 when either committed copy is not current")
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.write:
        for path in _targets():
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
        return 0
    if args.check:
        stale = [p for p in _targets() if not p.exists() or p.read_text("utf-8") != text]
        for path in stale:
            print(f"{path} is not current: run python -m lodestar.api.openapi --write",
                  file=sys.stderr)
        return 1 if stale else 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
