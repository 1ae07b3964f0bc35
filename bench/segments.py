"""Dynamic segments: events/s one ``lodestar worker`` processes with 1,000 active segments,
and the latency from an event produced to the membership change it causes (issue #4).

Targets (issue #4): >= 5,000 events/s per worker with 1,000 segments; p99 < 500 ms
from event produced to membership change published, at 5,000 events/s.

What runs:

1. ``--segments`` (1,000) segment definitions for one application, generated
   with a seeded RNG (``segment_bodies``): Attributes INCLUSIVE / EXCLUSIVE /
   CONTAINS / BEFORE / AFTER, UserAttributes, Demographic Platform / Make /
   Channel, Location Country and GPSPoint, Metrics, Behavior Recency, the
   Lodestar ``Behavioral`` extension (Performed with and without an Attributes
   filter, windows in hours and days, AT_LEAST / AT_MOST / EXACTLY;
   NotPerformedSince; FirstSeen / LastSeen) and about 10 % SegmentGroups over
   earlier segments. Most combine two or three conditions, so segments are
   selective, and the Performed thresholds are low enough that the event
   stream crosses them. Every body is validated with ``parse_segment`` and the
   whole set compiled with ``build_catalog`` (no cycles) before anything runs.
2. The endpoints are ``amplify_events``' pool with a richer PublicEndpoint
   (``SegmentDevice``: 40 % Android on GCM, GPS coordinates near the
   country's capital, a ``signup_date`` attribute, a ``region`` user
   attribute, two Metrics that move with time), so every condition reads
   fields the endpoints really have.
3. Per ``--variant`` (``no-segments``, ``segments``) its own topic prefix, a
   fresh migrated database holding the app (and for ``segments`` the segment
   rows, as the API would have written them, so the membership projection and
   the backfill progress do their real work), the segments as ControlChange
   records on ``<prefix>.control`` (``segments`` only), ``--events`` prefilled
   events, and one ``python -m lodestar worker --without-analytics``.
   Done = the worker's group committed the end of every events partition.
   Time = first to last EndpointChange record published on ``<prefix>.endpoints``,
   as in ``profile_updates.py``; a commit-based rate is printed beside it.
   Membership changes published = records on ``<prefix>.segment-membership``
   when the events were all committed.
4. Latency (``segments`` variant, after its throughput phase, same worker,
   warm state): a paced producer sends ``--rate`` events/s for ``--seconds``
   (pre-built and pre-encoded; the send time of each event id is kept); a
   consumer reads ``<prefix>.segment-membership``; for each record with cause
   ``event`` and a known ``event_id``, latency = the record's Kafka timestamp
   (CreateTime, set by the worker's producer) - the event's send time. The
   engine names the *last* event of the endpoint's batch as the cause, so for
   an earlier event of the same batch the latency is understated by at most
   the batch's gathering time (take_events: 50 ms).
5. The baselines of ``baselines.py`` on the first variant's events topic.

Everything the run created (topics, consumer groups, databases, RocksDB
directories) is deleted at the end, also after a failure or SIGTERM.
``--py-spy PATH`` samples the ``segments`` worker during its throughput phase.

Example: ``.venv/bin/python bench/segments.py`` (both variants, latency, baselines)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from amplify_events import BodyGenerator, Device, endpoint_pool, event_records, iso
from baselines import (
    DEFAULT_PHASE_TIMEOUT_S,
    BenchError,
    InputTopic,
    Progress,
    Result,
    admin_client,
    count_records,
    delete_run,
    format_table,
    report,
    run_baselines,
)
from lodestar.contracts.codec import AvroCodec
from lodestar.core.segment_definition import parse_segment
from lodestar.core.segment_membership import build_catalog
from lodestar.core.topics import Topic
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics
from lodestar_procs import (
    LodestarProcess,
    cancel_on_sigterm,
    free_port,
    fresh_database,
    lodestar_env,
    run_measurement,
)
from profile_updates import POLL_S, commit_rate, committed, fill, first_last_timestamps
from profiling import MachineCpu, PySpy, format_cpu, summarize

DEFAULT_EVENTS: Final = 20_000
DEFAULT_ENDPOINTS: Final = 1_000
DEFAULT_SEGMENTS: Final = 1_000
DEFAULT_RATE: Final = 5_000
DEFAULT_SECONDS: Final = 30.0
TARGET_EVENTS_PER_S: Final = 5_000
TARGET_P99_MS: Final = 500.0
PROGRESS_EVERY_S: Final = 5.0
VARIANTS: Final = ("no-segments", "segments")
DRAIN_TIMEOUT_S: Final = 60.0
SETTLE_S: Final = 3.0
LATER_S: Final = 10.0  # the phase's start is a burst (≈ 5 changes per event): also
# reported, the p99 of the events sent this long after the first one
STATS_LIMIT_S: Final = 60.0

Records = list[tuple[bytes, bytes]]

# --- endpoints ----------------------------------------------------------------------

_ANDROID: Final = (("samsung", "Galaxy S24", "SM-S921B", "Android", "14"),
                   ("Google", "Pixel 8", "shiba", "Android", "14"))
_CAPITALS: Final = {"US": (38.90, -77.04), "DE": (52.52, 13.40), "FR": (48.86, 2.35),
                    "JP": (35.68, 139.69)}
_REGIONS: Final = ("north", "south", "east", "west")
_SIGNUP_ANCHOR: Final = datetime(2026, 1, 1, tzinfo=UTC)
_CATEGORIES: Final = ("shoes", "bags", "jackets", "hats", "watches")
_PAGES: Final = ("home", "pricing", "products", "cart", "checkout", "account", "help")
_QUERIES: Final = ("running shoes", "leather bag", "rain jacket", "gift ideas", "sale")


@dataclasses.dataclass(frozen=True, slots=True)
class SegmentDevice(Device):
    """A pool device whose PublicEndpoint has what the segments read: a mix of
    platforms and channels, coordinates, a date attribute, Metrics that move."""

    def public_endpoint(self, now_ms: int) -> dict[str, Any]:
        body = Device.public_endpoint(self, now_ms)
        i = self.index
        if i % 5 in (1, 3):  # 40 % Android devices on FCM
            make, model, model_version, platform, version = _ANDROID[i % 2]
            body["ChannelType"] = "GCM"
            body["Demographic"].update(Make=make, Model=model, ModelVersion=model_version,
                                       Platform=platform, PlatformVersion=version)
        country = body["Location"]["Country"]
        lat, lon = _CAPITALS[country]
        body["Location"].update(Latitude=round(lat + ((i * 7919) % 400 - 200) / 100, 4),
                                Longitude=round(lon + ((i * 104_729) % 400 - 200) / 100, 4))
        signup = _SIGNUP_ANCHOR - timedelta(days=(i * 37) % 720)
        body["Attributes"]["signup_date"] = [signup.strftime("%Y-%m-%dT00:00:00Z")]
        body["User"]["UserAttributes"]["region"] = [_REGIONS[(i // 3) % 4]]
        body["Metrics"] = {
            "lifetime_value": float((i * 31 + now_ms // 600_000) % 500),
            "cart_items": float((i + now_ms // 60_000) % 8),
        }
        return body


def segment_pool(count: int) -> list[Device]:
    return [SegmentDevice(d.index, d.endpoint_id, d.user_id, d.token)
            for d in endpoint_pool(count)]


# --- segments -----------------------------------------------------------------------

_PERFORMED_TYPES: Final = ("pageView", "productViewed", "addToCart", "search", "shareItem",
                           "_monetization.purchase", "_session.start")
_FILTERS: Final = (  # (event type, attribute, values): the filtered Performed conditions
    ("productViewed", "category", _CATEGORIES),
    ("search", "query", _QUERIES),
    ("shareItem", "channel", ("sms", "email", "copy_link")),
    ("pageView", "title", _PAGES),
    ("_monetization.purchase", "_store", ("AppStore", "web")),
)


def _window(rng: random.Random) -> dict[str, int]:
    if rng.random() < 0.4:
        return {"WithinHours": rng.choice((1, 3, 6, 12, 24, 48))}
    return {"WithinDays": rng.choice((1, 2, 7, 14, 30))}


def _performed(rng: random.Random, filtered: bool) -> dict[str, Any]:
    op = rng.choices(("AT_LEAST", "AT_MOST", "EXACTLY"), (0.7, 0.15, 0.15))[0]
    count = rng.randint(1, 6) if op == "AT_LEAST" else rng.randint(1, 3)
    item: dict[str, Any] = {"Operator": op, "Count": count, **_window(rng)}
    if filtered:
        event_type, name, values = rng.choice(_FILTERS)
        item.update(EventType=event_type, Attributes={name: rng.choice(values)})
        item["Count"] = min(count, 3)
    else:
        item["EventType"] = rng.choice(_PERFORMED_TYPES)
    return item


def _narrowing(rng: random.Random) -> dict[str, Any]:
    """A second, endpoint-field condition that makes a behavioural segment selective."""
    pick = rng.randrange(5)
    if pick == 0:
        return {"Location": {"Country": {"Values": [rng.choice(list(_CAPITALS))]}}}
    if pick == 1:
        return {"Demographic": {"Platform": {"Values": [rng.choice(("iOS", "Android",
                                                                    "iPadOS"))]}}}
    if pick == 2:
        return {"Attributes": {"plan": {"AttributeType": "INCLUSIVE",
                                        "Values": [rng.choice(("pro", "free"))]}}}
    if pick == 3:
        return {"UserAttributes": {"region": {"Values": [rng.choice(_REGIONS)]}}}
    return {"Attributes": {"interests": {"Values": [rng.choice(_CATEGORIES)]}}}


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Dimensions from parts (later parts' keys merge into earlier ones' maps)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "Behavioral" and key in out:
                for k, v in value.items():
                    out[key].setdefault(k, []).extend(v)
            elif isinstance(value, dict) and key in out:
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out


def _dimensions(kind: str, rng: random.Random) -> dict[str, Any]:
    """One segment's Dimensions of the given kind."""
    if kind == "attributes":
        how = rng.choice(("INCLUSIVE", "EXCLUSIVE", "CONTAINS"))
        if how == "CONTAINS":
            cond = {"Attributes": {"interests": {"AttributeType": "CONTAINS",
                                                 "Values": [rng.choice(("sho", "bag", "jack",
                                                                        "hat", "watch"))]}}}
        else:
            cond = {"Attributes": {"interests": {"AttributeType": how,
                                                 "Values": rng.sample(_CATEGORIES, 2)}}}
        return _merge(cond, _narrowing(rng)) if how != "INCLUSIVE" else cond
    if kind == "dates":
        how = rng.choice(("BEFORE", "AFTER"))
        value = (f"NOW-P{rng.choice((180, 365, 540))}D" if rng.random() < 0.5 else
                 (_SIGNUP_ANCHOR - timedelta(days=rng.randrange(30, 700))).strftime("%Y-%m-%d"))
        return _merge({"Attributes": {"signup_date": {"AttributeType": how, "Values": [value]}}},
                      _narrowing(rng))
    if kind == "user":
        if rng.random() < 0.5:
            name, value = rng.choice((("tier", "gold"), ("region", rng.choice(_REGIONS))))
            return {"UserAttributes": {name: {"AttributeType": "INCLUSIVE", "Values": [value]}}}
        return {"UserAttributes": {"tier": {"Values": ["gold"]}},
                "Location": {"Country": {"Values": [rng.choice(list(_CAPITALS))]}}}
    if kind == "demographic":
        field, values = rng.choice((("Platform", ("iOS", "iPadOS", "Android")),
                                    ("Make", ("Apple", "samsung", "Google")),
                                    ("Channel", ("APNS", "GCM"))))
        dim = {"Demographic": {field: {"DimensionType": rng.choice(("INCLUSIVE", "EXCLUSIVE")),
                                       "Values": [rng.choice(values)]}}}
        return _merge(dim, _narrowing(rng))
    if kind == "country":
        return _merge({"Location": {"Country": {"Values": [rng.choice(list(_CAPITALS))]}}},
                      {"Behavioral": {"Performed": [_performed(rng, False)]}})
    if kind == "gps":
        country = rng.choice(list(_CAPITALS))
        lat, lon = _CAPITALS[country]
        return {"Location": {"GPSPoint": {
            "Coordinates": {"Latitude": lat + rng.uniform(-1, 1),
                            "Longitude": lon + rng.uniform(-1, 1)},
            "RangeInKilometers": rng.choice((25.0, 50.0, 100.0, 200.0))}}}
    if kind == "metrics":
        name = rng.choice(("lifetime_value", "cart_items"))
        op = rng.choice(("GREATER_THAN", "LESS_THAN", "GREATER_THAN_OR_EQUAL",
                         "LESS_THAN_OR_EQUAL", "EQUAL"))
        threshold = float(rng.randrange(500) if name == "lifetime_value" else rng.randrange(8))
        return _merge({"Metrics": {name: {"ComparisonOperator": op, "Value": threshold}}},
                      _narrowing(rng))
    if kind == "recency":
        return _merge({"Behavior": {"Recency": {
            "Duration": rng.choice(("HR_24", "DAY_7", "DAY_14", "DAY_30")),
            "RecencyType": rng.choice(("ACTIVE", "INACTIVE"))}}}, _narrowing(rng))
    if kind == "performed":
        dims: dict[str, Any] = {"Behavioral": {"Performed": [_performed(rng, False)]}}
        if rng.random() < 0.3:
            dims["Behavioral"]["Performed"].append(_performed(rng, False))
        return _merge(dims, _narrowing(rng)) if rng.random() < 0.6 else dims
    if kind == "performed-filtered":
        dims = {"Behavioral": {"Performed": [_performed(rng, True)]}}
        return _merge(dims, _narrowing(rng)) if rng.random() < 0.4 else dims
    if kind == "not-performed":
        since = rng.choice(("NOW-PT30M", "NOW-PT2H", "NOW-P1D", "NOW-P7D"))
        return {"Behavioral": {
            "NotPerformedSince": [{"EventType": rng.choice(("_monetization.purchase",
                                                             "addToCart", "shareItem")),
                                   "Since": since}],
            "Performed": [{"EventType": "pageView", "Operator": "AT_LEAST",
                           "Count": rng.randint(1, 4), **_window(rng)}]}}
    if kind == "seen":
        key = rng.choice(("FirstSeen", "LastSeen"))
        item: dict[str, Any] = {rng.choice(("Before", "After")):
                                rng.choice(("NOW-PT30M", "NOW-PT1H", "NOW-PT3H", "NOW-P1D"))}
        if rng.random() < 0.6:
            item["EventType"] = rng.choice(_PERFORMED_TYPES)
        return _merge({"Behavioral": {key: [item]}}, _narrowing(rng))
    raise ValueError(kind)


_KINDS: Final = (  # (kind, weight) of the dimensional segments
    ("attributes", 9), ("dates", 5), ("user", 5), ("demographic", 8), ("country", 5),
    ("gps", 4), ("metrics", 8), ("recency", 5), ("performed", 27), ("performed-filtered", 13),
    ("not-performed", 6), ("seen", 5),
)


def segment_bodies(
    count: int, seed: int = 17
) -> list[tuple[str, str, dict[str, Any]]]:
    """``count`` (segment id, kind, WriteSegmentRequest), about 10 % SegmentGroups over
    earlier segments; each validated with ``parse_segment``."""
    rng = random.Random(seed)
    kinds, weights = zip(*_KINDS, strict=True)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for n in range(count):
        sid = f"{rng.getrandbits(128):032x}"
        if n >= 20 and rng.random() < 0.10:
            kind = "groups"
            sources = rng.sample([s for s, k, _ in out if k != "groups"], rng.randint(1, 3))
            group: dict[str, Any] = {
                "SourceSegments": [{"Id": s} for s in sources],
                "SourceType": rng.choice(("ANY", "ALL")),
                "Type": "ALL",
            }
            if rng.random() < 0.5:
                group["Dimensions"] = [_dimensions(rng.choice(("performed", "demographic",
                                                               "country")), rng)]
            body: dict[str, Any] = {"Name": f"bench group {n}", "SegmentGroups": {
                "Include": rng.choices(("ALL", "ANY", "NONE"), (0.6, 0.3, 0.1))[0],
                "Groups": [group]}}
        else:
            kind = rng.choices(kinds, weights)[0]
            body = {"Name": f"bench {kind} {n}", "Dimensions": _dimensions(kind, rng)}
        parse_segment(body)  # raises SegmentDefinitionError: the generator is wrong
        out.append((sid, kind, body))
    return out


def control_records(
    app_id: str, segments: list[tuple[str, str, dict[str, Any]]]
) -> Records:
    """SEGMENT UPSERT ControlChange records (key, value), the definition a SegmentResponse."""
    codec = AvroCodec.default()
    now_ms = int(time.time() * 1000)
    stamp = iso(now_ms)
    out: Records = []
    for sid, _, body in segments:
        response = {"ApplicationId": app_id, "CreationDate": stamp, "Id": sid,
                    "LastModifiedDate": stamp, "SegmentType": "DIMENSIONAL", "Version": 1,
                    **body}
        record = {"entity_type": "SEGMENT", "entity_id": sid, "app_id": app_id, "version": 1,
                  "operation": "UPSERT", "definition": json.dumps(response), "actor": "cli",
                  "timestamp": now_ms}
        out.append((f"SEGMENT/{app_id}/{sid}".encode(), codec.encode(Topic.CONTROL, record)))
    return out


async def write_control(settings: Settings, topic: str, records: Records) -> None:
    headers = list(AvroCodec.default().headers(Topic.CONTROL))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def store_segments(
    dsn: str, app_id: str, segments: list[tuple[str, str, dict[str, Any]]]
) -> None:
    """The app and the segments' rows, as the API would have stored them."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO apps (id, name) VALUES ($1, $2)", app_id, "bench")
        await conn.executemany(
            "INSERT INTO segments (app_id, id, name, segment_type, latest_version) "
            "VALUES ($1, $2, $3, 'DIMENSIONAL', 1)",
            [(app_id, sid, body["Name"]) for sid, _, body in segments])
        await conn.executemany(
            "INSERT INTO segment_versions (app_id, segment_id, version, name, definition) "
            "VALUES ($1, $2, 1, $3, $4::jsonb)",
            [(app_id, sid, body["Name"],
              json.dumps({k: v for k, v in body.items() if k != "Name"}))
             for sid, _, body in segments])
    finally:
        await conn.close()


# --- input --------------------------------------------------------------------------


def build_events(
    app_id: str, n_events: int, devices: list[Device], seed: int, base_ms: int,
    progress: Progress, what: str,
) -> list[tuple[bytes, bytes, str]]:
    generator = BodyGenerator(devices, seed=seed, base_ms=base_ms)
    requests = -(-n_events // generator.events_per_request)
    codec = AvroCodec.default()
    started = time.perf_counter()
    out: list[tuple[bytes, bytes, str]] = []
    for key, record in event_records(generator, app_id, requests, int(time.time() * 1000)):
        out.append((key, codec.encode(Topic.EVENTS, record), str(record["event_id"])))
        if len(out) % 50_000 == 0:
            progress(f"{what}: {len(out):,}/{requests * 100:,} records encoded")
    progress(f"{what}: {len(out):,} records for {len(devices):,} endpoints, "
             f"{sum(len(v) for _, v, _ in out) / len(out):.0f} bytes average, built in "
             f"{time.perf_counter() - started:.1f} s (not measured)")
    return out


# --- one worker ---------------------------------------------------------------------


@dataclasses.dataclass
class Latency:
    rate_target: int
    sent: int
    send_seconds: float
    memberships: int  # membership records seen while sending and draining
    causes: dict[str, int]
    samples: int  # records with cause 'event' and a known event id
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    later_p99_ms: float | None  # p99 of the changes of events sent LATER_S s or later
    later_samples: int
    lag_at_end: int  # events not yet committed when the last one was sent (commit-coarse)
    drain_seconds: float | None  # last send to all committed (None: not within the bound)
    behind: int  # events still not committed when the drain wait ended
    done_after: float | None  # last send to the last EndpointChange published (None: none)
    cpu_span: float
    busy: float
    busiest: list[tuple[float, int, str]]

    @property
    def rate(self) -> float:
        return self.sent / self.send_seconds

    @property
    def fell_behind(self) -> bool:
        """The worker published its last batch more than a second after the last send."""
        return self.done_after is None or self.done_after > 1.0 or self.behind > 0

    @property
    def processed_per_s(self) -> float:
        """Events processed from the first send to the last batch published (the last
        EndpointChange record; commits trail by up to a flush interval), per second: the
        worker's steady-state throughput when it fell behind (else the offered rate)."""
        if self.done_after is None:
            return (self.sent - self.behind) / (self.send_seconds + DRAIN_TIMEOUT_S)
        return (self.sent - self.behind) / (self.send_seconds + max(self.done_after, 0.0))


@dataclasses.dataclass
class WorkerRun:
    variant: str
    segments: int
    events: int
    seconds: float
    commit_seconds: float
    startup_seconds: float
    memberships: int
    enters: int
    exits: int
    causes: dict[str, int]
    segments_with_members: int
    members_median: float
    members_max: int
    changes: int
    dead_letters: int
    cpu_span: float
    busy: float
    busiest: list[tuple[float, int, str]]
    latency: Latency | None = None

    @property
    def result(self) -> Result:
        return Result(f"lodestar worker, {self.segments:,} segments", self.events, self.seconds)


async def end_offsets(settings: Settings, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def membership_stats(
    settings: Settings, topic: str, partitions: int, upto: int, progress: Progress
) -> tuple[int, int, Counter[str], Counter[str]]:
    """(ENTER, EXIT, causes, net members per segment) of the first ``upto`` records
    of ``topic`` (bounded by STATS_LIMIT_S)."""
    codec = AvroCodec.default()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    enters = exits = seen = 0
    causes: Counter[str] = Counter()
    members: Counter[str] = Counter()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + STATS_LIMIT_S
        while seen < upto and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if not batches:
                break
            for records in batches.values():
                for message in records:
                    assert message.value is not None
                    record = codec.decode(Topic.SEGMENT_MEMBERSHIP, message.value)
                    seen += 1
                    causes[record["cause"]] += 1
                    if record["change"] == "ENTER":
                        enters += 1
                        members[record["segment_id"]] += 1
                    else:
                        exits += 1
                        members[record["segment_id"]] -= 1
    finally:
        await consumer.stop()
    if seen < upto:
        progress(f"membership stats from {seen:,} of {upto:,} records (time bound)")
    return enters, exits, causes, members


async def measure_worker(
    settings: Settings, run: str, variant: str, app_id: str, n_events: int,
    segments: list[tuple[str, str, dict[str, Any]]], live: list[tuple[bytes, bytes, str]] | None,
    partitions: int, args: argparse.Namespace, workdir: Path,
) -> WorkerRun:
    prefix = f"{run}.{variant}"
    worker_id = f"{prefix}.engine"
    events_topic = f"{prefix}.{Topic.EVENTS.value}"
    membership_topic = f"{prefix}.{Topic.SEGMENT_MEMBERSHIP.value}"
    changes_topic = f"{prefix}.{Topic.ENDPOINTS.value}"
    with_segments = variant == "segments"
    async with fresh_database(settings.postgres_dsn) as dsn:
        await store_segments(dsn, app_id, segments if with_segments else [])
        port = free_port()
        env = lodestar_env(
            kafka_bootstrap=settings.kafka_bootstrap, postgres_dsn=dsn, topic_prefix=prefix,
            data_dir=workdir / variant, partitions=partitions,
            extra={"LODESTAR_WORKER_ID": worker_id, "LODESTAR_WORKER_WEB_PORT": str(port),
                   "LODESTAR_WORKER_URL": f"http://127.0.0.1:{port}"},
        )
        separate = args.projections == "separate"
        worker = LodestarProcess(
            f"worker ({variant})",
            ["worker", "--without-analytics", *(["--without-projections"] if separate else [])],
            env, workdir / f"{variant}.log")
        projections = LodestarProcess(f"projections ({variant})", ["projections"], env,
                                      workdir / f"{variant}-projections.log") if separate else None
        spy = None
        if args.py_spy and with_segments:
            spy = PySpy(args.py_spy, 0, workdir / f"py-spy-{variant}.txt",
                        blocking=args.py_spy_blocking)
        throughput_spy = spy if args.py_spy_phase == "throughput" else None
        spawned = time.time()
        await worker.start()
        report(f"{variant}: worker pid {worker.pid}, id {worker_id}")
        if projections is not None:
            await projections.start()
            report(f"{variant}: `lodestar projections` pid {projections.pid} (separate process)")
        latency = None
        try:
            async with asyncio.timeout(args.timeout):
                first_at, done_at, first_count, cpu = await _wait_done(
                    settings, worker, worker_id, events_topic, n_events, variant,
                    throughput_spy)
            if throughput_spy is not None:
                await throughput_spy.stop()
            published = await end_offsets(settings, membership_topic, partitions)
            window = await first_last_timestamps(settings, changes_topic, partitions)
            if live is not None:
                if spy is not None and throughput_spy is None:
                    spy.pid = worker.pid
                    await spy.start()
                latency = await measure_latency(settings, worker, worker_id, prefix, live,
                                                partitions, args)
                if spy is not None:
                    await spy.stop()
            if not worker.alive():
                raise BenchError(f"{variant}: the worker exited:\n{worker.log_tail()}")
        except TimeoutError:
            raise BenchError(f"{variant}: the worker did not process {n_events:,} events "
                             f"within {args.timeout:.0f} s:\n{worker.log_tail()}") from None
        finally:
            if spy is not None:
                await spy.stop()
            code = await worker.stop()
            report(f"{variant}: worker stopped (exit {code})")
            if projections is not None:
                report(f"{variant}: projections stopped (exit {await projections.stop()})")
    if window is None or window[1] <= window[0]:
        raise BenchError(f"{variant}: no usable {changes_topic} records to time the run")
    enters, exits, causes, members = await membership_stats(
        settings, membership_topic, partitions, published, report)
    changes = await count_records(settings, changes_topic, partitions)
    dlq = sum([await count_records(settings, f"{prefix}.{t.value}.dlq", partitions)
               for t in (Topic.EVENTS, Topic.ENDPOINT_COMMANDS)])
    if spy is not None and spy.out.exists():
        print(f"\n# py-spy profile of the worker process ({variant}, {args.py_spy_phase} "
              "phase)")
        print(summarize(spy.out, args.profile_top))
    net = [members.get(sid, 0) for sid, _, _ in segments] if with_segments else []
    return WorkerRun(
        variant=variant, segments=len(segments) if with_segments else 0, events=n_events,
        seconds=window[1] - window[0],
        commit_seconds=(done_at - first_at) * n_events / max(n_events - first_count, 1),
        startup_seconds=window[0] - spawned, memberships=published, enters=enters, exits=exits,
        causes=dict(causes), segments_with_members=sum(1 for n in net if n > 0),
        members_median=statistics.median(net) if net else 0.0,
        members_max=max(net, default=0), changes=changes, dead_letters=dlq,
        cpu_span=cpu[0], busy=cpu[1], busiest=cpu[2], latency=latency,
    )


async def _wait_done(
    settings: Settings, worker: LodestarProcess, worker_id: str, topic: str, n_events: int,
    variant: str, spy: PySpy | None,
) -> tuple[float, float, int, tuple[float, float, list[tuple[float, int, str]]]]:
    """Poll committed offsets until the worker committed all ``n_events``."""
    cpu = MachineCpu({worker.pid: f"lodestar worker ({variant})"})
    first_at: float | None = None
    first_count = 0
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    async with admin_client(settings) as admin:
        while True:
            if not worker.alive():
                raise BenchError(f"{variant}: the worker exited:\n{worker.log_tail()}")
            now = time.time()
            count = await committed(admin, f"{worker_id}-profiles", topic)
            if count and first_at is None:
                first_at, first_count = now, count
                cpu.mark()
                if spy is not None:
                    spy.pid = worker.pid
                    await spy.start()
            if count >= n_events:
                assert first_at is not None
                report(f"{variant}: the worker committed all {count:,} events")
                return first_at, now, first_count, cpu.top(8)
            if time.monotonic() >= next_progress:
                report(f"{variant}: {count:,}/{n_events:,} events committed")
                next_progress += PROGRESS_EVERY_S
            await asyncio.sleep(POLL_S)


# --- latency ------------------------------------------------------------------------


async def measure_latency(
    settings: Settings, worker: LodestarProcess, worker_id: str, prefix: str,
    live: list[tuple[bytes, bytes, str]], partitions: int, args: argparse.Namespace,
) -> Latency:
    """Send ``live`` at ``args.rate``; latency of the 'event' membership changes."""
    events_topic = f"{prefix}.{Topic.EVENTS.value}"
    membership_topic = f"{prefix}.{Topic.SEGMENT_MEMBERSHIP.value}"
    codec = AvroCodec.default()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    later: list[float] = []  # of events sent LATER_S or more after the first send
    causes: Counter[str] = Counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=5)
    await consumer.start()
    await producer.start()
    stop_reading = asyncio.Event()
    cpu = MachineCpu({worker.pid: "lodestar worker (segments)"})

    async def read() -> None:
        while not stop_reading.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for message in records:
                    assert message.value is not None
                    record = codec.decode(Topic.SEGMENT_MEMBERSHIP, message.value)
                    causes[record["cause"]] += 1
                    sent = sent_at.get(record["event_id"] or "")
                    if record["cause"] == "event" and sent is not None:
                        latencies.append(message.timestamp / 1000 - sent)
                        if sent - started >= LATER_S:
                            later.append(latencies[-1])

    try:
        tps = [TopicPartition(membership_topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        reader = asyncio.create_task(read())
        headers = list(codec.headers(Topic.EVENTS))
        report(f"latency: sending {len(live):,} events at {args.rate:,}/s")
        cpu.mark()
        started = time.time()
        next_progress = time.monotonic() + PROGRESS_EVERY_S
        i = 0
        async with admin_client(settings) as admin:
            while i < len(live):
                now = time.time()
                due = min(len(live), int((now - started) * args.rate) + 1)
                while i < due:
                    key, value, event_id = live[i]
                    sent_at[event_id] = now
                    await producer.send(events_topic, value, key=key, headers=headers)
                    i += 1
                if time.monotonic() >= next_progress:
                    next_progress += PROGRESS_EVERY_S
                    p99 = _percentile(latencies, 99) * 1000 if latencies else float("nan")
                    report(f"latency: {i:,} sent ({i / (now - started):,.0f}/s), "
                           f"{sum(causes.values()):,} membership changes seen, "
                           f"{len(latencies):,} timed, p99 so far {p99:,.0f} ms")
                await asyncio.sleep(0.002)
            last_sent = time.time()
            await producer.flush()
            end = await end_offsets(settings, events_topic, partitions)
            lag = end - await committed(admin, f"{worker_id}-profiles", events_topic)
            report(f"latency: all {len(live):,} sent in {last_sent - started:.1f} s "
                   f"({len(live) / (last_sent - started):,.0f}/s); worker lag {lag:,} events "
                   "(committed offsets)")
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            behind = lag
            drained: float | None = None
            while worker.alive() and time.monotonic() < deadline:
                behind = end - await committed(admin, f"{worker_id}-profiles", events_topic)
                if behind <= 0:
                    drained = time.time() - last_sent
                    break
                await asyncio.sleep(POLL_S)
            if drained is None:
                report(f"latency: the worker did not catch up within {DRAIN_TIMEOUT_S:.0f} s "
                       f"of the last send; {behind:,} events still unprocessed")
            busy = cpu.top(8)
            window = await first_last_timestamps(
                settings, f"{prefix}.{Topic.ENDPOINTS.value}", partitions)
            done_after = None if window is None else window[1] - last_sent
        await asyncio.sleep(SETTLE_S)  # membership records of the last batches
        stop_reading.set()
        await reader
    finally:
        stop_reading.set()
        await producer.stop()
        await consumer.stop()
    if not latencies:
        raise BenchError(f"latency: no membership change with cause 'event' seen "
                         f"({dict(causes)})")
    return Latency(
        rate_target=args.rate, sent=len(live), send_seconds=last_sent - started,
        memberships=sum(causes.values()), causes=dict(causes), samples=len(latencies),
        p50_ms=_percentile(latencies, 50) * 1000, p95_ms=_percentile(latencies, 95) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000, max_ms=max(latencies) * 1000,
        later_p99_ms=_percentile(later, 99) * 1000 if later else None, later_samples=len(later),
        lag_at_end=lag, drain_seconds=drained, behind=max(behind, 0), done_after=done_after,
        cpu_span=busy[0],
        busy=busy[1], busiest=busy[2],
    )


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- the run ------------------------------------------------------------------------


async def _measure(
    settings: Settings, args: argparse.Namespace, workdir: Path
) -> tuple[list[WorkerRun], list[Result]]:
    cancel_on_sigterm()
    run = f"{settings.topic_prefix}.bench.{uuid.uuid4().hex[:12]}"
    partitions = args.partitions or settings.partitions
    app_id = uuid.uuid4().hex
    started = time.perf_counter()
    segments = segment_bodies(args.segments)
    catalog = build_catalog({sid: (1, parse_segment(body)) for sid, _, body in segments})
    kinds = Counter(kind for _, kind, _ in segments)
    report(f"segments: {len(segments):,} generated and validated, compiled in "
           f"{time.perf_counter() - started:.1f} s; {len(catalog.by_input)} distinct inputs; "
           + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    devices = segment_pool(args.endpoints)
    now_ms = int(time.time() * 1000)
    prefill = build_events(app_id, args.events, devices, 7, now_ms - 2 * 3_600_000, report,
                           "input")
    records = [(k, v) for k, v, _ in prefill]
    live = None
    if "segments" in args.variant and not args.skip_latency:
        live = build_events(app_id, int(args.rate * args.seconds), devices, 8,
                            now_ms - 1_800_000, report, "latency input")
    control = control_records(app_id, segments)
    runs: list[WorkerRun] = []
    try:
        for variant in args.variant:
            prefix = f"{run}.{variant}"
            await ensure_topics(settings.with_changes(topic_prefix=prefix,
                                                      partitions=partitions))
            if variant == "segments":
                await write_control(settings, f"{prefix}.{Topic.CONTROL.value}", control)
            topic = f"{prefix}.{Topic.EVENTS.value}"
            await fill(settings, topic, records, report)
            held = await count_records(settings, topic, partitions)
            if held != len(records):
                raise BenchError(f"{topic} holds {held:,} records, expected {len(records):,}")
        for variant in args.variant:
            done = await measure_worker(
                settings, run, variant, app_id, len(records), segments,
                live if variant == "segments" else None, partitions, args, workdir)
            runs.append(done)
            report(f"{done.result.name}: {done.result.events_per_s:,.0f} events/s "
                   f"({done.events:,} in {done.seconds:.1f} s; commit-based "
                   f"{commit_rate(done.events, done.commit_seconds)}), {done.memberships:,} "
                   f"membership changes, {done.dead_letters} dead letters")
            report(format_cpu(done.cpu_span, done.busy, done.busiest))
            if done.dead_letters:
                raise BenchError(f"{variant}: {done.dead_letters} records were dead-lettered")
        base: list[Result] = []
        if not args.skip_baselines:
            source = InputTopic(
                run=run, topic=f"{run}.{args.variant[0]}.{Topic.EVENTS.value}",
                events=len(records),
                payload_bytes=round(sum(len(v) for _, v in records) / len(records)),
                partitions=partitions,
            )
            base = await run_baselines(settings, source, timeout_s=args.timeout)
        return runs, base
    finally:
        await delete_run(settings, run, report)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Events/s of one `lodestar worker` with and without dynamic segments, "
        "and event-to-membership-change latency at a fixed rate (issue #4 targets: "
        f">= {TARGET_EVENTS_PER_S:,} events/s with 1,000 segments, p99 < "
        f"{TARGET_P99_MS:.0f} ms at 5,000 events/s), beside the baselines of baselines.py. "
        "Reads LODESTAR_KAFKA_BOOTSTRAP and LODESTAR_POSTGRES_DSN.",
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"prefilled events per variant, a multiple of 100 "
                        f"(default {DEFAULT_EVENTS:,})")
    parser.add_argument("--endpoints", type=int, default=DEFAULT_ENDPOINTS,
                        help=f"distinct endpoints (default {DEFAULT_ENDPOINTS:,})")
    parser.add_argument("--segments", type=int, default=DEFAULT_SEGMENTS,
                        help=f"segments of the 'segments' variant (default {DEFAULT_SEGMENTS:,})")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of every topic (default LODESTAR_PARTITIONS)")
    parser.add_argument("--variant", action="append", choices=VARIANTS,
                        help="'no-segments' or 'segments'; repeat for both (default: both)")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE,
                        help=f"events/s of the latency phase (default {DEFAULT_RATE:,})")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"length of the latency phase (default {DEFAULT_SECONDS:.0f})")
    parser.add_argument("--skip-latency", action="store_true", help="throughput only")
    parser.add_argument("--projections", choices=("worker", "separate"), default="worker",
                        help="run the PostgreSQL projections inside the worker (default, as "
                        "`lodestar worker` does) or as `lodestar projections` beside a worker "
                        "started --without-projections")
    parser.add_argument("--skip-baselines", action="store_true",
                        help="measure the worker only (for profiling)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S,
                        help=f"seconds allowed per phase (default {DEFAULT_PHASE_TIMEOUT_S:.0f})")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="sample the 'segments' worker with this py-spy binary while it "
                        "processes the prefilled events")
    parser.add_argument("--py-spy-phase", choices=("throughput", "latency"),
                        default="throughput",
                        help="sample the prefilled events (default) or the latency phase "
                        "(steady state: endpoints known, events paced at --rate)")
    parser.add_argument("--py-spy-blocking", action="store_true",
                        help="let py-spy pause the target for each sample (exact stacks)")
    parser.add_argument("--profile-top", type=int, default=25,
                        help="functions listed per profile (default 25)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temporary directory (worker logs, profiles; not data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    args.variant = list(dict.fromkeys(args.variant or list(VARIANTS)))
    if args.events <= 0 or args.events % 100 or args.endpoints < 10 or args.segments < 1 or (
        args.partitions is not None and args.partitions <= 0
    ) or args.rate <= 0 or not 0 < args.seconds <= 600:
        parser.error("--events must be a positive multiple of 100, --endpoints at least 10, "
                     "--segments, --rate and --partitions positive, --seconds in (0, 600]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = Settings.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="lodestar-bench-segments-"))
    outcome = run_measurement(
        settings, lambda: _measure(settings, args, workdir), workdir, keep_logs=args.keep_logs,
        discard=[workdir / variant for variant in VARIANTS],  # RocksDB data
    )
    if isinstance(outcome, int):
        return outcome
    runs, base = outcome
    config = {"bootstrap": settings.kafka_bootstrap, "events": args.events,
              "endpoints": args.endpoints, "segments": args.segments,
              "partitions": args.partitions or settings.partitions}
    if args.json:
        print(json.dumps({
            "config": config,
            "workers": [dataclasses.asdict(r) | {"events_per_s": r.result.events_per_s}
                        for r in runs],
            "baselines": [dataclasses.asdict(r) for r in base],
        }))
        return 0
    print(", ".join(f"{k}={v}" for k, v in config.items()))
    print(format_table([r.result for r in runs] + base, reference=base[0] if base else None))
    if base:
        for r in runs:
            print(f"{r.result.name}: {r.result.ratio_to(base[1]):.2f} of the Faust no-op agent")
    print()
    for r in runs:
        print(f"{r.result.name}: {r.result.events_per_s:,.0f} events/s"
              + (f" ({r.result.events_per_s / TARGET_EVENTS_PER_S:.0%} of the "
                 f"{TARGET_EVENTS_PER_S:,}/s target)" if r.segments else "")
              + f"; commit-based {commit_rate(r.events, r.commit_seconds)}; "
              f"first batch published "
              f"{r.startup_seconds:.1f} s after the process started; "
              f"{r.memberships:,} membership changes ({r.enters:,} ENTER, {r.exits:,} EXIT; "
              + ", ".join(f"{k} {n:,}" for k, n in sorted(r.causes.items())) + ")"
              + (f", {r.segments_with_members:,} of {r.segments:,} segments with members "
                 f"(median {r.members_median:,.0f}, max {r.members_max:,} of "
                 f"{args.endpoints:,} endpoints)" if r.segments else "")
              + f"; {r.changes:,} endpoint changes")
        print(f"  {format_cpu(r.cpu_span, r.busy, r.busiest)}".replace("\n", "\n  "))
    for r in runs:
        lat = r.latency
        if lat is None:
            continue
        print()
        print(f"latency, {r.segments:,} segments, target rate {lat.rate_target:,}/s: sent "
              f"{lat.sent:,} events in {lat.send_seconds:.1f} s = {lat.rate:,.0f}/s achieved; "
              f"{lat.memberships:,} membership changes seen ("
              + ", ".join(f"{k} {n:,}" for k, n in sorted(lat.causes.items()))
              + f"), {lat.memberships / lat.send_seconds:,.0f}/s")
        print(f"  event produced -> membership change published, {lat.samples:,} changes: "
              f"p50 {lat.p50_ms:,.0f} ms, p95 {lat.p95_ms:,.0f} ms, p99 {lat.p99_ms:,.0f} ms, "
              f"max {lat.max_ms:,.0f} ms (target p99 < {TARGET_P99_MS:.0f} ms: "
              f"{'met' if lat.p99_ms < TARGET_P99_MS else 'missed'})")
        if lat.later_p99_ms is not None:
            print(f"  p99 of the {lat.later_samples:,} changes of events sent {LATER_S:.0f} s "
                  f"or more after the first: {lat.later_p99_ms:,.0f} ms")
        print(f"  worker lag when the last event was sent: {lat.lag_at_end:,} events "
              "(committed offsets, which trail by up to one commit interval); "
              + (f"all committed {lat.drain_seconds:.1f} s after the last send"
                 if lat.drain_seconds is not None else
                 f"{lat.behind:,} still unprocessed {DRAIN_TIMEOUT_S:.0f} s after the last "
                 "send: the percentiles cover only the changes published by then, so they "
                 "are lower bounds"))
        last = ("" if lat.done_after is None
                else f" (the last {lat.done_after:+.1f} s after the last send)")
        print(f"  processed {lat.sent - lat.behind:,} events from the first send to the last "
              f"batch published{last}: {lat.processed_per_s:,.0f} events/s"
              + (" (steady-state throughput: it fell behind)" if lat.fell_behind
                 else " (it kept up: the offered rate, not a capacity)"))
        print(f"  {format_cpu(lat.cpu_span, lat.busy, lat.busiest)}".replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
