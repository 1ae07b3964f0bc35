"""Placing one voice call through Twilio's Calls API, and saying how it went as a value.

``TwilioVoice.send(call)`` POSTs ``{base_url}/2010-04-01/Accounts/{sid}/Calls.json``
form-encoded (``To``, ``From``, ``Twiml`` and, when ``status_callback_url`` is set,
``StatusCallback`` = ``<base>/voice/status/twilio/<app>?m=<message id>`` with
``StatusCallbackEvent=completed``) with HTTP Basic auth (account sid, auth token)
and returns a ``ProviderOutcome``; it never raises for an answer or a network failure:

- 201/200 with the call ``sid``: ACCEPTED (``provider_message_id`` = sid).
  Twilio has queued the call; how it ended (completed, busy, no-answer …) is
  reported to the status callback (``core.voice_receipts``).
- Twilio error ``code`` 21211/21217 (invalid ``To``), 21214 (``To`` cannot be
  reached), 13224 (invalid number): DEAD_ADDRESS, ``record_status`` INVALID.
- 21215/21216 (geo permissions / number blocked for the account): PERMANENT,
  ``record_status`` BLOCKED.
- 20429 or HTTP 429: RETRY (throttled) with Retry-After; HTTP 5xx: RETRY.
- every other 4xx (auth 20003, bad From 21210 …): PERMANENT.
- no answer (connect, TLS, timeout): RETRY.

One ``httpx.AsyncClient`` is created per transport and reused (``aclose`` ends it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
    network_failure,
)
from lodestar.core.retry_policy import retry_after_seconds
from lodestar.core.voice_message import VoiceCall

DEAD_NUMBER_CODES = frozenset({21211, 21214, 21217, 13224})
BLOCKED_CODES = frozenset({21215, 21216})
THROTTLED_CODE = 20429


@dataclass(frozen=True)
class TwilioVoiceConfig:
    account_sid: str
    auth_token: str
    base_url: str = "https://api.twilio.com"
    timeout_s: float = 10.0
    status_callback_url: str | None = None
    """Public base URL of Lodestar's API: each call asks Twilio to report its end to
    ``<base>/voice/status/twilio/<app>?m=<message id>`` (``api.sms_inbound``)."""


def status_callback_url(base: str, app_id: str, message_id: str) -> str:
    """Where Twilio reports how the call of ``message_id`` ended."""
    return (f"{base.rstrip('/')}/voice/status/twilio/{quote(app_id, safe='')}"
            f"?m={quote(message_id, safe='')}")


def calls_url(config: TwilioVoiceConfig) -> str:
    return f"{config.base_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Calls.json"


def _error(response: httpx.Response) -> tuple[int | None, str]:
    try:
        data: Any = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if not isinstance(data, dict):
        return None, response.reason_phrase
    code = data.get("code")
    return (code if isinstance(code, int) else None), str(data.get("message") or "")


def read_answer(response: httpx.Response, now_ms: int) -> ProviderOutcome:
    """The outcome of one Calls API answer."""
    status = response.status_code
    if 200 <= status <= 299:
        try:
            sid = response.json().get("sid")
        except (ValueError, AttributeError):
            sid = None
        return accepted(status, sid if isinstance(sid, str) else None, "call queued")
    code, message = _error(response)
    text = f"Twilio {code}: {message}" if code is not None else f"HTTP {status}: {message}"
    retry_after = retry_after_seconds(response.headers.get("retry-after"), now_ms)
    if code in DEAD_NUMBER_CODES:
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, text,
                               record_status="INVALID")
    if code in BLOCKED_CODES:
        return ProviderOutcome(ProviderOutcomeKind.PERMANENT, status, text,
                               record_status="BLOCKED")
    if code == THROTTLED_CODE or status == 429:
        return ProviderOutcome(ProviderOutcomeKind.RETRY, status, text,
                               retry_after_s=retry_after, throttled=True)
    return from_http_status(status, text, retry_after_s=retry_after)


class TwilioVoice:
    """A Calls API client; ``send`` returns a ``ProviderOutcome``, never raises for answers."""

    def __init__(self, config: TwilioVoiceConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._client = client or httpx.AsyncClient(timeout=config.timeout_s)
        self._clock = clock

    def form(self, call: VoiceCall) -> dict[str, str]:
        """The form fields of ``call``'s Calls API request."""
        form = {"To": call.to, "From": call.from_number, "Twiml": call.twiml}
        if self._config.status_callback_url and call.app_id and call.message_id:
            form["StatusCallback"] = status_callback_url(self._config.status_callback_url,
                                                         call.app_id, call.message_id)
            form["StatusCallbackEvent"] = "completed"
            form["StatusCallbackMethod"] = "POST"
        return form

    async def send(self, call: VoiceCall) -> ProviderOutcome:
        form = self.form(call)
        try:
            response = await self._client.post(
                calls_url(self._config), data=form,
                auth=(self._config.account_sid, self._config.auth_token),
                headers={"Accept": "application/json"}, timeout=self._config.timeout_s,
            )
        except httpx.HTTPError as exc:
            return network_failure(f"Twilio Calls API: {type(exc).__name__}: {exc}")
        return read_answer(response, int(self._clock() * 1000))

    async def aclose(self) -> None:
        await self._client.aclose()
