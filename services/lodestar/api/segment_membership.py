"""Segment membership status, a Lodestar extension (Pinpoint has no such operation).

``GET /v1/apps/{application-id}/segments/{segment-id}/membership`` answers
``{"SegmentMembershipResponse": {...}}`` (``membership_response``): the
segment's latest version, how many endpoints are members now and on which
channels, and how far the workers have got evaluating that version over the
endpoints of their partitions (the backfill). Authenticated like every
``/v1`` route; 404 ``NotFoundException`` when the segment does not exist.

Everything is read from PostgreSQL (``lodestar.control.segment_membership``),
which the engine writes: members within a second or so of the engine
publishing the change, backfill progress as the workers report it.
``lodestar segments status`` prints the same answer.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from lodestar.api.errors import new_request_id
from lodestar.api.segments import _ok, _repo, _segment_not_found
from lodestar.control.segment_membership import backfill_status, segment_size
from lodestar.control.segments import Segment


async def membership_response(
    pool: asyncpg.Pool, segment: Segment, partitions: int
) -> dict[str, Any]:
    """The ``SegmentMembershipResponse`` body of ``segment`` (its latest version)."""
    size, channels = await segment_size(pool, segment.app_id, segment.id)
    backfill = await backfill_status(pool, segment.app_id, segment.id, segment.version,
                                     partitions)
    return {
        "ApplicationId": segment.app_id,
        "SegmentId": segment.id,
        "Version": segment.version,
        "Size": size,
        "ChannelCounts": channels,
        "Backfill": backfill,
    }


async def get_segment_membership(request: Request) -> Response:
    """``GET …/segments/{segment-id}/membership`` → ``{"SegmentMembershipResponse": …}``."""
    request_id = new_request_id()
    app_id = request.path_params["application_id"]
    segment_id = request.path_params["segment_id"]
    segment = await _repo(request).get(app_id, segment_id)
    if segment is None:
        return _segment_not_found(app_id, segment_id, request_id)
    state = request.app.state
    body = await membership_response(state.pool, segment, state.settings.partitions)
    return _ok({"SegmentMembershipResponse": body}, request_id)
