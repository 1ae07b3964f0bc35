"""Rules that involve other endpoints: the per-user cap and address takeover.

The API looks up the facts (a user's current endpoints, the holders of an
address) and these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable

from lodestar.core.endpoint_commands import Command, deactivate_command
from lodestar.core.endpoint_request import EndpointRequestError

MAX_ENDPOINTS_PER_USER = 15


def check_user_capacity(user_id: str, existing: Iterable[str], adding: Iterable[str]) -> None:
    """Raise ``EndpointRequestError`` if the user would hold more than 15 endpoints."""
    total = len(set(existing) | set(adding))
    if total > MAX_ENDPOINTS_PER_USER:
        raise EndpointRequestError(
            "User.UserId",
            f"a user has at most {MAX_ENDPOINTS_PER_USER} endpoints; user {user_id!r} "
            f"would have {total}. Delete some with DeleteEndpoint first.",
        )


def address_takeover(
    app_id: str, endpoint_id: str, holders: Iterable[str], request_id: str, now_ms: int
) -> list[Command]:
    """DEACTIVATE every other ACTIVE holder of the address ``endpoint_id`` now takes."""
    return [
        deactivate_command(
            app_id, holder, f"address taken by endpoint {endpoint_id}",
            f"{request_id}:deactivate:{holder}", now_ms,
        )
        for holder in sorted(set(holders))
        if holder != endpoint_id
    ]
