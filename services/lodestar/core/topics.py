"""Kafka topics Lodestar reads and writes.

``Topic`` holds the logical names of DESIGN §1. The physical name is
``<prefix>.<logical>`` (prefix ``lodestar`` by default), so several
installations or test runs can share one cluster; dead-letter topics add
``.dlq`` to the topic they guard.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Logical topic names; the value is the suffix after the prefix."""

    EVENTS = "events"
    ENDPOINT_COMMANDS = "endpoint-commands"
    ENDPOINTS = "endpoints"
    USER_INDEX = "user-index"
    CONTROL = "control"
    SEGMENT_MEMBERSHIP = "segment-membership"
    ACTIVITY = "activity"
    SEND_EMAIL = "send.email"
    SEND_SMS = "send.sms"
    SEND_PUSH = "send.push"
    SEND_VOICE = "send.voice"
    SEND_CUSTOM = "send.custom"
    DELIVERIES = "deliveries"

    @property
    def compacted(self) -> bool:
        """Whether the topic keeps only the latest record per key."""
        return self is Topic.CONTROL


SEND_TOPICS: tuple[Topic, ...] = (
    Topic.SEND_EMAIL,
    Topic.SEND_SMS,
    Topic.SEND_PUSH,
    Topic.SEND_VOICE,
    Topic.SEND_CUSTOM,
)

DLQ_SUFFIX = "dlq"


def topic_name(prefix: str, topic: Topic) -> str:
    """Physical name of ``topic`` under ``prefix`` (e.g. ``lodestar.events``)."""
    return f"{prefix}.{topic.value}"


def dlq_name(prefix: str, topic: Topic) -> str:
    """Physical name of the dead-letter topic that guards ``topic``."""
    return f"{topic_name(prefix, topic)}.{DLQ_SUFFIX}"
