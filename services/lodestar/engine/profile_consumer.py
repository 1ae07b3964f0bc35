"""Feed the profile agent: one aiokafka consumer of ``events`` and ``endpoint-commands``,
hosted in the worker as a ``mode.Service``.

The consumer group is ``<worker id>-profiles``; the range assignor gives each
worker the same partition numbers of both topics (they are co-partitioned by
endpoint id). The loop takes up to ``BATCH_MAX`` records per poll and hands them
to ``ProfileAgent.process``, which publishes the batch's outputs and waits for
their acks. About every ``FLUSH_SECONDS`` (sooner when ``FLUSH_ENTRIES`` entries
are waiting) it begins a flush of the changed entries (changelog, then store;
``engine.pending_entries``), advanced by ``FLUSH_STEP`` entries between batches,
and when it completes commits the offsets processed before it began: at least
once, and the profile fold skips inputs it already applied
(``EndpointState.applied_offsets``).

A rebalance waits for the batch in hand (one lock) and flushes and commits
before the partitions go; partitions that left are closed and forgotten; new
ones are restored from the changelog before any of their records is processed.
A timer sends every owned partition a TICK about once a second (the engine's
clock for due re-checks and backfills).

Why not a Faust agent: Faust's per-event machinery cost ≈ 60 µs per event on this
workload, a third of the worker's budget at 5,000 events/s; a raw consumer
costs ≈ 16 µs (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError
from mode import Service

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher
from lodestar.engine.profile_agent import ProfileAgent, changelog_topic
from lodestar.engine.profile_store import ProfileStore, restore
from lodestar.engine.segment_catalogs import SegmentCatalogs
from lodestar.gc_tuning import collect_now, take_over_collector
from lodestar.settings import Settings
from lodestar.topics_admin import ensure_topics

log = logging.getLogger(__name__)

BATCH_MAX = 5000
POLL_MS = 50
FLUSH_SECONDS = 5.0
FLUSH_ENTRIES = 20_000
FLUSH_STEP = 50
BEHIND_RECORDS = 500
COLLECT_SECONDS = 60.0
"""A poll returning at least this many records means the loop is catching up."""
STATS_SECONDS = 30.0
TICK_SECONDS = 1.0
STOP_TIMEOUT = 30.0
PRODUCER_BATCH_BYTES = 512 * 1024


class LoopStats:
    """Counts and times of the loop's steps and of the collector's full collections,
    logged every ``STATS_SECONDS``."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.steps: dict[str, list[float]] = {}
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` hook: time collections, count what they freed."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.add(f"gc of generation {info.get('generation')}",
                     time.perf_counter() - self._gc_started, int(info.get("collected", 0)))

    def add(self, step: str, seconds: float, items: int) -> None:
        held = self.steps.setdefault(step, [0, 0.0, 0, 0.0])
        held[0] += 1
        held[1] += seconds
        held[2] += items
        held[3] = max(held[3], seconds)
        if time.monotonic() - self.since >= STATS_SECONDS:
            self.report()

    def report(self) -> None:
        span = time.monotonic() - self.since
        log.info("profile consumer, last %.0f s: %s", span, "; ".join(
            f"{step} {int(n)}x, {int(items) / span:,.0f} items/s, mean {int(items) / n:,.0f} "
            f"items in {seconds / n * 1000:.1f} ms, max {longest * 1000:.0f} ms"
            for step, (n, seconds, items, longest) in self.steps.items()))
        self.since = time.monotonic()
        self.steps.clear()


def profile_group(settings: Settings) -> str:
    """The profile consumer's group id: ``<worker id>-profiles``."""
    return f"{settings.worker_id}-profiles"


class ProfileConsumer:
    """The loop, its rebalance handling and its tick timer (see the module doc)."""

    def __init__(self, settings: Settings, codec: AvroCodec, agent: ProfileAgent,
                 store: ProfileStore, catalogs: SegmentCatalogs) -> None:
        self.settings = settings
        self.codec = codec
        self.agent = agent
        self.store = store
        self.catalogs = catalogs
        self.topics = [settings.topic(Topic.EVENTS), settings.topic(Topic.ENDPOINT_COMMANDS)]
        self.changelog = changelog_topic(settings)
        self.owned: set[int] = set()
        self.lock = asyncio.Lock()
        self.stopping = asyncio.Event()
        self._flushing = 0
        """Entries the flush in progress took."""
        self.uncommitted: dict[TopicPartition, int] = {}
        """Next offsets processed since the last flush began."""
        self.committing: dict[TopicPartition, int] = {}
        """Next offsets the flush in progress covers, committed when it completes."""
        self.flushed_at = time.monotonic()
        self.collected_at = time.monotonic()
        self.stats = LoopStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._restorer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create the changelog topic when missing, start the clients."""
        settings = self.settings
        await ensure_topics(settings, [self.changelog], compacted={self.changelog})
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True,
            max_batch_size=PRODUCER_BATCH_BYTES,
        )
        await self._producer.start()
        producer = self._producer

        async def send(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
            await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))

        self.agent.producer = producer
        self.agent.dead_letters = DeadLetterPublisher(settings, self.codec, send, "engine")
        self._restorer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                          enable_auto_commit=False)
        await self._restorer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=profile_group(settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=BATCH_MAX,
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_poll_interval_ms=900_000,  # a partition's restore happens between polls
        )
        await self._consumer.start()

    async def run(self) -> None:
        """Consume until ``stop()`` (after the segment catalogs are loaded)."""
        assert self._consumer is not None
        await self.catalogs.ready.wait()
        take_over_collector()  # the start-up heap is in place: collections when we say
        gc.callbacks.append(self.stats.on_gc)
        self._consumer.subscribe(self.topics, listener=_Rebalance(self))
        ticker = asyncio.ensure_future(self._tick_owned())
        try:
            while not self.stopping.is_set():
                wait = 0 if self.agent.pending.in_progress else POLL_MS
                polled = await self._consumer.getmany(timeout_ms=wait, max_records=BATCH_MAX)
                async with self.lock:
                    taken = await self._process(polled) if polled else 0
                    await self._flush_some(behind=taken >= BEHIND_RECORDS)
                self._collect_garbage(behind=taken >= BEHIND_RECORDS)
            async with self.lock:
                await self.flush()
        finally:
            ticker.cancel()
            gc.callbacks.remove(self.stats.on_gc)

    async def _process(self, polled: dict[TopicPartition, list[Any]]) -> int:
        """Process the owned partitions' records of ``polled``; how many there were."""
        assert self._consumer is not None
        mine = {tp: records for tp, records in polled.items()
                if tp.partition in self.owned and records}
        if not mine:
            return 0
        batch = [record for records in mine.values() for record in records]
        started = time.perf_counter()
        await self.agent.process(batch)
        self.stats.add("process", time.perf_counter() - started, len(batch))
        for tp, records in mine.items():
            self.uncommitted[tp] = records[-1].offset + 1
        return len(batch)

    async def _flush_some(self, behind: bool = False) -> None:
        """Between batches: start a flush when one is due, or advance the one in
        progress by ``FLUSH_STEP`` entries; commit when it completes (hold ``lock``).

        While the loop is ``behind`` (its last poll was a full one) flushing waits,
        for up to another ``FLUSH_SECONDS``, so that a burst of input is caught up
        first; too many pending entries flush at once."""
        pending = self.agent.pending
        since = time.monotonic() - self.flushed_at
        if behind and since < 2 * FLUSH_SECONDS and len(pending) < FLUSH_ENTRIES:
            return
        if not pending.in_progress:
            if not pending.unflushed and not self.uncommitted:
                return
            if since < FLUSH_SECONDS and len(pending.unflushed) < FLUSH_ENTRIES:
                return
            self._begin_flush()
        started = time.perf_counter()
        done = await self.agent.flush_step(FLUSH_STEP)
        self.stats.add("flush step", time.perf_counter() - started, 1)
        if done:
            await self._commit()

    def _collect_garbage(self, behind: bool) -> None:
        """About every ``COLLECT_SECONDS`` (up to twice that while catching up): one full
        collection (``gc_tuning.collect_now``; automatic ones are off)."""
        since = time.monotonic() - self.collected_at
        if since < COLLECT_SECONDS or (behind and since < 2 * COLLECT_SECONDS):
            return
        collect_now()
        self.collected_at = time.monotonic()

    def _begin_flush(self) -> None:
        self._flushing = self.agent.begin_flush()
        self.flushed_at = time.monotonic()
        self.committing, self.uncommitted = self.uncommitted, {}

    async def flush(self) -> None:
        """Flush every pending entry and commit every offset processed (hold ``lock``)."""
        while self.agent.pending.in_progress:
            if await self.agent.flush_step(FLUSH_STEP):
                await self._commit()
        self._begin_flush()
        while not await self.agent.flush_step(FLUSH_STEP):
            pass
        await self._commit()

    async def _commit(self) -> None:
        """Commit the offsets the completed flush covers (and count the flush: from its
        beginning to its end, between batches)."""
        assert self._consumer is not None
        self.stats.add("flush", time.monotonic() - self.flushed_at, self._flushing)
        offsets = {tp: offset for tp, offset in self.committing.items()
                   if tp.partition in self.owned}
        self.committing = {}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:  # the group moved on; the new owner replays them
            log.warning("profile consumer: commit failed after a rebalance: %s", exc)

    async def _tick_owned(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now_ms = int(time.time() * 1000)
            for partition in sorted(self.owned):
                await self.agent.send_tick(partition, now_ms)

    async def assigned(self, partitions: set[int]) -> None:
        """The group's new assignment: forget partitions that left, restore new ones."""
        async with self.lock:
            await self.flush()
            lost = self.owned - partitions
            if lost:
                self.agent.forget(lost)
                self.agent.generation += 1
                for partition in lost:
                    self.store.close(partition)
            new = partitions - self.owned
            if new:
                assert self._restorer is not None
                await restore(self.store, self._restorer, self.changelog, new)
            self.owned = set(partitions)
            log.info("profile partitions now %s (lost %s, new %s)", sorted(self.owned),
                     sorted(lost), sorted(new))

    def stop(self) -> None:
        self.stopping.set()

    async def close(self) -> None:
        for client in (self._consumer, self._restorer, self._producer):
            if client is not None:
                await client.stop()
        self.store.close_all()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: ProfileConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.lock:  # after the batch in hand
            await self.owner.flush()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        topic = self.owner.topics[0]
        await self.owner.assigned({tp.partition for tp in assigned if tp.topic == topic})


def profile_consumer_service(loop: ProfileConsumer) -> type[Service]:
    """A Service class running ``loop`` inside the Faust worker."""

    class ProfileConsumerService(Service):
        _task: asyncio.Task[Any]
        _failure: asyncio.Future[Any]

        async def on_start(self) -> None:
            await loop.start()
            self._task = asyncio.ensure_future(loop.run())
            self._task.add_done_callback(self._report_failure)

        def _report_failure(self, task: asyncio.Task[Any]) -> None:
            if not task.cancelled() and task.exception() is not None:
                log.error("the profile consumer stopped with an error",
                          exc_info=task.exception())
                self._failure = asyncio.ensure_future(
                    self.crash(task.exception()))  # type: ignore[arg-type]

        async def on_stop(self) -> None:
            loop.stop()
            try:
                await asyncio.wait_for(self._task, timeout=STOP_TIMEOUT)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("the profile consumer did not stop in time")
            except Exception:  # already logged by _report_failure
                pass
            await loop.close()

    return ProfileConsumerService
