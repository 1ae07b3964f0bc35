"""Sending one push through Apple's provider API (HTTP/2, token auth), as a value.

``ApnsTransport`` holds one ``httpx.AsyncClient(http2=True)``: every push to an
environment shares one HTTP/2 connection (streams are multiplexed), opened on
first use and reopened by httpx after APNs closes it (GOAWAY, idle).

Auth is token based: an ES256 provider JWT (header ``kid`` = key id, claims
``iss`` = team id and ``iat``) signed with the ``.p8`` key (PEM, EC P-256) via
``lodestar.core.jwt_tokens.sign_jwt``, sent as ``authorization: bearer <jwt>``.
APNs refuses tokens older than one hour and answers
``429 TooManyProviderTokenUpdates`` when tokens change more often than every
20 minutes, so one token is reused and re-signed after ``token_refresh_s``
(default 50 min). A ``403 ExpiredProviderToken``/``InvalidProviderToken``
re-signs the token (once, even when many pushes hit it at the same time) and
retries that push once; a second refusal is PERMANENT.

``send(channel_type, token, headers, payload)`` POSTs
``{base}/3/device/<token>``: APNS and APNS_VOIP go to ``production_url``,
APNS_SANDBOX and APNS_VOIP_SANDBOX to ``sandbox_url``; VOIP types get
``apns-push-type: voip`` and the topic suffix ``.voip``. Headers passed in
(``apns-topic``, ``apns-push-type``, ``apns-priority``, ``apns-expiration``,
``apns-collapse-id``, ``apns-id``) are kept; a missing topic is the configured
bundle id, a missing push type ``alert``. ``send_request(channel_type, request)``
takes a ``core.push_message.ApnsRequest`` (path, headers, payload).

Answers (``ProviderOutcome``; never raises for an answer or a network failure):
200 ACCEPTED (``apns-id`` as ``provider_message_id``); 410 (Unregistered,
ExpiredToken) and 400 BadDeviceToken / DeviceTokenNotForTopic DEAD_ADDRESS;
429 and 500/503 RETRY; every other status PERMANENT with APNs' ``reason``;
no answer RETRY.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from lodestar.core.jwt_tokens import sign_jwt
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
    network_failure,
)
from lodestar.core.retry_policy import retry_after_seconds

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
DEFAULT_TOKEN_REFRESH_S = 50 * 60
_DEVICE_TOKEN = re.compile(r"[0-9A-Fa-f]{16,200}")


class ApnsReason(StrEnum):
    """APNs ``reason`` strings this transport treats specially."""

    BAD_DEVICE_TOKEN = "BadDeviceToken"
    DEVICE_TOKEN_NOT_FOR_TOPIC = "DeviceTokenNotForTopic"
    UNREGISTERED = "Unregistered"
    EXPIRED_TOKEN = "ExpiredToken"
    EXPIRED_PROVIDER_TOKEN = "ExpiredProviderToken"
    INVALID_PROVIDER_TOKEN = "InvalidProviderToken"
    TOO_MANY_PROVIDER_TOKEN_UPDATES = "TooManyProviderTokenUpdates"
    TOO_MANY_REQUESTS = "TooManyRequests"


DEAD_TOKEN_REASONS = frozenset({ApnsReason.BAD_DEVICE_TOKEN,
                                ApnsReason.DEVICE_TOKEN_NOT_FOR_TOPIC})
REFRESH_REASONS = frozenset({ApnsReason.EXPIRED_PROVIDER_TOKEN,
                             ApnsReason.INVALID_PROVIDER_TOKEN})
VOIP_TYPES = frozenset({"APNS_VOIP", "APNS_VOIP_SANDBOX"})
SANDBOX_TYPES = frozenset({"APNS_SANDBOX", "APNS_VOIP_SANDBOX"})
APNS_TYPES = frozenset({"APNS", *VOIP_TYPES, *SANDBOX_TYPES})


def load_p8(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """The EC P-256 private key of an APNs ``.p8`` file (PEM PKCS#8)."""
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve,
                                                                         ec.SECP256R1):
        raise ValueError("an APNs .p8 key must be an EC P-256 private key")
    return key


@dataclass(frozen=True)
class ApnsConfig:
    team_id: str
    key_id: str
    private_key: ec.EllipticCurvePrivateKey
    topic: str
    """The app's bundle id (default ``apns-topic``)."""
    production_url: str = PRODUCTION_URL
    sandbox_url: str = SANDBOX_URL
    timeout_s: float = 10.0
    token_refresh_s: float = DEFAULT_TOKEN_REFRESH_S


class ProviderToken:
    """The current provider JWT; re-signed when older than ``refresh_s`` or on ``refresh``."""

    def __init__(self, config: ApnsConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._jwt: str | None = None
        self._issued_s = 0.0
        self.signed = 0
        """How many tokens were signed (for tests and metrics)."""

    def _sign(self) -> str:
        now = self._clock()
        self._jwt = sign_jwt({"iss": self._config.team_id, "iat": int(now)},
                             self._config.private_key, {"kid": self._config.key_id})
        self._issued_s = now
        self.signed += 1
        return self._jwt

    def current(self) -> str:
        if self._jwt is None or self._clock() - self._issued_s >= self._config.token_refresh_s:
            return self._sign()
        return self._jwt

    def refresh(self, refused: str) -> str:
        """A new token if ``refused`` is still the current one, else the current one."""
        if refused == self._jwt:
            return self._sign()
        return self.current()


class ApnsRequestLike(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


def _reason(response: httpx.Response) -> tuple[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or f"HTTP {response.status_code}", None
    if not isinstance(data, dict):
        return f"HTTP {response.status_code}", None
    return str(data.get("reason") or f"HTTP {response.status_code}"), data.get("timestamp")


def read_answer(response: httpx.Response, now_ms: int) -> ProviderOutcome:
    """The outcome of one APNs answer (no token refresh here: see ``needs_refresh``)."""
    status = response.status_code
    if status == 200:
        return accepted(200, response.headers.get("apns-id"), "accepted by APNs")
    reason, timestamp = _reason(response)
    message = f"APNs {status} {reason}"
    if status == 410:
        if timestamp is not None:
            message += f" (token invalid since {timestamp})"
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, message)
    if status == 400 and reason in DEAD_TOKEN_REASONS:
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, message)
    if status in (429, 500, 503):
        return ProviderOutcome(ProviderOutcomeKind.RETRY, status, message, throttled=status == 429,
                               retry_after_s=retry_after_seconds(
                                   response.headers.get("retry-after"), now_ms))
    return from_http_status(status, message)


def needs_refresh(response: httpx.Response) -> bool:
    return response.status_code == 403 and _reason(response)[0] in REFRESH_REASONS


class ApnsTransport:
    """APNs provider API client; ``send`` returns a ``ProviderOutcome``."""

    def __init__(self, config: ApnsConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock
        self._client = client or httpx.AsyncClient(http2=True, timeout=config.timeout_s)
        self.tokens = ProviderToken(config, clock)

    def base_url(self, channel_type: str) -> str:
        sandbox = channel_type in SANDBOX_TYPES
        return (self._config.sandbox_url if sandbox else self._config.production_url).rstrip("/")

    def request_headers(self, channel_type: str, headers: Mapping[str, str]) -> dict[str, str]:
        """The apns-* headers to send (caller's, with topic/push-type defaults and VoIP rules)."""
        out = {k.lower(): str(v) for k, v in headers.items() if k.lower().startswith("apns-")}
        out.setdefault("apns-topic", self._config.topic)
        out.setdefault("apns-push-type", "alert")
        if channel_type in VOIP_TYPES:
            out["apns-push-type"] = "voip"
            if not out["apns-topic"].endswith(".voip"):
                out["apns-topic"] += ".voip"
        return out

    async def send_request(self, channel_type: str, request: ApnsRequestLike) -> ProviderOutcome:
        """Send a ``core.push_message.ApnsRequest`` (its path names the device token)."""
        prefix = "/3/device/"
        if not request.path.startswith(prefix):
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   f"not an APNs device path: {request.path!r}")
        return await self.send(channel_type, request.path[len(prefix):], request.headers,
                               request.payload)

    async def send(self, channel_type: str, token: str, headers: Mapping[str, str],
                   payload: Mapping[str, Any]) -> ProviderOutcome:
        if channel_type not in APNS_TYPES:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   f"{channel_type} is not an APNs channel type")
        if not _DEVICE_TOKEN.fullmatch(token):
            return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, None,
                                   "BadDeviceToken: an APNs device token is hexadecimal")
        url = f"{self.base_url(channel_type)}/3/device/{token}"
        apns_headers = self.request_headers(channel_type, headers)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        jwt = self.tokens.current()
        for attempt in (1, 2):
            try:
                response = await self._client.post(
                    url, content=body,
                    headers={**apns_headers, "content-type": "application/json",
                             "authorization": f"bearer {jwt}"})
            except httpx.HTTPError as exc:
                return network_failure(f"APNs: {type(exc).__name__}: {exc}")
            if needs_refresh(response):
                if attempt == 1:
                    jwt = self.tokens.refresh(jwt)
                    continue
                reason = _reason(response)[0]
                return ProviderOutcome(ProviderOutcomeKind.PERMANENT, 403,
                                       f"APNs 403 {reason} (after a fresh provider token)")
            return read_answer(response, int(self._clock() * 1000))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._client.aclose()
