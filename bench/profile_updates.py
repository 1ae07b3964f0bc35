"""Profile updates: events/s one ``lodestar worker`` folds into endpoint profiles, beside the
baselines.

What runs (issue #3, target: >= 10,000 events/s per worker process):

1. ``--events`` realistic ``Event`` records (``amplify_events``: Amplify-shaped
   PutEvents bodies for ``--endpoints`` endpoints, run through the API's own
   parser ``lodestar.core.put_events``, so each session has ``_session.start``,
   custom events with attributes and metrics, purchases, ``_session.stop``, and
   one batch item in two carries ``endpoint_request`` JSON, an endpoint upsert)
   are encoded with ``AvroCodec.default().encode(Topic.EVENTS, …)``, keyed by
   endpoint id, and written to ``<prefix>.events`` (``--partitions``, default 8)
   before any worker starts. Filling is not timed.
2. For each ``--variant``, a fresh database (migrated) and one
   ``python -m lodestar worker`` subprocess (``--without-analytics`` for the
   ``profile`` variant; the ``analytics`` variant also runs the ClickHouse sink,
   embedded chdb, in the same process) with its own topic prefix
   ``<run>.<variant>`` (its own copy of the events, so one variant's outputs
   never feed the other) and ``LODESTAR_WORKER_ID=<run>.<variant>.engine``.
3. Completion: the worker's profile consumer group (``<worker id>-profiles``)
   has committed offsets equal to the end offsets of every events partition,
   i.e. every event was processed and its state flushed (the consumer commits
   only after a flush). This count is exact. ``lodestar.endpoints`` change records are
   not: the profile agent publishes one only when an endpoint field changes
   (creation, upsert), not per event.
4. Timing: the consumer commits after each flush of its state (about every
   5 s), too coarse to time a run, so time is taken from ``<prefix>.endpoints``,
   the EndpointChange records every batch publishes for the endpoints it created
   or upserted (every second event carries an endpoint): from the first record's
   timestamp (the first batch was folded) to the last record's (one of the last
   batches), as the Faust no-op baseline times from the first event to the last
   one. Start-up and rebalancing are not timed. A commit-based figure (from the
   first commit seen to the moment all offsets were committed, polled every
   0.2 s) is printed beside it as a cross-check; it is lower by the commit lag.
5. The baselines of ``baselines.py`` on the first variant's events topic (the
   same records), in the same run; ratios to the aiokafka pass-through.

At the end every topic and consumer group of the run, the databases and the
temporary data directories (RocksDB, chdb) are deleted, also after a failure.
``--py-spy PATH`` samples the worker process while it processes (profiled
runs are slower; their figures are for finding costs, not for the table).

Example: ``.venv/bin/python bench/profile_updates.py --variant profile --variant analytics``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from amplify_events import BodyGenerator, endpoint_pool, event_records
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
from profiling import MachineCpu, PySpy, format_cpu, summarize

DEFAULT_EVENTS: Final = 200_000
DEFAULT_ENDPOINTS: Final = 10_000
TARGET_EVENTS_PER_S: Final = 10_000
POLL_S: Final = 0.2
PROGRESS_EVERY_S: Final = 5.0
VARIANTS: Final = ("profile", "analytics")

Records = list[tuple[bytes, bytes]]


@dataclasses.dataclass
class WorkerRun:
    """What one worker variant did with the events."""

    variant: str
    events: int
    seconds: float  # first to last EndpointChange published
    commit_seconds: float  # first commit seen to all committed (cross-check, coarser)
    startup_seconds: float  # process start to first EndpointChange published
    analytics_lag_seconds: float | None  # analytics sink done after the profile agent
    changes: int  # EndpointChange records published
    commands: int  # EndpointCommand records (user-attribute fan-out) published
    dead_letters: int
    cpu_span: float
    busy: float
    busiest: list[tuple[float, int, str]]

    @property
    def result(self) -> Result:
        what = "profile agent only" if self.variant == "profile" else "with analytics sink"
        return Result(f"lodestar worker ({what})", self.events, self.seconds)


# --- input --------------------------------------------------------------------------


def build_records(n_events: int, endpoints: int, progress: Progress) -> Records:
    """``n_events`` encoded Event records (key, value), as the API would have written them."""
    generator = BodyGenerator(endpoint_pool(endpoints))
    requests = n_events // generator.events_per_request
    codec = AvroCodec.default()
    app_id = uuid.uuid4().hex
    started = time.perf_counter()
    records: Records = []
    arrival = int(time.time() * 1000)
    for key, record in event_records(generator, app_id, requests, arrival):
        records.append((key, codec.encode(Topic.EVENTS, record)))
        if len(records) % 50_000 == 0:
            progress(f"input: {len(records):,}/{n_events:,} records encoded")
    upserts = sum(1 for i in range(min(requests, 100)) for item in
                  generator.body(i)["BatchItem"].values() if item["Endpoint"])
    progress(f"input: {len(records):,} records for {endpoints:,} endpoints, app {app_id}, "
             f"{sum(len(v) for _, v in records) / len(records):.0f} bytes average, "
             f"{upserts / min(requests, 100):.0f} of 10 batch items with an endpoint upsert; "
             f"built in {time.perf_counter() - started:.1f} s (not measured)")
    return records


async def fill(settings: Settings, topic: str, records: Records, progress: Progress) -> None:
    """Write ``records`` to ``topic`` (acks=all), with the events topic's schema header."""
    headers = AvroCodec.default().headers(Topic.EVENTS)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key, headers=list(headers))
        await producer.flush()
    finally:
        await producer.stop()
    progress(f"prefill: {len(records):,} records into {topic} in "
             f"{time.perf_counter() - started:.1f} s (not measured)")


# --- Kafka reads --------------------------------------------------------------------


def commit_rate(events: int, seconds: float) -> str:
    """The commit-based cross-check as printed: ``n/a`` when one commit covered the run."""
    return f"{events / seconds:,.0f}/s" if seconds > 0 else "n/a (one commit covered the run)"


async def committed(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    """Sum of ``group``'s committed offsets on ``topic`` (0 where nothing is committed)."""
    offsets = await admin.list_consumer_group_offsets(group)
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


async def first_last_timestamps(
    settings: Settings, topic: str, partitions: int
) -> tuple[float, float] | None:
    """(earliest, latest) record timestamps of ``topic`` in seconds; None if it is empty.

    A partition's records come from one producer in send order, so its first
    and last records carry its earliest and latest CreateTime.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        stamps: list[int] = []
        for tp in tps:
            if end[tp] <= begin[tp]:
                continue
            for offset in (begin[tp], end[tp] - 1):
                consumer.seek(tp, offset)
                batch = await consumer.getmany(tp, timeout_ms=5000, max_records=1)
                stamps += [r.timestamp for r in batch.get(tp, [])]
    finally:
        await consumer.stop()
    return (min(stamps) / 1000, max(stamps) / 1000) if stamps else None


# --- one worker ---------------------------------------------------------------------


async def measure_worker(
    settings: Settings, run: str, variant: str, n_events: int, partitions: int,
    args: argparse.Namespace, workdir: Path,
) -> WorkerRun:
    """Start a worker on ``<run>.<variant>.events`` and wait until it processed all of it."""
    prefix = f"{run}.{variant}"
    worker_id = f"{prefix}.engine"
    events_topic = f"{prefix}.{Topic.EVENTS.value}"
    analytics = variant == "analytics"
    data_dir = workdir / variant
    async with fresh_database(settings.postgres_dsn) as dsn:
        port = free_port()
        env = lodestar_env(
            kafka_bootstrap=settings.kafka_bootstrap, postgres_dsn=dsn, topic_prefix=prefix,
            data_dir=data_dir, partitions=partitions,
            extra={"LODESTAR_WORKER_ID": worker_id, "LODESTAR_WORKER_WEB_PORT": str(port),
                   "LODESTAR_WORKER_URL": f"http://127.0.0.1:{port}"},
        )
        cli = ["worker"] if analytics else ["worker", "--without-analytics"]
        worker = LodestarProcess(f"worker ({variant})", cli, env, workdir / f"{variant}.log")
        spy = None
        if args.py_spy:
            spy = PySpy(args.py_spy, 0, workdir / f"py-spy-{variant}.txt",
                        blocking=args.py_spy_blocking)
        spawned = time.time()
        await worker.start()
        report(f"{variant}: worker pid {worker.pid}, id {worker_id}")
        try:
            async with asyncio.timeout(args.timeout):
                polled = await _wait_done(settings, worker, worker_id, events_topic, n_events,
                                          analytics, variant, spy)
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
    changes_topic = f"{prefix}.{Topic.ENDPOINTS.value}"
    window = await first_last_timestamps(settings, changes_topic, partitions)
    if window is None or window[1] <= window[0]:
        raise BenchError(f"{variant}: no usable {changes_topic} records to time the run")
    changes = await count_records(settings, changes_topic, partitions)
    commands = await count_records(settings, f"{prefix}.{Topic.ENDPOINT_COMMANDS.value}",
                                   partitions)
    dlq = sum([await count_records(settings, f"{prefix}.{t.value}.dlq", partitions)
               for t in (Topic.EVENTS, Topic.ENDPOINT_COMMANDS)])
    if spy is not None and spy.out.exists():
        print(f"\n# py-spy profile of the worker process ({variant})")
        print(summarize(spy.out, args.profile_top))
    first_commit_at, all_committed_at, first_commit, analytics_done_at, cpu = polled
    return WorkerRun(
        variant=variant, events=n_events, seconds=window[1] - window[0],
        commit_seconds=(all_committed_at - first_commit_at) * n_events
        / max(n_events - first_commit, 1),
        startup_seconds=window[0] - spawned,
        analytics_lag_seconds=None if analytics_done_at is None
        else analytics_done_at - all_committed_at,
        changes=changes, commands=commands, dead_letters=dlq,
        cpu_span=cpu[0], busy=cpu[1], busiest=cpu[2],
    )


async def _wait_done(
    settings: Settings, worker: LodestarProcess, worker_id: str, topic: str, n_events: int,
    analytics: bool, variant: str, spy: PySpy | None,
) -> tuple[float, float, int, float | None, tuple[float, float, list[tuple[float, int, str]]]]:
    """Poll committed offsets until the profile agent (and the sink) committed everything.

    Returns (first commit seen at, all committed at, events committed at the
    first commit, analytics sink all committed at or None, (seconds, machine busy
    share, busiest processes) from the first commit to the last).
    """
    cpu = MachineCpu({worker.pid: f"lodestar worker ({variant})"})
    first_at: float | None = None
    first_count = 0
    done_at: float | None = None
    sink_done_at: float | None = None
    busy: tuple[float, float, list[tuple[float, int, str]]] = (0.0, 0.0, [])
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
            if done_at is None and count >= n_events:
                done_at = now
                busy = cpu.top(8)
                report(f"{variant}: profile agent committed all {count:,} events")
            if analytics and sink_done_at is None:
                sunk = await committed(admin, f"{worker_id}-analytics", topic)
                if sunk >= n_events:
                    sink_done_at = now
                    report(f"{variant}: analytics sink committed all {sunk:,} events")
            if done_at is not None and (not analytics or sink_done_at is not None):
                break
            if time.monotonic() >= next_progress:
                report(f"{variant}: {count:,}/{n_events:,} events committed")
                next_progress += PROGRESS_EVERY_S
            await asyncio.sleep(POLL_S)
    assert first_at is not None and done_at is not None
    return first_at, done_at, first_count, sink_done_at, busy


# --- the run ------------------------------------------------------------------------


async def _measure(
    settings: Settings, args: argparse.Namespace, workdir: Path
) -> tuple[list[WorkerRun], list[Result]]:
    cancel_on_sigterm()
    run = f"{settings.topic_prefix}.bench.{uuid.uuid4().hex[:12]}"
    partitions = args.partitions or settings.partitions
    records = build_records(args.events, args.endpoints, report)
    runs: list[WorkerRun] = []
    try:
        for variant in args.variant:
            prefix = f"{run}.{variant}"
            await ensure_topics(settings.with_changes(topic_prefix=prefix,
                                                      partitions=partitions))
            topic = f"{prefix}.{Topic.EVENTS.value}"
            await fill(settings, topic, records, report)
            held = await count_records(settings, topic, partitions)
            if held != len(records):
                raise BenchError(f"{topic} holds {held:,} records, expected {len(records):,}")
        for variant in args.variant:
            done = await measure_worker(settings, run, variant, len(records), partitions,
                                        args, workdir)
            runs.append(done)
            report(f"{done.result.name}: {done.result.events_per_s:,.0f} events/s "
                   f"({done.events:,} in {done.seconds:.1f} s; commit-based "
                   f"{commit_rate(done.events, done.commit_seconds)}), {done.changes:,} endpoint "
                   f"changes, {done.commands:,} endpoint commands, {done.dead_letters} dead "
                   "letters")
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
        description="Events/s one `lodestar worker` folds into endpoint profiles (issue #3 "
        f"target: {TARGET_EVENTS_PER_S:,}/s), beside the baselines of baselines.py, on the "
        "same pre-filled events. Reads LODESTAR_KAFKA_BOOTSTRAP and LODESTAR_POSTGRES_DSN.",
    )
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS,
                        help=f"events to process, a multiple of 100 (default {DEFAULT_EVENTS:,})")
    parser.add_argument("--endpoints", type=int, default=DEFAULT_ENDPOINTS,
                        help=f"distinct endpoints (default {DEFAULT_ENDPOINTS:,})")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of every topic (default LODESTAR_PARTITIONS)")
    parser.add_argument("--variant", action="append", choices=VARIANTS,
                        help="'profile': `lodestar worker --without-analytics`; 'analytics': "
                        "`lodestar worker` with the ClickHouse sink. Repeat for both "
                        "(default: profile)")
    parser.add_argument("--skip-baselines", action="store_true",
                        help="measure the worker only (for profiling)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PHASE_TIMEOUT_S,
                        help=f"seconds allowed per phase (default {DEFAULT_PHASE_TIMEOUT_S:.0f})")
    parser.add_argument("--py-spy", metavar="PATH",
                        help="sample the worker with this py-spy binary while it processes")
    parser.add_argument("--py-spy-blocking", action="store_true",
                        help="let py-spy pause the target for each sample (exact stacks)")
    parser.add_argument("--profile-top", type=int, default=25,
                        help="functions listed per profile (default 25)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temporary directory (worker logs, profiles; not data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    args.variant = list(dict.fromkeys(args.variant or ["profile"]))
    if args.events <= 0 or args.events % 100 or args.endpoints < 10 or (
        args.partitions is not None and args.partitions <= 0
    ):
        parser.error("--events must be a positive multiple of 100, --endpoints at least 10, "
                     "--partitions positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = Settings.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="lodestar-bench-profile-"))
    outcome = run_measurement(
        settings, lambda: _measure(settings, args, workdir), workdir, keep_logs=args.keep_logs,
        discard=[workdir / variant for variant in VARIANTS],  # RocksDB and chdb data
    )
    if isinstance(outcome, int):
        return outcome
    runs, base = outcome
    config = {"bootstrap": settings.kafka_bootstrap, "events": args.events,
              "endpoints": args.endpoints, "partitions": args.partitions or settings.partitions}
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
        noop = base[1]
        for r in runs:
            print(f"{r.result.name}: {r.result.ratio_to(noop):.2f} of the Faust no-op agent")
    print()
    for r in runs:
        lag = ("" if r.analytics_lag_seconds is None
               else f", analytics sink done {r.analytics_lag_seconds:+.1f} s after it")
        print(f"{r.result.name}: {r.result.events_per_s:,.0f} events/s "
              f"({r.result.events_per_s / TARGET_EVENTS_PER_S:.0%} of the "
              f"{TARGET_EVENTS_PER_S:,}/s target); commit-based "
              f"{commit_rate(r.events, r.commit_seconds)}; first batch published "
              f"{r.startup_seconds:.1f} s after the process started; "
              f"{r.changes:,} endpoint changes published{lag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
