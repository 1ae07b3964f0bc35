from __future__ import annotations

import asyncpg
import pytest

from lodestar.control.migrate import migrate, migration_files

pytestmark = pytest.mark.postgres


async def test_migrations_apply_once_and_create_the_control_tables(postgres_dsn: str) -> None:
    versions = [v for v, _ in migration_files()]
    assert versions and versions == sorted(versions)

    assert await migrate(postgres_dsn) == versions
    assert await migrate(postgres_dsn) == []

    conn = await asyncpg.connect(postgres_dsn)
    try:
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        await conn.execute("INSERT INTO apps (id, name) VALUES ('a1', 'Demo')")
        await conn.execute(
            "INSERT INTO api_keys (access_key_id, app_id, secret) VALUES ('AK1', 'a1', 's')"
        )
        await conn.execute("DELETE FROM apps WHERE id = 'a1'")
        keys_left = await conn.fetchval("SELECT count(*) FROM api_keys")
    finally:
        await conn.close()
    assert {"apps", "api_keys", "schema_migrations"} <= tables
    assert sorted(recorded) == versions
    assert keys_left == 0


async def test_concurrent_migrations_do_not_conflict(postgres_dsn: str) -> None:
    import asyncio

    results = await asyncio.gather(*(migrate(postgres_dsn) for _ in range(3)))
    applied = [v for r in results for v in r]
    assert sorted(applied) == [v for v, _ in migration_files()]
