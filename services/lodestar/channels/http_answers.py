"""What the HTTP provider transports share: a pooled httpx client, and reading an
answer's JSON body and ``Retry-After``."""

from __future__ import annotations

import time
from typing import Any

import httpx

from lodestar.core.retry_policy import retry_after_seconds


def pooled_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """A keep-alive client with up to ``max_connections`` connections, all reusable."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections))


def answer_json(response: httpx.Response) -> Any:
    """The answer's JSON body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def retry_after(response: httpx.Response, now_ms: int | None = None) -> float | None:
    """Seconds the answer's ``Retry-After`` asks to wait (delta or HTTP date), or None."""
    return retry_after_seconds(response.headers.get("retry-after"),
                               int(time.time() * 1000) if now_ms is None else now_ms)
