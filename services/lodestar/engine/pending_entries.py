"""The profile agent's write-behind buffer: entries changed since the store last got them.

A batch's changed entries go to ``unflushed`` (decoded; the newest per key). A
flush takes them all (``begin``: they move to ``flushing`` and ``unflushed``
starts empty), then ``step`` by step encodes a few, sends them to the changelog
and, after the last one, waits for the acks and writes each partition's entries
to the store with the changelog offset they reached. Batches keep running between
steps, so a flush never stalls the loop for long; their changes land in the new
``unflushed``, and reads see the newest value (``get``: unflushed, then flushing).

An endpoint changed by many batches between two flushes is encoded and written
once (Kafka Streams' record cache works the same way). A flush may write a state
newer than the offsets committed after it: the profile fold skips inputs a state
already applied (``EndpointState.applied_offsets``), so a replay after a crash
cannot apply an input twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from lodestar.core.endpoint_entry import entry
from lodestar.engine.entry_cache import Entry
from lodestar.engine.profile_store import ProfileStore, encode_value

Pending = tuple[int, Entry | None]
"""(partition, (state, memberships)); None: the key was deleted."""


class ChangelogProducer(Protocol):
    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None) -> Any: ...


class PendingEntries:
    def __init__(self, store: ProfileStore, changelog_topic: str) -> None:
        self.store = store
        self.changelog_topic = changelog_topic
        self.unflushed: dict[str, Pending] = {}
        self.flushing: dict[str, Pending] = {}
        self._queue: list[tuple[str, Pending]] = []
        self._position = 0
        self._encoded: dict[int, dict[str, bytes | None]] = {}
        self._last: dict[int, Any] = {}
        self._futures: list[Any] = []

    def get(self, key: str) -> Pending | None:
        """``key``'s newest value not yet in the store; None when the store has it."""
        return self.unflushed.get(key) or self.flushing.get(key)

    def update(self, writes: Mapping[str, Pending]) -> None:
        self.unflushed.update(writes)

    def keys_in(self, partition: int) -> set[str]:
        """The pending keys of ``partition``."""
        return {key for pending in (self.unflushed, self.flushing)
                for key, (p, _) in pending.items() if p == partition}

    @property
    def in_progress(self) -> bool:
        return bool(self.flushing)

    def __len__(self) -> int:
        return len(self.unflushed) + len(self.flushing)

    def begin(self) -> int:
        """Start flushing everything unflushed (a flush must not be in progress); the
        number of entries it takes."""
        assert not self.flushing, "a flush is in progress"
        self.flushing, self.unflushed = self.unflushed, {}
        self._queue = list(self.flushing.items())
        self._position = 0
        return len(self._queue)

    async def step(self, producer: ChangelogProducer, limit: int) -> dict[str, Pending] | None:
        """Encode and send up to ``limit`` more entries of the flush; after the last one,
        wait for the acks, write the store, and return what was flushed (else None)."""
        end = min(self._position + limit, len(self._queue))
        for key, (partition, held) in self._queue[self._position:end]:
            value = None if held is None else encode_value(entry(*held))
            self._encoded.setdefault(partition, {})[key] = value
            self._last[partition] = await producer.send(
                self.changelog_topic, value, key.encode(), partition)
            self._futures.append(self._last[partition])
        self._position = end
        if end < len(self._queue):
            return None
        for future in self._futures:
            await future
        for partition, writes in self._encoded.items():
            self.store.apply(partition, writes, self._last[partition].result().offset)
        flushed, self.flushing = self.flushing, {}
        self._queue, self._encoded, self._last, self._futures = [], {}, {}, []
        return flushed
