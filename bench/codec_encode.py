"""Codec encode: µs per record of ``AvroCodec.encode``, fastavro writer vs compiled writer.

What runs: for one example of each of ``segment_membership`` (the engine's busiest
output), ``endpoint_change`` and ``event`` (``schemas/examples/``, loaded with
``json_form.load_json_record``), ``AvroCodec.encode`` is timed ``--repeat`` times
(``timeit``, best of ``--rounds`` rounds) on two codecs in the same run:

- ``fastavro``: the compiled writer disabled (``prepare`` + ``fastavro.schemaless_writer``,
  the path before ``contracts.fast_writer``);
- ``compiled``: the default codec (``prepare`` + the compiled writer).

It also times ``prepare`` alone, checks that both codecs write the same bytes, and
prints the start-up costs behind building writers lazily: ``AvroCodec()`` versus
compiling the writers of every schema.
Run it alone on the machine: ``flock -x /tmp/lodestar-bench.lock .venv/bin/python
bench/codec_encode.py``.
"""

from __future__ import annotations

import argparse
import time
import timeit
from functools import partial
from typing import Any

from lodestar.contracts.codec import AvroCodec
from lodestar.contracts.fast_writer import compile_writer
from lodestar.contracts.guard import compile_preparer
from lodestar.contracts.json_form import load_json_record
from lodestar.contracts.registry import default_registry
from lodestar.core.topics import Topic

CASES = [
    ("segment_membership", "exit-behavioural-full.json", Topic.SEGMENT_MEMBERSHIP),
    ("endpoint_change", "email-endpoint-updated-full.json", Topic.ENDPOINTS),
    ("event", "amplify-js-session-start.json", Topic.EVENTS),
]


def _best(statement: Any, repeat: int, rounds: int) -> float:
    """Best µs per call over ``rounds`` rounds of ``repeat`` calls."""
    return min(timeit.repeat(statement, number=repeat, repeat=rounds)) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (best is kept)")
    args = parser.parse_args()

    registry = default_registry()
    compiled = AvroCodec(registry)
    baseline = AvroCodec(registry)
    baseline._fast_writer = lambda binding: None  # type: ignore[method-assign]

    print(f"{'record':<56} {'fastavro µs':>12} {'compiled µs':>12} {'speed-up':>9} "
          f"{'prepare µs':>11}")
    for stem, example, topic in CASES:
        entry = registry.get(stem)
        record = load_json_record(entry, registry.examples_directory / stem / example)
        assert compiled.encode(topic, record) == baseline.encode(topic, record), stem
        prepare = compile_preparer(entry)
        before = _best(partial(baseline.encode, topic, record), args.repeat, args.rounds)
        after = _best(partial(compiled.encode, topic, record), args.repeat, args.rounds)
        prepared = _best(partial(prepare, record), args.repeat, args.rounds)
        label = f"{entry.full_name.rsplit('.', 1)[-1]} ({example})"
        print(f"{label:<56} {before:>12.2f} {after:>12.2f} {before / after:>8.2f}x "
              f"{prepared:>11.2f}")

    started = time.perf_counter()
    AvroCodec(registry)
    construct = time.perf_counter() - started
    started = time.perf_counter()
    for entry in registry:
        compile_writer(entry.wire, entry.header)
    compile_all = time.perf_counter() - started
    print(f"start-up: AvroCodec() {construct * 1e3:.2f} ms; compiling every schema's writer "
          f"{compile_all * 1e3:.1f} ms (done lazily, per schema, on first encode)")


if __name__ == "__main__":
    main()
