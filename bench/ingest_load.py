"""Load generator process for ``bench/ingest.py``: PutEvents over HTTP, from another process.

Run by ``ingest.py`` as ``python bench/ingest_load.py '<json>'``; not meant to
be started by hand. The JSON object holds:

- ``url``: base URL of the API (loopback only), ``app_id``: the application;
- ``auth``: ``{"kind": "bearer" | "sigv4", "key": …, "secret": …, "region": …}``;
- ``concurrency``: connections, each with one request in flight at a time;
- ``warmup``: requests sent (and checked) before timing starts;
- ``requests``: requests timed; ``first_body``: index of the first body
  (``amplify_events.BodyGenerator``) so that passes on one API send new events;
- ``endpoints``, ``seed``: the endpoint pool and body seed;
- ``timeout_s``: the whole load must finish within it; ``progress_every``.

Every body is generated (and, for SigV4, signed with botocore) before any
request is sent, so the timed loop only sends bodies and reads answers.
Time runs from the first timed request sent to the last answer received.

Output: ``progress …`` lines on stderr; one line ``BENCH_RESULT {json}`` on
stdout with ``requests``, ``accepted`` (per-event 202 results of the timed
requests), ``warmup_accepted``, ``failed_requests``, ``rejected_events``,
``seconds``, latency percentiles in ms and ``cpu_seconds`` (this process's
CPU time during the timed phase).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from amplify_events import BodyGenerator, endpoint_pool

RESULT_MARKER = "BENCH_RESULT"


def progress(line: str) -> None:
    print(f"progress {line}", file=sys.stderr, flush=True)


def _headers(config: dict[str, Any], url: str, body: bytes) -> dict[str, str]:
    auth = config["auth"]
    base = {"Content-Type": "application/json"}
    if auth["kind"] == "bearer":
        return base | {"Authorization": f"Bearer {auth['key']}:{auth['secret']}"}
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=url, data=body, headers=base)
    SigV4Auth(Credentials(auth["key"], auth["secret"]), "mobiletargeting",
              auth["region"]).add_auth(request)
    return dict(request.headers.items())


def _accepted(response: httpx.Response) -> tuple[int, int]:
    """(accepted, rejected) per-event results of a PutEvents answer."""
    ok = bad = 0
    for item in response.json()["Results"].values():
        for result in item["EventsItemResponse"].values():
            if result["StatusCode"] == 202:
                ok += 1
            else:
                bad += 1
    return ok, bad


class Load:
    """Requests prepared in advance, sent over ``concurrency`` keep-alive connections."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.url = f"{config['url']}/v1/apps/{config['app_id']}/events"
        generator = BodyGenerator(endpoint_pool(config["endpoints"]), seed=config["seed"])
        first, total = config["first_body"], config["warmup"] + config["requests"]
        started = time.perf_counter()
        self.prepared: list[tuple[bytes, dict[str, str]]] = []
        for body in generator.bodies(first, total):
            self.prepared.append((body, _headers(config, self.url, body)))
        progress(f"prepared {total:,} bodies ({generator.events_per_request} events each, "
                 f"{sum(len(b) for b, _ in self.prepared) / total / 1024:.1f} KiB average) "
                 f"in {time.perf_counter() - started:.1f} s")
        self.failed = 0
        self.rejected = 0
        self.failures: list[str] = []

    async def send(
        self, client: httpx.AsyncClient, items: list[tuple[bytes, dict[str, str]]]
    ) -> tuple[int, list[float]]:
        """Send ``items`` over the client's connections; accepted events and latencies."""
        next_item = 0
        accepted = 0
        latencies: list[float] = []
        every = self.config["progress_every"]

        async def connection() -> None:
            nonlocal next_item, accepted
            while next_item < len(items):
                body, headers = items[next_item]
                next_item += 1
                sent = time.perf_counter()
                response = await client.post(self.url, content=body, headers=headers)
                latencies.append(time.perf_counter() - sent)
                if response.status_code != 202:
                    self.failed += 1
                    if len(self.failures) < 5:
                        self.failures.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                ok, bad = _accepted(response)
                accepted += ok
                self.rejected += bad
                if len(latencies) % every == 0:
                    progress(f"{len(latencies):,}/{len(items):,} requests")

        await asyncio.gather(*(connection() for _ in range(self.config["concurrency"])))
        return accepted, latencies

    async def run(self) -> dict[str, Any]:
        concurrency = self.config["concurrency"]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        warmup = self.config["warmup"]
        async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
            warm_accepted, _ = await self.send(client, self.prepared[:warmup])
            progress(f"warm-up: {warmup:,} requests, {warm_accepted:,} events accepted")
            cpu0, t0 = time.process_time(), time.perf_counter()
            accepted, latencies = await self.send(client, self.prepared[warmup:])
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        latencies.sort()

        def pct(p: float) -> float:
            return 1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        return {
            "requests": len(latencies),
            "accepted": accepted,
            "warmup_accepted": warm_accepted,
            "failed_requests": self.failed,
            "failures": self.failures,
            "rejected_events": self.rejected,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": 1000 * latencies[-1],
        }


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])

    async def bounded() -> dict[str, Any]:
        load = Load(config)
        return await asyncio.wait_for(load.run(), config["timeout_s"])

    result = asyncio.run(bounded())
    print(f"{RESULT_MARKER} {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
