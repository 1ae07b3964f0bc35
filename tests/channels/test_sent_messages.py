"""The sent_messages store against PostgreSQL: whether a claimant is alive."""

from __future__ import annotations

import asyncpg
import pytest

from lodestar.channels.sent_messages import LOCK_CLASS, SentMessages
from lodestar.control.migrate import migrate

pytestmark = [pytest.mark.postgres]


async def test_a_claimant_is_alive_while_it_holds_its_lock_and_probes_leave_none(
        postgres_dsn: str) -> None:
    await migrate(postgres_dsn)
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1,
                                     reset=lambda conn: _nothing())
    running = await asyncpg.connect(postgres_dsn)
    try:
        store = SentMessages(pool, "me", "EMAIL")
        assert await store.claimant_alive("sender-a") is False
        await running.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_CLASS,
                              "sender-a")
        assert await store.claimant_alive("sender-a") is True
        assert await store.claimant_alive("sender-b") is False
        # the probes took no lock that outlives them: another session gets both
        other = await asyncpg.connect(postgres_dsn)
        try:
            assert await other.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))",
                                        LOCK_CLASS, "sender-b") is True
        finally:
            await other.close()
        await running.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_CLASS,
                              "sender-a")
        assert await store.claimant_alive("sender-a") is False
    finally:
        await running.close()
        await pool.close()


async def _nothing() -> None:
    return None
