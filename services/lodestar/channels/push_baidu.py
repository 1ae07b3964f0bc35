"""Baidu Cloud Push over its REST API 3.0 (``core.baidu_message`` builds and reads).

``BaiduSender(config, client=None)``: ``await send(notification, address)`` signs and
POSTs one ``push/single_device`` request and returns a ``ProviderOutcome``; it never
raises for an answer or a network failure. Each attempt is signed afresh (the
signature is valid ten minutes from its ``timestamp``). Requests go over httpx
(HTTP/1.1 keep-alive, ``max_connections``); ``base_url`` is configurable so tests
point it at 127.0.0.1. The URL in the signature is the one the request goes to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lodestar.channels.closing import ClosesOnExit
from lodestar.channels.http_answers import answer_json, pooled_client, retry_after
from lodestar.core.baidu_message import (
    CONTENT_TYPE,
    DEFAULT_BASE_URL,
    DEVICE_TYPE_ANDROID,
    SINGLE_DEVICE,
    USER_AGENT,
    baidu_outcome,
    signed,
    single_device_params,
)
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind, network_failure
from lodestar.core.push_payloads import PushNotification


@dataclass(frozen=True)
class BaiduConfig:
    api_key: str
    secret_key: str
    base_url: str = DEFAULT_BASE_URL
    device_type: int = DEVICE_TYPE_ANDROID
    timeout_s: float = 10.0
    max_connections: int = 32


class BaiduSender(ClosesOnExit):
    """One Baidu app's sender (see the module docstring)."""

    name = "baidu"

    def __init__(self, config: BaiduConfig, client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._owns = client is None
        self._client = client or pooled_client(config.timeout_s, config.max_connections)
        self._clock = clock
        self.send_url = f"{config.base_url.rstrip('/')}/{SINGLE_DEVICE}"

    def request_params(self, notification: PushNotification, address: str,
                       icon_reference: str | None = None) -> dict[str, str]:
        """The signed form parameters of one send, timestamped now."""
        params = single_device_params(
            notification, address, self.config.api_key, int(self._clock()),
            device_type=self.config.device_type, icon_reference=icon_reference)
        return signed("POST", self.send_url, params, self.config.secret_key)

    async def send(self, notification: PushNotification, address: str,
                   icon_reference: str | None = None) -> ProviderOutcome:
        if not address.strip() or not address.rsplit(":", 1)[-1].strip():
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   "no Baidu channel id in the address")
        form = self.request_params(notification, address, icon_reference)
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
        try:
            response = await self._client.post(self.send_url, data=form, headers=headers)
        except httpx.TimeoutException as exc:
            return network_failure(f"timeout: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return network_failure(f"{type(exc).__name__}: {exc}")
        return baidu_outcome(response.status_code, answer_json(response),
                             retry_after(response))

    async def aclose(self) -> None:
        if self._owns:
            await self._client.aclose()
