"""The worker's own HTTP server: health and, with embedded ClickHouse, analytics reads.

Served inside the Faust worker by ``faust.contrib.asgi.serve_asgi`` on
``LODESTAR_WORKER_WEB_PORT``. ``GET /v1/analytics/event-counts?app-id=&event-type=``
answers ``{"Counts": [{"EventType": …, "Count": …}], "Total": n}``;
``GET /v1/analytics/query/{name}?…`` runs a registered analytics query
(``lodestar.analytics.registry``: 400 for bad parameters, 404 unknown name);
``GET /v1/apps/{app-id}/endpoints/{endpoint-id}/state`` answers the engine's
profile of the endpoint (sessions, counters included) when this worker holds
its partition (else 404) — for operators; clients use GetEndpoint.
``GET /v1/apps/{app-id}/users/{user-id}/index`` answers the engine's user
index entry (endpoint ids) when this worker holds the user's partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lodestar.analytics.queries import event_counts
from lodestar.analytics.registry import QueryParameterError, UnknownQuery, run_query
from lodestar.engine.analytics_service import AnalyticsRuntime


def create_worker_web(
    runtime: AnalyticsRuntime, profiles: Mapping[str, Any], users: Mapping[str, Any]
) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "analytics": runtime.ready.is_set()})

    async def counts(request: Request) -> Response:
        try:
            await asyncio.wait_for(runtime.ready.wait(), timeout=10)
        except TimeoutError:
            return JSONResponse({"Message": "ClickHouse is not open yet; retry shortly."}, 503)
        assert runtime.writer is not None
        app_id = request.query_params.get("app-id")
        event_type = request.query_params.get("event-type")
        rows = await runtime.writer.call(lambda c: event_counts(c, app_id, event_type))
        return JSONResponse(
            {
                "Counts": [{"EventType": r.event_type, "Count": r.count} for r in rows],
                "Total": sum(r.count for r in rows),
            }
        )

    async def analytics_query(request: Request) -> Response:
        try:
            await asyncio.wait_for(runtime.ready.wait(), timeout=10)
        except TimeoutError:
            return JSONResponse({"Message": "ClickHouse is not open yet; retry shortly."}, 503)
        assert runtime.writer is not None
        name = request.path_params["name"]
        params = dict(request.query_params)
        try:
            result = await runtime.writer.call(lambda c: run_query(c, name, params))
        except QueryParameterError as exc:
            return JSONResponse({"Message": str(exc)}, 400)
        except UnknownQuery as exc:
            return JSONResponse({"Message": str(exc)}, 404)
        return JSONResponse(result)

    async def endpoint_state(request: Request) -> Response:
        key = f"{request.path_params['app_id']}/{request.path_params['endpoint_id']}"
        state = profiles.get(key)
        if state is None:
            return JSONResponse({"Message": f"endpoint {key!r} is not on this worker"}, 404)
        return JSONResponse(state)

    async def user_endpoints(request: Request) -> Response:
        key = f"{request.path_params['app_id']}/{request.path_params['user_id']}"
        members = users.get(key)
        if members is None:
            return JSONResponse({"Message": f"user {key!r} is not on this worker"}, 404)
        return JSONResponse({"UserKey": key, "EndpointIds": members})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/v1/analytics/event-counts", counts),
            Route("/v1/analytics/query/{name}", analytics_query),
            Route("/v1/apps/{app_id}/endpoints/{endpoint_id}/state", endpoint_state),
            Route("/v1/apps/{app_id}/users/{user_id}/index", user_endpoints),
        ]
    )
