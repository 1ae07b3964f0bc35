from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lodestar.core.endpoint_activity import (
    EndpointActivity,
    coalesce_by_endpoint,
    fold_events,
)

timestamps = st.lists(st.integers(min_value=0, max_value=2**42), max_size=50)


def test_fold_counts_and_keeps_latest_time() -> None:
    state = fold_events(None, [5, 3, 9, 1])
    assert state == EndpointActivity(event_count=4, last_event_at=9)
    assert fold_events(state, [7]) == EndpointActivity(5, 9)
    assert fold_events(state, [12]) == EndpointActivity(5, 12)


def test_no_events_leaves_state_unchanged() -> None:
    assert fold_events(None, []) == EndpointActivity(0, None)
    assert fold_events(EndpointActivity(3, 4), []) == EndpointActivity(3, 4)


@given(timestamps, timestamps)
def test_folding_in_batches_equals_folding_at_once(first: list[int], second: list[int]) -> None:
    assert fold_events(fold_events(None, first), second) == fold_events(None, first + second)


@given(timestamps)
def test_order_of_events_does_not_matter(ts: list[int]) -> None:
    assert fold_events(None, ts) == fold_events(None, list(reversed(ts)))


@given(timestamps)
def test_dict_round_trip(ts: list[int]) -> None:
    state = fold_events(None, ts)
    assert EndpointActivity.from_dict(state.as_dict()) == state


def test_coalesce_groups_by_endpoint_in_order() -> None:
    records = [
        {"endpoint_id": "a", "timestamp": 1},
        {"endpoint_id": "b", "timestamp": 2},
        {"endpoint_id": "a", "timestamp": 3},
    ]
    assert coalesce_by_endpoint(records) == {"a": [1, 3], "b": [2]}
