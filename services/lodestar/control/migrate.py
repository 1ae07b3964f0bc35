"""Apply the control plane's PostgreSQL migrations (plain SQL files, in name order).

Each file runs once, in its own transaction, recorded in ``schema_migrations``.
A session-level advisory lock held for the whole run makes concurrent
``migrate`` calls safe: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import logging

import asyncpg

from lodestar.sql_files import bundled_migrations

log = logging.getLogger(__name__)

_LOCK_ID = 0x10DE57A7  # arbitrary, constant: "lodestar"


def migration_files() -> list[tuple[str, str]]:
    """``(version, sql)`` for every bundled migration, in order."""
    return bundled_migrations("lodestar.control")


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations to the database at ``dsn``; return those applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied: list[str] = []
        for version, sql in migration_files():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
            log.info("PostgreSQL migration %s applied", version)
        return applied
    finally:
        await conn.close()  # also releases the session's advisory lock
