"""Per-endpoint activity: how many events an endpoint sent and when it was last seen.

The walking skeleton's engine state. ``fold_events`` is the pure step
``(state | None, events) -> state``; ``coalesce_by_endpoint`` groups a batch
so the adapter writes each endpoint's table entry once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EndpointActivity:
    """Events counted for one endpoint and the latest event time (epoch ms)."""

    event_count: int = 0
    last_event_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"event_count": self.event_count, "last_event_at": self.last_event_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EndpointActivity:
        if not data:
            return cls()
        return cls(int(data["event_count"]), data.get("last_event_at"))


def fold_events(state: EndpointActivity | None, timestamps: Iterable[int]) -> EndpointActivity:
    """Apply events (given by their timestamps) to ``state``.

    The count grows by one per event; the last-event time is the maximum seen,
    so events arriving out of order never move it backwards.
    """
    count = state.event_count if state else 0
    last = state.last_event_at if state else None
    for ts in timestamps:
        count += 1
        if last is None or ts > last:
            last = ts
    return EndpointActivity(count, last)


def coalesce_by_endpoint(records: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """Group event timestamps by endpoint id, keeping arrival order within each."""
    grouped: dict[str, list[int]] = {}
    for record in records:
        grouped.setdefault(record["endpoint_id"], []).append(record["timestamp"])
    return grouped
