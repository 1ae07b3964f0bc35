"""Why a record ends up on a dead-letter topic.

The enum lives in the pure core (``lodestar.core.dead_letters``) because pure
steps return dead-letter outcomes; it is re-exported here because it is also
part of the wire contract: its symbols are those of ``lodestar.v1.DlqReason``
in ``schemas/dlq_envelope.avsc`` (a test keeps them equal), and its value is
what the ``lodestar-dlq-reason`` header carries.
"""

from __future__ import annotations

from lodestar.core.dead_letters import DlqReason

__all__ = ["DlqReason"]
