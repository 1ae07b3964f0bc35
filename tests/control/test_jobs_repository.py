"""The import/export jobs repository against a real PostgreSQL."""

from __future__ import annotations

import re

import asyncpg
import pytest

from lodestar.control.apps import AppsRepository
from lodestar.control.jobs import (
    EXPORT,
    IMPORT,
    MAX_FAILURES,
    JobCursor,
    JobsRepository,
    JobStatus,
    Progress,
    release_claim,
    try_claim,
)
from lodestar.control.segments import IMPORT as IMPORT_SEGMENT
from lodestar.control.segments import SegmentsRepository

pytestmark = pytest.mark.postgres

DEFINITION = {"Format": "CSV", "S3Url": "file:///tmp/x.csv", "RegisterEndpoints": True}


async def test_create_get_progress_finish(pool: asyncpg.Pool, app_id: str) -> None:
    repo = JobsRepository(pool)
    job = await repo.create(app_id, IMPORT, DEFINITION)
    assert re.fullmatch(r"[0-9a-f]{32}", job.id)
    assert (job.job_type, job.status, job.definition, job.segment_id) == (
        IMPORT, JobStatus.CREATED, DEFINITION, None)
    assert job.progress == Progress() and job.completed_at is None
    assert await repo.get(app_id, job.id) == job
    assert await repo.get(app_id, job.id, IMPORT) == job
    assert await repo.get(app_id, job.id, EXPORT) is None
    assert await repo.active() == [(app_id, job.id)]

    await repo.set_status(app_id, job.id, JobStatus.INITIALIZING)
    got = await repo.get(app_id, job.id)
    assert got is not None and got.status is JobStatus.INITIALIZING

    failures = tuple(f"row {i}: bad" for i in range(MAX_FAILURES + 20))
    middle = Progress(checkpoint=500, total_pieces=2, completed_pieces=1, total_processed=480,
                      total_failures=len(failures), failures=failures, extra={"n": 1})
    await repo.save_progress(app_id, job.id, middle)
    got = await repo.get(app_id, job.id)
    assert got is not None and got.status is JobStatus.PROCESSING
    assert got.progress.failures == failures[:MAX_FAILURES]  # Pinpoint keeps the first 100
    assert got.progress.total_failures == MAX_FAILURES + 20
    assert (got.progress.checkpoint, got.progress.extra) == (500, {"n": 1})
    assert got.completed_at is None

    await repo.save_progress(app_id, job.id, Progress(checkpoint=900, total_pieces=2,
                                                      completed_pieces=2, total_processed=880),
                             JobStatus.COMPLETED)
    done = await repo.get(app_id, job.id)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.completed_at is not None and done.completed_at >= done.created_at
    assert await repo.active() == []


async def test_lists_newest_first_by_type_and_segment(pool: asyncpg.Pool, app_id: str) -> None:
    repo = JobsRepository(pool)
    seg = await SegmentsRepository(pool).create(app_id, "imported", {"ImportDefinition": {}},
                                                segment_type=IMPORT_SEGMENT)
    assert seg.segment_type == "IMPORT"
    imports = [await repo.create(app_id, IMPORT, DEFINITION, seg.id if i % 2 else None)
               for i in range(5)]
    export = await repo.create(app_id, EXPORT, {"S3UrlPrefix": "file:///tmp/out"}, seg.id)
    newest_first = [j.id for j in reversed(imports)]
    first = await repo.list_jobs(app_id, IMPORT, 3)
    assert [j.id for j in first] == newest_first[:3]
    rest = await repo.list_jobs(app_id, IMPORT, 3, JobCursor(first[-1].created_at, first[-1].id))
    assert [j.id for j in rest] == newest_first[3:]
    of_segment = await repo.list_jobs(app_id, IMPORT, 10, segment_id=seg.id)
    assert [j.id for j in of_segment] == [imports[3].id, imports[1].id]
    assert [j.id for j in await repo.list_jobs(app_id, EXPORT, 10)] == [export.id]
    other, _ = await AppsRepository(pool).create_app("Other")
    assert await repo.list_jobs(other.id, IMPORT, 10) == []
    assert await repo.get(other.id, imports[0].id) is None


async def test_unknown_app_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await JobsRepository(pool).create("nope", IMPORT, DEFINITION)


async def test_claims_exclude_other_sessions(pool: asyncpg.Pool, app_id: str) -> None:
    job = await JobsRepository(pool).create(app_id, IMPORT, DEFINITION)
    async with pool.acquire() as first, pool.acquire() as second:
        assert await try_claim(first, app_id, job.id)
        assert not await try_claim(second, app_id, job.id)
        await release_claim(first, app_id, job.id)
        assert await try_claim(second, app_id, job.id)
        await release_claim(second, app_id, job.id)


async def test_replace_definition_of_an_import_segment(pool: asyncpg.Pool, app_id: str) -> None:
    repo = SegmentsRepository(pool)
    seg = await repo.create(app_id, "imp", {"ImportDefinition": {"Size": 0}},
                            segment_type=IMPORT_SEGMENT)
    updated = await repo.replace_definition(app_id, seg.id, 1, {"ImportDefinition": {"Size": 3}})
    assert updated is not None and updated.definition == {"ImportDefinition": {"Size": 3}}
    assert updated.version == 1 and updated.segment_type == "IMPORT"
    assert await repo.replace_definition(app_id, seg.id, 2, {}) is None
