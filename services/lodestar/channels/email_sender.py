"""The email sender process (``lodestar sender email``): ``<prefix>.send.email`` → SMTP.

Loop: poll a batch of SendRequests (consumer group ``<prefix>-sender-email``),
handle each record in order, wait until every delivery record of the batch is
acknowledged by Kafka, then commit the batch's offsets. Per record:

1. decode (undecodable → ``<prefix>.send.email.dlq``, DECODE_ERROR);
2. claim the message id in ``sent_messages`` (its own transaction,
   ``INSERT … ON CONFLICT DO NOTHING``) **before** anything reaches SMTP;
   a row that already exists decides (``core.email_sending.claim_verdict``):
   SENT/FAILED → republish its stored records; CLAIMED by a live sender →
   leave it to that sender; CLAIMED by a dead one → finish as SENT with an
   unknown outcome, never send again;
3. opt-out / INACTIVE → ``_email.rejected``; template → render → MIME
   (``core.email_sending.prepare_email``) or ``_email.rendering_failure``;
4. send with ``SmtpSender``, retrying transient failures (``core.retry_policy``)
   with backoff inside the budget; a soft bounce that exhausts the budget also
   goes to the DLQ (RETRIES_EXHAUSTED);
5. store the final state and records in the row, then publish the records.

Liveness of a claimant: each sender instance holds the PostgreSQL advisory
lock ``(LOCK_CLASS, hashtext(instance_id))`` on a dedicated connection for as
long as it runs; if another sender can take that lock, the claimant is gone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from lodestar.channels.email import OutcomeKind, SmtpConfig, SmtpOutcome, SmtpSender
from lodestar.channels.sent_messages import LOCK_CLASS, SentMessages, stored_records
from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.errors import ContractError
from lodestar.control.templates import TemplatesRepository
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.delivery_events import DeliverySubject, Record
from lodestar.core.email_sending import (
    ClaimVerdict,
    EmailDefaults,
    FinalOutcome,
    RenderingFailed,
    SendState,
    claim_verdict,
    final_state,
    prepare_email,
    rendering_failure_records,
    screen,
    skip_records,
    smtp_records,
    unknown_outcome_records,
)
from lodestar.core.retry_policy import Action, RetryBudget, classify_smtp, decide
from lodestar.core.topics import Topic
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.settings import Settings

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class EmailSenderConfig:
    batch_size: int = 100
    poll_ms: int = 200
    max_attempts: int = 5
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    retry_deadline_s: float = 120.0
    group_id: str | None = None
    """Consumer group; default ``<prefix>-sender-email``."""


@dataclass
class SenderStats:
    requests: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    republished: int = 0
    smtp_attempts: int = 0
    batches: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


Sleep = Callable[[float], Awaitable[None]]


class EmailSender:
    """Consumes ``<prefix>.send.email`` until ``stop()``; see the module doc."""

    def __init__(self, settings: Settings, config: EmailSenderConfig | None = None, *,
                 codec: AvroCodec | None = None, smtp: SmtpConfig | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.settings = settings
        self.config = config or EmailSenderConfig()
        self.codec = codec or AvroCodec.default()
        self.smtp_config = smtp or SmtpConfig.from_settings(settings)
        self.instance_id = f"email-{uuid.uuid4().hex}"
        self.stats = SenderStats()
        self._sleep = sleep
        self._stopping = asyncio.Event()
        self._in_flight: set[str] = set()
        secret = settings.smtp_tracking_secret
        self._defaults = EmailDefaults(
            from_address=settings.smtp_from_address,
            message_id_domain=settings.smtp_message_id_domain,
            tracking_base_url=settings.smtp_tracking_base_url,
            tracking_secret=secret.encode() if secret else None,
        )
        self._budget = RetryBudget(self.config.max_attempts, self.config.retry_deadline_s)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, started: asyncio.Event | None = None) -> None:
        settings = self.settings
        pool: asyncpg.Pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=1,
                                                       max_size=3)
        lock_conn: asyncpg.Connection | None = None
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                    enable_idempotence=True)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=self.config.group_id or f"{settings.topic_prefix}-sender-email",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.config.batch_size,
        )
        try:
            lock_conn = await asyncpg.connect(settings.postgres_dsn)
            await lock_conn.execute("SELECT pg_advisory_lock($1, hashtext($2))",
                                    LOCK_CLASS, self.instance_id)
            await producer.start()

            async def send_dlq(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
                await producer.send_and_wait(topic, value=value, key=key, headers=list(headers))

            dead_letters = DeadLetterPublisher(settings, self.codec, send_dlq, "sender-email")
            store = SentMessages(pool, self.instance_id)
            templates = TemplatesRepository(pool)
            await consumer.start()
            consumer.subscribe([settings.topic(Topic.SEND_EMAIL)])
            log.info("email sender %s: %s → SMTP %s:%d", self.instance_id,
                     settings.topic(Topic.SEND_EMAIL), self.smtp_config.host,
                     self.smtp_config.port)
            if started is not None:
                started.set()
            async with SmtpSender(self.smtp_config) as smtp:
                while not self._stopping.is_set():
                    polled = await consumer.getmany(timeout_ms=self.config.poll_ms,
                                                    max_records=self.config.batch_size)
                    if not polled:
                        continue
                    pending: list[asyncio.Future[Any]] = []
                    offsets: dict[TopicPartition, int] = {}
                    for tp, records in polled.items():
                        for rec in records:
                            pending += await self._handle(rec, store, templates, smtp,
                                                          producer, dead_letters)
                            offsets[tp] = rec.offset + 1
                    if pending:
                        await asyncio.gather(*pending)
                    await consumer.commit(offsets)
                    self.stats.batches += 1
                    log.info("email sender: batch of %d committed (sent %d, failed %d, "
                             "skipped %d, republished %d so far)",
                             sum(len(r) for r in polled.values()), self.stats.sent,
                             self.stats.failed, self.stats.skipped, self.stats.republished)
        finally:
            await consumer.stop()
            await producer.stop()
            if lock_conn is not None:
                await lock_conn.close()
            await pool.close()

    async def _handle(self, rec: Any, store: SentMessages, templates: TemplatesRepository,
                      smtp: SmtpSender, producer: AIOKafkaProducer,
                      dead_letters: DeadLetterPublisher) -> list[asyncio.Future[Any]]:
        try:
            request = self.codec.decode(Topic.SEND_EMAIL, rec.value)
        except ContractError as exc:
            await dead_letters.publish(Topic.SEND_EMAIL, SourceRecord.of(rec),
                                       DeadLetter(DlqReason.DECODE_ERROR, str(exc)))
            return []
        self.stats.requests += 1
        records = await self._process(request, store, templates, smtp, rec, dead_letters)
        return await self._publish(producer, request, records)

    async def _process(self, request: dict[str, Any], store: SentMessages,
                       templates: TemplatesRepository, smtp: SmtpSender, rec: Any,
                       dead_letters: DeadLetterPublisher) -> list[Record]:
        message_id = request["message_id"]
        subject = DeliverySubject.from_send_request(request)
        row = await store.claim(message_id, request["app_id"])
        alive = False
        if row is not None and row["state"] == "CLAIMED" and row["claimed_by"] != self.instance_id:
            alive = await store.claimant_alive(row["claimed_by"])
        verdict = claim_verdict(
            claimed_now=row is None, state=None if row is None else row["state"],
            claimed_by=None if row is None else row["claimed_by"], me=self.instance_id,
            claimant_alive=alive, in_flight=message_id in self._in_flight)
        if verdict is ClaimVerdict.REPUBLISH:
            assert row is not None
            self.stats.republished += 1
            return stored_records(row)
        if verdict is ClaimVerdict.LEAVE:
            log.warning("message %s is being sent by %s; leaving it", message_id,
                        None if row is None else row["claimed_by"])
            return []
        if verdict is ClaimVerdict.RESOLVE_UNKNOWN:
            assert row is not None
            records = unknown_outcome_records(subject, _now_ms())
            if await store.finish(message_id, SendState.SENT, records,
                                  only_if_claimed_by=row["claimed_by"]):
                log.warning("message %s was claimed by %s, which stopped mid-send: "
                            "not sent again (outcome unknown)", message_id, row["claimed_by"])
                return records
            return await self._process(request, store, templates, smtp, rec, dead_letters)

        self._in_flight.add(message_id)
        try:
            return await self._deliver(request, subject, store, templates, smtp, rec,
                                       dead_letters)
        finally:
            self._in_flight.discard(message_id)

    async def _deliver(self, request: dict[str, Any], subject: DeliverySubject,
                       store: SentMessages, templates: TemplatesRepository, smtp: SmtpSender,
                       rec: Any, dead_letters: DeadLetterPublisher) -> list[Record]:
        message_id = request["message_id"]
        skip = screen(request)
        if skip is not None:
            records = skip_records(subject, skip, _now_ms())
            await store.finish(message_id, SendState.FAILED, records)
            self.stats.skipped += 1
            return records
        definition, error = await self._template(request, templates)
        prepared = RenderingFailed(error) if error is not None else prepare_email(
            request, definition, self._defaults, _now_ms())
        if isinstance(prepared, RenderingFailed):
            records = rendering_failure_records(subject, prepared.error, _now_ms())
            await store.finish(message_id, SendState.FAILED, records)
            self.stats.failed += 1
            log.info("message %s: rendering failure: %s", message_id, prepared.error)
            return records

        sent_ms = _now_ms()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.stats.smtp_attempts += 1
            outcome: SmtpOutcome = await smtp.send(prepared.message)
            decision = decide(
                classify_smtp(outcome.code if outcome.code is not None else None,
                              outcome.stage.value),
                attempt, time.monotonic() - started, self._budget,
                base_s=self.config.retry_base_s, cap_s=self.config.retry_cap_s,
                rand=random.random())
            if decision.action is Action.RETRY:
                log.info("message %s: attempt %d: %s; retrying in %.2fs", message_id, attempt,
                         decision.detail, decision.delay_s)
                await self._sleep(decision.delay_s)
                continue
            break
        final = FinalOutcome(outcome.kind.value, outcome.code, outcome.message,
                             outcome.stage.value, attempt)
        records = smtp_records(subject, final, sent_ms, _now_ms())
        await store.finish(message_id, final_state(final), records, final)
        if outcome.kind is OutcomeKind.DELIVERED:
            self.stats.sent += 1
        else:
            self.stats.failed += 1
            if outcome.kind is OutcomeKind.SOFT_BOUNCE:
                await dead_letters.publish(
                    Topic.SEND_EMAIL, SourceRecord.of(rec),
                    DeadLetter(DlqReason.RETRIES_EXHAUSTED,
                               f"{decision.detail} ({decision.reason})"))
        return records

    async def _template(self, request: dict[str, Any], templates: TemplatesRepository
                        ) -> tuple[dict[str, Any] | None, str | None]:
        ref = request.get("template")
        if not ref:
            return None, None
        version: int | None = None
        if ref.get("version") is not None:
            try:
                version = int(ref["version"])
            except ValueError:
                return None, f"template {ref['name']}: version {ref['version']!r} is not a number"
        found = await templates.get("EMAIL", ref["name"], version)
        if found is None:
            which = "the active version" if version is None else f"version {version}"
            return None, f"EMAIL template {ref['name']!r} ({which}) does not exist"
        return found.definition, None

    async def _publish(self, producer: AIOKafkaProducer, request: dict[str, Any],
                       records: list[Record]) -> list[asyncio.Future[Any]]:
        topic = self.settings.topic(Topic.DELIVERIES)
        key = (request.get("endpoint_id") or request["message_id"]).encode()
        futures = []
        for record in records:
            self.stats.by_type[record["event_type"]] = (
                self.stats.by_type.get(record["event_type"], 0) + 1)
            futures.append(await producer.send(
                topic, value=self.codec.encode(Topic.DELIVERIES, record), key=key))
        return futures


def _now_ms() -> int:
    return int(time.time() * 1000)
