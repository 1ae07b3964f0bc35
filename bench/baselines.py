"""Throughput baselines: what Kafka clients alone reach on this machine and broker.

Every Lodestar benchmark reports its figures as ratios to these baselines,
measured in the same run on the same input, so that a figure says how far the
code is from the floor set by the client libraries rather than how fast the
machine happened to be that day.

Baselines (each reads the same pre-filled input topic with its own consumer group):

- ``aiokafka_passthrough``: an aiokafka consumer group reads every record and
  an aiokafka producer writes it to an output topic (at-least-once: offsets
  are committed only after the records consumed so far are acknowledged).
- ``faust_noop``: a Faust worker (separate process) whose agent iterates the
  input and does nothing, one event at a time or in ``stream.take`` batches.

Input records are Lodestar ``Event`` records (``schemas/event.avsc``) encoded
with fastavro in Avro single-object encoding, padded through one attribute
to ``payload_bytes`` and keyed by their UTF-8 endpoint id, exactly as
producers write ``<prefix>.events``.

Use from another benchmark::

    async with prefilled_input(settings, n_events=200_000) as source:
        mine = await my_benchmark(settings, source)
        baselines = await run_baselines(settings, source)
    print(format_table([mine, *baselines], reference=baselines[0]))

CLI: ``python bench/baselines.py [--events N] [--payload-bytes B]
[--partitions P] [--timeout S] [--json]`` (reads ``LODESTAR_KAFKA_BOOTSTRAP``
and the other settings from the environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.admin import DeleteGroupsRequest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from lodestar.settings import Settings

DEFAULT_EVENTS: Final = 200_000
DEFAULT_PAYLOAD_BYTES: Final = 300
DEFAULT_PHASE_TIMEOUT_S: Final = 300.0
DEFAULT_ENDPOINTS: Final = 10_000
PROGRESS_EVERY: Final = 50_000
TAKE_BATCH: Final = 1000
TAKE_WITHIN_S: Final = 0.1
COMMIT_INTERVAL_S: Final = 1.0
PADDING_ATTRIBUTE: Final = "bench_padding"

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
EVENT_SCHEMA_PATH: Final = REPO_ROOT / "schemas" / "event.avsc"
FAUST_WORKER_SCRIPT: Final = Path(__file__).resolve().with_name("faust_noop_worker.py")
RESULT_MARKER: Final = "BENCH_RESULT"

Progress = Callable[[str], None]
"""Receives one human-readable progress line (no trailing newline)."""


class BenchError(RuntimeError):
    """A benchmark phase failed, timed out or produced a wrong count."""


def report(line: str) -> None:
    """Default ``Progress``: the line on stderr, so ``--json`` stdout stays clean."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Result:
    """``events`` processed in ``seconds``; ``events_per_s`` is derived from the two."""

    name: str
    events: int
    seconds: float
    events_per_s: float = field(init=False)

    def __post_init__(self) -> None:
        if self.events <= 0 or self.seconds <= 0:
            raise ValueError(
                f"{self.name}: need events > 0 and seconds > 0, "
                f"got {self.events} events in {self.seconds} s"
            )
        object.__setattr__(self, "events_per_s", self.events / self.seconds)

    def ratio_to(self, baseline: Result) -> float:
        """This throughput as a fraction of ``baseline``'s (1.0 = as fast)."""
        return self.events_per_s / baseline.events_per_s


@dataclass(frozen=True, slots=True)
class InputTopic:
    """A topic holding exactly ``events`` records of ``payload_bytes`` bytes (or one less).

    ``run`` is the unique name prefix of everything the run creates (topics,
    consumer groups, Faust app ids); ``prefilled_input`` deletes it all on exit.
    """

    run: str
    topic: str
    events: int
    payload_bytes: int
    partitions: int

    def derived(self, suffix: str) -> str:
        """A fresh name for something else this run creates (``<run>.<suffix>-<hex>``).

        Unique per call, so a phase can be repeated on the same input.
        """
        return f"{self.run}.{suffix}-{uuid.uuid4().hex[:6]}"


# --- input records ----------------------------------------------------------


@cache
def _event_schema() -> tuple[Any, bytes]:
    """The parsed Event schema and its single-object header.

    The header is the Avro specification's (``C3 01`` + the little-endian
    CRC-64-AVRO fingerprint of the Parsing Canonical Form), the framing
    ``lodestar.contracts.wire`` defines; it is built here from fastavro alone so
    the baselines do not depend on the rest of the package.
    """
    raw = json.loads(EVENT_SCHEMA_PATH.read_text())
    canonical = to_parsing_canonical_form(raw)
    return parse_schema(raw), b"\xc3\x01" + bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _encode(record: dict[str, Any]) -> bytes:
    """``record`` in Avro single-object encoding (header + binary body)."""
    schema, head = _event_schema()
    buf = io.BytesIO()
    buf.write(head)
    schemaless_writer(buf, schema, record)
    return buf.getvalue()


_EVENT_TYPES: Final = ("_session.start", "pageView", "_monetization.purchase", "_session.stop")
_BASE_MS: Final = 1_764_000_000_000


def _event(i: int, endpoint: int, padding: str) -> dict[str, Any]:
    """The ``i``-th synthetic event, by ``endpoint``.

    Every string but ``event_type`` and ``padding`` has a fixed width, and the
    timestamps keep one varint length, so the size depends on those two only.
    """
    event_type = _EVENT_TYPES[i % len(_EVENT_TYPES)]
    ts = _BASE_MS + i
    purchase = event_type == "_monetization.purchase"
    return {
        "event_id": str(uuid.UUID(int=i)),
        "app_id": "bench-app",
        "endpoint_id": f"ep-{endpoint:08d}",
        "event_type": event_type,
        "timestamp": ts,
        "arrival_timestamp": ts + 120,
        "attributes": {"url": "/pricing", PADDING_ATTRIBUTE: padding},
        "metrics": {"_item_price": 4.99, "_quantity": 1.0} if purchase else {},
        "session": {"id": str(uuid.UUID(int=endpoint)), "start_timestamp": ts - 60_000,
                    "stop_timestamp": None, "duration_ms": None},
        "client": {"app_package_name": "com.example.app", "app_title": "Example",
                   "app_version_code": "42", "sdk_name": "aws-amplify/js",
                   "client_sdk_version": "6.0.0"},
        "user_id": f"user-{endpoint:08d}",
    }


@cache
def _padding_length(event_type_index: int, payload_bytes: int) -> int:
    """Padding that brings events of one type to ``payload_bytes``.

    One byte under when the padding's length prefix grows by a byte exactly
    there. Raises ``ValueError`` when even an empty padding is too big.
    """
    unpadded = len(_encode(_event(event_type_index, 0, "")))
    if unpadded > payload_bytes:
        raise ValueError(f"payload_bytes must be at least {unpadded} for these events")
    length = payload_bytes - unpadded
    while length > 0 and len(_encode(_event(event_type_index, 0, "x" * length))) > payload_bytes:
        length -= 1
    return length


def check_payload_bytes(payload_bytes: int) -> None:
    """Raise ``ValueError`` unless every event type can be padded to ``payload_bytes``."""
    for index in range(len(_EVENT_TYPES)):
        _padding_length(index, payload_bytes)


def event_records(
    n_events: int, payload_bytes: int, endpoints: int = DEFAULT_ENDPOINTS, seed: int = 7
) -> Iterator[tuple[bytes, bytes]]:
    """``n_events`` (key, value) pairs: Avro Events keyed by endpoint id.

    Endpoints are drawn uniformly from ``endpoints`` with a seeded RNG, so two
    calls with the same arguments yield the same records.
    """
    rng = random.Random(seed)
    for i in range(n_events):
        endpoint = rng.randrange(endpoints)
        pad = "x" * _padding_length(i % len(_EVENT_TYPES), payload_bytes)
        record = _event(i, endpoint, pad)
        yield record["endpoint_id"].encode(), _encode(record)


# --- admin ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(settings: Settings, names: Sequence[str], partitions: int) -> None:
    """Create ``names`` with ``partitions`` partitions (they must not exist yet)."""
    async with admin_client(settings) as admin:
        await admin.create_topics(
            [NewTopic(n, partitions, settings.replication) for n in names]
        )


async def delete_run(settings: Settings, run: str, progress: Progress = report) -> None:
    """Delete every topic and consumer group whose name starts with ``run``.

    Best effort: failures are reported through ``progress``, never raised, so
    cleanup cannot hide the error of the phase that failed.
    """
    try:
        async with admin_client(settings) as admin:
            topics = [t for t in await admin.list_topics() if t.startswith(run)]
            if topics:
                await admin.delete_topics(topics)
            groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(run)]
            kept = [g for g in groups if not await _delete_group(admin, g)]
    except Exception as exc:  # cleanup reports, it does not mask
        progress(f"cleanup of {run} failed: {exc!r}")
        return
    progress(f"cleanup: deleted {len(topics)} topics and {len(groups) - len(kept)} "
             f"consumer groups of {run}" + (f"; could not delete {kept}" if kept else ""))


async def _delete_group(admin: AIOKafkaAdminClient, group: str) -> bool:
    """Delete an empty consumer group at its coordinator; True when it is gone.

    aiokafka 0.14's admin client has no ``delete_consumer_groups``, so this
    sends the DeleteGroups request itself through the client's private
    ``_send_request``. A group that still has members is refused by the broker.
    """
    coordinator = await admin.find_coordinator(group)
    response = await admin._send_request(DeleteGroupsRequest([group]), node_id=coordinator)
    return all(error_code == 0 for _, error_code in response.results)


# --- input topic ------------------------------------------------------------


async def prefill(
    settings: Settings,
    topic: str,
    n_events: int,
    payload_bytes: int,
    progress: Progress = report,
) -> None:
    """Write ``n_events`` records of ``event_records`` to ``topic``, all acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for i, (key, value) in enumerate(event_records(n_events, payload_bytes), 1):
            await producer.send(topic, value, key=key)
            if i % PROGRESS_EVERY == 0:
                progress(f"prefill: {i:,}/{n_events:,} records")
        await producer.flush()
    finally:
        await producer.stop()
    elapsed = time.perf_counter() - started
    progress(f"prefill: {n_events:,} records in {elapsed:.1f} s (not measured)")


@contextlib.asynccontextmanager
async def prefilled_input(
    settings: Settings,
    n_events: int = DEFAULT_EVENTS,
    payload_bytes: int = DEFAULT_PAYLOAD_BYTES,
    partitions: int | None = None,
    *,
    timeout_s: float = DEFAULT_PHASE_TIMEOUT_S,
    progress: Progress = report,
) -> AsyncIterator[InputTopic]:
    """A fresh input topic holding exactly ``n_events`` records, for one run.

    Names start with ``<topic_prefix>.bench.<uuid>``; on exit every topic and
    consumer group with that prefix is deleted (see ``delete_run``). Raises
    ``BenchError`` if the topic does not then hold exactly ``n_events`` records.
    ``partitions`` defaults to ``settings.partitions``. Raises ``ValueError``
    before touching Kafka when ``payload_bytes`` is too small for an Event.
    """
    check_payload_bytes(payload_bytes)
    run = f"{settings.topic_prefix}.bench.{uuid.uuid4().hex[:12]}"
    source = InputTopic(
        run=run,
        topic=f"{run}.input",
        events=n_events,
        payload_bytes=payload_bytes,
        partitions=partitions or settings.partitions,
    )
    try:
        await create_topics(settings, [source.topic], source.partitions)
        async with _phase("prefill", timeout_s):
            await prefill(settings, source.topic, n_events, payload_bytes, progress)
        written = await count_records(settings, source.topic, source.partitions)
        if written != n_events:
            raise BenchError(f"prefill wrote {written:,} records, expected {n_events:,}")
        yield source
    finally:
        await delete_run(settings, run, progress)


@contextlib.asynccontextmanager
async def _phase(name: str, timeout_s: float) -> AsyncIterator[None]:
    """Bound a phase in time; a timeout becomes a ``BenchError`` naming the phase."""
    try:
        async with asyncio.timeout(timeout_s):
            yield
    except TimeoutError:
        raise BenchError(f"{name} did not finish within {timeout_s:.0f} s") from None


async def count_records(settings: Settings, topic: str, partitions: int) -> int:
    """Records currently in ``topic`` (sum over partitions of end - beginning offset)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return sum(end[tp] - begin[tp] for tp in tps)


# --- (a) aiokafka pass-through ------------------------------------------------


async def aiokafka_passthrough(
    settings: Settings,
    source: InputTopic,
    *,
    timeout_s: float = DEFAULT_PHASE_TIMEOUT_S,
    progress: Progress = report,
) -> Result:
    """Consume all of ``source`` and produce every record to a new output topic.

    Consumer group ``<run>.passthrough-<hex>`` (``getmany`` batches, manual
    commits), output topic ``<run>.passthrough-<hex>.out``, one producer
    (``acks=all``, sends not awaited one by one). Every
    ``COMMIT_INTERVAL_S`` and at the end the producer is flushed, then the
    consumed offsets are committed. Time runs from the first batch returned by
    ``getmany`` to the acknowledgement of the last output record. Raises
    ``BenchError`` unless the output topic then holds exactly ``source.events``.
    """
    name = source.derived("passthrough")
    output = f"{name}.out"
    await create_topics(settings, [output], source.partitions)
    consumer = AIOKafkaConsumer(
        source.topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        async with _phase("aiokafka pass-through", timeout_s):
            seconds = await _pump(consumer, producer, output, source.events, progress)
    finally:
        await producer.stop()
        await consumer.stop()
    delivered = await count_records(settings, output, source.partitions)
    if delivered != source.events:
        raise BenchError(f"pass-through wrote {delivered:,} records, expected {source.events:,}")
    return Result("aiokafka pass-through", source.events, seconds)


async def _pump(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    output: str,
    n_events: int,
    progress: Progress,
) -> float:
    """Move ``n_events`` records from ``consumer`` to ``output``; seconds taken."""
    consumed = 0
    started: float | None = None
    next_commit = 0.0
    next_progress = PROGRESS_EVERY
    while consumed < n_events:
        batches = await consumer.getmany(timeout_ms=1000)
        if started is None and batches:
            started = time.perf_counter()
            next_commit = started + COMMIT_INTERVAL_S
        for records in batches.values():
            for record in records:
                await producer.send(output, record.value, key=record.key)
            consumed += len(records)
        if consumed >= next_progress:
            progress(f"aiokafka pass-through: {consumed:,}/{n_events:,} events")
            next_progress = (consumed // PROGRESS_EVERY + 1) * PROGRESS_EVERY
        if consumed < n_events and time.perf_counter() >= next_commit:
            await _flush_and_commit(consumer, producer)
            next_commit = time.perf_counter() + COMMIT_INTERVAL_S
    await producer.flush()
    finished = time.perf_counter()
    await consumer.commit()
    if consumed != n_events or started is None:
        raise BenchError(f"pass-through consumed {consumed:,} records, expected {n_events:,}")
    return finished - started


async def _flush_and_commit(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
    """Wait for every pending send, then commit what was consumed (at-least-once)."""
    await producer.flush()
    await consumer.commit()


# --- (b) Faust no-op agent ------------------------------------------------------


async def faust_noop(
    settings: Settings,
    source: InputTopic,
    *,
    take: int | None = None,
    within_s: float = TAKE_WITHIN_S,
    timeout_s: float = DEFAULT_PHASE_TIMEOUT_S,
    progress: Progress = report,
) -> Result:
    """Run a Faust worker whose agent iterates ``source`` and does nothing.

    ``take=None`` iterates one event at a time; ``take=k`` iterates
    ``stream.take(k, within=within_s)`` batches. The worker is a subprocess
    (``bench/faust_noop_worker.py``: Faust owns its event loop) with app id
    ``<run>.faust-noop[-take<k>]-<hex>``, memory store and no web server. Time runs
    from the first event (or batch) the agent sees to the ``source.events``-th
    event; worker start-up and rebalancing are not measured. Raises
    ``BenchError`` when the worker exits without a result or the phase times out.
    """
    suffix = "faust-noop" if take is None else f"faust-noop-take{take}"
    config = {
        "app_id": source.derived(suffix),
        "broker": _faust_broker(settings.kafka_bootstrap),
        "topic": source.topic,
        "partitions": source.partitions,
        "events": source.events,
        "take": take,
        "within_s": within_s,
        "progress_every": PROGRESS_EVERY,
    }
    name = _faust_name(take, within_s)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(FAUST_WORKER_SCRIPT), json.dumps(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    tail: list[str] = []
    relay = asyncio.create_task(_relay_stderr(proc.stderr, name, progress, tail))
    try:
        async with _phase(name, timeout_s):
            seconds = await _read_result(proc.stdout)
            await proc.wait()
            await relay
    finally:
        await _stop_process(proc)
        relay.cancel()
    if seconds is None:
        detail = "\n".join(tail[-20:])
        raise BenchError(f"{name}: worker exited with {proc.returncode}, no result\n{detail}")
    return Result(name, source.events, seconds)


async def _stop_process(proc: asyncio.subprocess.Process, grace_s: float = 10.0) -> None:
    """Stop ``proc`` if it still runs: SIGTERM (the worker leaves its group), then SIGKILL."""
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _faust_name(take: int | None, within_s: float) -> str:
    """Display name of a Faust no-op variant."""
    if take is None:
        return "faust no-op agent"
    return f"faust no-op agent, take({take}, within={within_s:g})"


def _faust_broker(bootstrap: str) -> str:
    """``host1:9092,host2:9092`` → Faust's ``kafka://host1:9092;kafka://host2:9092``."""
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


async def _read_result(stdout: asyncio.StreamReader) -> float | None:
    """Seconds from the worker's ``BENCH_RESULT`` line; None if stdout ends without one."""
    async for raw in stdout:
        _, marker, payload = raw.decode(errors="replace").partition(RESULT_MARKER)
        if marker:  # Faust's terminal spinner may write control codes before it
            return float(json.loads(payload)["seconds"])
    return None


async def _relay_stderr(
    stream: asyncio.StreamReader, name: str, progress: Progress, tail: list[str]
) -> None:
    """Pass ``progress …`` lines on; keep the other lines in ``tail`` for errors."""
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if line.startswith("progress "):
            progress(f"{name}: {line.removeprefix('progress ')}")
        elif line:
            tail.append(line)


# --- all baselines, output ----------------------------------------------------


async def run_baselines(
    settings: Settings,
    source: InputTopic,
    *,
    timeout_s: float = DEFAULT_PHASE_TIMEOUT_S,
    progress: Progress = report,
) -> list[Result]:
    """All baselines on ``source``, in order: aiokafka pass-through, Faust
    one-at-a-time, Faust ``take(TAKE_BATCH, within=TAKE_WITHIN_S)``."""
    return [
        await aiokafka_passthrough(settings, source, timeout_s=timeout_s, progress=progress),
        await faust_noop(settings, source, timeout_s=timeout_s, progress=progress),
        await faust_noop(
            settings, source, take=TAKE_BATCH, timeout_s=timeout_s, progress=progress
        ),
    ]


def format_table(results: Sequence[Result], reference: Result | None = None) -> str:
    """A plain-text table of ``results``; with ``reference``, a ratio column too."""
    width = max(len(r.name) for r in results)
    head = f"{'benchmark':<{width}}  {'events':>9}  {'seconds':>8}  {'events/s':>9}"
    if reference is not None:
        head += f"  {'ratio':>6}"
    lines = [head, "-" * len(head)]
    for r in results:
        line = f"{r.name:<{width}}  {r.events:>9,}  {r.seconds:>8.2f}  {r.events_per_s:>9,.0f}"
        if reference is not None:
            line += f"  {r.ratio_to(reference):>6.2f}"
        lines.append(line)
    if reference is not None:
        lines.append(f"(ratio = events/s ÷ {reference.name})")
    return "\n".join(lines)


# --- CLI ------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The CLI options; exits with a usage error on non-positive counts."""
    parser = argparse.ArgumentParser(
        description="Measure the throughput baselines (aiokafka pass-through, Faust no-op "
        "agents) on the broker of LODESTAR_KAFKA_BOOTSTRAP.",
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"records in the input topic (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--payload-bytes", type=int, default=DEFAULT_PAYLOAD_BYTES,
                        help=f"bytes per record value (default {DEFAULT_PAYLOAD_BYTES})")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of the input topic (default LODESTAR_PARTITIONS)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S,
                        help=f"seconds allowed per phase (default {DEFAULT_PHASE_TIMEOUT_S:.0f})")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.events <= 0 or (args.partitions is not None and args.partitions <= 0):
        parser.error("--events and --partitions must be positive")
    return args


async def _measure(
    settings: Settings, args: argparse.Namespace
) -> tuple[InputTopic, list[Result]]:
    """Fill one input topic, run every baseline on it, clean up."""
    async with prefilled_input(
        settings, args.events, args.payload_bytes, args.partitions, timeout_s=args.timeout
    ) as source:
        return source, await run_baselines(settings, source, timeout_s=args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; exit status 0 on success, 1 when a phase failed."""
    args = _parse_args(argv)
    settings = Settings.from_env()
    try:
        source, results = asyncio.run(_measure(settings, args))
    except (BenchError, ValueError) as exc:
        report(f"FAILED: {exc}")
        return 1
    except KafkaConnectionError as exc:
        report(f"FAILED: cannot reach Kafka at {settings.kafka_bootstrap} "
               f"(set LODESTAR_KAFKA_BOOTSTRAP): {exc}")
        return 1
    config = {
        "bootstrap": settings.kafka_bootstrap,
        "events": source.events,
        "payload_bytes": source.payload_bytes,
        "partitions": source.partitions,
    }
    if args.json:
        print(json.dumps({"config": config, "results": [dataclasses.asdict(r) for r in results]}))
    else:
        print(", ".join(f"{k}={v}" for k, v in config.items()))
        print(format_table(results, reference=results[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
