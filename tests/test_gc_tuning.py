from __future__ import annotations

import gc

from lodestar.gc_tuning import GEN0_THRESHOLD, tune_collector


def test_freezes_the_heap_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold()[0] == GEN0_THRESHOLD > before[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
