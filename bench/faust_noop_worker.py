"""Faust worker process for the no-op agent baselines of ``bench/baselines.py``.

Run by ``baselines.faust_noop`` as ``python bench/faust_noop_worker.py '<json>'``;
not meant to be started by hand. The JSON object holds:

- ``app_id``: Faust application id (also its consumer group), unique per run;
- ``broker``: Faust broker URL, e.g. ``kafka://127.0.0.1:29092``;
- ``topic``: input topic, already created and filled with ``events`` records;
- ``partitions``: partitions of ``topic``;
- ``events``: stop after this many events;
- ``take``: ``null`` for one event at a time, else the ``stream.take`` batch size;
- ``within_s``: the ``within`` of ``stream.take``;
- ``progress_every``: events between two progress lines.

Contract of the output, written straight to the file descriptors so that
Faust's logging and stdout redirection cannot interleave with it:

- stderr gets ``progress <text>`` lines (and whatever Faust logs at WARNING);
- stdout gets exactly one line ``BENCH_RESULT {"events": N, "seconds": S}``
  (Faust's terminal spinner may write control codes around it)
  once ``events`` events were seen, ``seconds`` running from the moment the
  agent saw its first event (for ``take``, its first batch) to the moment it
  saw the N-th;
- the process then stops the worker as SIGTERM would (leaving the consumer
  group), and ``os._exit``s if that has not finished within ``EXIT_GRACE_S``.

The agent does nothing with the events: this measures Faust's own cost of
fetching, buffering, iterating and acknowledging raw (bytes) records.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import faust

RESULT_MARKER = "BENCH_RESULT"
EXIT_GRACE_S = 20.0


@dataclass
class Clock:
    """Counts events and times the span from the first seen to the ``target``-th."""

    target: int
    progress_every: int
    seen: int = 0
    started: float | None = None
    next_progress: int = field(init=False)

    def __post_init__(self) -> None:
        self.next_progress = self.progress_every

    def add(self, count: int) -> bool:
        """Record ``count`` more events; True exactly once, when ``target`` is reached."""
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        before = self.seen
        self.seen += count
        if self.seen >= self.next_progress:
            _write(2, f"progress {self.seen:,}/{self.target:,} events")
            self.next_progress = (self.seen // self.progress_every + 1) * self.progress_every
        if before < self.target <= self.seen:
            _write(1, f"\n{RESULT_MARKER} " + json.dumps(
                {"events": self.target, "seconds": now - self.started}
            ))
            return True
        return False


def _write(fd: int, line: str) -> None:
    """Write one line to ``fd`` bypassing Python's (possibly redirected) streams."""
    os.write(fd, (line + "\n").encode())


def _stop_soon() -> None:
    """Stop the worker like SIGTERM does; hard-exit if that takes too long."""
    timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


def build_app(config: dict[str, Any]) -> faust.App:
    """The Faust app with one no-op agent, per the JSON ``config`` of the module doc."""
    app = faust.App(
        config["app_id"],
        broker=config["broker"],
        store="memory://",
        web_enabled=False,
        topic_partitions=config["partitions"],
        consumer_auto_offset_reset="earliest",
    )
    topic = app.topic(config["topic"], key_serializer="raw", value_serializer="raw")
    clock = Clock(target=config["events"], progress_every=config["progress_every"])
    take: int | None = config["take"]

    async def one_at_a_time(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            if clock.add(1):
                _stop_soon()

    async def batches(stream: faust.StreamT[bytes]) -> None:
        async for batch in stream.take(take, within=config["within_s"]):
            if clock.add(len(batch)):
                _stop_soon()

    app.agent(topic, name="noop")(one_at_a_time if take is None else batches)
    return app


def main(argv: list[str]) -> None:
    """Run the worker for the JSON config in ``argv[1]`` until the target is reached."""
    app = build_app(json.loads(argv[1]))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv)
