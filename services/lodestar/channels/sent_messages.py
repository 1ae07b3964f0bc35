"""The ``sent_messages`` table: claims and outcomes per message id, for every sender.

A sender claims a message id (``INSERT … ON CONFLICT DO NOTHING``, committed)
before anything reaches a provider; the row then moves CLAIMED → SENT or
FAILED with the outcome and the delivery records that were published, so a
replayed request republishes the same records and is never sent again.
``claimed_by`` names the sender instance, whose liveness is the PostgreSQL
advisory lock ``(LOCK_CLASS, hashtext(instance_id))`` it holds while it runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from lodestar.core.delivery_events import Record
from lodestar.core.email_sending import SendState

LOCK_CLASS = 0x10DE5E4D  # advisory lock class of sender instances ("lodestar sender")
_JSON = json.JSONEncoder(separators=(",", ":")).encode
"""Records as compact JSON (PostgreSQL stores jsonb the same either way; fewer bytes
to send and parse)."""


@dataclass(frozen=True)
class Finish:
    """The final state of one message, for ``finish_many``."""

    message_id: str
    state: SendState
    records: list[Record]
    attempts: int | None = None
    outcome_kind: str | None = None
    status_code: int | None = None
    status_message: str | None = None
    provider_message_id: str | None = None
    stage: str | None = None
    """SMTP stage of the last answer (email only): also fills the ``smtp_*`` columns."""


class SentMessages:
    """Claims and outcomes; one instance per sender process."""

    def __init__(self, pool: asyncpg.Pool, instance_id: str, channel: str = "EMAIL") -> None:
        self._pool = pool
        self.instance_id = instance_id
        self.channel = channel

    async def claim_many(self, items: Sequence[tuple[str, str]]) -> dict[str, asyncpg.Record]:
        """Claim every ``(message_id, app_id)`` in one statement (committed when it
        returns: one round trip); returns the existing rows (state, claimed_by,
        deliveries) of the ids that were not claimed now."""
        if not items:
            return {}
        ids = [m for m, _ in items]
        apps = [a for _, a in items]
        async with self._pool.acquire() as conn:
            claimed = {r[0] for r in await conn.fetch(
                "INSERT INTO sent_messages (message_id, app_id, channel, state, claimed_by) "
                "SELECT m, a, $3, 'CLAIMED', $4 FROM unnest($1::text[], $2::text[]) AS t(m, a) "
                "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
                ids, apps, self.channel, self.instance_id)}
            others = [m for m in ids if m not in claimed]
            if not others:
                return {}
            rows = await conn.fetch(
                "SELECT message_id, state, claimed_by, deliveries FROM sent_messages "
                "WHERE message_id = ANY($1::text[])", others)
            return {r["message_id"]: r for r in rows}

    async def claimant_alive(self, claimed_by: str) -> bool:
        """Whether the sender ``claimed_by`` still holds its lock (is running). The probe
        takes the lock for its own transaction only, so it can never stay held."""
        async with self._pool.acquire() as conn, conn.transaction():
            got = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, hashtext($2))", LOCK_CLASS, claimed_by)
        return not got

    async def finish_unclaimed(self, message_id: str, records: list[Record],
                               claimed_by: str) -> bool:
        """Finish a message left CLAIMED by ``claimed_by`` (a sender that is gone) as SENT
        with an unknown outcome; False when someone else finished it meanwhile."""
        result = await self._pool.execute(
            "UPDATE sent_messages SET state = 'SENT', deliveries = $2::jsonb, "
            "finished_at = now() WHERE message_id = $1 AND state = 'CLAIMED' "
            "AND claimed_by = $3", message_id, json.dumps(records), claimed_by)
        return bool(result.endswith(" 1"))

    async def finish_many(self, finishes: Sequence[Finish]) -> None:
        """Store the final state of several messages this instance claimed, in one
        statement (at most one finish per message id)."""
        if not finishes:
            return
        columns: list[list[object]] = [
            [f.message_id for f in finishes], [f.state.value for f in finishes],
            [_JSON(f.records) for f in finishes], [f.attempts for f in finishes],
            [f.outcome_kind for f in finishes], [f.status_code for f in finishes],
            [f.status_message for f in finishes], [f.provider_message_id for f in finishes],
            [f.stage for f in finishes]]
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE sent_messages AS s SET state = u.state, deliveries = u.deliveries::jsonb, "
                "finished_at = now(), attempts = coalesce(u.attempts, s.attempts), "
                "outcome_kind = u.outcome_kind, status_code = u.status_code, "
                "status_message = u.status_message, provider_message_id = u.provider_message_id, "
                "smtp_stage = u.stage, "
                "smtp_code = CASE WHEN u.stage IS NULL THEN NULL ELSE u.status_code END, "
                "smtp_message = CASE WHEN u.stage IS NULL THEN NULL ELSE u.status_message END "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], "
                "$6::integer[], $7::text[], $8::text[], $9::text[]) AS u(message_id, state, "
                "deliveries, attempts, outcome_kind, status_code, status_message, "
                "provider_message_id, stage) "
                "WHERE s.message_id = u.message_id", *columns)


def stored_records(row: asyncpg.Record) -> list[Record]:
    """The delivery records stored in a finished row."""
    stored = row["deliveries"]
    return list(json.loads(stored) if isinstance(stored, str) else stored)
