"""Firebase Cloud Messaging over the HTTP v1 API.

``FcmSender(config, client=None)``: ``messages:send`` goes over ``channels.http1``'s
lean keep-alive HTTP/1.1 pool (``config.send_connections``; the CPU of the HTTP client
bounds the push sender's rate), the token endpoint over httpx. With a given httpx
``client`` (tests), or ``send_connections=0``, every request goes over httpx (its own
clients speak HTTP/2 where TLS offers it, spread round-robin over ``config.clients``
small pools, because httpcore's pool scans every connection it holds on each
request); ``await send(notification, token)`` (or
``send_message(body)`` with a ready ``{"message": …}``) returns a
``ProviderOutcome`` and never raises for an answer or a network failure.

Authentication: the service-account JSON (``client_email``, ``private_key``,
``token_uri``, ``project_id``, ``private_key_id``) signs an OAuth2 JWT-bearer
assertion (RS256; ``iss`` = client_email, ``scope`` =
``https://www.googleapis.com/auth/firebase.messaging``, ``aud`` = token_uri,
one hour) which ``token_uri`` exchanges for an access token. The token is
cached until ``refresh_margin_s`` before it expires, fetched by one request at
a time, and refreshed once when ``messages:send`` answers 401.

``POST {base_url}/v1/projects/{project_id}/messages:send``; answers
(``fcm_outcome``): 200 ACCEPTED with ``name`` as the provider message id; 404,
or an error whose FCM ``errorCode`` is UNREGISTERED, or INVALID_ARGUMENT about
the registration token → DEAD_ADDRESS; 429 / 500 / 503 (and other 5xx) RETRY
with Retry-After; other 4xx PERMANENT (including other INVALID_ARGUMENTs:
the message, not the token, is wrong). A token endpoint that refuses the
assertion is PERMANENT (configuration), one that cannot be reached RETRY.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lodestar.channels.access_tokens import AccessTokens, TokenRefused
from lodestar.channels.closing import ClosesOnExit
from lodestar.channels.http1 import Http1Error, Http1Pool
from lodestar.channels.http_answers import answer_json, retry_after
from lodestar.core.jwt_tokens import sign_jwt
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
    network_failure,
)
from lodestar.core.push_payloads import PushNotification, compact_json, fcm_message
from lodestar.core.retry_policy import retry_after_seconds

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600
MAX_ERROR_TEXT = 300


class ServiceAccountError(ValueError):
    """A service-account JSON that cannot be used."""


@dataclass(frozen=True)
class ServiceAccount:
    client_email: str
    private_key: rsa.RSAPrivateKey
    token_uri: str
    project_id: str
    private_key_id: str | None = None

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceAccount:
        """Read the JSON key file Google hands out for a service account."""
        try:
            data = json.loads(text)
            key = serialization.load_pem_private_key(
                data["private_key"].encode("ascii"), password=None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServiceAccountError(f"unreadable service account: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ServiceAccountError("the service account's private_key must be RSA")
        for name in ("client_email", "token_uri", "project_id"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ServiceAccountError(f"the service account lacks {name}")
        return cls(data["client_email"], key, data["token_uri"], data["project_id"],
                   data.get("private_key_id"))


@dataclass(frozen=True)
class FcmConfig:
    service_account: ServiceAccount
    base_url: str = DEFAULT_BASE_URL
    token_uri: str | None = None
    """Overrides the service account's token_uri (tests, proxies)."""
    project_id: str | None = None
    """Overrides the service account's project_id."""
    timeout_s: float = 10.0
    refresh_margin_s: float = 300.0
    clients: int = 16
    """HTTP clients (connection pools) of a sender that makes its own."""
    connections_per_client: int = 4
    """Connections of each pool (HTTP/1.1; over HTTP/2 each pool multiplexes one)."""
    send_connections: int = 64
    """``messages:send`` goes over ``channels.http1.Http1Pool`` with this many keep-alive
    HTTP/1.1 connections (0: over the httpx pools above). It costs a fraction of
    httpx's and aiohttp's CPU per request (docs/benchmarks.md, issue #5)."""


def _text(response: httpx.Response) -> str:
    return response.text[:MAX_ERROR_TEXT]


def _error(body: Any) -> tuple[str | None, str | None, str]:
    """(status, FCM errorCode, message) of a Google API error body."""
    if not isinstance(body, Mapping) or not isinstance(body.get("error"), Mapping):
        return None, None, ""
    error = body["error"]
    fcm_code = None
    for detail in error.get("details") or ():
        if isinstance(detail, Mapping) and detail.get("errorCode"):
            fcm_code = str(detail["errorCode"])
    return (str(error["status"]) if error.get("status") else None, fcm_code,
            str(error.get("message") or ""))


def fcm_outcome(status: int, body: Any, retry_after_s: float | None = None) -> ProviderOutcome:
    """The outcome of a ``messages:send`` answer (see the module docstring)."""
    if status == 200:
        name = body.get("name") if isinstance(body, Mapping) else None
        return accepted(status, str(name) if name else None)
    grpc_status, fcm_code, message = _error(body)
    text = " ".join(p for p in (fcm_code or grpc_status, message) if p) or f"HTTP {status}"
    token_words = ("registration token", "registration-token", "message.token")
    if (status == 404 or fcm_code == "UNREGISTERED"
            or ((fcm_code == "INVALID_ARGUMENT" or grpc_status == "INVALID_ARGUMENT")
            and any(word in message.lower() for word in token_words))):
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, text)
    return from_http_status(status, text, retry_after_s=retry_after_s)


class FcmSender(ClosesOnExit):
    """One FCM project's sender; share one per process (it caches the access token)."""

    name = "fcm"

    def __init__(self, config: FcmConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._owns = client is None
        per_client = max(1, config.connections_per_client)
        self._clients = [client] if client is not None else [
            httpx.AsyncClient(timeout=config.timeout_s, http2=True,
                              limits=httpx.Limits(max_connections=per_client,
                                                  max_keepalive_connections=per_client))
            for _ in range(max(1, config.clients))]
        self._client = self._clients[0]
        self._turn = itertools.cycle(self._clients)
        self._clock = clock
        account = config.service_account
        self.token_uri = config.token_uri or account.token_uri
        self._tokens = AccessTokens(
            self._client, self.token_uri,
            lambda now: {"grant_type": JWT_BEARER, "assertion": self.assertion(now)},
            margin_s=config.refresh_margin_s, clock=clock)
        project = config.project_id or account.project_id
        self.send_url = f"{config.base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        url = urlsplit(self.send_url)
        self._send_target = url.path + (f"?{url.query}" if url.query else "")
        self._pool = (Http1Pool(f"{url.scheme}://{url.netloc}", config.send_connections,
                                config.timeout_s)
                      if client is None and config.send_connections > 0 else None)

    def assertion(self, now_s: float) -> str:
        """The signed JWT-bearer assertion for the token endpoint."""
        account = self.config.service_account
        claims = {"iss": account.client_email, "scope": FCM_SCOPE, "aud": self.token_uri,
                  "iat": int(now_s), "exp": int(now_s) + ASSERTION_LIFETIME_S}
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        return sign_jwt(claims, account.private_key, headers)

    async def send(self, notification: PushNotification, token: str) -> ProviderOutcome:
        try:
            body = fcm_message(notification, token)
        except (ValueError, KeyError, TypeError) as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None, f"payload: {exc}")
        return await self.send_message(body)

    async def send_message(self, body: Mapping[str, Any]) -> ProviderOutcome:
        """POST ``body`` to ``messages:send``; refresh the access token once on 401."""
        stale: str | None = None
        for _ in range(2):
            try:
                access = await self._tokens.get(stale)
            except TokenRefused as refused:
                return refused.outcome
            if self._pool is not None:
                answer = await self._post_http1(body, access)
                if isinstance(answer, ProviderOutcome):
                    return answer
                status, parsed, wait = answer
            else:
                try:
                    response = await next(self._turn).post(
                        self.send_url, json=body,
                        headers={"Authorization": f"Bearer {access}"})
                except httpx.TimeoutException as exc:
                    return network_failure(f"timeout: {type(exc).__name__}")
                except httpx.HTTPError as exc:
                    return network_failure(f"{type(exc).__name__}: {exc}")
                status, parsed, wait = (response.status_code, answer_json(response),
                                        retry_after(response))
            if status == 401 and stale is None:
                stale = access
                continue
            return fcm_outcome(status, parsed, wait)
        return from_http_status(401, "FCM refused a freshly issued access token")

    async def _post_http1(self, body: Mapping[str, Any], access: str
                          ) -> tuple[int, Any, float | None] | ProviderOutcome:
        assert self._pool is not None
        headers = (f"Authorization: Bearer {access}\r\nContent-Type: application/json\r\n"
                   "User-Agent: lodestar\r\n")
        try:
            response = await self._pool.post(
                self._send_target, headers, compact_json(body).encode())
        except TimeoutError:
            return network_failure("timeout")
        except Http1Error as exc:
            return network_failure(f"{type(exc).__name__}: {exc}")
        header = response.headers.get("retry-after")
        wait = (retry_after_seconds(header, int(time.time() * 1000))
                if header is not None else None)
        try:
            parsed: Any = json.loads(response.body) if response.body else None
        except ValueError:
            parsed = None
        return response.status, parsed, wait

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
        if self._owns:
            for client in self._clients:
                await client.aclose()
