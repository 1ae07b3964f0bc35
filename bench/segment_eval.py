"""In-process cost of segment evaluation: the profile agent's per-batch core work, no Kafka.

Builds the catalog of ``bench/segments.py`` (``--segments`` mixed segments), the
same Amplify-shaped events for ``--endpoints`` endpoints, groups them into
batches of ``--batch`` events as the agent does (per endpoint, arrival order)
and times, per batch, exactly what the agent does per endpoint: read the table
value (``read_entry``), ``fold_endpoint`` with the catalog's filters,
``after_change``, build the membership records and the new table value
(``entry``) — encoded and decoded as the worker's store does
(``profile_store.encode_value`` / ``decode_value``, orjson). Reported beside the same
work without segments. This isolates the engine's Python cost from Kafka
and Faust (``bench/segments.py`` measures the whole worker). ``--gc worker`` switches
CPython's automatic collection off as ``lodestar worker`` does once its catalogs are
loaded (``lodestar.gc_tuning.take_over_collector``); the default keeps CPython's
thresholds, as the figures in docs/benchmarks.md were measured.

Example: ``.venv/bin/python bench/segment_eval.py --segments 1000 --profile``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import uuid
from collections.abc import Callable, Sequence

from amplify_events import event_records
from lodestar.contracts.codec import AvroCodec
from lodestar.core.endpoint_entry import after_change, entry, read_entry
from lodestar.core.endpoint_state import EndpointState, blank_state
from lodestar.core.profile_inputs import InputKind, ProfileInput, fold_endpoint, input_key
from lodestar.core.segment_control import AppSegments, membership_record, segment_from_control
from lodestar.core.segment_membership import EndpointMemberships, blank_memberships
from lodestar.core.topics import Topic
from lodestar.engine.profile_store import decode_value, encode_value
from lodestar.gc_tuning import take_over_collector
from segments import BodyGenerator, control_records, segment_bodies, segment_pool


def catalog(app_id: str, count: int) -> AppSegments:
    codec = AvroCodec.default()
    updates = [segment_from_control(codec.decode(Topic.CONTROL, value))
               for _, value in control_records(app_id, segment_bodies(count))]
    started = time.perf_counter()
    segments, _, _ = AppSegments().apply_updates(updates)
    print(f"catalog: {count} segments compiled in {time.perf_counter() - started:.2f} s, "
          f"{len(segments.filters)} derived counter types")
    return segments


def batches(app_id: str, n_events: int, endpoints: int, size: int, seed: int = 3,
            first_offset: int = 0) -> list[dict[str, list[ProfileInput]]]:
    """``n_events`` events in batches of ``size`` grouped per endpoint, with Kafka offsets
    from ``first_offset`` on (a later pass must continue the offsets: the fold skips
    inputs at or below an endpoint's applied offset as replays)."""
    generator = BodyGenerator(segment_pool(endpoints), seed=seed)
    requests = -(-n_events // generator.events_per_request)
    records = [r for _, r in event_records(generator, app_id, requests, int(time.time() * 1000))]
    out: list[dict[str, list[ProfileInput]]] = []
    for start in range(0, len(records), size):
        per: dict[str, list[ProfileInput]] = {}
        for offset, record in enumerate(records[start:start + size], first_offset + start):
            item = ProfileInput(InputKind.EVENT, record, offset)
            per.setdefault(input_key(item) or "", []).append(item)
        out.append(per)
    return out


def baseline(segments: AppSegments, now_ms: int,
             blanks: dict[int, tuple[EndpointState, EndpointMemberships]]
             ) -> Callable[[EndpointState], tuple[EndpointState, EndpointMemberships]]:
    """The blank endpoint and its membership, once per CreationDate (as the agent does)."""
    def get(state: EndpointState) -> tuple[EndpointState, EndpointMemberships]:
        if state.creation_date not in blanks:
            blank = blank_state(state.application_id, state.id, state.creation_date)
            blanks[state.creation_date] = (
                blank, blank_memberships(segments.catalog, blank, now_ms))
        return blanks[state.creation_date]

    return get


def run(segments: AppSegments, work: list[dict[str, list[ProfileInput]]],
        table: dict[str, bytes] | None = None) -> tuple[float, int]:
    """Seconds and membership changes for ``work`` over ``table`` (key → stored value)."""
    table = {} if table is None else table
    changes = 0
    started = time.perf_counter()
    for batch in work:
        now_ms = int(time.time() * 1000)
        blanks: dict[int, tuple[EndpointState, EndpointMemberships]] = {}
        for key, inputs in batch.items():
            raw = table.get(key)
            state, memberships = read_entry(decode_value(raw) if raw else None)
            first = inputs[0].record
            result = fold_endpoint(state, first["app_id"], first["endpoint_id"], inputs, now_ms,
                                   segments.filters)
            outcome = after_change(segments, memberships, result.state, result.touched, now_ms,
                                   state, baseline(segments, now_ms, blanks))
            if outcome is not None:
                memberships = outcome[0]
                subject = result.state or state
                assert subject is not None
                records = [membership_record(subject.application_id, subject.id, None, c,
                                             now_ms, result.triggers) for c in outcome[1]]
                changes += len(records)
            if result.state is not None:
                table[key] = encode_value(entry(result.state, memberships))
    return time.perf_counter() - started, changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--endpoints", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile costs")
    parser.add_argument("--gc", choices=("worker", "default"), default="default",
                        help="CPython's collector (default) or switched off as in the worker "
                             "(lodestar.gc_tuning.take_over_collector)")
    args = parser.parse_args(argv)
    app_id = uuid.uuid4().hex
    work = batches(app_id, args.events, args.endpoints, args.batch)
    steady = batches(app_id, args.events, args.endpoints, args.batch, seed=11,
                     first_offset=sum(len(v) for b in work for v in b.values()))
    if args.gc == "worker":
        take_over_collector()
    events = sum(len(v) for b in work for v in b.values())
    plain: dict[str, bytes] = {}
    none_s, _ = run(AppSegments(), work, plain)
    none_steady_s, _ = run(AppSegments(), steady, plain)
    segments = catalog(app_id, args.segments)
    table: dict[str, bytes] = {}
    with_s, changes = run(segments, work, table)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    steady_s, steady_changes = run(segments, steady, table)
    if profiler:
        profiler.disable()
    print(f"{events:,} events per pass, {args.endpoints:,} endpoints, batches of {args.batch}")
    print("  pass 1 creates the endpoints (each evaluated against every segment); pass 2 is")
    print("  more events for the same endpoints (steady state, the profiled pass)")
    for label, plain_s, seg_s, n in (("pass 1 (new endpoints)", none_s, with_s, changes),
                                     ("pass 2 (steady state)", none_steady_s, steady_s,
                                      steady_changes)):
        print(f"  {label:<24} no segments {events / plain_s:>8,.0f} events/s; "
              f"{args.segments:,} segments {events / seg_s:>7,.0f} events/s, "
              f"{n:,} membership changes")
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(18)
    return 0


if __name__ == "__main__":
    sys.exit(main())
