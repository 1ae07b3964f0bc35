"""Segment backfill progress in PostgreSQL, as the profile agent reports it.

Per (app, segment, version, partition) the agent records how many endpoints it
has evaluated of how many, and when the partition finished
(``control.segment_membership.record_backfill_progress``); the API sums the
partitions for GetSegment's status. ``finished(partition)`` tells a worker
that has just been given a partition which backfills are already done there,
so a restart resumes only unfinished ones. PostgreSQL being unreachable never
stops the agent: progress is then logged as lost, and an unrecorded finish only
means the partition is backfilled again after a restart (which is idempotent).
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from lodestar.control.segment_membership import record_backfills_progress
from lodestar.engine.segment_work import BackfillJob
from lodestar.settings import Settings

log = logging.getLogger(__name__)

_FINISHED = (
    "SELECT app_id, segment_id, segment_version FROM segment_backfill "
    "WHERE partition = $1 AND finished_at IS NOT NULL"
)


class BackfillProgress:
    def __init__(self, settings: Settings) -> None:
        self._dsn = settings.postgres_dsn
        self._pool: Any = None

    async def _connect(self) -> Any:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2)
        return self._pool

    async def record(self, job: BackfillJob, partition: int) -> None:
        """Store ``job``'s progress on ``partition`` for each segment it evaluates."""
        try:
            pool = await self._connect()
            await record_backfills_progress(
                pool, job.app_id,
                [(sid, version) for sid, version in job.segments.items() if version > 0],
                partition, job.evaluated, job.total, job.finished,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("backfill progress of app %s on partition %d not recorded: %s",
                        job.app_id, partition, exc)

    async def finished(self, partition: int) -> set[tuple[str, str, int]]:
        """(app, segment, version) whose backfill finished on ``partition``."""
        try:
            pool = await self._connect()
            rows = await pool.fetch(_FINISHED, partition)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("finished backfills of partition %d unknown (%s): all run again",
                        partition, exc)
            return set()
        return {(r["app_id"], r["segment_id"], int(r["segment_version"])) for r in rows}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
