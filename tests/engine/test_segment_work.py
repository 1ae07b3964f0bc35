"""The in-memory due index and backfill queues of a worker."""

from __future__ import annotations

from lodestar.engine.segment_work import Backfills, DueIndex


def test_due_index_pops_due_keys_once_in_time_order() -> None:
    index = DueIndex()
    index.add(0, 300, "a/3")
    index.add(0, 100, "a/1")
    index.add(0, 100, "a/1")  # a stale duplicate hint
    index.add(0, None, "a/never")
    index.add(1, 50, "a/other-partition")
    assert index.size(0) == 3 and index.has_due(0, 100) and not index.has_due(0, 99)
    assert index.pop_due(0, 200, limit=10) == ["a/1"]
    assert index.pop_due(0, 200, limit=10) == []
    index.add(0, 250, "a/2")
    assert index.pop_due(0, 1000, limit=1) == ["a/2"]
    assert index.pop_due(0, 1000, limit=5) == ["a/3"]
    index.drop(1)
    assert not index.has_due(1, 10**12)


def test_backfills_keep_only_the_latest_request_per_segment() -> None:
    jobs = Backfills()
    jobs.add(3, "app", {"s1": 1, "s2": 1}, ["app/a", "app/b"])
    first = jobs.current(3)
    assert first is not None and first.total == 2 and not first.finished
    first.position = 1
    jobs.add(3, "app", {"s1": 2}, ["app/a", "app/b", "app/c"])
    jobs.add(3, "other", {"s1": 7}, [])
    assert [(j.app_id, j.segments, j.total) for j in jobs.queues[3]] == [
        ("app", {"s2": 1}, 2), ("app", {"s1": 2}, 3), ("other", {"s1": 7}, 0)]
    jobs.add(3, "app", {"s2": 2}, ["app/a"])
    assert [(j.app_id, j.segments) for j in jobs.queues[3]] == [
        ("app", {"s1": 2}), ("other", {"s1": 7}), ("app", {"s2": 2})]
    job = jobs.current(3)
    assert job is not None and job.position == 0 and not job.finished
    job.position = job.total
    assert job.finished
    jobs.done(3)
    assert jobs.pending(3) and list(jobs.partitions()) == [3]
    empty = jobs.current(3)
    assert empty is not None and empty.finished, "a job over no endpoints is done at once"
    jobs.drop(3)
    assert not jobs.pending(3) and jobs.current(3) is None


def test_endpoints_created_during_a_backfill_count_as_evaluated() -> None:
    jobs = Backfills()
    jobs.add(0, "app", {"s1": 1}, ["app/a", "app/b"])
    jobs.add(0, "other", {"s2": 1}, ["other/c"])
    jobs.count_created(0, "app")
    jobs.count_created(1, "app")  # another partition: no job there
    first = jobs.current(0)
    assert first is not None
    assert (first.evaluated, first.total, first.finished) == (1, 3, False)
    first.position = 2
    assert (first.evaluated, first.total, first.finished) == (3, 3, True)
    assert [j.created for j in jobs.queues[0]] == [1, 0]
