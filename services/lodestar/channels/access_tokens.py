"""An OAuth2 access token for a provider's API (FCM, ADM), cached and refreshed.

``AccessTokens.get(stale)`` returns the cached token while it is more than
``margin_s`` from expiring and is not ``stale`` (the one a 401 just refused),
without taking a lock; otherwise one caller at a time POSTs ``form(now)`` to the
token endpoint and caches the answer (``core.oauth2.read_token``). When no token
can be had it raises ``TokenRefused`` carrying the outcome the send ends with:
RETRY for a network failure, a 429/5xx or an unreadable answer, PERMANENT for a
refusal (4xx: wrong credentials).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import httpx

from lodestar.channels.http_answers import answer_json, retry_after
from lodestar.core.oauth2 import read_token
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    from_http_status,
    network_failure,
)

MAX_ERROR_TEXT = 300


class TokenRefused(Exception):
    """No access token: ``outcome`` is what the send ends with."""

    def __init__(self, outcome: ProviderOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class AccessTokens:
    def __init__(self, client: httpx.AsyncClient, url: str,
                 form: Callable[[float], Mapping[str, str]], *, margin_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._client = client
        self._form = form
        self._margin_s = margin_s
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def _cached(self, stale: str | None) -> str | None:
        token = self._token
        if token is not None and token != stale and (
                self._clock() < self._expires_at - self._margin_s):
            return token
        return None

    async def get(self, stale: str | None = None) -> str:
        """A valid access token (see the module docstring); raises ``TokenRefused``."""
        token = self._cached(stale)
        if token is not None:
            return token  # the common case: no lock to take
        async with self._lock:
            token = self._cached(stale)
            if token is not None:
                return token
            now = self._clock()
            try:
                response = await self._client.post(self.url, data=dict(self._form(now)))
            except httpx.HTTPError as exc:
                raise TokenRefused(network_failure(
                    f"token endpoint: {type(exc).__name__}: {exc}")) from None
            if response.status_code != 200:
                raise TokenRefused(from_http_status(
                    response.status_code,
                    f"token endpoint: {response.text[:MAX_ERROR_TEXT]}",
                    retry_after_s=retry_after(response)))
            try:
                token, lifetime = read_token(answer_json(response))
            except ValueError as exc:
                raise TokenRefused(ProviderOutcome(
                    ProviderOutcomeKind.RETRY, 200,
                    f"token endpoint: {exc}: {response.text[:MAX_ERROR_TEXT]}")) from None
            self._token, self._expires_at = token, now + lifetime
            return token
