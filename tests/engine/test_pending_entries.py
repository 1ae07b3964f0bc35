"""The write-behind buffer: flushes in steps, reads see the newest value, the store gets
each entry once per flush with the changelog offset it reached."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lodestar.core.endpoint_entry import entry
from lodestar.core.endpoint_state import blank_state
from lodestar.engine.pending_entries import PendingEntries
from lodestar.engine.profile_store import ProfileStore, decode_value

TOPIC = "w-endpoint-profiles-changelog"


class _Metadata:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _Changelog:
    """Acknowledges every send at the next offset of its partition."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.offsets: dict[int, int] = {}

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None) -> Any:
        assert partition is not None
        self.sent.append((topic, value, key, partition))
        offset = self.offsets.get(partition, -1) + 1
        self.offsets[partition] = offset
        future: asyncio.Future[_Metadata] = asyncio.get_running_loop().create_future()
        future.set_result(_Metadata(offset))
        return future


def _state(endpoint_id: str, n: int) -> Any:
    return (blank_state("app", endpoint_id, 1_700_000_000_000 + n), None)


def _store(tmp_path: Path) -> ProfileStore:
    store = ProfileStore(tmp_path, lambda endpoint_id: int(endpoint_id[-1]) % 2)
    store.open(0)
    store.open(1)
    return store


def test_a_flush_in_steps_writes_each_entry_once_with_its_changelog_offset(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        store = _store(tmp_path)
        pending = PendingEntries(store, TOPIC)
        changelog = _Changelog()
        pending.update({"app/e0": (0, _state("e0", 1)), "app/e1": (1, _state("e1", 1))})
        pending.update({"app/e0": (0, _state("e0", 2)), "app/e2": (0, _state("e2", 1))})
        assert len(pending) == 3

        assert pending.begin() == 3
        assert await pending.step(changelog, 2) is None  # one entry to go
        assert store.raw("app/e0") is None  # nothing in the store before the acks
        pending.update({"app/e0": (0, _state("e0", 3)), "app/e2": (0, None)})  # meanwhile
        assert pending.get("app/e0") == (0, _state("e0", 3))
        assert pending.get("app/e2") == (0, None)
        assert pending.get("app/e1") == (1, _state("e1", 1))  # still flushing
        assert pending.keys_in(0) == {"app/e0", "app/e2"}

        flushed = await pending.step(changelog, 2)
        assert flushed is not None and set(flushed) == {"app/e0", "app/e1", "app/e2"}
        assert len(changelog.sent) == 3  # e0 once, with its newest value at begin()
        assert decode_value(store.raw("app/e0") or b"") == entry(*_state("e0", 2))
        assert store.open(0) == 1 and store.open(1) == 0  # offsets the entries reached
        assert not pending.in_progress and pending.get("app/e1") is None

        assert pending.begin() == 2  # the changes made during the first flush
        assert await pending.step(changelog, 10) is not None
        assert decode_value(store.raw("app/e0") or b"") == entry(*_state("e0", 3))
        assert store.raw("app/e2") is None  # deleted: a tombstone on the changelog
        assert changelog.sent[-1] == (TOPIC, None, b"app/e2", 0)
        assert store.open(0) == 3

    asyncio.run(scenario())


def test_an_empty_flush_completes_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        pending = PendingEntries(_store(tmp_path), TOPIC)
        assert pending.begin() == 0
        assert await pending.step(_Changelog(), 50) == {}

    asyncio.run(scenario())
