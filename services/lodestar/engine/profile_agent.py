"""Agent: keep every endpoint's profile and segment memberships from ``events``
and ``endpoint-commands``.

Thin adapter around ``core.profile_inputs`` and ``core.segment_membership``:
take a batch from both (co-partitioned) topics, decode it (what does not
decode goes to the DLQ), group it by partition and by endpoint, fold each
endpoint's inputs once, re-evaluate the segments that read what changed,
write its table entry once, dead-letter refused inputs, and publish the
resulting ``EndpointChange`` records on ``lodestar.endpoints`` and
``SegmentMembershipChange`` records on ``lodestar.segment-membership`` (both
keyed by endpoint id, so the changes of one endpoint stay in order).

TICK commands (the engine's clock, sent about once a second to every owned
partition, and again at once while work remains) re-check the partition's
endpoints whose time-based segment conditions are due and advance segment
backfills by one chunk, recording progress in PostgreSQL.

The ``endpoint-profiles`` table is keyed ``<app id>/<endpoint id>`` and holds
``core.endpoint_entry.entry(state, memberships)``; the entries this worker wrote
last are also kept decoded (``engine.entry_cache``). When the catalogs are
loaded the agent tunes the garbage collector (``lodestar.gc_tuning``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from faust.types import EventT

from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.endpoint_commands import CommandKind, tick_command
from lodestar.core.endpoint_entry import after_change, entry, next_due_ms, read_entry
from lodestar.core.endpoint_state import EndpointState, blank_state
from lodestar.core.profile_inputs import (
    InputKind,
    ProfileInput,
    fold_endpoint,
    input_key,
    remove_attributes_everywhere,
)
from lodestar.core.segment_control import AppSegments, membership_record
from lodestar.core.segment_membership import (
    EndpointMemberships,
    MembershipChange,
    Outcome,
    backfill,
    blank_memberships,
    due,
)
from lodestar.core.topics import Topic
from lodestar.core.user_index import attributes_change, membership_changes, user_key
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.engine.backfill_progress import BackfillProgress
from lodestar.engine.entry_cache import Entry, EntryCache
from lodestar.engine.event_context import as_current
from lodestar.engine.segment_catalogs import SegmentCatalogs
from lodestar.engine.segment_work import BackfillJob, Backfills, DueIndex
from lodestar.gc_tuning import tune_collector
from lodestar.settings import Settings

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN_SECONDS = 0.05
TICK_SECONDS = 1.0
DUE_PER_TICK = 5000
BACKFILL_CHUNK = 2000


def partition_of(endpoint_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``endpoint_id``."""
    return (murmur2(endpoint_id.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class PartitionWork:
    """One partition's share of a batch, decoded."""

    last_event: EventT
    per_endpoint: dict[str, list[ProfileInput]] = field(default_factory=dict)
    app_wide: list[ProfileInput] = field(default_factory=list)
    sources: dict[int, EventT] = field(default_factory=dict)  # id(input) -> Faust event
    tick: EventT | None = None


@dataclass
class Outbox:
    """What a batch publishes, in order, and the table writes that follow the acks.

    Table writes wait until every output is acknowledged: a crash in between
    leaves the table (and its changelog) before the batch, so the replayed
    batch publishes its outputs again — at least once, never lost. Reads within
    the batch see the pending writes (``get``).
    """

    changes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(partition, EndpointChange): published to the partition its endpoint's inputs
    came from."""
    user_index: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(partition, SegmentMembershipChange), like ``changes``."""
    writes: dict[int, dict[str, dict[str, Any] | None]] = field(default_factory=dict)
    decoded: dict[str, Entry | None] = field(default_factory=dict)
    """The pending writes as ``(state, memberships)`` (None: deleted), by key."""
    contexts: dict[int, EventT] = field(default_factory=dict)
    blanks: dict[tuple[int, int], tuple[EndpointState, EndpointMemberships]] = field(
        default_factory=dict)

    def baseline(
        self, segments: AppSegments, now_ms: int
    ) -> Callable[[EndpointState], tuple[EndpointState, EndpointMemberships]]:
        """For endpoints created in this batch: the blank endpoint and its membership,
        evaluated once per catalog and CreationDate (``core.segment_membership.created``)."""
        def get(state: EndpointState) -> tuple[EndpointState, EndpointMemberships]:
            key = (id(segments.catalog), state.creation_date)
            if key not in self.blanks:
                blank = blank_state(state.application_id, state.id, state.creation_date)
                self.blanks[key] = (blank, blank_memberships(segments.catalog, blank, now_ms))
            return self.blanks[key]

        return get

    def put(self, context: EventT, key: str, state: EndpointState | None,
            memberships: EndpointMemberships | None = None) -> None:
        """Write ``entry(state, memberships)`` (``state`` None: delete) under ``key`` in
        ``context``'s partition."""
        partition = context.message.partition
        self.contexts[partition] = context
        self.writes.setdefault(partition, {})[key] = (
            None if state is None else entry(state, memberships))
        self.decoded[key] = None if state is None else (state, memberships)


class ProfileAgent:
    """Holds what the agent needs; ``register`` attaches it to the Faust app."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        table: faust.Table,
        codec: AvroCodec,
        dead_letters: DeadLetterPublisher,
        catalogs: SegmentCatalogs,
        progress: BackfillProgress,
    ) -> None:
        self.app = app
        self.table = table
        self.codec = codec
        self.dead_letters = dead_letters
        self.catalogs = catalogs
        self.progress = progress
        self.worker_id = settings.worker_id
        self.partitions = settings.partitions
        self.events_topic = settings.topic(Topic.EVENTS)
        self.commands_topic = settings.topic(Topic.ENDPOINT_COMMANDS)
        self.commands_headers = codec.headers(Topic.ENDPOINT_COMMANDS)
        self.changes_topic = settings.topic(Topic.ENDPOINTS)
        self.change_headers = codec.headers(Topic.ENDPOINTS)
        self.user_index_topic = settings.topic(Topic.USER_INDEX)
        self.user_index_headers = codec.headers(Topic.USER_INDEX)
        self.membership_topic = settings.topic(Topic.SEGMENT_MEMBERSHIP)
        self.membership_headers = codec.headers(Topic.SEGMENT_MEMBERSHIP)
        self.due_index = DueIndex()
        self.entries = EntryCache()
        self.backfills = Backfills()
        self.planned: set[int] = set()
        self.owned: set[int] = set()
        self.changed_segments: dict[str, dict[str, int]] = {}  # app → segment → version
        catalogs.listeners.append(self._segments_changed)

    def register(self) -> Any:
        source = self.app.topic(
            self.events_topic, self.commands_topic, key_serializer="raw", value_serializer="raw"
        )
        self.app.timer(TICK_SECONDS, name="segment-ticks")(self._tick_owned)
        return self.app.agent(source, name="endpoint-profiles")(self._run)

    async def _run(self, stream: AsyncIterable[Any]) -> None:
        await self.catalogs.ready.wait()
        tune_collector()  # the start-up heap is in place: keep full collections off it
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
            await self.process(events)

    async def process(self, events: Sequence[EventT]) -> None:
        """Apply one batch: decode, fold per endpoint, evaluate segments, write,
        dead-letter, run ticks, publish."""
        now_ms = int(time.time() * 1000)
        self.entries.check(self.app.rebalancing_count)
        work = await self._decode(events)
        for partition in work:
            if partition not in self.planned:  # before its first fold: a fresh table
                await self._plan(partition)    # has nothing to backfill
        out = Outbox()
        refused: list[tuple[EventT, str]] = []
        for partition, part in work.items():
            with as_current(part.last_event):
                for key, inputs in part.per_endpoint.items():
                    self._fold(partition, key, inputs, now_ms, part, refused, out)
                for command in part.app_wide:
                    self._remove_attributes(partition, part.last_event, command, now_ms, out)
        again: list[int] = []
        for partition, part in work.items():
            if part.tick is not None:
                with as_current(part.tick):
                    if await self._tick(partition, part.tick, now_ms, out):
                        again.append(partition)
        for event, reason in refused:
            letter = DeadLetter(DlqReason.VALIDATION_ERROR, reason)
            topic = _logical(event, self.events_topic)
            await self.dead_letters.publish(topic, SourceRecord.of(event.message), letter)
        await self._publish(out)
        self._write(out)
        for partition in again:
            await self._send_tick(partition, now_ms)

    async def _decode(self, events: Sequence[EventT]) -> dict[int, PartitionWork]:
        work: dict[int, PartitionWork] = {}
        for event in events:
            topic = _logical(event, self.events_topic)
            try:
                record = self.codec.decode(topic, event.message.value)
            except ContractError as exc:
                letter = DeadLetter(DlqReason.DECODE_ERROR, str(exc))
                await self.dead_letters.publish(topic, SourceRecord.of(event.message), letter)
                continue
            part = work.setdefault(event.message.partition, PartitionWork(event))
            part.last_event = event
            if topic is Topic.ENDPOINT_COMMANDS and record["kind"] == CommandKind.TICK.value:
                part.tick = event
                continue
            kind = InputKind.EVENT if topic is Topic.EVENTS else InputKind.COMMAND
            item = ProfileInput(kind, record, event.message.offset)
            part.sources[id(item)] = event
            key = input_key(item)
            if key is None:
                part.app_wide.append(item)
            else:
                part.per_endpoint.setdefault(key, []).append(item)
        return work

    def _fold(
        self,
        partition: int,
        key: str,
        inputs: list[ProfileInput],
        now_ms: int,
        part: PartitionWork,
        refused: list[tuple[EventT, str]],
        out: Outbox,
    ) -> None:
        first = inputs[0].record
        app_id, endpoint_id = first["app_id"], first["endpoint_id"]
        state, memberships = self._read(key, out)
        segments = self.catalogs.get(app_id)
        result = fold_endpoint(state, app_id, endpoint_id, inputs, now_ms, segments.filters)
        out.user_index += membership_changes(
            app_id, endpoint_id, _user_id(state), _user_id(result.state), now_ms
        )
        out.user_index += [
            attributes_change(app_id, user_id, endpoint_id, attributes, now_ms)
            for user_id, attributes in result.user_attribute_changes
        ]
        outcome = after_change(segments, memberships, result.state, result.touched, now_ms,
                               state, out.baseline(segments, now_ms))
        if outcome is not None:
            memberships = self._note(partition, key, result.state or state, outcome, now_ms,
                                     out, result.triggers, _last_event_id(inputs))
        if result.dirty or outcome is not None:
            out.put(part.last_event, key, result.state, memberships)
        refused += [(part.sources[id(item)], reason) for item, reason in result.refused]
        out.changes += [(partition, change) for change in result.changes]

    def _note(
        self,
        partition: int,
        key: str,
        subject: EndpointState | None,
        outcome: Outcome,
        now_ms: int,
        out: Outbox,
        triggers: set[str] | tuple[str, ...] = (),
        event_id: str | None = None,
    ) -> EndpointMemberships:
        """Queue the membership records of ``outcome`` and index its due time."""
        memberships, changes = outcome
        if subject is not None:
            out.memberships += [(partition, record) for record in
                                self._records(subject, changes, now_ms, triggers, event_id)]
        self.due_index.add(partition, memberships.next_due_ms, key)
        return memberships

    def _records(
        self,
        subject: EndpointState,
        changes: list[MembershipChange],
        now_ms: int,
        triggers: set[str] | tuple[str, ...],
        event_id: str | None,
    ) -> list[dict[str, Any]]:
        imported = self.catalogs.get(subject.application_id).imported
        return [
            membership_record(subject.application_id, subject.id, _user_id(subject), change,
                              now_ms, triggers, event_id, change.segment_id in imported)
            for change in changes
        ]

    def _remove_attributes(
        self, partition: int, context: EventT, command: ProfileInput, now_ms: int, out: Outbox
    ) -> None:
        """RemoveAttributes over this partition's endpoints of the app (a table scan)."""
        keys = {*self.table.keys(), *out.writes.get(partition, {})}
        mine = {
            key: self._read(key, out)
            for key in sorted(keys)
            if partition_of(key.split("/", 1)[1], self.partitions) == partition
        }
        states = [(key, state) for key, (state, _) in mine.items() if state is not None]
        segments = self.catalogs.get(command.record["app_id"])
        for key, change in remove_attributes_everywhere(states, command.record, now_ms):
            assert change.state is not None
            memberships = mine[key][1]
            outcome = after_change(segments, memberships, change.state, change.changed_fields,
                                   now_ms)
            if outcome is not None:
                memberships = self._note(partition, key, change.state, outcome, now_ms, out,
                                         ("REMOVE_ATTRIBUTES",))
            out.put(context, key, change.state, memberships)
            out.changes.append((partition, change.change_record(now_ms, "REMOVE_ATTRIBUTES")))

    # --- segment clock and backfills -------------------------------------------------

    def _segments_changed(self, app_id: str, changed: frozenset[str]) -> None:
        """A segment was created, updated or deleted: note it; the next TICK queues its
        backfill on every planned partition (one table scan for many changes)."""
        definitions = self.catalogs.get(app_id).definitions
        pending = self.changed_segments.setdefault(app_id, {})
        for sid in changed:
            pending[sid] = definitions[sid][0] if sid in definitions else 0

    def _queue_changed_segments(self) -> None:
        for app_id, versions in self.changed_segments.items():
            keys = self._keys_of(app_id)
            for partition in self.planned:
                self.backfills.add(partition, app_id, versions, keys.get(partition, []))
        self.changed_segments.clear()

    def _keys_of(self, app_id: str) -> dict[int, list[str]]:
        """The table's keys of ``app_id`` by partition."""
        prefix = app_id + "/"
        out: dict[int, list[str]] = {}
        for key in list(self.table.keys()):
            if key.startswith(prefix):
                out.setdefault(partition_of(key[len(prefix):], self.partitions), []).append(key)
        return out

    def _owned_partitions(self) -> set[int]:
        return {
            tp.partition for tp in self.app.assignor.assigned_actives()
            if tp.topic == self.commands_topic
        }

    async def _tick_owned(self) -> None:
        """Timer: a TICK to every partition this worker owns; forget lost partitions."""
        owned = self._owned_partitions()
        if self.owned - owned:
            self.entries.clear()
        for lost in self.owned - owned:
            self.planned.discard(lost)
            self.due_index.drop(lost)
            self.backfills.drop(lost)
        self.owned = owned
        now_ms = int(time.time() * 1000)
        for partition in sorted(owned):
            await self._send_tick(partition, now_ms)

    async def _send_tick(self, partition: int, now_ms: int) -> None:
        command = tick_command(f"tick-{self.worker_id}-{partition}-{now_ms}", now_ms)
        await self.app.producer.send(
            self.commands_topic, None, self.codec.encode(Topic.ENDPOINT_COMMANDS, command),
            partition, None, self.commands_headers,
        )

    async def _tick(self, partition: int, context: EventT, now_ms: int, out: Outbox) -> bool:
        """Due re-checks and one backfill chunk for ``partition``; whether work remains."""
        if partition not in self.planned:
            await self._plan(partition)
        if self.changed_segments:
            self._queue_changed_segments()
        for key in self.due_index.pop_due(partition, now_ms, DUE_PER_TICK):
            state, memberships = self._read(key, out)
            due_at = None if memberships is None else memberships.next_due_ms
            if due_at is None:
                continue
            if due_at > now_ms:
                self.due_index.add(partition, due_at, key)
                continue
            assert state is not None and memberships is not None
            catalog = self.catalogs.get(state.application_id).catalog
            self._store(context, key, state, memberships,
                        due(catalog, memberships, state, now_ms), now_ms, out)
        job = self.backfills.current(partition)
        if job is not None:
            await self._backfill_chunk(partition, context, job, now_ms, out)
        return self.backfills.pending(partition) or self.due_index.has_due(partition, now_ms)

    def _store(
        self,
        context: EventT,
        key: str,
        state: EndpointState,
        before: EndpointMemberships | None,
        outcome: Outcome,
        now_ms: int,
        out: Outbox,
    ) -> None:
        memberships = self._note(context.message.partition, key, state, outcome, now_ms, out)
        if memberships != before:
            out.put(context, key, state, memberships)

    async def _backfill_chunk(
        self, partition: int, context: EventT, job: BackfillJob, now_ms: int, out: Outbox
    ) -> None:
        if job.position == 0:
            log.info("backfill of %d segment(s) in app %s on partition %d: %d endpoint(s)",
                     len(job.segments), job.app_id, partition, len(job.keys))
        catalog = self.catalogs.get(job.app_id).catalog
        chunk = job.keys[job.position:job.position + BACKFILL_CHUNK]
        for key in chunk:
            state, memberships = self._read(key, out)
            if state is None:
                continue
            outcome = backfill(catalog, memberships, state, now_ms, job.segments)
            self._store(context, key, state, memberships, outcome, now_ms, out)
        job.position += len(chunk)
        await self.progress.record(job, partition)
        if job.finished:
            self.backfills.done(partition)

    async def _plan(self, partition: int) -> None:
        """Newly owned partitions (``partition`` and any other owned one not planned yet,
        in one pass over the table): index their due times, queue their unfinished
        backfills."""
        started = time.monotonic()
        targets = {partition} | (self._owned_partitions() - self.planned)
        keys: dict[tuple[int, str], list[str]] = {}
        for key, raw in list(self.table.items()):
            app_id, endpoint_id = key.split("/", 1)
            owner = partition_of(endpoint_id, self.partitions)
            if owner in targets:
                self.due_index.add(owner, next_due_ms(raw), key)
                keys.setdefault((owner, app_id), []).append(key)
        for target in sorted(targets):
            finished = await self.progress.finished(target)
            for app_id, segments in list(self.catalogs.apps.items()):
                todo = {
                    sid: version for sid, (version, _) in segments.definitions.items()
                    if (app_id, sid, version) not in finished
                }
                if todo:
                    self.backfills.add(target, app_id, todo, keys.get((target, app_id), []))
            self.planned.add(target)
        log.info("partition(s) %s planned in %.2f s: %d due entries, backfills %s",
                 sorted(targets), time.monotonic() - started,
                 sum(self.due_index.size(t) for t in targets),
                 "queued" if any(self.backfills.pending(t) for t in targets) else "none")

    def _read(
        self, key: str, out: Outbox
    ) -> tuple[EndpointState | None, EndpointMemberships | None]:
        """The state and memberships of ``key`` as this batch left them so far: its
        pending write, else what this worker last wrote (``entries``), else the table."""
        if key in out.decoded:
            held = out.decoded[key]
            return (None, None) if held is None else held
        cached = self.entries.get(key)
        if cached is not None:
            return cached
        state, memberships = read_entry(self.table.get(key))
        if state is not None:
            self.entries.put(key, (state, memberships))
        return state, memberships

    def _write(self, out: Outbox) -> None:
        """Apply the batch's table writes, each in its partition (after the acks), and
        keep them decoded unless a rebalance began meanwhile."""
        for partition, writes in out.writes.items():
            with as_current(out.contexts[partition]):
                for key, value in writes.items():
                    if value is None:
                        self.table.pop(key, None)
                    else:
                        self.table[key] = value
        if self.app.rebalancing_count == self.entries.generation:
            for key, held in out.decoded.items():
                self.entries.put(key, held)
        else:
            self.entries.clear()

    async def _publish(self, out: Outbox) -> None:
        """Send the batch's endpoint, user-index and membership changes; wait for the acks.

        Records keyed by endpoint id go to the partition the endpoint's inputs came from
        (every topic has ``LODESTAR_PARTITIONS`` partitions, so that is the partition of
        the key; no hash per record). The acks are awaited in order, each one that is
        already done without suspending (cheaper than ``asyncio.gather``'s callback per
        future); the first failure raises, as gather's would."""
        send = self.app.producer.send
        futures = [
            await send(self.changes_topic, change["endpoint_id"].encode(),
                       self.codec.encode(Topic.ENDPOINTS, change), partition, None,
                       self.change_headers)
            for partition, change in out.changes
        ] + [
            await send(self.user_index_topic,
                       user_key(change["app_id"], change["user_id"]).encode(),
                       self.codec.encode(Topic.USER_INDEX, change), None, None,
                       self.user_index_headers)
            for change in out.user_index
        ] + [
            await send(self.membership_topic, change["endpoint_id"].encode(),
                       self.codec.encode(Topic.SEGMENT_MEMBERSHIP, change), partition, None,
                       self.membership_headers)
            for partition, change in out.memberships
        ]  # fmt: skip
        for future in futures:
            await future


def _last_event_id(inputs: Sequence[ProfileInput]) -> str | None:
    for item in reversed(inputs):
        if item.kind is InputKind.EVENT:
            return str(item.record.get("event_id"))
    return None


def _user_id(state: EndpointState | None) -> str | None:
    return None if state is None or state.user is None else state.user.user_id


def _logical(event: EventT, events_topic: str) -> Topic:
    return Topic.EVENTS if event.message.topic == events_topic else Topic.ENDPOINT_COMMANDS
