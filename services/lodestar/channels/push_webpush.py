"""Web Push (RFC 8030) with RFC 8291 payload encryption and VAPID (RFC 8292).

``WebPushSender(config, client=None)``; ``await send(notification, address)``
returns a ``ProviderOutcome`` and never raises for an answer or a network
failure. ``address`` is the endpoint's Address: the subscription JSON
``{"endpoint": "https://…", "keys": {"p256dh": …, "auth": …}}``
(``core.webpush_crypto.parse_subscription``).

The request: ``POST <subscription endpoint>`` with the aes128gcm-encrypted
``webpush_payload`` and headers ``TTL`` (the notification's, else the
configured default), ``Content-Encoding: aes128gcm``, ``Content-Type:
application/octet-stream``, ``Urgency`` (``low`` for silent notifications,
else the configured one), ``Topic`` (the collapse id, when it is a valid one:
≤ 32 base64url characters) and ``Authorization: vapid t=…, k=…`` (cached per
push-service origin for half its lifetime).

Answers: 2xx ACCEPTED (the ``Location`` header as provider message id); 404 /
410 DEAD_ADDRESS (the subscription is gone); 413 PERMANENT (payload too
large); 429 RETRY with Retry-After; others by ``from_http_status``. A
subscription that does not parse, or a payload over 3,993 bytes, is PERMANENT
without a request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
    network_failure,
)
from lodestar.core.push_payloads import PushNotification, webpush_payload
from lodestar.core.retry_policy import retry_after_seconds
from lodestar.core.webpush_crypto import (
    DEFAULT_VAPID_LIFETIME_S,
    PayloadTooLarge,
    SubscriptionError,
    encrypt_payload,
    origin,
    parse_subscription,
    vapid_authorization,
)

URGENCIES = ("very-low", "low", "normal", "high")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@dataclass(frozen=True)
class WebPushConfig:
    vapid_key: ec.EllipticCurvePrivateKey
    vapid_subject: str
    """``mailto:`` or ``https:`` contact of the application server."""
    default_ttl_s: int = 4 * 7 * 24 * 3600
    urgency: str = "normal"
    timeout_s: float = 10.0
    vapid_lifetime_s: int = DEFAULT_VAPID_LIFETIME_S

    def __post_init__(self) -> None:
        if self.urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}")
        if not self.vapid_subject.startswith(("mailto:", "https:")):
            raise ValueError("the VAPID subject must be a mailto: or https: URI")


class WebPushSender:
    name = "webpush"

    def __init__(self, config: WebPushConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._owns = client is None
        self._client = client or httpx.AsyncClient(
            timeout=config.timeout_s, http2=True,
            limits=httpx.Limits(max_keepalive_connections=50))
        self._clock = clock
        self._vapid: dict[str, tuple[str, float]] = {}

    def authorization(self, endpoint: str) -> str:
        """The VAPID header for ``endpoint``'s push service, reused for half its life."""
        aud = origin(endpoint)
        now = self._clock()
        cached = self._vapid.get(aud)
        if cached is not None and now < cached[1]:
            return cached[0]
        header = vapid_authorization(endpoint, self.config.vapid_key, self.config.vapid_subject,
                                     int(now), self.config.vapid_lifetime_s)
        self._vapid[aud] = (header, now + self.config.vapid_lifetime_s / 2)
        return header

    def headers(self, notification: PushNotification, endpoint: str) -> dict[str, str]:
        ttl = notification.ttl_s if notification.ttl_s is not None else self.config.default_ttl_s
        headers = {
            "TTL": str(max(ttl, 0)),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "low" if notification.silent else self.config.urgency,
            "Authorization": self.authorization(endpoint),
        }
        if notification.collapse_id and _TOPIC.match(notification.collapse_id):
            headers["Topic"] = notification.collapse_id
        return headers

    async def send(self, notification: PushNotification, address: str) -> ProviderOutcome:
        try:
            subscription = parse_subscription(address)
            body = encrypt_payload(webpush_payload(notification), subscription)
            headers = self.headers(notification, subscription.endpoint)
        except SubscriptionError as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   f"invalid subscription: {exc}")
        except PayloadTooLarge as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   f"payload too large: {exc}")
        try:
            response = await self._client.post(subscription.endpoint, content=body,
                                               headers=headers)
        except httpx.TimeoutException as exc:
            return network_failure(f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return network_failure(f"{type(exc).__name__}: {exc}")
        return webpush_outcome(response.status_code, response.text[:300],
                               response.headers.get("location"),
                               retry_after_seconds(response.headers.get("retry-after"),
                                                   int(self._clock() * 1000)))

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()


def webpush_outcome(status: int, text: str, location: str | None,
                    retry_after_s: float | None) -> ProviderOutcome:
    """The outcome of a push service's answer (see the module docstring)."""
    message = f"HTTP {status}" + (f": {text}" if text else "")
    if 200 <= status <= 299:
        return accepted(status, location)
    if status in (404, 410):
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status,
                               f"subscription gone ({message})")
    if status == 413:
        return ProviderOutcome(ProviderOutcomeKind.PERMANENT, status,
                               f"payload too large ({message})")
    return from_http_status(status, message, retry_after_s=retry_after_s)
