"""The dashboards: static pages at ``/dashboard`` and their data route under ``/v1``.

``GET /dashboard`` answers the single page and ``GET /dashboard/{asset}`` its
script and style sheet, without credentials (they hold no data) and with a
Content-Security-Policy allowing this origin only, so nothing is ever loaded
from elsewhere. The page asks for an access key once (Bearer
``<access key id>:<secret>``, kept in the tab's sessionStorage) and reads:

- ``GET /v1/apps`` (GetApps) for the application selector (admin keys; an
  application key types its application id instead);
- ``GET /v1/apps/{application-id}/analytics/{query-name}?start=&end=&…``, a
  Lodestar extension running a registered analytics query
  (``lodestar.analytics.registry``) for that application through
  ``query_analytics_async``: ``{"AnalyticsQueryResponse": {"ApplicationId",
  "QueryName", "Result"}}``; 400 for parameters the query cannot use, 404 for
  an unknown query, 500 when no worker or ClickHouse answers.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lodestar.analytics.reading import AnalyticsUnavailable, query_analytics_async
from lodestar.analytics.registry import QueryParameterError, UnknownQuery
from lodestar.api.errors import ErrorType, error_response, new_request_id

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _asset(name: str) -> bytes:
    return (resources.files("lodestar") / "dashboard" / name).read_bytes()


def _asset_response(name: str) -> Response:
    return Response(_asset(name), media_type=ASSETS[name], headers={
        "Cache-Control": "no-cache",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
    })


async def dashboard_page(request: Request) -> Response:
    """``GET /dashboard``: the page."""
    return _asset_response("index.html")


async def dashboard_asset(request: Request) -> Response:
    """``GET /dashboard/{asset}``: one of ``ASSETS`` (``/dashboard/`` goes to the page)."""
    name = request.path_params["asset"]
    if name in ("", "index.html"):
        return RedirectResponse("/dashboard", status_code=308)
    if name not in ASSETS:
        return Response(f"No dashboard asset {name!r}.", status_code=404,
                        media_type="text/plain")
    return _asset_response(name)


async def analytics_query(request: Request) -> Response:
    """``GET /v1/apps/{application-id}/analytics/{query-name}`` → the query's answer."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    name = request.path_params["query_name"]
    params = {**request.query_params, "app-id": app_id}
    try:
        result = await query_analytics_async(request.app.state.settings, name, params)
    except QueryParameterError as exc:
        return error_response(ErrorType.BAD_REQUEST, str(exc), request_id)
    except UnknownQuery as exc:
        return error_response(ErrorType.NOT_FOUND, str(exc), request_id)
    except AnalyticsUnavailable as exc:
        return error_response(ErrorType.INTERNAL, str(exc), request_id)
    body = {"ApplicationId": app_id, "QueryName": name, "Result": result}
    return JSONResponse({"AnalyticsQueryResponse": body},
                        headers={"x-amzn-RequestId": request_id})


def dashboard_routes() -> list[Route]:
    """The page and its assets (no credentials); the data route is in ``analytics_routes``."""
    return [
        Route("/dashboard", dashboard_page, methods=["GET"]),
        Route("/dashboard/{asset}", dashboard_asset, methods=["GET"]),
    ]


def analytics_routes() -> list[Route]:
    """The authenticated data route (a Lodestar extension)."""
    return [
        Route("/v1/apps/{application_id}/analytics/{query_name}", analytics_query,
              methods=["GET"]),
    ]


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """These routes' OpenAPI path items and component schemas (read by ``api.openapi``)."""
    refs = "#/components/responses/"
    page = {"text/html": {"schema": {"type": "string"}}}
    static = (
        "Static, holds no data and needs no credentials; the page asks for an access key "
        "and reads its data from GET /v1/apps and the analytics route (docs/analytics.md, "
        "Dashboards). Served with a Content-Security-Policy allowing this origin only."
    )
    analytics = {"get": {
        "operationId": "GetAnalyticsQuery",
        "tags": ["Analytics"],
        "summary": "Run a named analytics query for an application (Lodestar extension)",
        "description": "Lodestar extension, not a Pinpoint operation. Runs one registered "
        "analytics query (product analytics and the dashboards' queries, see "
        "docs/analytics.md) over the application's ClickHouse data. The query string holds "
        "the query's parameters, typically `start` and `end` (ISO dates, inclusive, UTC); "
        "`app-id` is always the path's application. Who may call it: an admin key, or a key "
        "of this application.",
        "x-lodestar-extension": True,
        "parameters": [
            {"name": "application-id", "in": "path", "required": True,
             "description": "The application (project) id.", "schema": {"type": "string"}},
            {"name": "query-name", "in": "path", "required": True,
             "description": "The query's registered name, e.g. active-users, sessions, "
             "retention, funnel, revenue, top-events, campaigns-page, journeys-page, "
             "channels-page (docs/analytics.md lists them with their parameters).",
             "schema": {"type": "string", "pattern": "^[a-z0-9-]+$"}},
            {"name": "start", "in": "query", "required": False,
             "description": "First day (YYYY-MM-DD, UTC); default 29 days before end.",
             "schema": {"type": "string", "format": "date"}},
            {"name": "end", "in": "query", "required": False,
             "description": "Last day (YYYY-MM-DD, UTC); default today.",
             "schema": {"type": "string", "format": "date"}},
        ],
        "responses": {
            "200": {
                "description": "The query's answer (its shape depends on the query).",
                "headers": {"x-amzn-RequestId": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/json": {"schema": {
                    "type": "object", "required": ["AnalyticsQueryResponse"],
                    "properties": {"AnalyticsQueryResponse": {
                        "type": "object", "required": ["ApplicationId", "QueryName", "Result"],
                        "properties": {
                            "ApplicationId": {"type": "string"},
                            "QueryName": {"type": "string"},
                            "Result": {"description": "The query's JSON answer."},
                        },
                    }},
                }}},
            },
            "400": {"$ref": refs + "BadRequest",
                    "description": "A parameter the query cannot use; the message says which."},
            "403": {"$ref": refs + "Forbidden"},
            "404": {"$ref": refs + "NotFound",
                    "description": "No such query (or no such application)."},
            "500": {"$ref": refs + "InternalServerError",
                    "description": "Neither ClickHouse nor the worker owning it answered."},
        },
    }}
    paths = {
        "/dashboard": {"get": {
            "operationId": "GetDashboard",
            "tags": ["Lodestar"],
            "summary": "The analytics dashboards (HTML page)",
            "description": f"The dashboards' single page. {static}",
            "security": [],
            "responses": {"200": {"description": "The page.", "content": page}},
        }},
        "/dashboard/{asset}": {"get": {
            "operationId": "GetDashboardAsset",
            "tags": ["Lodestar"],
            "summary": "A script, style sheet or icon of the dashboards",
            "description": f"One of the page's assets. {static}",
            "security": [],
            "parameters": [{"name": "asset", "in": "path", "required": True,
                            "description": "The asset's file name.",
                            "schema": {"type": "string", "enum": sorted(ASSETS)}}],
            "responses": {
                "200": {"description": "The asset.", "content": {
                    media.split(";")[0]: {"schema": {"type": "string"}}
                    for media in sorted(set(ASSETS.values()))}},
                "308": {"description": "`/dashboard/index.html` redirects to `/dashboard`."},
                "4XX": {"description": "404, plain text: no such asset.",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
            },
        }},
        "/v1/apps/{application-id}/analytics/{query-name}": analytics,
    }
    return paths, {}
