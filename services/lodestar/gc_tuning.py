"""Tune CPython's cyclic garbage collector in long-running Lodestar processes.

A worker batch allocates and frees millions of short-lived containers (decoded
records, table values, membership dicts) while a large heap lives on (Faust,
aiokafka, the segment catalogs). With CPython's default thresholds (700, 10,
10) that mix triggered a full (generation 2) collection several times a second,
each walking the whole heap: 27 % of the worker's CPU time in
``bench/segments.py``'s steady state (measured with ``gc.callbacks``).

``tune_collector()`` moves everything alive at start-up (modules, the catalogs)
out of the collector's view (``gc.freeze``) and raises the thresholds so that
young collections run every ``GEN0_THRESHOLD`` net allocations and full ones
rarely. Reference counting still frees acyclic garbage at once; cyclic garbage
waits a little longer. Idempotent; process-wide.

``freeze_startup_heap()`` is the first half alone, what the senders do
(``ChannelSenderConfig.freeze_gc``): once per process, collect and freeze.

``take_over_collector()`` is what the engine worker does: it keeps thousands of
decoded endpoint states alive between batches, and with the raised thresholds its
young collections still took 20 to 100 ms, several a second, and the
middle-generation ones 250 to 290 ms every few seconds (``gc.callbacks`` timings
in ``bench/segments.py`` at 5,000 events/s), without finding one cyclic object. It freezes the
start-up heap and switches automatic collection off; the worker then calls
``collect_now()`` between batches about once a minute, so cyclic garbage (rare:
some library objects) is still freed, in one pause at a moment of its choosing.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000
GEN1_THRESHOLD = 20
GEN2_THRESHOLD = 100

_frozen = False


def freeze_startup_heap() -> None:
    """Once per process: collect, then move every object alive out of the collector's
    scans (``gc.freeze``)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def tune_collector() -> None:
    """Freeze the start-up heap and raise the collection thresholds (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def take_over_collector() -> None:
    """Freeze the start-up heap and switch automatic collection off (see the module);
    the caller runs ``collect_now()`` regularly."""
    gc.collect()
    gc.freeze()
    gc.disable()


def collect_now() -> int:
    """One full collection of everything created since the start-up heap was frozen;
    the number of unreachable objects found."""
    return gc.collect()
