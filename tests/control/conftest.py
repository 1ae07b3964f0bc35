"""Fixtures of the control-plane tests: a migrated PostgreSQL database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from lodestar.control.apps import AppsRepository
from lodestar.control.migrate import migrate


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's own database, with every migration applied."""
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def app_id(pool: asyncpg.Pool) -> str:
    """An application named Shop."""
    app, _ = await AppsRepository(pool).create_app("Shop")
    return app.id
