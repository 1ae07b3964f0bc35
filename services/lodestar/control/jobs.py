"""Import and export jobs in PostgreSQL (issue 4): Pinpoint's ImportJob/ExportJob resources.

A job has an id like Pinpoint's (32 lowercase hex characters), a type
(IMPORT or EXPORT), the definition it was created with (the ImportJobRequest
or ExportJobRequest as JSON), the segment it imports into or exports (if any),
and Pinpoint's JobStatus lifecycle: CREATED → INITIALIZING → PROCESSING →
COMPLETED, or FAILED. Progress is TotalPieces/CompletedPieces/FailedPieces
(files), TotalProcessed/TotalFailures (records) and Failures (the first
``MAX_FAILURES`` per-record messages, as Pinpoint caps them), plus a
``checkpoint``: how many records of the source are done (their commands
acknowledged by Kafka), from which a restarted runner resumes.

Running a job is claimed with a session-level advisory lock (``try_claim``)
on a connection the runner holds for the job's duration, so two API
processes never run the same job and a crashed runner's claim ends with its
connection.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg

IMPORT = "IMPORT"
EXPORT = "EXPORT"
MAX_FAILURES = 100
_LOCK_NAMESPACE = 0x10B5  # first key of the two-key advisory locks on jobs


class JobStatus(StrEnum):
    """Pinpoint's JobStatus (Lodestar uses CREATED, INITIALIZING, PROCESSING, COMPLETED, FAILED)."""

    CREATED = "CREATED"
    PREPARING_FOR_INITIALIZATION = "PREPARING_FOR_INITIALIZATION"
    INITIALIZING = "INITIALIZING"
    PROCESSING = "PROCESSING"
    PENDING_JOB = "PENDING_JOB"
    COMPLETING = "COMPLETING"
    COMPLETED = "COMPLETED"
    FAILING = "FAILING"
    FAILED = "FAILED"


FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED)


def new_job_id() -> str:
    """A fresh job id in Pinpoint's form: 32 lowercase hex characters."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Progress:
    """What a runner records at a checkpoint (and at the end)."""

    checkpoint: int = 0
    total_pieces: int = 0
    completed_pieces: int = 0
    failed_pieces: int = 0
    total_processed: int = 0
    total_failures: int = 0
    failures: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # runner's own state (e.g. counts)


@dataclass(frozen=True)
class Job:
    app_id: str
    id: str
    job_type: str
    definition: dict[str, Any]
    segment_id: str | None
    status: JobStatus
    progress: Progress
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class JobCursor:
    """Where a page of jobs ends: the last (created_at, id) returned (newest first)."""

    created_at: datetime
    job_id: str


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _job(row: asyncpg.Record) -> Job:
    return Job(
        app_id=row["app_id"],
        id=row["id"],
        job_type=row["job_type"],
        definition=dict(_json(row["definition"])),
        segment_id=row["segment_id"],
        status=JobStatus(row["status"]),
        progress=Progress(
            checkpoint=row["checkpoint"],
            total_pieces=row["total_pieces"],
            completed_pieces=row["completed_pieces"],
            failed_pieces=row["failed_pieces"],
            total_processed=row["total_processed"],
            total_failures=row["total_failures"],
            failures=tuple(_json(row["failures"])),
            extra=dict(_json(row["progress"])),
        ),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


_COLUMNS = (
    "app_id, id, job_type, definition, segment_id, status, total_pieces, completed_pieces, "
    "failed_pieces, total_processed, total_failures, failures, checkpoint, progress, "
    "created_at, completed_at"
)


class JobsRepository:
    """Jobs of every application. Every method is one statement."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self, app_id: str, job_type: str, definition: dict[str, Any],
        segment_id: str | None = None,
    ) -> Job:
        """A new job in CREATED. ``asyncpg.ForeignKeyViolationError`` if the app is unknown."""
        row = await self._pool.fetchrow(
            "INSERT INTO jobs (app_id, id, job_type, definition, segment_id) "
            f"VALUES ($1, $2, $3, $4::jsonb, $5) RETURNING {_COLUMNS}",
            app_id, new_job_id(), job_type, json.dumps(definition), segment_id,
        )
        return _job(row)

    async def get(self, app_id: str, job_id: str, job_type: str | None = None) -> Job | None:
        """One job (of ``job_type``, when given), or None."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM jobs WHERE app_id = $1 AND id = $2 "
            "AND ($3::text IS NULL OR job_type = $3)",
            app_id, job_id, job_type,
        )
        return _job(row) if row else None

    async def list_jobs(
        self, app_id: str, job_type: str, limit: int, after: JobCursor | None = None,
        segment_id: str | None = None,
    ) -> list[Job]:
        """Up to ``limit`` jobs of a type, newest first, after ``after``; of one segment if
        ``segment_id`` is given."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM jobs WHERE app_id = $1 AND job_type = $2 "
            "AND ($3::text IS NULL OR segment_id = $3) "
            "AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5)) "
            "ORDER BY created_at DESC, id DESC LIMIT $6",
            app_id, job_type, segment_id,
            after.created_at if after else None, after.job_id if after else "", limit,
        )
        return [_job(r) for r in rows]

    async def active(self, limit: int = 100) -> list[tuple[str, str]]:
        """(app_id, job id) of unfinished jobs, oldest first: what runners pick from."""
        rows = await self._pool.fetch(
            "SELECT app_id, id FROM jobs WHERE status NOT IN ('COMPLETED', 'FAILED') "
            "ORDER BY created_at, id LIMIT $1",
            limit,
        )
        return [(r["app_id"], r["id"]) for r in rows]

    async def set_status(self, app_id: str, job_id: str, status: JobStatus) -> None:
        await self._pool.execute(
            "UPDATE jobs SET status = $3, updated_at = now() WHERE app_id = $1 AND id = $2",
            app_id, job_id, status.value,
        )

    async def save_progress(
        self, app_id: str, job_id: str, progress: Progress,
        status: JobStatus = JobStatus.PROCESSING,
    ) -> None:
        """Record progress (and ``status``); a finished status also sets the completion date."""
        await self._pool.execute(
            "UPDATE jobs SET status = $3, checkpoint = $4, total_pieces = $5, "
            "completed_pieces = $6, failed_pieces = $7, total_processed = $8, "
            "total_failures = $9, failures = $10::jsonb, progress = $11::jsonb, "
            "updated_at = now(), "
            "completed_at = CASE WHEN $3 IN ('COMPLETED', 'FAILED') THEN now() END "
            "WHERE app_id = $1 AND id = $2",
            app_id, job_id, status.value, progress.checkpoint, progress.total_pieces,
            progress.completed_pieces, progress.failed_pieces, progress.total_processed,
            progress.total_failures, json.dumps(list(progress.failures[:MAX_FAILURES])),
            json.dumps(progress.extra),
        )


async def try_claim(conn: asyncpg.Connection, app_id: str, job_id: str) -> bool:
    """Take the job's advisory lock on ``conn`` (session level) if no one holds it."""
    return bool(await conn.fetchval(
        "SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, f"{app_id}/{job_id}"
    ))


async def release_claim(conn: asyncpg.Connection, app_id: str, job_id: str) -> None:
    await conn.fetchval(
        "SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, f"{app_id}/{job_id}"
    )
