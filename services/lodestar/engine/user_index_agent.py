"""Agent: keep ``user-endpoints`` (``<app id>/<user id>`` → endpoint ids) from ``user-index``.

The profile agent publishes ``UserIndexChange`` records keyed by user, so all
of one user's changes arrive on one partition here whatever partitions the
endpoints live on. Thin adapter around ``core.user_index.apply_membership``:
one table write per user per batch; an empty user is removed. ``ATTRIBUTES``
records become SET_USER_ATTRIBUTES commands for the user's other endpoints
(``core.user_index.fan_out_commands``), published on ``endpoint-commands``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Any

import faust

from lodestar.contracts.codec import AvroCodec, ContractError
from lodestar.core.dead_letters import DeadLetter, DlqReason
from lodestar.core.topics import Topic
from lodestar.core.user_index import apply_membership, fan_out_commands, user_key
from lodestar.dead_letter_publisher import DeadLetterPublisher, SourceRecord
from lodestar.engine.event_context import as_current, by_partition
from lodestar.settings import Settings

BATCH_MAX = 2000
BATCH_WITHIN_SECONDS = 0.05


def register(
    app: faust.App,
    settings: Settings,
    table: faust.Table,
    codec: AvroCodec,
    dead_letters: DeadLetterPublisher,
) -> Any:
    """Attach the agent to ``app``; returns the agent."""
    source = app.topic(
        settings.topic(Topic.USER_INDEX), key_serializer="raw", value_serializer="raw"
    )

    commands_topic = settings.topic(Topic.ENDPOINT_COMMANDS)
    headers = codec.headers(Topic.ENDPOINT_COMMANDS)

    async def publish_commands(commands: list[dict[str, Any]]) -> None:
        futures = [
            await app.producer.send(
                commands_topic, c["endpoint_id"].encode(),
                codec.encode(Topic.ENDPOINT_COMMANDS, c), None, None, headers,
            )
            for c in commands
        ]
        if futures:
            await asyncio.gather(*futures)

    async def user_index(stream: AsyncIterable[Any]) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_SECONDS):  # type: ignore[attr-defined]
            for group in by_partition(events).values():
                per_user: dict[str, list[dict[str, Any]]] = {}
                for event in group:
                    try:
                        change = codec.decode(Topic.USER_INDEX, event.message.value)
                    except ContractError as exc:
                        letter = DeadLetter(DlqReason.DECODE_ERROR, str(exc))
                        source = SourceRecord.of(event.message)
                        await dead_letters.publish(Topic.USER_INDEX, source, letter)
                        continue
                    key = user_key(change["app_id"], change["user_id"])
                    per_user.setdefault(key, []).append(change)
                now_ms = int(time.time() * 1000)
                commands: list[dict[str, Any]] = []
                with as_current(group[-1]):
                    for key, changes in per_user.items():
                        members: list[str] = list(table.get(key) or [])
                        for change in changes:
                            if change["op"] == "ATTRIBUTES":
                                commands += fan_out_commands(members, change, now_ms)
                            else:
                                members = apply_membership(members, [change])
                        if members:
                            table[key] = members
                        else:
                            table.pop(key, None)
                await publish_commands(commands)

    return app.agent(source, name="user-index")(user_index)
