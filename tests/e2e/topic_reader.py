"""Read a Lodestar topic in the background from a synchronous test.

``TopicReader(bootstrap, topic_name, topic, codec)`` runs an aiokafka consumer
(no group, from the earliest offset) in its own thread and event loop and
collects the decoded records (and where each one was: ``placements()``);
``wait_for(check, what)`` polls them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from lodestar.contracts.codec import AvroCodec
from lodestar.core.topics import Topic


class TopicReader:
    def __init__(self, bootstrap: str, topic_name: str, topic: Topic, codec: AvroCodec) -> None:
        self._args = (bootstrap, topic_name, topic, codec)
        self._records: list[dict[str, Any]] = []
        self._placements: list[tuple[int, bytes | None]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> TopicReader:
        self._thread.start()
        assert self._started.wait(30), "the topic reader did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        bootstrap, name, topic, codec = self._args
        consumer = AIOKafkaConsumer(
            name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        self._started.set()
        try:
            while not self._stop.is_set():
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    decoded = [codec.decode(topic, m.value) for m in batch]
                    with self._lock:
                        self._records.extend(decoded)
                        self._placements.extend((m.partition, m.key) for m in batch)
        finally:
            await consumer.stop()

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def placements(self) -> list[tuple[int, bytes | None]]:
        """(partition, key) of every record read, in the order of ``records()``."""
        with self._lock:
            return list(self._placements)

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = 15.0
    ) -> float:
        """Seconds until ``check(records)`` held; fails the test after ``timeout``."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if check(self.records()):
                return time.monotonic() - started
            time.sleep(0.05)
        pytest.fail(f"{what}: not seen within {timeout}s; records: {self.records()[-20:]}")
