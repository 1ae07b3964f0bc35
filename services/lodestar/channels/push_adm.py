"""Amazon Device Messaging over its HTTPS API (``core.adm_message`` builds and reads).

``AdmSender(config, client=None)``: one per process and ADM client (it caches the
access token). ``await send(notification, registration_id, options=None)`` (or
``send_message(registration_id, body)`` with a ready body) returns a
``ProviderOutcome`` and never raises for an answer or a network failure.

Authentication: the client-credentials token (``config.token_url``, default
``{base_url}/auth/o2/token``) is cached until ``refresh_margin_s`` before its
``expires_in``, fetched by one request at a time, and fetched anew once when the
send answers 401 (``AccessTokenExpired``). A token endpoint that refuses the
credentials (4xx) is PERMANENT (configuration); one that cannot be reached, answers
5xx / 429, or answers without a usable token is RETRY.

``POST {base_url}/messaging/registrations/{registrationId}/messages`` (the id
percent-encoded as one path segment) with ADM's headers; answers are read by
``adm_outcome`` (Retry-After honoured, ``X-Amzn-RequestId`` as the provider message
id). Requests go over httpx (HTTP/1.1 keep-alive, ``max_connections``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from lodestar.channels.access_tokens import AccessTokens, TokenRefused
from lodestar.channels.closing import ClosesOnExit
from lodestar.channels.http_answers import answer_json, pooled_client, retry_after
from lodestar.core.adm_message import (
    ACCEPT_TYPE,
    DEFAULT_BASE_URL,
    TOKEN_PATH,
    TYPE_VERSION,
    AdmOptions,
    AdmPayloadError,
    adm_message,
    adm_outcome,
    token_form,
)
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    from_http_status,
    network_failure,
)
from lodestar.core.push_payloads import PushNotification

MAX_ERROR_TEXT = 300


@dataclass(frozen=True)
class AdmConfig:
    client_id: str
    client_secret: str
    base_url: str = DEFAULT_BASE_URL
    token_url: str | None = None
    """Overrides ``{base_url}/auth/o2/token`` (tests, proxies)."""
    timeout_s: float = 10.0
    refresh_margin_s: float = 60.0
    max_connections: int = 32


class AdmSender(ClosesOnExit):
    """One ADM client's sender (see the module docstring)."""

    name = "adm"

    def __init__(self, config: AdmConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._owns = client is None
        self._client = client or pooled_client(config.timeout_s, config.max_connections)
        base = config.base_url.rstrip("/")
        self._tokens = AccessTokens(
            self._client, config.token_url or f"{base}{TOKEN_PATH}",
            lambda _now: token_form(config.client_id, config.client_secret),
            margin_s=config.refresh_margin_s, clock=clock)
        self._send_base = f"{base}/messaging/registrations/"

    @property
    def token_url(self) -> str:
        return self._tokens.url

    def send_url(self, registration_id: str) -> str:
        return f"{self._send_base}{quote(registration_id, safe='')}/messages"

    async def send(self, notification: PushNotification, registration_id: str,
                   options: AdmOptions | None = None) -> ProviderOutcome:
        try:
            body = adm_message(notification, options)
        except AdmPayloadError as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None, f"payload: {exc}")
        return await self.send_message(registration_id, body)

    async def send_message(self, registration_id: str, body: Mapping[str, Any]
                           ) -> ProviderOutcome:
        """POST ``body`` to ``registration_id``; on 401 refresh the token once."""
        url = self.send_url(registration_id)
        stale: str | None = None
        for _ in range(2):
            try:
                access = await self._tokens.get(stale)
            except TokenRefused as refused:
                return refused.outcome
            headers = {"Authorization": f"Bearer {access}", "Accept": "application/json",
                       "X-Amzn-Type-Version": TYPE_VERSION,
                       "X-Amzn-Accept-Type": ACCEPT_TYPE}
            try:
                response = await self._client.post(url, json=body, headers=headers)
            except httpx.TimeoutException as exc:
                return network_failure(f"timeout: {type(exc).__name__}")
            except httpx.HTTPError as exc:
                return network_failure(f"{type(exc).__name__}: {exc}")
            if response.status_code == 401 and stale is None:
                stale = access
                continue
            return adm_outcome(response.status_code, answer_json(response),
                               sent_registration_id=registration_id,
                               request_id=response.headers.get("x-amzn-requestid"),
                               retry_after_s=retry_after(response))
        return from_http_status(401, "ADM refused a freshly issued access token")

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()
