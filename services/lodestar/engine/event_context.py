"""Table writes for batches of events.

Faust routes a table read or write to the RocksDB partition and changelog
partition of the *current event*. When an agent works on a batch from
``stream.take_events`` the current event is only the last one taken, which
may belong to another partition than the key being written. ``as_current``
makes a chosen event current for the duration of a block, so each
partition's keys are read and written in that partition.

This uses Faust's context variable ``faust.streams._current_event``: the one
place Lodestar reaches into Faust internals.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from faust.streams import _current_event
from faust.types import EventT


@contextmanager
def as_current(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event inside the block."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def by_partition(events: Sequence[EventT]) -> dict[tuple[str, int], list[EventT]]:
    """Group a batch by (topic, partition), keeping order within each group."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for event in events:
        tp = (event.message.topic, event.message.partition)
        groups.setdefault(tp, []).append(event)
    return groups
