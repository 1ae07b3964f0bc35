"""The HTTP API's ASGI application: routes, lifespan, shared clients.

``create_app(settings)`` builds the app; clients (the Kafka producer) are
created in the lifespan and kept on ``app.state``, never at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lodestar.api.errors import ErrorType, error_response
from lodestar.api.event_publisher import EventPublisher
from lodestar.api.events import put_events
from lodestar.contracts.codec import AvroCodec
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(ErrorType.NOT_FOUND, f"No resource at {request.url.path}.")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        ErrorType.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.url.path}."
    )


def create_app(settings: Settings, publisher: EventPublisher | None = None) -> Starlette:
    """The API app. ``publisher`` may be injected (tests); else one is made at start-up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = publisher is None
        await ensure_topics(settings)
        pub = publisher or EventPublisher(settings, AvroCodec.default())
        if own:
            await pub.start()
        app.state.publisher = pub
        try:
            yield
        finally:
            if own:
                await pub.stop()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/apps/{application_id}/events", put_events, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _method_not_allowed},
    )
