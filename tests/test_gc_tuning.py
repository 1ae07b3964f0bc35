from __future__ import annotations

import gc

from lodestar.gc_tuning import GEN0_THRESHOLD, collect_now, take_over_collector, tune_collector


def test_freezes_the_heap_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold()[0] == GEN0_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_taking_over_switches_automatic_collection_off_and_collect_now_frees_cycles() -> None:
    try:
        take_over_collector()
        assert not gc.isenabled() and gc.get_freeze_count() > 0

        class Node:
            def __init__(self) -> None:
                self.other: Node | None = None

        for _ in range(1000):  # cycles: reference counting alone never frees them
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        assert collect_now() >= 2000
    finally:
        gc.enable()
        gc.unfreeze()
