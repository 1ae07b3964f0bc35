"""Per-application suppression list, in PostgreSQL (table ``suppressed_destinations``).

A suppressed destination is (app, channel, address): no sender delivers to it.
Addresses are stored normalised (``lodestar.core.email_feedback.normalise_address``:
email lower-cased, phone numbers and tokens as given); every method normalises
what it is given, so callers may pass addresses as they have them.

``add`` is an idempotent upsert. A destination keeps the reason it was first
added for (and that report's message and feedback ids), with one exception: a
COMPLAINT upgrades a BOUNCE or MANUAL entry, because a recipient who complained
must never be mailed again even if an operator later removes the bounce. Every
add refreshes ``updated_at``.

``suppressed(app_id, channel, addresses)`` answers, in one query, which of a
batch's addresses are suppressed (as the caller spelled them): what a sender
calls before sending a batch. With ``add_bounce`` it is the senders'
``lodestar.channels.channel_sender.SuppressionList``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from lodestar.core.delivery_events import Channel
from lodestar.core.email_feedback import SuppressionReason, normalise_address


@dataclass(frozen=True)
class Suppression:
    app_id: str
    channel: Channel
    address: str
    reason: SuppressionReason
    source_message_id: str | None
    feedback_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Added:
    """What ``add`` did: the row as it now is, and whether it is new."""

    suppression: Suppression
    created: bool


_COLUMNS = ("app_id, channel, address, reason, source_message_id, feedback_id, created_at, "
            "updated_at")


def _suppression(row: asyncpg.Record) -> Suppression:
    return Suppression(
        app_id=row["app_id"], channel=Channel(row["channel"]), address=row["address"],
        reason=SuppressionReason(row["reason"]), source_message_id=row["source_message_id"],
        feedback_id=row["feedback_id"], created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SuppressionRepository:
    """The suppression lists of every application. Each method is one statement."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(
        self, app_id: str, channel: Channel | str, address: str, reason: SuppressionReason,
        *, source_message_id: str | None = None, feedback_id: str | None = None,
    ) -> Added:
        """Suppress ``address``; see the module doc for which reason an existing row keeps.
        Raises ``asyncpg.ForeignKeyViolationError`` when the application does not exist."""
        channel = Channel(channel)
        upgrade = "(excluded.reason = 'COMPLAINT' AND s.reason <> 'COMPLAINT')"
        row = await self._pool.fetchrow(
            f"INSERT INTO suppressed_destinations AS s ({_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, now(), now()) "
            "ON CONFLICT (app_id, channel, address) DO UPDATE SET updated_at = now(), "
            f"reason = CASE WHEN {upgrade} THEN excluded.reason ELSE s.reason END, "
            f"source_message_id = CASE WHEN {upgrade} THEN excluded.source_message_id "
            "ELSE s.source_message_id END, "
            f"feedback_id = CASE WHEN {upgrade} THEN excluded.feedback_id "
            "ELSE s.feedback_id END "
            f"RETURNING {_COLUMNS}, (xmax = 0) AS created",
            app_id, channel.value, normalise_address(channel, address),
            SuppressionReason(reason).value, source_message_id, feedback_id,
        )
        return Added(_suppression(row), bool(row["created"]))

    async def add_bounce(self, app_id: str, channel: Channel | str, address: str,
                         message_id: str) -> None:
        """A hard bounce the sender saw itself (an SMTP 5xx for the recipient): reason
        BOUNCE, tied to ``message_id``. What ``channels.channel_sender.SuppressionList``
        asks for."""
        await self.add(app_id, channel, address, SuppressionReason.BOUNCE,
                       source_message_id=message_id)

    async def remove(self, app_id: str, channel: Channel | str, address: str
                     ) -> Suppression | None:
        """Remove ``address`` from the list; the row removed, or None when it was not there."""
        channel = Channel(channel)
        row = await self._pool.fetchrow(
            "DELETE FROM suppressed_destinations WHERE app_id = $1 AND channel = $2 "
            f"AND address = $3 RETURNING {_COLUMNS}",
            app_id, channel.value, normalise_address(channel, address),
        )
        return _suppression(row) if row else None

    async def get(self, app_id: str, channel: Channel | str, address: str
                  ) -> Suppression | None:
        channel = Channel(channel)
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM suppressed_destinations "
            "WHERE app_id = $1 AND channel = $2 AND address = $3",
            app_id, channel.value, normalise_address(channel, address),
        )
        return _suppression(row) if row else None

    async def list_destinations(
        self, app_id: str, limit: int, after: tuple[str, str] | None = None, *,
        channel: Channel | str | None = None, reason: SuppressionReason | str | None = None,
    ) -> list[Suppression]:
        """Up to ``limit`` destinations ordered by (channel, address), after ``after`` =
        (channel, address); only one channel / reason when given."""
        where = ["app_id = $1"]
        args: list[Any] = [app_id]
        if after is not None:
            args += list(after)
            where.append(f"(channel, address) > (${len(args) - 1}, ${len(args)})")
        if channel is not None:
            args.append(Channel(channel).value)
            where.append(f"channel = ${len(args)}")
        if reason is not None:
            args.append(SuppressionReason(reason).value)
            where.append(f"reason = ${len(args)}")
        args.append(limit)
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM suppressed_destinations WHERE {' AND '.join(where)} "
            f"ORDER BY channel, address LIMIT ${len(args)}",
            *args,
        )
        return [_suppression(r) for r in rows]

    async def suppressed(self, app_id: str, channel: Channel | str,
                         addresses: Iterable[str]) -> set[str]:
        """Which of ``addresses`` are suppressed on ``channel``, as given (one query)."""
        channel = Channel(channel)
        by_key: dict[str, list[str]] = {}
        for address in addresses:
            by_key.setdefault(normalise_address(channel, address), []).append(address)
        if not by_key:
            return set()
        rows = await self._pool.fetch(
            "SELECT address FROM suppressed_destinations "
            "WHERE app_id = $1 AND channel = $2 AND address = ANY($3::text[])",
            app_id, channel.value, list(by_key),
        )
        return {given for r in rows for given in by_key[r["address"]]}
