"""POSTing a signed custom-channel message to a webhook, only to checked destinations.

``CustomWebhook.send(url, body, secret)`` returns a ``ProviderOutcome``:

1. ``check_url`` (scheme, host, no credentials) — refused: PERMANENT, nothing resolved;
2. the host is resolved once (``asyncio`` ``getaddrinfo``, or the injected
   resolver) and EVERY address is checked by ``destination_guard.check_addresses``
   — one unacceptable address refuses the destination: PERMANENT, no connection;
   a resolution failure is RETRY;
3. the request goes out through ``PinnedTransport``: its network backend
   connects only to the addresses checked in step 2 for that host and port
   (held in a context variable for the duration of the send) and refuses any
   other connection. The HTTP stack never resolves the name itself, so a DNS
   answer that changes between check and connect (DNS rebinding) cannot steer
   the connection. TLS still verifies the certificate against the URL's host
   name (SNI and hostname check use the name, not the address).
4. the answer is read with ``provider_outcome.from_http_status`` (2xx ACCEPTED,
   408/425/429/5xx RETRY with Retry-After, 3xx and other 4xx PERMANENT).

Redirects are not followed (a redirect could point anywhere) and proxy
settings from the environment are ignored (``trust_env=False``). Timeouts:
``connect_timeout_s`` for connecting, ``timeout_s`` for each read/write, and
``timeout_s`` + ``connect_timeout_s`` for the whole send including DNS.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from lodestar.core.custom_message import WebhookPost
from lodestar.core.destination_guard import GuardPolicy, GuardVerdict, check_addresses, check_url
from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    from_http_status,
    network_failure,
)
from lodestar.core.retry_policy import retry_after_seconds
from lodestar.core.webhook_signature import signed_headers

Resolver = Callable[[str, int], Awaitable[list[str]]]
USER_AGENT = "Lodestar-Webhook/1"
MESSAGE_ID_HEADER = "X-Lodestar-Message-Id"

_PINS: contextvars.ContextVar[Mapping[tuple[str, int], tuple[str, ...]]] = \
    contextvars.ContextVar("lodestar_webhook_pins")


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in resolver order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class RefusedConnection(httpcore.ConnectError):
    """A connection to an address that was not checked for this send."""


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to the addresses pinned for (host, port) in the current context."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self.attempts: deque[tuple[str, str, int]] = deque(maxlen=256)
        """(host, address, port) of the last connections attempted (for tests and logs)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        pins = _PINS.get({})
        addresses = pins.get((host.lower().rstrip("."), port))
        if not addresses:
            raise RefusedConnection(f"{host}:{port} was not checked for this send")
        last: Exception | None = None
        for address in addresses:
            self.attempts.append((host, address, port))
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise RefusedConnection("unix sockets are not webhook destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool whose backend is a ``PinnedBackend``.
    Reads at most ``max_response_bytes`` of each answer."""

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext | None = None,
                 max_response_bytes: int = 65536) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(), http1=True, http2=False,
            network_backend=backend, max_connections=50, keepalive_expiry=30.0)
        self._max = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        try:
            resp = await self._pool.handle_async_request(req)
            try:
                body = bytearray()
                assert isinstance(resp.stream, AsyncIterable)
                async for chunk in resp.stream:
                    body.extend(chunk)
                    if len(body) >= self._max:
                        break
            finally:
                await resp.aclose()
            return httpx.Response(resp.status, headers=resp.headers,
                                  content=bytes(body[: self._max]))
        except httpcore.TimeoutException as exc:
            raise httpx.TimeoutException(str(exc) or type(exc).__name__, request=request) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise httpx.TransportError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._pool.aclose()


@dataclass(frozen=True)
class WebhookConfig:
    policy: GuardPolicy
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    max_response_bytes: int = 65536


class CustomWebhook:
    """Signed webhook POSTs to guarded destinations over one pooled client."""

    def __init__(self, config: WebhookConfig, *, resolver: Resolver = resolve_host,
                 ssl_context: ssl.SSLContext | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._resolver = resolver
        self._clock = clock
        self.backend = PinnedBackend()
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._client = httpx.AsyncClient(
            transport=PinnedTransport(self.backend, ssl_context, config.max_response_bytes),
            timeout=timeout, follow_redirects=False, trust_env=False)

    async def check(self, url: str) -> GuardVerdict | ProviderOutcome:
        """Resolve and check ``url``: the verdict, or a RETRY outcome when DNS failed."""
        verdict = check_url(url, self._config.policy)
        if not verdict.allowed or verdict.destination is None:
            return verdict
        try:
            addresses = await self._resolver(verdict.destination.host, verdict.destination.port)
        except (OSError, UnicodeError) as exc:
            return network_failure(f"resolving {verdict.destination.host}: {exc}")
        return check_addresses(url, addresses, self._config.policy)

    async def send(self, url: str, body: bytes, secret: bytes,
                   message_id: str | None = None) -> ProviderOutcome:
        """POST ``body`` (JSON) signed with ``secret`` to ``url`` if the guard allows it."""
        try:
            async with asyncio.timeout(self._config.timeout_s + self._config.connect_timeout_s):
                return await self._send(url, body, secret, message_id)
        except TimeoutError:
            return network_failure(f"webhook {url}: timed out")

    async def _send(self, url: str, body: bytes, secret: bytes,
                    message_id: str | None) -> ProviderOutcome:
        checked = await self.check(url)
        if isinstance(checked, ProviderOutcome):
            return checked
        if not checked.allowed or checked.destination is None:
            reason = checked.reason.value if checked.reason else "REFUSED"
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                   f"destination refused ({reason}): {checked.detail}")
        destination = checked.destination
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   **signed_headers(secret, body, int(self._clock()))}
        if message_id is not None:
            headers[MESSAGE_ID_HEADER] = message_id
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None, f"invalid URL: {exc}")
        pin_host = target.raw_host.decode("ascii").lower().rstrip(".")
        token = _PINS.set({(pin_host, target.port or destination.port): checked.addresses})
        try:
            response = await self._client.post(target, content=body, headers=headers)
        except httpx.InvalidURL as exc:
            return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None, f"invalid URL: {exc}")
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, RefusedConnection):
                return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                       f"destination refused (UNCHECKED): {exc}")
            return network_failure(f"webhook {destination.host}: {type(exc).__name__}: {exc}")
        finally:
            _PINS.reset(token)
        retry_after = retry_after_seconds(response.headers.get("retry-after"),
                                          int(self._clock() * 1000))
        text = response.text[:200].strip() or response.reason_phrase
        return from_http_status(response.status_code, f"HTTP {response.status_code}: {text}",
                                retry_after_s=retry_after)

    async def post(self, post: WebhookPost, secret: bytes) -> ProviderOutcome:
        """``send`` for a ``core.custom_message.WebhookPost``."""
        return await self.send(post.url, post.body, secret, post.message_id)

    async def aclose(self) -> None:
        await self._client.aclose()
