"""The segments repository against a real PostgreSQL."""

from __future__ import annotations

import re

import asyncpg
import pytest

from lodestar.control.apps import AppsRepository
from lodestar.control.segments import (
    SegmentCursor,
    SegmentsRepository,
    SourceSegmentsNotFound,
)

pytestmark = pytest.mark.postgres

DIMS = {"Dimensions": {"Demographic": {"Platform": {"Values": ["ios"]}}}}
DIMS2 = {"Dimensions": {"Demographic": {"Platform": {"Values": ["android"]}}}}


async def test_create_get_update_versions_delete(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    seg = await repo.create(app_id, "iOS", DIMS)
    assert re.fullmatch(r"[0-9a-f]{32}", seg.id)
    assert (seg.app_id, seg.name, seg.version, seg.segment_type) == (app_id, "iOS", 1,
                                                                     "DIMENSIONAL")
    assert seg.definition == DIMS
    assert await repo.get(app_id, seg.id) == seg

    v2 = await repo.update(app_id, seg.id, None, DIMS2)  # no Name: keeps the name
    assert v2 is not None and v2.version == 2 and v2.name == "iOS" and v2.definition == DIMS2
    assert v2.created_at == seg.created_at and v2.modified_at >= seg.modified_at
    v3 = await repo.update(app_id, seg.id, "Renamed", DIMS)
    assert v3 is not None and v3.version == 3 and v3.name == "Renamed"
    assert await repo.get(app_id, seg.id) == v3

    first = await repo.get_version(app_id, seg.id, 1)
    assert first == seg
    assert await repo.get_version(app_id, seg.id, 4) is None
    versions = await repo.list_versions(app_id, seg.id, 10)
    assert versions is not None and [v.version for v in versions] == [1, 2, 3]
    page = await repo.list_versions(app_id, seg.id, 2, after_version=1)
    assert page is not None and [v.version for v in page] == [2, 3]

    deleted = await repo.delete(app_id, seg.id)
    assert deleted == v3
    assert await repo.get(app_id, seg.id) is None
    assert await repo.delete(app_id, seg.id) is None
    assert await repo.list_versions(app_id, seg.id, 10) is None
    assert await repo.update(app_id, seg.id, "x", DIMS) is None
    assert await pool.fetchval("SELECT count(*) FROM segment_versions") == 0


async def test_segments_are_per_application(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    other, _ = await AppsRepository(pool).create_app("Other")
    seg = await repo.create(app_id, "a", DIMS)
    assert await repo.get(other.id, seg.id) is None
    assert await repo.delete(other.id, seg.id) is None
    assert await repo.list_segments(other.id, 10) == []


async def test_list_pages_in_creation_order(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    made = [await repo.create(app_id, f"s{i}", DIMS) for i in range(5)]
    await repo.update(app_id, made[0].id, None, DIMS2)
    first = await repo.list_segments(app_id, 3)
    assert [s.id for s in first] == [s.id for s in made[:3]]
    assert first[0].version == 2  # the latest version
    rest = await repo.list_segments(app_id, 3, SegmentCursor(first[-1].created_at, first[-1].id))
    assert [s.id for s in rest] == [s.id for s in made[3:]]


async def test_source_segments_must_exist(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    base = await repo.create(app_id, "base", DIMS)
    groups = {"SegmentGroups": {"Groups": [{"SourceSegments": [{"Id": base.id}]}]}}
    built = await repo.create(app_id, "built", groups, [(base.id, None), (base.id, 1)])
    assert built.version == 1
    with pytest.raises(SourceSegmentsNotFound) as err:
        await repo.create(app_id, "bad", groups, [(base.id, 2), ("f" * 32, None)])
    assert err.value.missing == [(base.id, 2), ("f" * 32, None)]
    with pytest.raises(SourceSegmentsNotFound):
        await repo.update(app_id, built.id, None, groups, [("f" * 32, None)])
    # nothing was stored by the failed writes
    assert [s.name for s in await repo.list_segments(app_id, 10)] == ["base", "built"]
    assert (await repo.get(app_id, built.id)).version == 1  # type: ignore[union-attr]


async def test_deleting_the_app_deletes_its_segments(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    await repo.create(app_id, "a", DIMS)
    await AppsRepository(pool).delete_app(app_id)
    assert await pool.fetchval("SELECT count(*) FROM segments") == 0
    assert await pool.fetchval("SELECT count(*) FROM segment_versions") == 0
