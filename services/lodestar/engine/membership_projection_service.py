"""The segment membership projection hosted in the worker.

Consumes ``<prefix>.segment-membership`` in its own consumer group and writes
each batch into PostgreSQL's ``segment_members``
(``control.segment_membership.apply_membership_changes``), which the segment
status API (``GET /v1/apps/{app}/segments/{segment}/membership``) and
``lodestar segments status`` read. The topic is keyed by endpoint id, so the
changes of one endpoint arrive in the order the engine made them; writes are
idempotent, so the at-least-once replays of ``BatchConsumer`` are harmless.
"""

from __future__ import annotations

from mode import Service

from lodestar.contracts.codec import AvroCodec
from lodestar.control.segment_membership import apply_membership_changes
from lodestar.core.topics import Topic
from lodestar.engine.hosted_consumers import postgres_projection_service
from lodestar.settings import Settings


def segment_membership_projection_service(settings: Settings, codec: AvroCodec) -> type[Service]:
    """The Service keeping the PostgreSQL segment membership read model up to date."""
    return postgres_projection_service(
        settings, codec, "membership-projection", Topic.SEGMENT_MEMBERSHIP,
        lambda value: codec.decode(Topic.SEGMENT_MEMBERSHIP, value), apply_membership_changes,
    )
