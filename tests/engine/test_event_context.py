"""Batch table writes happen in the partition of the chosen event."""

from __future__ import annotations

from types import SimpleNamespace

from faust.streams import current_event

from lodestar.engine.event_context import as_current, by_partition


class FakeEvent:
    """Stands in for a Faust event: only ``message.topic/partition/offset``."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition, offset=offset)


def fake_event(topic: str, partition: int, offset: int) -> FakeEvent:
    return FakeEvent(topic, partition, offset)


def test_by_partition_groups_and_keeps_order() -> None:
    events = [fake_event("t", p, o) for o, p in enumerate([0, 1, 0, 2, 1])]
    groups = by_partition(events)  # type: ignore[arg-type]
    assert list(groups) == [("t", 0), ("t", 1), ("t", 2)]
    assert [e.message.offset for e in groups[("t", 0)]] == [0, 2]
    assert [e.message.offset for e in groups[("t", 1)]] == [1, 4]


def test_as_current_sets_and_restores_the_current_event() -> None:
    outer, inner = fake_event("t", 0, 1), fake_event("t", 3, 7)
    assert current_event() is None
    with as_current(outer):  # type: ignore[arg-type]
        assert current_event() is outer
        with as_current(inner):  # type: ignore[arg-type]
            assert current_event().message.partition == 3
        assert current_event() is outer
    assert current_event() is None
