"""The endpoint read-model projection hosted in the worker.

Consumes ``lodestar.endpoints`` in its own consumer group and writes each
batch into PostgreSQL's ``endpoint_read_model`` (``control.endpoint_read_model``),
which every API process reads for GetEndpoint and GetUserEndpoints.
"""

from __future__ import annotations

from mode import Service

from lodestar.contracts.codec import AvroCodec
from lodestar.control.endpoint_read_model import apply_changes, row_from_change
from lodestar.core.topics import Topic
from lodestar.engine.hosted_consumers import postgres_projection_service
from lodestar.settings import Settings


def endpoint_projection_service(settings: Settings, codec: AvroCodec) -> type[Service]:
    """The Service keeping the PostgreSQL endpoint read model up to date."""
    return postgres_projection_service(
        settings, codec, "endpoint-projection", Topic.ENDPOINTS,
        lambda value: row_from_change(codec.decode(Topic.ENDPOINTS, value)), apply_changes,
    )
