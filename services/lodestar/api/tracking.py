"""Email tracking routes: ``/t/o/{token}`` (open pixel), ``/t/c/{token}`` (click redirect)
and ``/t/u/{token}`` (unsubscribe, RFC 8058 one-click).

They need no credentials: the signed token (``lodestar.core.email_message``) is the
credential, verified under ``LODESTAR_SMTP_TRACKING_SECRET``; without that secret
every route answers 404. A verified hit publishes a ``lodestar.v1.Delivery`` record
(``_email.open`` / ``_email.click`` / ``_email.unsubscribe``) on ``<prefix>.deliveries``;
an unsubscribe also publishes an UPSERT endpoint command setting ``OptOut: ALL``.

- ``GET /t/o/{token}``: always a 1x1 transparent GIF with no-cache headers, valid
  token or not (scanners learn nothing); only a valid open token publishes.
- ``GET /t/c/{token}``: 302 to the click target; 404 (plain text) when invalid.
- ``GET /t/u/{token}``: a confirmation page whose button POSTs to the same URL —
  it changes nothing, so mail scanners that fetch links cannot unsubscribe anyone;
  ``POST /t/u/{token}`` (the page's button, or a client's RFC 8058 one-click
  ``List-Unsubscribe=One-Click``) unsubscribes and answers a confirmation; 404
  when invalid.

A ``HEAD`` request (Starlette serves one for every GET route) answers like the GET
but publishes nothing, so link checkers that only probe never count as hits.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from lodestar.api.event_publisher import EventPublisher
from lodestar.core.delivery_events import (
    Channel,
    DeliverySubject,
    email_click,
    email_open,
    email_unsubscribe,
)
from lodestar.core.email_message import LinkKind, TrackedLink, verify_token
from lodestar.core.endpoint_commands import upsert_command
from lodestar.settings import Settings

log = logging.getLogger(__name__)

PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A 1x1 transparent GIF (42 bytes)."""

NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
_NOT_FOUND = "Not found."
_CONFIRM_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;margin:3rem auto;max-width:32rem;padding:0 1rem">
<h1>Unsubscribe?</h1>
<p>You will no longer receive these emails at this address.</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>
</body></html>
"""
_UNSUBSCRIBED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribed</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:system-ui,sans-serif;margin:3rem auto;max-width:32rem;padding:0 1rem">
<h1>You have been unsubscribed</h1>
<p>You will no longer receive these emails at this address.</p>
</body></html>
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


def _secret(request: Request) -> bytes | None:
    settings: Settings = request.app.state.settings
    secret = settings.smtp_tracking_secret
    return secret.encode() if secret else None


def _verify(request: Request, kind: LinkKind) -> TrackedLink | None:
    """The token's link when tracking is on and the token is a valid one of ``kind``."""
    secret = _secret(request)
    if secret is None:
        return None
    link = verify_token(request.path_params["token"], secret)
    if link is None or link.kind is not kind:
        return None
    return link


def _subject(link: TrackedLink) -> DeliverySubject:
    return DeliverySubject(link.app_id, link.message_id, Channel.EMAIL, link.endpoint_id)


def _publisher(request: Request) -> EventPublisher:
    publisher: EventPublisher = request.app.state.publisher
    return publisher


def _not_found() -> Response:
    return PlainTextResponse(_NOT_FOUND, status_code=404, headers=NO_CACHE)


async def track_open(request: Request) -> Response:
    """``GET /t/o/{token}``: the tracking pixel."""
    if _secret(request) is None:
        return _not_found()
    link = _verify(request, LinkKind.OPEN)
    if link is not None and request.method != "HEAD":
        record = email_open(_subject(link), _now_ms(), uuid.uuid4().hex)
        try:
            await _publisher(request).publish_deliveries([record])
        except Exception:  # the pixel is answered anyway; the hit is lost
            log.exception("could not publish _email.open for message %s", link.message_id)
    return Response(PIXEL_GIF, media_type="image/gif", headers=NO_CACHE)


async def track_click(request: Request) -> Response:
    """``GET /t/c/{token}``: record the click and redirect to the target."""
    link = _verify(request, LinkKind.CLICK)
    url = link.url if link is not None else None
    if link is None or not url or not url.lower().startswith(("http://", "https://")):
        return _not_found()
    if request.method != "HEAD":
        record = email_click(_subject(link), _now_ms(), url, uuid.uuid4().hex)
        try:
            await _publisher(request).publish_deliveries([record])
        except Exception:  # the recipient still gets where they clicked
            log.exception("could not publish _email.click for message %s", link.message_id)
    return RedirectResponse(url, status_code=302,
                            headers={**NO_CACHE, "Referrer-Policy": "no-referrer"})


async def track_unsubscribe(request: Request) -> Response:
    """``POST /t/u/{token}``: opt the endpoint out of everything (``OptOut: ALL``);
    ``GET`` only asks for confirmation.

    A publishing failure answers 500: the recipient must be able to retry an
    unsubscribe that did not take."""
    link = _verify(request, LinkKind.UNSUBSCRIBE)
    if link is None:
        return _not_found()
    if request.method != "POST":
        return HTMLResponse(_CONFIRM_PAGE, headers=NO_CACHE)
    now = _now_ms()
    publisher = _publisher(request)
    if link.endpoint_id is not None:
        command = upsert_command(link.app_id, link.endpoint_id, {"OptOut": "ALL"},
                                 uuid.uuid4().hex, now)
        await publisher.publish_commands([command])
    await publisher.publish_deliveries([email_unsubscribe(_subject(link), now)])
    log.info("unsubscribed endpoint %s of app %s (message %s, %s)", link.endpoint_id,
             link.app_id, link.message_id, request.method)
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_UNSUBSCRIBED_PAGE, headers=NO_CACHE)
    return PlainTextResponse("Unsubscribed.", headers=NO_CACHE)


def tracking_routes() -> list[Route]:
    """The ``/t/…`` routes, served without credentials (the token is the credential)."""
    return [
        Route("/t/o/{token}", track_open, methods=["GET"]),
        Route("/t/c/{token}", track_click, methods=["GET"]),
        Route("/t/u/{token}", track_unsubscribe, methods=["GET", "POST"]),
    ]
