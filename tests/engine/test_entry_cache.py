from __future__ import annotations

from lodestar.core.endpoint_state import blank_state
from lodestar.core.segment_membership import EndpointMemberships
from lodestar.engine.entry_cache import EntryCache


def _entry(endpoint_id: str) -> tuple[object, EndpointMemberships]:
    return blank_state("app", endpoint_id, 1), EndpointMemberships({"s": 1})


def test_keeps_what_was_put_and_forgets_deleted_keys() -> None:
    cache = EntryCache()
    cache.check(0)
    a = _entry("a")
    cache.put("app/a", a)  # type: ignore[arg-type]
    assert cache.get("app/a") is a
    assert cache.get("app/b") is None
    cache.put("app/a", None)
    assert cache.get("app/a") is None and len(cache) == 0


def test_a_rebalance_empties_it() -> None:
    cache = EntryCache()
    cache.check(3)
    cache.put("app/a", _entry("a"))  # type: ignore[arg-type]
    cache.check(3)
    assert cache.get("app/a") is not None
    cache.check(4)
    assert cache.get("app/a") is None and cache.generation == 4


def test_drops_the_least_recently_used_beyond_its_limit() -> None:
    cache = EntryCache(limit=2)
    cache.check(0)
    for key in ("a", "b"):
        cache.put(key, _entry(key))  # type: ignore[arg-type]
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", _entry("c"))  # type: ignore[arg-type]
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
    assert len(cache) == 2
