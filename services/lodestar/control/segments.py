"""Segments and their versions, in PostgreSQL (issue 4).

Plain SQL over an asyncpg pool that the caller owns; every write is one
transaction. A segment has an id like Pinpoint's (32 lowercase hex
characters), a name, a type (DIMENSIONAL; IMPORT comes with import jobs) and
versions 1, 2, 3, …: each create or update stores the definition it was given
(``{"Dimensions": …}`` or ``{"SegmentGroups": …}``, as JSON) as a new version.
Versions are never reused; a deleted segment's versions go with it.

The definition is validated by the caller (``lodestar.core.segment_definition``);
this module checks only what needs the database: that the source segments a
definition names exist in the same application (``SourceSegmentsNotFound``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from lodestar.control.segment_membership import delete_segment_membership

DIMENSIONAL = "DIMENSIONAL"
IMPORT = "IMPORT"


class SourceSegmentsNotFound(Exception):
    """Source segments (``id`` or ``id`` at ``version``) that the application does not have."""

    def __init__(self, missing: Sequence[tuple[str, int | None]]) -> None:
        self.missing = list(missing)
        named = ", ".join(i if v is None else f"{i} version {v}" for i, v in self.missing)
        super().__init__(f"source segment(s) not found: {named}")


def new_segment_id() -> str:
    """A fresh segment id in Pinpoint's form: 32 lowercase hex characters."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Segment:
    """One version of a segment (the latest, unless read with ``get_version``)."""

    app_id: str
    id: str
    name: str | None
    segment_type: str
    version: int
    definition: dict[str, Any]
    created_at: datetime  # when the segment was created
    modified_at: datetime  # when this version was written


@dataclass(frozen=True)
class SegmentCursor:
    """Where a page of segments ends: the last (created_at, id) returned."""

    created_at: datetime
    segment_id: str


_SELECT = (
    "SELECT s.app_id, s.id, v.name, s.segment_type, v.version, v.definition, "
    "s.created_at, v.created_at AS modified_at "
    "FROM segments s JOIN segment_versions v "
    "ON v.app_id = s.app_id AND v.segment_id = s.id "
)


def _segment(row: asyncpg.Record) -> Segment:
    definition = row["definition"]
    return Segment(
        app_id=row["app_id"],
        id=row["id"],
        name=row["name"],
        segment_type=row["segment_type"],
        version=row["version"],
        definition=json.loads(definition) if isinstance(definition, str) else dict(definition),
        created_at=row["created_at"],
        modified_at=row["modified_at"],
    )


class SegmentsRepository:
    """Segments of every application. Every method is one statement or one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        app_id: str,
        name: str | None,
        definition: dict[str, Any],
        sources: Iterable[tuple[str, int | None]] = (),
        segment_type: str = DIMENSIONAL,
    ) -> Segment:
        """A new segment at version 1. ``sources``: the (id, version) it is built from;
        ``segment_type`` IMPORT for the segments import jobs define.

        Raises ``SourceSegmentsNotFound``; ``asyncpg.ForeignKeyViolationError`` when
        the application does not exist.
        """
        segment_id = new_segment_id()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check_sources(conn, app_id, sources)
            await conn.execute(
                "INSERT INTO segments (app_id, id, name, segment_type, latest_version) "
                "VALUES ($1, $2, $3, $4, 1)",
                app_id, segment_id, name, segment_type,
            )
            await self._insert_version(conn, app_id, segment_id, 1, name, definition)
            return await self._read(conn, app_id, segment_id, None)  # type: ignore[return-value]

    async def update(
        self,
        app_id: str,
        segment_id: str,
        name: str | None,
        definition: dict[str, Any],
        sources: Iterable[tuple[str, int | None]] = (),
    ) -> Segment | None:
        """Write the next version; ``name`` None keeps the current name. None if unknown."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT name, latest_version FROM segments WHERE app_id = $1 AND id = $2 "
                "FOR UPDATE",
                app_id, segment_id,
            )
            if row is None:
                return None
            await self._check_sources(conn, app_id, sources)
            version = row["latest_version"] + 1
            name = row["name"] if name is None else name
            await conn.execute(
                "UPDATE segments SET name = $3, latest_version = $4, modified_at = now() "
                "WHERE app_id = $1 AND id = $2",
                app_id, segment_id, name, version,
            )
            await self._insert_version(conn, app_id, segment_id, version, name, definition)
            return await self._read(conn, app_id, segment_id, None)

    async def replace_definition(
        self, app_id: str, segment_id: str, version: int, definition: dict[str, Any]
    ) -> Segment | None:
        """Rewrite one version's definition in place (an import job's final Size and
        ChannelCounts); the version as it now is, or None."""
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE segment_versions SET definition = $4::jsonb "
                "WHERE app_id = $1 AND segment_id = $2 AND version = $3",
                app_id, segment_id, version, json.dumps(definition),
            )
            if done == "UPDATE 0":
                return None
            return await self._read(conn, app_id, segment_id, version)

    async def delete(self, app_id: str, segment_id: str) -> Segment | None:
        """Delete a segment, all its versions, its members and backfill progress; the
        latest version as it was, or None."""
        async with self._pool.acquire() as conn, conn.transaction():
            segment = await self._read(conn, app_id, segment_id, None, lock=True)
            if segment is None:
                return None
            await delete_segment_membership(conn, app_id, segment_id)
            await conn.execute(
                "DELETE FROM segments WHERE app_id = $1 AND id = $2", app_id, segment_id
            )
            return segment

    async def get(self, app_id: str, segment_id: str) -> Segment | None:
        """The latest version of a segment, or None."""
        async with self._pool.acquire() as conn:
            return await self._read(conn, app_id, segment_id, None)

    async def get_version(self, app_id: str, segment_id: str, version: int) -> Segment | None:
        """One version of a segment, or None."""
        async with self._pool.acquire() as conn:
            return await self._read(conn, app_id, segment_id, version)

    async def list_segments(
        self, app_id: str, limit: int, after: SegmentCursor | None = None
    ) -> list[Segment]:
        """Up to ``limit`` segments (latest versions), oldest first, after ``after``."""
        latest = "WHERE s.app_id = $1 AND v.version = s.latest_version "
        if after is None:
            rows = await self._pool.fetch(
                f"{_SELECT}{latest}ORDER BY s.created_at, s.id LIMIT $2", app_id, limit
            )
        else:
            rows = await self._pool.fetch(
                f"{_SELECT}{latest}AND (s.created_at, s.id) > ($2, $3) "
                "ORDER BY s.created_at, s.id LIMIT $4",
                app_id, after.created_at, after.segment_id, limit,
            )
        return [_segment(r) for r in rows]

    async def list_versions(
        self, app_id: str, segment_id: str, limit: int, after_version: int = 0
    ) -> list[Segment] | None:
        """Up to ``limit`` versions, oldest first, above ``after_version``; None if unknown."""
        async with self._pool.acquire() as conn, conn.transaction():
            exists = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM segments WHERE app_id = $1 AND id = $2)",
                app_id, segment_id,
            )
            if not exists:
                return None
            rows = await conn.fetch(
                f"{_SELECT}WHERE s.app_id = $1 AND s.id = $2 AND v.version > $3 "
                "ORDER BY v.version LIMIT $4",
                app_id, segment_id, after_version, limit,
            )
        return [_segment(r) for r in rows]

    @staticmethod
    async def _read(
        conn: asyncpg.Connection, app_id: str, segment_id: str, version: int | None,
        lock: bool = False,
    ) -> Segment | None:
        which = "s.latest_version" if version is None else "$3"
        args: list[Any] = [app_id, segment_id] + ([] if version is None else [version])
        row = await conn.fetchrow(
            f"{_SELECT}WHERE s.app_id = $1 AND s.id = $2 AND v.version = {which}"
            + (" FOR UPDATE OF s" if lock else ""),
            *args,
        )
        return _segment(row) if row else None

    @staticmethod
    async def _insert_version(
        conn: asyncpg.Connection, app_id: str, segment_id: str, version: int,
        name: str | None, definition: dict[str, Any],
    ) -> None:
        await conn.execute(
            "INSERT INTO segment_versions (app_id, segment_id, version, name, definition) "
            "VALUES ($1, $2, $3, $4, $5::jsonb)",
            app_id, segment_id, version, name, json.dumps(definition),
        )

    @staticmethod
    async def _check_sources(
        conn: asyncpg.Connection, app_id: str, sources: Iterable[tuple[str, int | None]]
    ) -> None:
        missing: list[tuple[str, int | None]] = []
        for source_id, version in sources:
            if version is None:
                found = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM segments WHERE app_id = $1 AND id = $2)",
                    app_id, source_id,
                )
            else:
                found = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM segment_versions "
                    "WHERE app_id = $1 AND segment_id = $2 AND version = $3)",
                    app_id, source_id, version,
                )
            if not found:
                missing.append((source_id, version))
        if missing:
            raise SourceSegmentsNotFound(missing)
