"""Realistic PutEvents traffic, shaped like what the Amplify SDKs send.

Both Lodestar benchmarks use it: ``ingest.py`` posts the bodies to the HTTP
API, ``profile_updates.py`` turns the same bodies into the ``Event`` records
the API would have written (through ``lodestar.core.put_events``, the API's
own parser) and pre-fills the events topic with them.

One body (``EventsRequest``) holds ``endpoints_per_request`` endpoints x
``events_per_endpoint`` events (default 10 x 10 = 100, Pinpoint's maximum per
request). Each endpoint's events are one client session: ``_session.start``,
custom events with Attributes and Metrics (``pageView``, ``productViewed``,
``addToCart``, ``search``, ``shareItem``), ``_monetization.purchase`` and
``_session.stop`` (StopTimestamp, Duration), all carrying the ``Session``
object Amplify attaches to every event, timestamps as ISO-8601 strings.

Two client styles alternate per batch item:

- *Amplify JS*: ``"Endpoint": {}`` and no client fields;
- *Amplify Swift*: ``AppPackageName`` … ``ClientSdkVersion`` on each event
  and the device's full ``PublicEndpoint`` (ChannelType, Address, Demographic,
  Location, Attributes, User with UserAttributes), which the API puts on the
  batch's first event as ``endpoint_request`` (an endpoint upsert in the engine).

Endpoints are drawn with a seeded RNG from a fixed pool (``endpoint_pool``),
so a run is reproducible and an endpoint appears in many requests.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

DEFAULT_ENDPOINTS: Final = 10_000
ENDPOINTS_PER_REQUEST: Final = 10
EVENTS_PER_ENDPOINT: Final = 10

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PAGES: Final = ("/", "/pricing", "/products", "/cart", "/checkout", "/account", "/help")
_CATEGORIES: Final = ("shoes", "bags", "jackets", "hats", "watches")
_QUERIES: Final = ("running shoes", "leather bag", "rain jacket", "gift ideas", "sale")
_LOCALES: Final = (("en_US", "US", "America/New_York"), ("de_DE", "DE", "Europe/Berlin"),
                   ("fr_FR", "FR", "Europe/Paris"), ("ja_JP", "JP", "Asia/Tokyo"))
_MODELS: Final = (("Apple", "iPhone", "iPhone15,2", "iOS", "17.5"),
                  ("Apple", "iPad", "iPad13,4", "iPadOS", "17.4"))


def iso(ms: int) -> str:
    """Epoch milliseconds as JavaScript's ``Date.toISOString()`` writes them."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class Device:
    """One endpoint of the pool: its id and what its PublicEndpoint says."""

    index: int
    endpoint_id: str
    user_id: str
    token: str

    def public_endpoint(self, now_ms: int) -> dict[str, Any]:
        """The PublicEndpoint an Amplify Swift client sends with its events."""
        locale, country, timezone = _LOCALES[self.index % len(_LOCALES)]
        make, model, model_version, platform, platform_version = _MODELS[self.index % 2]
        return {
            "ChannelType": "APNS",
            "Address": self.token,
            "OptOut": "NONE",
            "EffectiveDate": iso(now_ms),
            "Demographic": {
                "AppVersion": "4.12.0", "Locale": locale, "Make": make, "Model": model,
                "ModelVersion": model_version, "Platform": platform,
                "PlatformVersion": platform_version, "Timezone": timezone,
            },
            "Location": {"Country": country},
            "Attributes": {
                "plan": ["pro" if self.index % 3 else "free"],
                "interests": [_CATEGORIES[self.index % 5], _CATEGORIES[(self.index + 2) % 5]],
            },
            "User": {"UserId": self.user_id,
                     "UserAttributes": {"tier": ["gold" if self.index % 7 == 0 else "standard"]}},
        }


def endpoint_pool(count: int = DEFAULT_ENDPOINTS, seed: int = 11) -> list[Device]:
    """``count`` devices with stable UUID endpoint ids, Cognito-style user ids, APNs tokens."""
    rng = random.Random(seed)
    return [
        Device(i, _uuid(rng), f"us-east-1:{_uuid(rng)}", f"{rng.getrandbits(256):064x}")
        for i in range(count)
    ]


def _session_events(
    rng: random.Random, start_ms: int, count: int, swift: bool
) -> dict[str, dict[str, Any]]:
    """``count`` events of one session (start, custom…, purchase, stop), keyed by event id."""
    session_id = _uuid(rng) if not swift else f"{rng.getrandbits(32):08x}-{start_ms}"
    session = {"Id": session_id, "StartTimestamp": iso(start_ms)}
    events: dict[str, dict[str, Any]] = {}
    ts = start_ms
    for k in range(count):
        if k == 0:
            kind, attributes, metrics = "_session.start", {}, {}
        elif k == count - 1:
            kind, attributes, metrics = "_session.stop", {}, {}
        elif k == count - 2 and rng.random() < 0.5:
            price = round(rng.uniform(5, 200), 2)
            kind = "_monetization.purchase"
            attributes = {"_currency": "USD", "_product_id": f"sku-{rng.randrange(5000)}",
                          "_store": "AppStore" if swift else "web"}
            metrics = {"_item_price": price, "_quantity": float(rng.randint(1, 3))}
        else:
            kind, attributes, metrics = _custom(rng)
        event: dict[str, Any] = {
            "EventType": kind,
            "Timestamp": iso(ts),
            "Attributes": attributes,
            "Metrics": metrics,
            "Session": dict(session),
        }
        if kind == "_session.stop":
            event["Session"]["StopTimestamp"] = iso(ts)
            event["Session"]["Duration"] = ts - start_ms
        if swift:
            event.update(AppPackageName="com.example.shop", AppTitle="Example Shop",
                         AppVersionCode="4.12.0", SdkName="amplify-swift",
                         ClientSdkVersion="2.46.1")
        events[_uuid(rng)] = event
        ts += rng.randint(2_000, 40_000)
    return events


def _custom(rng: random.Random) -> tuple[str, dict[str, str], dict[str, float]]:
    pick = rng.randrange(5)
    if pick == 0:
        page = rng.choice(_PAGES)
        return "pageView", {"url": f"https://shop.example.com{page}", "title": page.strip("/")
                            or "home"}, {"timeOnPage": float(rng.randint(1, 120))}
    if pick == 1:
        return ("productViewed",
                {"productId": f"sku-{rng.randrange(5000)}", "category": rng.choice(_CATEGORIES)},
                {"price": round(rng.uniform(5, 200), 2)})
    if pick == 2:
        return ("addToCart", {"productId": f"sku-{rng.randrange(5000)}", "source": "pdp"},
                {"quantity": float(rng.randint(1, 3)), "price": round(rng.uniform(5, 200), 2)})
    if pick == 3:
        return "search", {"query": rng.choice(_QUERIES)}, {"results": float(rng.randint(0, 80))}
    return "shareItem", {"channel": rng.choice(("sms", "email", "copy_link"))}, {}


@dataclass
class BodyGenerator:
    """Makes PutEvents bodies; request ``i`` of a run is always the same body for one seed."""

    devices: list[Device]
    seed: int = 7
    # sessions start from two hours ago, one second apart per request
    base_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 2 * 3_600_000)
    endpoints_per_request: int = ENDPOINTS_PER_REQUEST
    events_per_endpoint: int = EVENTS_PER_ENDPOINT
    swift_every: int = 2  # every n-th batch item is an Amplify Swift one (full Endpoint)

    @property
    def events_per_request(self) -> int:
        return self.endpoints_per_request * self.events_per_endpoint

    def body(self, i: int) -> dict[str, Any]:
        """The ``i``-th ``EventsRequest``: distinct endpoints, one session each."""
        rng = random.Random(self.seed * 1_000_003 + i)
        picked = rng.sample(self.devices, self.endpoints_per_request)
        batch: dict[str, Any] = {}
        for j, device in enumerate(picked):
            swift = (i * self.endpoints_per_request + j) % self.swift_every == 0
            start_ms = self.base_ms + i * 1_000 + rng.randrange(1_000)
            batch[device.endpoint_id] = {
                "Endpoint": device.public_endpoint(start_ms) if swift else {},
                "Events": _session_events(rng, start_ms, self.events_per_endpoint, swift),
            }
        return {"BatchItem": batch}

    def body_bytes(self, i: int) -> bytes:
        return json.dumps(self.body(i), separators=(",", ":")).encode()

    def bodies(self, start: int, count: int) -> Iterator[bytes]:
        for i in range(start, start + count):
            yield self.body_bytes(i)


def event_records(
    generator: BodyGenerator, app_id: str, requests: int, arrival_ms: int
) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The ``(key, Event record)`` pairs the API would publish for ``requests`` bodies.

    Runs each body through ``lodestar.core.put_events.parse_put_events``, the
    API's own validation, so the records have exactly the API's shape
    (``user_id`` copied from the PublicEndpoint, ``endpoint_request`` on the
    first event of a batch item that carried one). Raises ``ValueError`` if
    the parser refuses anything: the generator must produce valid traffic.
    """
    from lodestar.core.put_events import parse_put_events

    for i in range(requests):
        outcome = parse_put_events(app_id, generator.body(i), arrival_ms=arrival_ms + i)
        if len(outcome.accepted) != generator.events_per_request:
            raise ValueError(f"body {i}: the API parser refused events: {outcome.as_pinpoint()}")
        for record in outcome.accepted:
            yield record["endpoint_id"].encode(), record
