"""The profile agent's decoded ``endpoint-profiles`` entries, kept between batches.

Reading an entry from the store costs a RocksDB read, a JSON decode and
``read_entry`` (the state and its memberships rebuilt from dicts) — more than
evaluating most endpoints' segments. The agent is the only writer of the
partitions it owns, so what it wrote last is what the store holds: after a
batch's writes it keeps the decoded ``(state, memberships)`` of each key here
and reads them back instead of the store.

That holds only while the partitions stay with this worker: a rebalance that
takes partitions away (the agent's ``generation`` changes) empties the cache,
since a partition that left and came back may have been written by another
worker meanwhile.
At most ``limit`` entries are kept, the least recently used are dropped first:
an entry with ≈ 200 memberships and 300 due times takes ≈ 60 KB
(``bench/segment_eval.py``'s endpoints), so the default bounds the cache to
about 300 MB for such endpoints.
"""

from __future__ import annotations

from lodestar.core.endpoint_state import EndpointState
from lodestar.core.segment_membership import EndpointMemberships

ENTRY_CACHE_LIMIT = 5_000

Entry = tuple[EndpointState, EndpointMemberships | None]


class EntryCache:
    def __init__(self, limit: int = ENTRY_CACHE_LIMIT) -> None:
        self.limit = limit
        self.generation: int | None = None
        self._entries: dict[str, Entry] = {}

    def check(self, generation: int) -> None:
        """Empty the cache when ``generation`` (the agent's rebalance count) has changed."""
        if generation != self.generation:
            self._entries.clear()
            self.generation = generation

    def get(self, key: str) -> Entry | None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._entries[key] = entry  # most recently used last
        return entry

    def put(self, key: str, entry: Entry | None) -> None:
        """Keep ``entry`` as ``key``'s table value (None: the key was deleted)."""
        self._entries.pop(key, None)
        if entry is None:
            return
        self._entries[key] = entry
        if len(self._entries) > self.limit:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
