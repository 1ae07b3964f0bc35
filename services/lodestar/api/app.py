"""The HTTP API's ASGI application: routes, lifespan, shared clients.

``create_app(settings)`` builds the app; clients (the Kafka producer, the
PostgreSQL pool) are created in the lifespan and kept on ``app.state``, never
at import time. Every ``/v1/…`` request goes through ``AuthMiddleware``
(docs/authentication.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lodestar.api import endpoints, jobs, messages, segment_membership, segments, templates
from lodestar.api.apps import (
    create_application,
    delete_application,
    get_application,
    get_applications,
)
from lodestar.api.auth import Authenticator, AuthMiddleware
from lodestar.api.dashboard import analytics_routes, dashboard_routes
from lodestar.api.email_feedback import post_email_feedback
from lodestar.api.errors import ErrorType, error_response
from lodestar.api.event_publisher import EventPublisher
from lodestar.api.events import put_events
from lodestar.api.job_runner import JobRunner
from lodestar.api.kpis import kpi_routes
from lodestar.api.openapi import openapi_routes
from lodestar.api.sms_inbound import SmsInboundConfig, sms_inbound_routes
from lodestar.api.sns_verification import SnsVerifier, SnsVerifyConfig
from lodestar.api.suppression import (
    delete_suppressed_destination,
    get_suppressed_destination,
    get_suppressed_destinations,
    put_suppressed_destination,
)
from lodestar.api.tracking import tracking_routes
from lodestar.contracts.codec import AvroCodec
from lodestar.control.apps import AppsRepository, missing_migrations
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(ErrorType.NOT_FOUND, f"No resource at {request.url.path}.")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return error_response(
        ErrorType.METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.url.path}."
    )


async def open_control_plane(settings: Settings) -> asyncpg.Pool:
    """A pool on the control-plane database, refusing one whose migrations are behind."""
    try:
        pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1, max_size=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL at {settings.describe()['postgres_dsn']} cannot be reached: {exc}. "
            "Check LODESTAR_POSTGRES_DSN."
        ) from exc
    missing = await missing_migrations(pool)
    if missing:
        await pool.close()
        raise RuntimeError(
            f"PostgreSQL at {settings.describe()['postgres_dsn']} lacks migration(s) "
            f"{', '.join(missing)}: run `lodestar migrate` first."
        )
    return pool


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(
        ErrorType.INTERNAL, "Lodestar failed to handle the request; retry it, and see the API log."
    )


def create_app(settings: Settings, publisher: EventPublisher | None = None) -> Starlette:
    """The API app. ``publisher`` may be injected (tests); else one is made at start-up."""
    admin = None
    if settings.admin_access_key_id and settings.admin_secret_access_key:
        admin = (settings.admin_access_key_id, settings.admin_secret_access_key)
    authenticator = Authenticator(None, ttl=settings.auth_cache_seconds, admin_key=admin)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = publisher is None
        pool = await open_control_plane(settings)
        repo = AppsRepository(pool)
        authenticator.source = repo
        app.state.pool = pool  # the control-plane pool, for every PostgreSQL-backed route
        app.state.apps = repo
        try:
            if admin is None:
                key, created = await repo.ensure_admin_key()
                log.info("admin access key %s (%s); `lodestar keys admin` shows its secret",
                         key.access_key_id, "created now" if created else "stored")
            else:
                log.info("admin access key %s (from LODESTAR_ADMIN_ACCESS_KEY_ID)", admin[0])
            await ensure_topics(settings)
            pub = publisher or EventPublisher(settings, AvroCodec.default())
            if own:
                await pub.start()
            app.state.publisher = pub
            runner = JobRunner(pool, pub, settings)  # import/export jobs (api/job_runner.py)
            app.state.job_runner = runner
            runner.start()
            try:
                yield
            finally:
                await runner.stop()
                if own:
                    await pub.stop()
        finally:
            await pool.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *openapi_routes(),  # GET /openapi.json and GET /docs, without credentials
        *tracking_routes(),  # /t/o|c|u/{token}: email tracking, the token is the credential
        *sms_inbound_routes(),  # /sms/…, /voice/status/twilio/{id}: X-Twilio-Signature
        *dashboard_routes(),  # /dashboard pages: static, no credentials (api/dashboard.py)
        *analytics_routes(),  # Lodestar extension: /v1/apps/{id}/analytics/{query-name}
        Route("/v1/apps", create_application, methods=["POST"]),
        Route("/v1/apps", get_applications, methods=["GET"]),
        Route("/v1/apps/{application_id}", get_application, methods=["GET"]),
        Route("/v1/apps/{application_id}", delete_application, methods=["DELETE"]),
        Route("/v1/apps/{application_id}/events", put_events, methods=["POST"]),
        Route("/v1/apps/{application_id}/endpoints", endpoints.update_endpoints_batch,
              methods=["PUT"]),
        Route("/v1/apps/{application_id}/endpoints/{endpoint_id}", endpoints.update_endpoint,
              methods=["PUT"]),
        Route("/v1/apps/{application_id}/endpoints/{endpoint_id}", endpoints.get_endpoint,
              methods=["GET"]),
        Route("/v1/apps/{application_id}/endpoints/{endpoint_id}", endpoints.delete_endpoint,
              methods=["DELETE"]),
        Route("/v1/apps/{application_id}/users/{user_id}", endpoints.get_user_endpoints,
              methods=["GET"]),
        Route("/v1/apps/{application_id}/users/{user_id}", endpoints.delete_user_endpoints,
              methods=["DELETE"]),
        Route("/v1/apps/{application_id}/attributes/{attribute_type}",
              endpoints.remove_attributes, methods=["PUT"]),
        Route("/v1/apps/{application_id}/segments", segments.create_segment, methods=["POST"]),
        Route("/v1/apps/{application_id}/segments", segments.get_segments, methods=["GET"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}", segments.get_segment,
              methods=["GET"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}", segments.update_segment,
              methods=["PUT"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}", segments.delete_segment,
              methods=["DELETE"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}/versions",
              segments.get_segment_versions, methods=["GET"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}/versions/{version}",
              segments.get_segment_version, methods=["GET"]),
        # Lodestar extension: membership size, channel counts and backfill progress
        Route("/v1/apps/{application_id}/segments/{segment_id}/membership",
              segment_membership.get_segment_membership, methods=["GET"]),
        Route("/v1/apps/{application_id}/jobs/import", jobs.create_import, methods=["POST"]),
        Route("/v1/apps/{application_id}/jobs/import", jobs.get_import_jobs, methods=["GET"]),
        Route("/v1/apps/{application_id}/jobs/import/{job_id}", jobs.get_import_job,
              methods=["GET"]),
        Route("/v1/apps/{application_id}/jobs/export", jobs.create_export, methods=["POST"]),
        Route("/v1/apps/{application_id}/jobs/export", jobs.get_export_jobs, methods=["GET"]),
        Route("/v1/apps/{application_id}/jobs/export/{job_id}", jobs.get_export_job,
              methods=["GET"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}/jobs/import",
              jobs.get_segment_import_jobs, methods=["GET"]),
        Route("/v1/apps/{application_id}/segments/{segment_id}/jobs/export",
              jobs.get_segment_export_jobs, methods=["GET"]),
        *kpi_routes(),  # Get{Application,Campaign,Journey}DateRangeKpi (api/kpis.py)
        # Lodestar extensions: email feedback and the suppression list
        # (docs/feedback-and-suppression.md)
        Route("/v1/apps/{application_id}/channels/email/feedback", post_email_feedback,
              methods=["POST"]),
        Route("/v1/apps/{application_id}/suppressed-destinations",
              get_suppressed_destinations, methods=["GET"]),
        *(Route("/v1/apps/{application_id}/suppressed-destinations/{channel}/{address}",
                handler, methods=[method])
          for method, handler in (("GET", get_suppressed_destination),
                                  ("PUT", put_suppressed_destination),
                                  ("DELETE", delete_suppressed_destination))),
        # message templates: account-wide, admin keys only (docs/templates.md)
        Route("/v1/apps/{application_id}/messages", messages.send_messages, methods=["POST"]),
        Route("/v1/apps/{application_id}/users-messages", messages.send_users_messages,
              methods=["POST"]),
        Route("/v1/templates", templates.list_templates, methods=["GET"]),
        *(Route(f"/v1/templates/{{template_name}}/{kind}", handler, methods=[method])
          for kind in ("email", "inapp", "push", "sms", "voice")
          for method, handler in (("POST", templates.create_template),
                                  ("GET", templates.get_template),
                                  ("PUT", templates.update_template),
                                  ("DELETE", templates.delete_template))),
        Route("/v1/templates/{template_name}/{template_type}/versions",
              templates.list_template_versions, methods=["GET"]),
        Route("/v1/templates/{template_name}/{template_type}/active-version",
              templates.update_template_active_version, methods=["PUT"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(AuthMiddleware)],
        exception_handlers={
            404: _not_found, 405: _method_not_allowed, Exception: _internal_error
        },
    )
    app.state.settings = settings
    app.state.sms_inbound = SmsInboundConfig.from_settings(settings)  # api/sms_inbound.py
    # SNS signatures of email feedback (api/sns_verification.py; tests inject a fetcher)
    app.state.sns_verifier = SnsVerifier(SnsVerifyConfig.from_settings(settings))
    app.state.authenticator = authenticator
    return app
