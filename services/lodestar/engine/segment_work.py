"""A worker's pending segment work per partition: due-time re-checks and backfills.

Both are in memory and rebuilt from the table when a partition is assigned
(``planned``): they are indexes over state the table already holds, so a
restart loses nothing.

- ``DueIndex``: per partition a heap of ``(due ms, key)``. Entries are hints:
  the agent re-reads the key's stored due time before acting, so an entry
  made stale by a later evaluation costs one table read.
- ``Backfills``: per partition a queue of ``BackfillJob`` (an app, the segment
  ids with the version to evaluate, the keys to visit — snapshotted when the
  job is queued — and how far it got). Queuing a segment drops it from the
  earlier jobs of the partition, so only its latest version is evaluated.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field


class DueIndex:
    def __init__(self) -> None:
        self._heaps: dict[int, list[tuple[int, str]]] = {}

    def add(self, partition: int, due_ms: int | None, key: str) -> None:
        if due_ms is not None:
            heapq.heappush(self._heaps.setdefault(partition, []), (due_ms, key))

    def pop_due(self, partition: int, now_ms: int, limit: int) -> list[str]:
        """Up to ``limit`` distinct keys whose due time is ``<= now_ms``."""
        heap = self._heaps.get(partition, [])
        keys: dict[str, None] = {}
        while heap and heap[0][0] <= now_ms and len(keys) < limit:
            keys[heapq.heappop(heap)[1]] = None
        return list(keys)

    def has_due(self, partition: int, now_ms: int) -> bool:
        heap = self._heaps.get(partition)
        return bool(heap) and heap[0][0] <= now_ms  # type: ignore[index]

    def drop(self, partition: int) -> None:
        self._heaps.pop(partition, None)

    def size(self, partition: int) -> int:
        return len(self._heaps.get(partition, ()))


@dataclass
class BackfillJob:
    app_id: str
    segments: dict[str, int]
    """Segment id → version to evaluate (0: the segment was deleted)."""
    keys: list[str] = field(default_factory=list)
    position: int = 0
    created: int = 0
    """Endpoints of the app created in the partition since the job was queued: evaluated
    against every segment when created (e.g. replayed after a restart), so counted as
    evaluated and in the total."""

    @property
    def total(self) -> int:
        return len(self.keys) + self.created

    @property
    def evaluated(self) -> int:
        return self.position + self.created

    @property
    def finished(self) -> bool:
        return self.position >= len(self.keys)


@dataclass
class Backfills:
    queues: dict[int, list[BackfillJob]] = field(default_factory=dict)

    def add(
        self, partition: int, app_id: str, segments: dict[str, int], keys: list[str]
    ) -> None:
        """Queue a backfill of ``segments`` over ``keys`` (the partition's endpoints of
        the app when the segments changed: endpoints created later are evaluated
        against the new catalog when they are created)."""
        queue = self.queues.setdefault(partition, [])
        for job in queue:
            if job.app_id == app_id:
                for sid in segments:
                    job.segments.pop(sid, None)
        queue[:] = [j for j in queue if j.segments]
        queue.append(BackfillJob(app_id, dict(segments), list(keys)))

    def count_created(self, partition: int, app_id: str) -> None:
        """An endpoint of ``app_id`` was created in ``partition``: count it in its queued
        jobs (see ``BackfillJob.created``)."""
        for job in self.queues.get(partition, ()):
            if job.app_id == app_id:
                job.created += 1

    def current(self, partition: int) -> BackfillJob | None:
        queue = self.queues.get(partition)
        return queue[0] if queue else None

    def done(self, partition: int) -> None:
        queue = self.queues.get(partition)
        if queue:
            queue.pop(0)

    def drop(self, partition: int) -> None:
        self.queues.pop(partition, None)

    def pending(self, partition: int) -> bool:
        return bool(self.queues.get(partition))

    def partitions(self) -> Iterable[int]:
        return list(self.queues)
