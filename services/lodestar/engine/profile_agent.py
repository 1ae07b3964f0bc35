"""The profile agent: keep every endpoint's profile and segment memberships from
``events`` and ``endpoint-commands``.

Thin adapter around ``core.profile_inputs`` and ``core.segment_membership``; the
consumer loop (``engine.profile_consumer``) hands it batches of records from both
(co-partitioned) topics. ``process`` decodes a batch (what does not decode goes to
the DLQ), groups it by partition and by endpoint, folds each endpoint's inputs
once, re-evaluates the segments that read what changed, dead-letters refused
inputs, publishes the resulting ``EndpointChange`` records on ``lodestar.endpoints``
and ``SegmentMembershipChange`` records on ``lodestar.segment-membership`` (both
keyed by endpoint id and sent to the partition the endpoint's inputs came from, so
the changes of one endpoint stay in order) together with each changed endpoint's
entry on the ``endpoint-profiles`` changelog, and, once all of them are
acknowledged, writes the entries into the partition's store
(``engine.profile_store``).

TICK commands (the engine's clock, sent about once a second to every owned
partition, and again at once while work remains) re-check the partition's
endpoints whose time-based segment conditions are due and advance segment
backfills by one chunk, recording progress in PostgreSQL.

Entries are ``core.endpoint_entry.entry(state, memberships)`` under
``<app id>/<endpoint id>``; the entries this worker wrote last are also kept
decoded (``engine.entry_cache``).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.partitioner import murmur2

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
from lodestar.engine.pending_entries import PendingEntries
from lodestar.engine.profile_store import CHANGELOG_SUFFIX, ProfileStore, decode_value
from lodestar.engine.record_batches import RecordBatches
from lodestar.engine.segment_catalogs import SegmentCatalogs
from lodestar.engine.segment_work import BackfillJob, Backfills, DueIndex
from lodestar.settings import Settings

log = logging.getLogger(__name__)

DUE_PER_TICK = 5000
BACKFILL_CHUNK = 2000


def partition_of(endpoint_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the key ``endpoint_id``."""
    return (murmur2(endpoint_id.encode()) & 0x7FFFFFFF) % partitions


class Record(Protocol):
    """What the agent reads of a consumed Kafka record (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Sequence[tuple[str, bytes]]


class Producer(Protocol):
    """The part of ``aiokafka.AIOKafkaProducer`` the agent uses."""

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: Any = None) -> Any: ...


@dataclass
class PartitionWork:
    """One partition's share of a batch, decoded."""

    per_endpoint: dict[str, list[ProfileInput]] = field(default_factory=dict)
    app_wide: list[ProfileInput] = field(default_factory=list)
    sources: dict[int, Record] = field(default_factory=dict)  # id(input) -> record
    tick: bool = False


@dataclass
class Outbox:
    """What a batch publishes, in order, and the entries it changed.

    The changed entries join the agent's pending entries (``engine.pending_entries``)
    once every output is acknowledged. Reads within the batch see them.
    """

    changes: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(partition, EndpointChange): published to the partition its endpoint's inputs
    came from."""
    user_index: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(partition, SegmentMembershipChange), like ``changes``."""
    writes: dict[str, tuple[int, Entry | None]] = field(default_factory=dict)
    """The changed entries as ``(partition, (state, memberships))`` (None: deleted),
    by key."""
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

    def put(self, partition: int, key: str, state: EndpointState | None,
            memberships: EndpointMemberships | None = None) -> None:
        """Set ``key``'s entry in ``partition`` to ``(state, memberships)`` (``state``
        None: delete it)."""
        self.writes[key] = (partition, None if state is None else (state, memberships))


class ProfileAgent:
    """The batch logic; ``engine.profile_consumer`` feeds it, drives the flushes of its
    ``pending`` entries (written behind, see ``engine.pending_entries``) and commits
    offsets only after the flush that covers them, and sets ``producer``,
    ``dead_letters`` and ``generation`` (bumped when partitions leave)."""

    def __init__(
        self,
        settings: Settings,
        store: ProfileStore,
        codec: AvroCodec,
        catalogs: SegmentCatalogs,
        progress: BackfillProgress,
    ) -> None:
        self.store = store
        self.codec = codec
        self.catalogs = catalogs
        self.progress = progress
        self.producer: Producer | None = None
        self.dead_letters: DeadLetterPublisher | None = None
        self.generation = 0
        self.worker_id = settings.worker_id
        self.partitions = settings.partitions
        self.events_topic = settings.topic(Topic.EVENTS)
        self.commands_topic = settings.topic(Topic.ENDPOINT_COMMANDS)
        self.commands_headers = list(codec.headers(Topic.ENDPOINT_COMMANDS))
        self.changes_topic = settings.topic(Topic.ENDPOINTS)
        self.change_headers = list(codec.headers(Topic.ENDPOINTS))
        self.user_index_topic = settings.topic(Topic.USER_INDEX)
        self.user_index_headers = list(codec.headers(Topic.USER_INDEX))
        self.membership_topic = settings.topic(Topic.SEGMENT_MEMBERSHIP)
        self.membership_headers = list(codec.headers(Topic.SEGMENT_MEMBERSHIP))
        self.changelog_topic = changelog_topic(settings)
        self.due_index = DueIndex()
        self.entries = EntryCache()
        self.backfills = Backfills()
        self.planned: set[int] = set()
        self.changed_segments: dict[str, dict[str, int]] = {}  # app → segment → version
        self.pending = PendingEntries(store, self.changelog_topic)
        self.finished_backfills: list[tuple[BackfillJob, int]] = []
        """Backfills finished since the last flush began (recorded after the next one)."""
        self._flushing_backfills: list[tuple[BackfillJob, int]] = []
        catalogs.listeners.append(self._segments_changed)

    def forget(self, partitions: set[int]) -> None:
        """``partitions`` left this worker (after a flush): drop their due times,
        backfills and plans."""
        self.entries.clear()
        for lost in partitions:
            self.planned.discard(lost)
            self.due_index.drop(lost)
            self.backfills.drop(lost)

    async def process(self, records: Sequence[Record]) -> None:
        """Apply one batch: decode, fold per endpoint, evaluate segments, run ticks,
        dead-letter, publish, keep the changed entries for the next flush."""
        now_ms = int(time.time() * 1000)
        self.entries.check(self.generation)
        work = await self._decode(records)
        for partition in work:
            if partition not in self.planned:  # before its first fold: a fresh store
                await self._plan(partition)    # has nothing to backfill
        out = Outbox()
        refused: list[tuple[Record, str]] = []
        for partition, part in work.items():
            for key, inputs in part.per_endpoint.items():
                self._fold(partition, key, inputs, now_ms, part, refused, out)
            for command in part.app_wide:
                self._remove_attributes(partition, command, now_ms, out)
        again: list[int] = []
        for partition, part in work.items():
            if part.tick and await self._tick(partition, now_ms, out):
                again.append(partition)
        assert self.dead_letters is not None
        for record, reason in refused:
            letter = DeadLetter(DlqReason.VALIDATION_ERROR, reason)
            topic = _logical(record, self.events_topic)
            await self.dead_letters.publish(topic, SourceRecord.of(record), letter)
        await self._publish(out)
        self._keep(out)
        for partition in again:
            await self.send_tick(partition, now_ms)

    async def _decode(self, records: Sequence[Record]) -> dict[int, PartitionWork]:
        work: dict[int, PartitionWork] = {}
        assert self.dead_letters is not None
        for record in records:
            topic = _logical(record, self.events_topic)
            try:
                value = self.codec.decode(topic, record.value)  # type: ignore[arg-type]
            except ContractError as exc:
                letter = DeadLetter(DlqReason.DECODE_ERROR, str(exc))
                await self.dead_letters.publish(topic, SourceRecord.of(record), letter)
                continue
            part = work.get(record.partition)
            if part is None:
                part = work[record.partition] = PartitionWork()
            if topic is Topic.ENDPOINT_COMMANDS and value["kind"] == CommandKind.TICK.value:
                part.tick = True
                continue
            kind = InputKind.EVENT if topic is Topic.EVENTS else InputKind.COMMAND
            item = ProfileInput(kind, value, record.offset)
            part.sources[id(item)] = record
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
        refused: list[tuple[Record, str]],
        out: Outbox,
    ) -> None:
        first = inputs[0].record
        app_id, endpoint_id = first["app_id"], first["endpoint_id"]
        state, memberships = self._read(key, out)
        segments = self.catalogs.get(app_id)
        result = fold_endpoint(state, app_id, endpoint_id, inputs, now_ms, segments.filters)
        if state is None and result.state is not None:
            self.backfills.count_created(partition, app_id)
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
            out.put(partition, key, result.state, memberships)
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
        self, partition: int, command: ProfileInput, now_ms: int, out: Outbox
    ) -> None:
        """RemoveAttributes over this partition's endpoints of the app (a store scan)."""
        keys = {*self.store.keys_of(partition), *self.pending.keys_in(partition),
                *(key for key, (p, _) in out.writes.items() if p == partition)}
        mine = {key: self._read(key, out) for key in sorted(keys)}
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
            out.put(partition, key, change.state, memberships)
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
        """The stored keys of ``app_id`` by (planned) partition."""
        prefix = app_id + "/"
        keys: dict[int, set[str]] = {
            partition: {key for key in self.store.keys_of(partition) if key.startswith(prefix)}
            for partition in self.planned
        }
        for partition, found in keys.items():
            found.update(key for key in self.pending.keys_in(partition) if key.startswith(prefix))
        return {partition: sorted(found) for partition, found in keys.items()}

    async def send_tick(self, partition: int, now_ms: int) -> None:
        """Queue a TICK command to ``partition`` (not awaited: ticks may be lost)."""
        assert self.producer is not None
        command = tick_command(f"tick-{self.worker_id}-{partition}-{now_ms}", now_ms)
        await self.producer.send(
            self.commands_topic, self.codec.encode(Topic.ENDPOINT_COMMANDS, command), None,
            partition, None, self.commands_headers,
        )

    async def _tick(self, partition: int, now_ms: int, out: Outbox) -> bool:
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
            self._store(partition, key, state, memberships,
                        due(catalog, memberships, state, now_ms), now_ms, out)
        job = self.backfills.current(partition)
        if job is not None:
            await self._backfill_chunk(partition, job, now_ms, out)
        return self.backfills.pending(partition) or self.due_index.has_due(partition, now_ms)

    def _store(
        self,
        partition: int,
        key: str,
        state: EndpointState,
        before: EndpointMemberships | None,
        outcome: Outcome,
        now_ms: int,
        out: Outbox,
    ) -> None:
        memberships = self._note(partition, key, state, outcome, now_ms, out)
        if memberships != before:
            out.put(partition, key, state, memberships)

    async def _backfill_chunk(
        self, partition: int, job: BackfillJob, now_ms: int, out: Outbox
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
            self._store(partition, key, state, memberships, outcome, now_ms, out)
        job.position += len(chunk)
        if job.finished:  # recorded once the flush that holds its last writes completes
            self.backfills.done(partition)
            self.finished_backfills.append((job, partition))
        else:
            await self.progress.record(job, partition)

    async def _plan(self, partition: int) -> None:
        """A newly owned partition: index its due times, queue its unfinished backfills
        (one pass over its store)."""
        started = time.monotonic()
        keys: dict[str, list[str]] = {}
        for key, raw in self.store.items_of(partition):
            self.due_index.add(partition, next_due_ms(raw), key)
            keys.setdefault(key.split("/", 1)[0], []).append(key)
        finished = await self.progress.finished(partition)
        for app_id, segments in list(self.catalogs.apps.items()):
            todo = {
                sid: version for sid, (version, _) in segments.definitions.items()
                if (app_id, sid, version) not in finished
            }
            if todo:
                self.backfills.add(partition, app_id, todo, keys.get(app_id, []))
        self.planned.add(partition)
        log.info("partition %d planned in %.2f s: %d due entries, backfills %s",
                 partition, time.monotonic() - started, self.due_index.size(partition),
                 "queued" if self.backfills.pending(partition) else "none")

    def _read(
        self, key: str, out: Outbox
    ) -> tuple[EndpointState | None, EndpointMemberships | None]:
        """The state and memberships of ``key`` as this batch left them so far: its
        change in this batch, else its pending entry, else what this worker last
        wrote (``entries``), else the store."""
        pending = out.writes.get(key) or self.pending.get(key)
        if pending is not None:
            held = pending[1]
            return (None, None) if held is None else held
        cached = self.entries.get(key)
        if cached is not None:
            return cached
        raw = self.store.raw(key)
        state, memberships = read_entry(None if raw is None else decode_value(raw))
        if state is not None:
            self.entries.put(key, (state, memberships))
        return state, memberships

    def _keep(self, out: Outbox) -> None:
        """The batch's outputs are acknowledged: its changed entries await a flush."""
        self.pending.update(out.writes)

    def begin_flush(self) -> int:
        """Start flushing the pending entries (``PendingEntries.begin``); the backfills
        finished so far are recorded as finished when this flush completes, since a
        restart only resumes backfills not recorded as finished."""
        self._flushing_backfills, self.finished_backfills = self.finished_backfills, []
        return self.pending.begin()

    async def flush_step(self, limit: int) -> bool:
        """Advance the flush in progress by up to ``limit`` entries; whether it is done
        (what it wrote is then kept decoded in ``entries``)."""
        assert self.producer is not None
        flushed = await self.pending.step(self.producer, limit)  # type: ignore[arg-type]
        if flushed is None:
            return False
        for job, partition in self._flushing_backfills:
            await self.progress.record(job, partition)
        self._flushing_backfills = []
        self.entries.check(self.generation)
        for key, (_, held) in flushed.items():
            self.entries.put(key, held)
        return True

    def view(self, key: str) -> dict[str, Any] | None:
        """``key``'s newest entry as stored (``entry(...)``), flushed or not; None when
        absent or not on this worker."""
        pending = self.pending.get(key)
        if pending is None:
            return self.store.get(key)
        return None if pending[1] is None else entry(*pending[1])

    async def _publish(self, out: Outbox) -> None:
        """Send the batch's endpoint, user-index and membership changes; wait for the
        acks (the first failure raises).

        Records keyed by endpoint id go to the partition the endpoint's inputs came from
        (every topic has ``LODESTAR_PARTITIONS`` partitions, so that is the partition of
        the key; no hash per record), appended to whole producer batches
        (``engine.record_batches``); user-index records, keyed by user, take the
        producer's partitioner."""
        assert self.producer is not None
        batches = RecordBatches(self.producer, int(time.time() * 1000))
        encode = self.codec.encode
        for partition, change in out.changes:
            await batches.add(self.changes_topic, partition, change["endpoint_id"].encode(),
                              encode(Topic.ENDPOINTS, change), self.change_headers)
        for partition, change in out.memberships:
            await batches.add(self.membership_topic, partition,
                              change["endpoint_id"].encode(),
                              encode(Topic.SEGMENT_MEMBERSHIP, change), self.membership_headers)
        futures = [
            await self.producer.send(self.user_index_topic, encode(Topic.USER_INDEX, change),
                                     user_key(change["app_id"], change["user_id"]).encode(),
                                     None, None, self.user_index_headers)
            for change in out.user_index
        ]
        for future in [*await batches.send(), *futures]:
            await future


class EntryView(Mapping[str, dict[str, Any]]):
    """The agent's entries as the worker's web pages read them: the newest, flushed or
    not, of the partitions this worker owns."""

    def __init__(self, agent: ProfileAgent) -> None:
        self.agent = agent

    def __getitem__(self, key: str) -> dict[str, Any]:
        value = self.agent.view(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        store, pending = self.agent.store, self.agent.pending
        keys = {*store, *(key for key in pending.unflushed), *(key for key in pending.flushing)}
        return iter(sorted(key for key in keys if self.agent.view(key) is not None))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def changelog_topic(settings: Settings) -> str:
    """The ``endpoint-profiles`` changelog topic: ``<worker id>-endpoint-profiles-changelog``."""
    return f"{settings.worker_id}-{CHANGELOG_SUFFIX}"


def _last_event_id(inputs: Sequence[ProfileInput]) -> str | None:
    for item in reversed(inputs):
        if item.kind is InputKind.EVENT:
            return str(item.record.get("event_id"))
    return None


def _user_id(state: EndpointState | None) -> str | None:
    return None if state is None or state.user is None else state.user.user_id


def _logical(record: Record, events_topic: str) -> Topic:
    return Topic.EVENTS if record.topic == events_topic else Topic.ENDPOINT_COMMANDS
