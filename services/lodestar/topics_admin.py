"""Create Lodestar's topics on the configured cluster when they are missing.

Brokers may have auto-creation disabled, and auto-created topics get the
broker's partition count, so every process that produces or consumes calls
``ensure_topics`` at start-up. Existing topics are left as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from lodestar.core.topics import Topic
from lodestar.settings import Settings

log = logging.getLogger(__name__)


def all_topic_names(settings: Settings) -> list[str]:
    """Every topic of this installation and its dead-letter topic."""
    names: list[str] = []
    for topic in Topic:
        names += [settings.topic(topic), settings.dlq(topic)]
    return names


async def ensure_topics(
    settings: Settings, names: Iterable[str] | None = None, compacted: Collection[str] = ()
) -> list[str]:
    """Create the missing topics among ``names`` (default: all); return those created.

    ``lodestar.control`` and the topics named in ``compacted`` are compacted."""
    wanted = list(names) if names is not None else all_topic_names(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        compacted = {settings.topic(Topic.CONTROL), *compacted}
        new = [
            NewTopic(
                name=n,
                num_partitions=settings.partitions,
                replication_factor=settings.replication,
                topic_configs={"cleanup.policy": "compact"} if n in compacted else {},
            )
            for n in missing
        ]
        response = await admin.create_topics(new)
        for name, code, *_ in getattr(response, "topic_errors", []):
            if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (another process won the race)
                raise RuntimeError(f"could not create topic {name}: Kafka error code {code}")
        log.info("created topics: %s", ", ".join(missing))
        return missing
    finally:
        await admin.close()
