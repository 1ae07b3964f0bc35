"""The sender process of one HTTP channel (``lodestar sender sms|push|voice|custom``).

``ChannelSender(settings, plugin)`` consumes ``<prefix>.send.<channel>``
(consumer group ``<prefix>-sender-<channel>``) and works a polled batch at a
time:

1. decode every record (undecodable, or on the wrong channel → the topic's
   DLQ with the reason);
2. deliver through a sliding window of ``concurrency`` sends: message ids are
   claimed in PostgreSQL (one transaction per group, ``channels.sent_messages``)
   only when window slots are free for them, **before** anything reaches a
   provider; an id that already has a row is decided by
   ``core.email_sending.claim_verdict``: republish its stored records, leave it
   to a live claimant, or finish it as sent with an unknown outcome — never send
   it twice. A message holds its slot from its claim until its final state is
   stored, so a crash can leave at most ``concurrency`` messages with an unknown
   outcome. The window runs across polled batches (``_Pipeline``): the next batch
   is polled and decoded, the next messages rendered, and claims, stores,
   publishing and commits run while others are with the provider;
3. ``plugin.prepare`` (pure: opt-out / INACTIVE screening, template
   rendering, routing) ends a message with its records or makes it
   deliverable; deliverable addresses on the suppression list end as rejected
   (looked up for a prepared chunk at once, before the claims; a hard bounce this
   sender found meanwhile is caught at the claim);
4. each send goes through the
   per-provider token bucket (``core.rate_limit``), retrying RETRY outcomes
   with backoff and jitter within the budget (``core.retry_policy``,
   honouring Retry-After); a message whose budget runs out also goes to the
   DLQ (RETRIES_EXHAUSTED);
5. store finished messages' final states in rounds, publish their delivery records on
   ``<prefix>.deliveries`` and, for dead addresses (DEAD_ADDRESS: FCM
   UNREGISTERED, APNs 410 …), a DEACTIVATE command making the endpoint
   INACTIVE — or, for channels that keep endpoints (email hard bounces), an
   entry on the suppression list, made before any further claim; once every
   message of a batch is stored and Kafka acknowledged its records, commit its
   offsets (batches in order).

A crash anywhere before the commit replays the batch: claimed ids are never
sent again, finished ones republish the same records (same event ids).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from lodestar.channels.sent_messages import LOCK_CLASS, Finish, SentMessages, stored_records
from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.errors import ContractError
from lodestar.control.suppression import SuppressionRepository
from lodestar.control.templates import TemplatesRepository
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import ClaimVerdict, SendState, claim_verdict
from lodestar.core.endpoint_commands import deactivate_command, upsert_command
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind
from lodestar.core.rate_limit import TokenBucket
from lodestar.core.retry_policy import (
    Action,
    Classification,
    RetryBudget,
    Verdict,
    decide,
)
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.gc_tuning import tune_collector
from lodestar.settings import Settings

log = logging.getLogger(__name__)

P = TypeVar("P")


@dataclass(frozen=True)
class Deliverable(Generic[P]):
    """A message ready for the provider: the transport's payload and the address that
    the suppression list is checked against."""

    payload: P
    address: str


@dataclass(frozen=True)
class Ended:
    """A message that ends before the provider (skipped, not rendered, no route)."""

    records: list[Record]
    state: SendState = SendState.FAILED
    kind: str = "skipped"


class ChannelPlugin(Protocol[P]):
    """What the runner needs from one channel: pure decisions plus the transport.

    Optional attribute ``message_price_millicents: float | None``: the price of one
    accepted message (price table, channels priced per message); the runner adds it as
    the ``price_in_millicents_usd`` metric of the message's first record unless the
    plugin priced it itself (SMS prices per part and country)."""

    @property
    def channel(self) -> Channel: ...

    @property
    def topic(self) -> Topic: ...

    @property
    def template_type(self) -> str | None:
        """Template type to look up for ``request.template`` (``SMS``, ``PUSH`` …)."""

    @property
    def deactivates_dead_addresses(self) -> bool:
        """True: a DEAD_ADDRESS makes the endpoint INACTIVE (push tokens, phone numbers);
        False: the address goes on the suppression list instead (email hard bounces)."""

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int) -> Deliverable[P] | Ended: ...

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]: ...

    async def send(self, payload: P) -> ProviderOutcome: ...

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: P, outcome: ProviderOutcome, attempts: int, sent_ms: int,
                        now_ms: int) -> list[Record]: ...

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]: ...

    async def aclose(self) -> None: ...


class SuppressionList(Protocol):
    """The per-app suppression list as the senders use it."""

    async def suppressed(self, app_id: str, channel: str, addresses: Sequence[str]
                         ) -> set[str]: ...

    async def add_bounce(self, app_id: str, channel: str, address: str,
                         message_id: str) -> None: ...

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ChannelSenderConfig:
    batch_size: int = 500
    poll_ms: int = 200
    concurrency: int = 64
    rate_per_s: float = 0.0
    """Provider rate limit (messages a second); 0 means none."""
    burst: int = 100
    max_attempts: int = 5
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    retry_deadline_s: float = 120.0
    group_id: str | None = None
    suppression_list: bool = True
    """Check (and, for email hard bounces, fill) the PostgreSQL suppression list when no
    other ``suppression`` is given."""
    freeze_gc: bool = False
    """When the sender starts consuming: collect, then move every object alive (modules,
    schemas, compiled templates, clients) out of the cyclic garbage collector's reach
    (``gc.freeze``) and raise its thresholds (``gc_tuning.tune_collector``), so its
    collections stop rescanning them and run less often (about 10 % of the push
    sender's CPU went to the collector, 3 % still with the heap frozen). For sender
    processes (``lodestar sender``, bench/senders.py); off by default because it is
    process-wide (in a test run it would keep every object alive then)."""


@dataclass
class ChannelSenderStats:
    requests: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    suppressed: int = 0
    republished: int = 0
    left: int = 0
    attempts: int = 0
    retries: int = 0
    dead_addresses: int = 0
    batches: int = 0
    first_batch_s: float | None = None
    """``time.monotonic()`` when the first batch arrived (for throughput figures)."""
    last_batch_s: float | None = None
    """``time.monotonic()`` when the latest batch was committed."""
    by_type: dict[str, int] = field(default_factory=dict)


def classification(outcome: ProviderOutcome) -> Classification:
    """The retry policy's reading of a provider outcome."""
    if outcome.kind is ProviderOutcomeKind.ACCEPTED:
        return Classification(Verdict.SUCCESS, outcome.message)
    if outcome.kind is ProviderOutcomeKind.RETRY:
        return Classification(Verdict.RETRY, outcome.message)
    return Classification(Verdict.PERMANENT, outcome.message,
                          recipient_fault=outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS)


@dataclass
class _Item:
    request: dict[str, Any]
    rec: Any
    subject: DeliverySubject
    records: list[Record] = field(default_factory=list)
    finish: Finish | None = None
    dead_address: bool = False
    updated_address: str | None = None
    """The provider's replacement for the address sent (``ProviderOutcome``): the
    endpoint gets an UPSERT with it."""
    exhausted: str | None = None
    address: str | None = None
    failure: str | None = None
    """A plugin raised for this message: it ends FAILED and goes to the DLQ
    (PROCESSING_ERROR) with this text; the sender keeps running."""
    batch: _Batch | None = None
    prepared: Any = None
    """What ``plugin.prepare`` made of it (a ``Deliverable`` or ``Ended``), before its claim."""
    suppressed: bool = False
    """Its address was on the suppression list when it was prepared."""
    screened_at: int = 0
    """The round of the suppression-list lookup that screened it (``ChannelSender._screens``)."""


@dataclass
class _Batch:
    """One polled batch: committed once all of its items are stored and their records
    acknowledged, and every older batch is committed."""

    offsets: dict[Any, int]
    records: int
    remaining: int
    acks: list[asyncio.Future[Any]] = field(default_factory=list)


MAX_PENDING_BATCHES = 2
"""Polled batches not yet committed at most (a retry's backoff holds its batch's commit)."""
MAX_CLAIMS = 2
"""Claims in progress at most (each holds a pooled connection)."""
MAX_FLUSHES = 2
"""Store-and-publish rounds in progress at most (each holds a pooled connection)."""


class ChannelSender(Generic[P]):
    """Consumes one channel's send topic until ``stop()``; see the module doc."""

    def __init__(self, settings: Settings, plugin: ChannelPlugin[P],
                 config: ChannelSenderConfig | None = None, *, codec: AvroCodec | None = None,
                 suppression: SuppressionList | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self.plugin = plugin
        self.config = config or ChannelSenderConfig()
        self.codec = codec or AvroCodec.default()
        self.name = plugin.channel.value.lower()
        self.instance_id = f"{self.name}-{uuid.uuid4().hex}"
        self.stats = ChannelSenderStats()
        self._suppression = suppression
        self._sleep = sleep
        self._stopping = asyncio.Event()
        self._bucket = TokenBucket(self.config.rate_per_s, max(1, self.config.burst))
        self._bucket_lock = asyncio.Lock()
        self._failures: list[BaseException] = []
        self._budget = RetryBudget(self.config.max_attempts, self.config.retry_deadline_s)
        self._screens = 0
        """Suppression-list lookups started so far (each screens a prepared chunk)."""
        self._bounced: dict[tuple[str, str], float] = {}
        """(app id, address) of hard bounces found by this sender (channels that keep
        endpoints) → the lookup round after which the suppression list holds them (inf
        until it does): an item screened in that round or before is checked here."""

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, started: asyncio.Event | None = None) -> None:
        settings = self.settings
        topic = settings.topic(self.plugin.topic)
        pool: asyncpg.Pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1,
                                                       max_size=6, reset=_keep_session)
        lock_conn: asyncpg.Connection | None = None
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=self.config.group_id or f"{settings.topic_prefix}-sender-{self.name}",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.config.batch_size,
        )
        try:
            lock_conn = await asyncpg.connect(settings.postgres_dsn)
            await lock_conn.execute("SELECT pg_advisory_lock($1, hashtext($2))",
                                    LOCK_CLASS, self.instance_id)
            await producer.start()

            async def send_dlq(dlq: str, key: bytes | None, value: bytes, headers: Any) -> None:
                await producer.send_and_wait(dlq, value=value, key=key, headers=list(headers))

            dead_letters = DeadLetterPublisher(settings, self.codec, send_dlq,
                                               f"sender-{self.name}")
            store = SentMessages(pool, self.instance_id, self.plugin.channel.value)
            if self._suppression is None and self.config.suppression_list:
                self._suppression = SuppressionRepository(pool)
            templates = TemplatesRepository(pool)
            await consumer.start()
            consumer.subscribe([topic])
            log.info("%s sender %s consuming %s", self.name, self.instance_id, topic)
            if self.config.freeze_gc:
                tune_collector()
            if started is not None:
                started.set()
            await _Pipeline(self, consumer, store, templates, producer, dead_letters).run()
        finally:
            await consumer.stop()
            await producer.stop()
            await self.plugin.aclose()
            if lock_conn is not None:
                await lock_conn.close()
            await pool.close()

    # -- steps of the pipeline ---------------------------------------------------------

    async def _prepare_chunk(self, items: list[_Item], templates: TemplatesRepository,
                             template_cache: dict[tuple[str, str | None],
                                                  tuple[Any, str | None]]) -> None:
        """Render and screen ``items`` (pure work and reads, no claim) into
        ``item.prepared``."""
        for item in items:
            template, error = await self._template(item.request, templates, template_cache)
            try:
                item.prepared = self.plugin.prepare(item.request, template, error, _now_ms())
            except Exception as exc:  # a bug or a request the plugin cannot read
                log.exception("message %s: prepare failed", item.request["message_id"])
                item.failure = f"prepare: {type(exc).__name__}: {exc}"
                item.prepared = Ended([], SendState.FAILED, "failed")
        await self._screen(items)

    async def _screen(self, items: list[_Item]) -> None:
        """Look the deliverable addresses of ``items`` up on the suppression list (one query
        per app), ahead of their claims: a claim then holds its slot for no extra round
        trip. What this sender lists itself later is caught at the claim
        (``_screen_suppressed``)."""
        if self._suppression is None:
            return
        by_app: dict[str, list[_Item]] = {}
        for item in items:
            if isinstance(item.prepared, Deliverable):
                by_app.setdefault(item.request["app_id"], []).append(item)
        if not by_app:
            return
        self._screens += 1
        screen_round = self._screens
        for app_id, group in by_app.items():
            found = await self._suppression.suppressed(
                app_id, self.plugin.channel.value, [i.prepared.address for i in group])
            for item in group:
                item.screened_at = screen_round
                item.suppressed = item.prepared.address in found

    async def _claim_chunk(self, items: list[_Item], store: SentMessages
                           ) -> list[tuple[_Item, Deliverable[P]]]:
        """Claim ``items`` (at most ``concurrency``) in one transaction, right before they
        are sent; what is left to deliver. Items that end here carry their records and
        final state (already claimed elsewhere, skipped, not rendered, suppressed)."""
        rows = await store.claim_many(
            [(i.request["message_id"], i.request["app_id"]) for i in items])
        deliverable: list[tuple[_Item, Deliverable[P]]] = []
        for item in items:
            row = rows.get(item.request["message_id"])
            if row is not None:
                await self._already_claimed(item, row, store)
                continue
            outcome = item.prepared
            if isinstance(outcome, Ended):
                item.records = outcome.records
                item.finish = Finish(item.request["message_id"], outcome.state,
                                     outcome.records, outcome_kind=outcome.kind.upper())
                if outcome.kind == "skipped":
                    self.stats.skipped += 1
                else:
                    self.stats.failed += 1
                continue
            deliverable.append((item, outcome))
        return self._screen_suppressed(deliverable)

    async def _decode(self, records: Sequence[Any],
                      dead_letters: DeadLetterPublisher) -> list[_Item]:
        items: list[_Item] = []
        for rec in records:
            try:
                request = self.codec.decode(self.plugin.topic, rec.value)
            except ContractError as exc:
                await dead_letters.publish(self.plugin.topic, SourceRecord.of(rec),
                                           DeadLetter(DlqReason.DECODE_ERROR, str(exc)))
                continue
            if request["channel"] != self.plugin.channel.value:
                await dead_letters.publish(
                    self.plugin.topic, SourceRecord.of(rec),
                    DeadLetter(DlqReason.VALIDATION_ERROR,
                               f"a {request['channel']} request on the "
                               f"{self.plugin.channel.value} send topic"))
                continue
            self.stats.requests += 1
            items.append(_Item(request, rec, DeliverySubject.from_send_request(request)))
        return items

    async def _already_claimed(self, item: _Item, row: asyncpg.Record,
                               store: SentMessages) -> None:
        message_id = item.request["message_id"]
        alive = False
        if row["state"] == "CLAIMED" and row["claimed_by"] != self.instance_id:
            alive = await store.claimant_alive(row["claimed_by"])
        verdict = claim_verdict(claimed_now=False, state=row["state"],
                                claimed_by=row["claimed_by"], me=self.instance_id,
                                claimant_alive=alive)
        if verdict is ClaimVerdict.REPUBLISH:
            self.stats.republished += 1
            item.records = stored_records(row)
        elif verdict is ClaimVerdict.LEAVE:
            self.stats.left += 1
            log.warning("message %s is being sent by %s; leaving it", message_id,
                        row["claimed_by"])
        else:
            records = self.plugin.unknown_records(item.subject, _now_ms())
            if await store.finish_unclaimed(message_id, records, row["claimed_by"]):
                log.warning("message %s was claimed by %s, which stopped mid-send: not sent "
                            "again (outcome unknown)", message_id, row["claimed_by"])
                item.records = records
            else:  # finished meanwhile by someone else: republish what it stored
                fresh = await store.claim_many([(message_id, item.request["app_id"])])
                if message_id in fresh and fresh[message_id]["state"] != "CLAIMED":
                    item.records = stored_records(fresh[message_id])

    async def _template(self, request: Mapping[str, Any], templates: TemplatesRepository,
                        cache: dict[tuple[str, str | None], tuple[Any, str | None]]
                        ) -> tuple[Any, str | None]:
        ref = request.get("template")
        kind = self.plugin.template_type
        if not ref or kind is None:
            return None, None
        key = (ref["name"], ref.get("version"))
        if key in cache:
            return cache[key]
        version: int | None = None
        answer: tuple[Any, str | None]
        if ref.get("version") is not None:
            try:
                version = int(ref["version"])
            except ValueError:
                answer = (None, f"template {ref['name']}: version {ref['version']!r} is not "
                          "a number")
                cache[key] = answer
                return answer
        found = await templates.get(kind, ref["name"], version)
        if found is None:
            which = "the active version" if version is None else f"version {version}"
            answer = (None, f"{kind} template {ref['name']!r} ({which}) does not exist")
        else:
            answer = (found.definition, None)
        cache[key] = answer
        return answer

    def _screen_suppressed(self, deliverable: list[tuple[_Item, Deliverable[P]]]
                           ) -> list[tuple[_Item, Deliverable[P]]]:
        """End the claimed items whose address was suppressed when they were prepared, or
        that this sender found dead since (``_bounced``); the rest stay deliverable."""
        if self._suppression is None or not deliverable:
            return deliverable
        bounced = self._bounced
        keep = []
        for item, d in deliverable:
            listed = bounced.get((item.request["app_id"], d.address)) if bounced else None
            if item.suppressed or (listed is not None and item.screened_at <= listed):
                item.records = self.plugin.suppressed_records(item.subject, _now_ms())
                item.finish = Finish(item.request["message_id"], SendState.FAILED,
                                     item.records, outcome_kind="SUPPRESSED")
                self.stats.suppressed += 1
            else:
                keep.append((item, d))
        return keep

    async def _wait_for_token(self) -> None:
        if self._bucket.unlimited:
            return
        async with self._bucket_lock:
            self._bucket, wait = self._bucket.take(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)

    async def _deliver(self, item: _Item, d: Deliverable[P]) -> None:
        message_id = item.request["message_id"]
        sent_ms = _now_ms()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.stats.attempts += 1
            if not self._bucket.unlimited:
                await self._wait_for_token()
            try:
                outcome = await self.plugin.send(d.payload)
            except Exception as exc:  # a transport bug: never crash the sender for it
                log.exception("message %s: send raised", message_id)
                item.failure = f"send: {type(exc).__name__}: {exc}"
                outcome = ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                                          f"sender error: {type(exc).__name__}")
            decision = decide(classification(outcome), attempt,
                              time.monotonic() - started, self._budget,
                              base_s=self.config.retry_base_s, cap_s=self.config.retry_cap_s,
                              retry_after_s=outcome.retry_after_s, rand=random.random())
            if decision.action is not Action.RETRY:
                break
            self.stats.retries += 1
            log.info("message %s: attempt %d: %s; retrying in %.2fs", message_id, attempt,
                     decision.detail, decision.delay_s)
            await self._sleep(decision.delay_s)
        records = self.plugin.outcome_records(item.request, item.subject, d.payload, outcome,
                                              attempt, sent_ms, _now_ms())
        price = getattr(self.plugin, "message_price_millicents", None)
        if outcome.accepted and price is not None and records:
            records[0]["metrics"].setdefault("price_in_millicents_usd", float(price))
        item.records = records
        item.finish = Finish(message_id, SendState.SENT if outcome.accepted else SendState.FAILED,
                             records, attempts=attempt, outcome_kind=outcome.kind.value,
                             status_code=outcome.status_code, status_message=outcome.message,
                             provider_message_id=outcome.provider_message_id,
                             stage=outcome.stage)
        if outcome.accepted:
            self.stats.sent += 1
            item.updated_address = outcome.updated_address
            return
        self.stats.failed += 1
        if outcome.kind is ProviderOutcomeKind.DEAD_ADDRESS:
            item.dead_address = True
            self.stats.dead_addresses += 1
        elif outcome.transient:
            item.exhausted = f"{decision.detail} ({decision.reason})"

    async def _publish(self, items: Sequence[_Item], producer: AIOKafkaProducer,
                       dead_letters: DeadLetterPublisher) -> list[asyncio.Future[Any]]:
        """Hand every record of ``items`` to the producer; the futures of their acks."""
        deliveries = self.settings.topic(Topic.DELIVERIES)
        commands = self.settings.topic(Topic.ENDPOINT_COMMANDS)
        futures: list[asyncio.Future[Any]] = []
        for item in items:
            key = (item.request.get("endpoint_id") or item.request["message_id"]).encode()
            for record in item.records:
                self.stats.by_type[record["event_type"]] = (
                    self.stats.by_type.get(record["event_type"], 0) + 1)
                futures.append(await producer.send(
                    deliveries, value=self.codec.encode(Topic.DELIVERIES, record), key=key))
            endpoint_id = item.request.get("endpoint_id")
            if item.dead_address and endpoint_id and self.plugin.deactivates_dead_addresses:
                command = deactivate_command(
                    item.request["app_id"], endpoint_id,
                    f"{self.plugin.channel.value} provider: address is no longer valid",
                    f"dead-address-{item.request['message_id']}", _now_ms())
                futures.append(await producer.send(
                    commands, value=self.codec.encode(Topic.ENDPOINT_COMMANDS, command),
                    key=endpoint_id.encode(),
                    headers=self.codec.headers(Topic.ENDPOINT_COMMANDS)))
            if item.updated_address and endpoint_id:
                command = upsert_command(
                    item.request["app_id"], endpoint_id, {"Address": item.updated_address},
                    f"updated-address-{item.request['message_id']}", _now_ms())
                futures.append(await producer.send(
                    commands, value=self.codec.encode(Topic.ENDPOINT_COMMANDS, command),
                    key=endpoint_id.encode(),
                    headers=self.codec.headers(Topic.ENDPOINT_COMMANDS)))
            if item.failure is not None:
                await dead_letters.publish(self.plugin.topic, SourceRecord.of(item.rec),
                                           DeadLetter(DlqReason.PROCESSING_ERROR, item.failure))
            if item.exhausted is not None:
                await dead_letters.publish(self.plugin.topic, SourceRecord.of(item.rec),
                                           DeadLetter(DlqReason.RETRIES_EXHAUSTED,
                                                      item.exhausted))
        return futures


class _Pipeline(Generic[P]):
    """One run of a sender: a sliding window of ``concurrency`` messages across polled
    batches (see ``ChannelSender``'s module doc).

    The loop polls ahead (at most ``MAX_PENDING_BATCHES`` uncommitted batches, about one
    batch of requests queued) and wakes whenever a send, claim, flush, commit or poll
    finishes. A slot is taken when a message's claim starts and given back once its
    final state is stored, so at most ``concurrency`` messages are claimed and not
    stored at any time: what a crash can leave unknown. Claims (in groups of at least a
    quarter of the window, at most ``MAX_CLAIMS`` at once), stores-and-publishes (each
    of everything finished since the last one started, at most ``MAX_FLUSHES`` at once)
    and commits (oldest batch first, once all of its records are acknowledged) run
    beside the sends instead of between them. A message id is claimed only while no
    earlier message with the same id is claimed and unstored, so a repeated id finds the
    stored row and republishes; for channels that keep endpoints, no claim starts while
    a finished hard bounce is not yet on the suppression list."""

    def __init__(self, sender: ChannelSender[P], consumer: AIOKafkaConsumer,
                 store: SentMessages, templates: TemplatesRepository,
                 producer: AIOKafkaProducer, dead_letters: DeadLetterPublisher) -> None:
        self.sender = sender
        self.consumer = consumer
        self.store = store
        self.templates = templates
        self.producer = producer
        self.dead_letters = dead_letters
        self.window = max(1, sender.config.concurrency)
        self.keeps_endpoints = not sender.plugin.deactivates_dead_addresses
        self.queue: collections.deque[_Item] = collections.deque()
        self.ready: collections.deque[_Item] = collections.deque()
        self.preparing: asyncio.Task[None] | None = None
        self.batches: collections.deque[_Batch] = collections.deque()
        self.open = 0
        self.open_ids: set[str] = set()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.claims: set[asyncio.Task[None]] = set()
        self.done: list[_Item] = []
        self.flushes: set[asyncio.Task[None]] = set()
        self.bounces = 0
        """Finished hard bounces not yet on the suppression list (channels that keep
        endpoints): no claim starts meanwhile, so a later message to the address is
        screened out, as when stores and claims took turns."""
        self.committing: asyncio.Task[None] | None = None
        self.fetch: asyncio.Task[dict[Any, list[Any]]] | None = None
        self.cache: dict[tuple[str, str | None], tuple[Any, str | None]] = {}
        self.wake = asyncio.Event()

    def _wake(self, _: object = None) -> None:
        self.wake.set()

    def _background(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._wake)
        return task

    def _idle(self) -> bool:
        return not (self.queue or self.ready or self.preparing or self.batches or self.open
                    or self.done or self.claims or self.flushes or self.committing)

    async def run(self) -> None:
        sender = self.sender
        try:
            while True:
                if sender._failures:
                    raise sender._failures.pop(0)
                self._reap()
                stopping = sender._stopping.is_set()
                if self.fetch is not None and self.fetch.done():
                    polled = self.fetch.result()
                    self.fetch = None
                    if polled:
                        await self._add(polled)
                if stopping and self.fetch is not None:
                    self.fetch.cancel()
                    self.fetch = None
                if (not stopping and self.fetch is None
                        and len(self.batches) < MAX_PENDING_BATCHES
                        and len(self.queue) + len(self.ready) < sender.config.batch_size):
                    self.fetch = self._background(self.consumer.getmany(
                        timeout_ms=sender.config.poll_ms, max_records=sender.config.batch_size))
                self._prepare()
                self._claim()
                self._flush()
                self._commit()
                if stopping and self._idle():
                    return
                await self.wake.wait()
                self.wake.clear()
        finally:
            for task in (*self.in_flight, *self.claims, *self.flushes, self.preparing,
                         self.committing, self.fetch):
                if task is not None and not task.done():
                    task.cancel()

    def _reap(self) -> None:
        """Raise what a finished background task raised; forget finished ones."""
        for task in [t for t in self.claims if t.done()]:
            self.claims.discard(task)
            task.result()
        for task in [t for t in self.flushes if t.done()]:
            self.flushes.discard(task)
            task.result()
        if self.preparing is not None and self.preparing.done():
            task, self.preparing = self.preparing, None
            task.result()
        if self.committing is not None and self.committing.done():
            task, self.committing = self.committing, None
            task.result()

    async def _add(self, polled: Mapping[Any, list[Any]]) -> None:
        """Decode a polled batch onto the queue (the template cache is refreshed per batch)."""
        sender = self.sender
        records = [rec for recs in polled.values() for rec in recs]
        if not records:
            return
        if sender.stats.first_batch_s is None:
            sender.stats.first_batch_s = time.monotonic()
        items = await sender._decode(records, self.dead_letters)
        batch = _Batch({tp: recs[-1].offset + 1 for tp, recs in polled.items() if recs},
                       len(records), len(items))
        for item in items:
            item.batch = batch
        self.cache = {}
        self.batches.append(batch)
        self.queue.extend(items)

    def _prepare(self) -> None:
        """Render up to a window of messages ahead of the claims (pure work and reads,
        outside the window: a slot is taken only for the claim)."""
        if self.preparing is None and self.queue and len(self.ready) < self.window:
            take = [self.queue.popleft()
                    for _ in range(min(len(self.queue), self.window - len(self.ready)))]
            self.preparing = self._background(self._prepare_items(take))

    async def _prepare_items(self, take: list[_Item]) -> None:
        await self.sender._prepare_chunk(take, self.templates, self.cache)
        self.ready.extend(take)

    def _claim(self) -> None:
        """Start claims for the prepared head of the queue while slots are free for them."""
        queue = self.ready
        if self.bounces:
            return
        while queue and len(self.claims) < MAX_CLAIMS:
            free = self.window - self.open
            if (queue[0].request["message_id"] in self.open_ids
                    or free < min(len(queue), max(1, self.window // 4))):
                return
            take: list[_Item] = []
            while (queue and len(take) < free
                   and queue[0].request["message_id"] not in self.open_ids):
                item = queue.popleft()
                self.open_ids.add(item.request["message_id"])
                take.append(item)
            self.open += len(take)
            self.claims.add(self._background(self._claim_and_send(take)))

    async def _claim_and_send(self, take: list[_Item]) -> None:
        """Claim and start sending ``take``; items that end here are done."""
        deliverable = await self.sender._claim_chunk(take, self.store)
        sending = {id(item) for item, _ in deliverable}
        self.done.extend(i for i in take if id(i) not in sending)
        for item, d in deliverable:
            self._start(item, d)

    def _start(self, item: _Item, d: Deliverable[P]) -> None:
        item.address = d.address
        task = asyncio.ensure_future(self.sender._deliver(item, d))
        self.in_flight.add(task)

        def finished(t: asyncio.Task[None]) -> None:
            self.in_flight.discard(t)
            self.wake.set()
            if t.cancelled():
                return
            failure = t.exception()
            if failure is not None:
                self.sender._failures.append(failure)  # raised by the loop
                return
            if item.dead_address and self.keeps_endpoints:
                self.bounces += 1
                if item.address is not None:
                    self.sender._bounced[(item.request["app_id"], item.address)] = math.inf
            self.done.append(item)

        task.add_done_callback(finished)

    def _flush(self) -> None:
        if self.done and (not self.flushes or (len(self.flushes) < MAX_FLUSHES
                                               and len(self.done) >= self.window // 4)):
            items = list(self.done)
            self.done.clear()
            self.flushes.add(self._background(self._store_and_publish(items)))

    async def _store_and_publish(self, items: list[_Item]) -> None:
        """Store ``items`` (one round), give back their slots (stored messages are
        republished, never resent, after a crash), then publish their records. A send
        that raised (a bug, not a provider answer) stops the run before: the batch is
        not committed and its claims stay, so nothing is sent twice after a restart."""
        sender = self.sender
        await self.store.finish_many([i.finish for i in items if i.finish is not None])
        for item in items:  # stored: a crash now republishes them, so the slots are free
            self.open -= 1
            self.open_ids.discard(item.request["message_id"])
        self.wake.set()
        if sender._suppression is not None and not sender.plugin.deactivates_dead_addresses:
            for item in items:
                if item.dead_address and item.address is not None:
                    try:
                        await sender._suppression.add_bounce(
                            item.request["app_id"], sender.plugin.channel.value, item.address,
                            item.request["message_id"])
                    except asyncpg.PostgresError as exc:  # e.g. the app was deleted
                        log.warning("message %s: %s not added to the suppression list: %s",
                                    item.request["message_id"], item.address, exc)
                    else:  # lookups started from now on see it
                        sender._bounced[(item.request["app_id"], item.address)] = (
                            sender._screens)
            self._forget_listed_bounces()
        if self.keeps_endpoints:
            self.bounces -= sum(1 for item in items if item.dead_address)
            self.wake.set()
        acks = await sender._publish(items, self.producer, self.dead_letters)
        touched: list[_Batch] = []
        for item in items:
            batch = item.batch
            if batch is not None:
                batch.remaining -= 1
                if not touched or touched[-1] is not batch:
                    touched.append(batch)
        for batch in touched:
            batch.acks.extend(acks)

    def _forget_listed_bounces(self) -> None:
        """Drop the bounces every item still to be claimed was (or will be) screened after:
        the suppression list answers for those."""
        bounced = self.sender._bounced
        if not bounced:
            return
        # a chunk being prepared may be screened in the current round; later ones after it
        upcoming = self.sender._screens + (0 if self.preparing is not None else 1)
        oldest = min([i.screened_at for i in self.ready] + [upcoming])
        for key in [k for k, listed in bounced.items() if listed < oldest]:
            del bounced[key]

    def _commit(self) -> None:
        if (self.committing is None and self.batches
                and self.batches[0].remaining == 0):
            self.committing = self._background(self._commit_finished())

    async def _commit_finished(self) -> None:
        """Commit the oldest batches whose items are all stored, once Kafka acked them."""
        stats = self.sender.stats
        while self.batches and self.batches[0].remaining == 0:
            batch = self.batches[0]
            for ack in batch.acks:  # in order; most are acknowledged already
                if not ack.done():
                    await ack
                ack.result()  # raises what the producer raised for it
            await self.consumer.commit(batch.offsets)
            self.batches.popleft()
            stats.batches += 1
            stats.last_batch_s = time.monotonic()
            log.info("%s sender: batch of %d committed (sent %d, failed %d, skipped %d, "
                     "suppressed %d, republished %d so far)", self.sender.name, batch.records,
                     stats.sent, stats.failed, stats.skipped, stats.suppressed,
                     stats.republished)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing beyond asyncpg's own (an open transaction is rolled
    back). The sender's pooled connections hold no session state — no LISTEN, SET,
    cursors or advisory locks (its lock lives on a connection of its own) — so the
    default reset query would cost a round trip per release for nothing."""


def _now_ms() -> int:
    return int(time.time() * 1000)
