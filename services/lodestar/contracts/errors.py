"""Errors raised when a record or a byte string breaks an Avro contract.

Every message starts with the schema's file stem and, where one applies, the
offending field path, e.g.
``event: field 'timestamp': expected long (epoch millis), got str '2026-05-01'``.
Each error carries the ``DlqReason`` a consumer should dead-letter it with.
"""

from __future__ import annotations

from lodestar.contracts.reasons import DlqReason


class ContractError(ValueError):
    """A record or bytes that do not satisfy a Lodestar Avro schema.

    ``schema`` is the schema's file stem (``event``), ``path`` the dotted
    field path when the problem is inside a record (``session.id``), and
    ``reason`` the dead-letter reason that fits.
    """

    reason: DlqReason

    def __init__(
        self,
        message: str,
        *,
        schema: str,
        path: str | None = None,
        reason: DlqReason = DlqReason.VALIDATION_ERROR,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.schema = schema
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class EncodeError(ContractError):
    """A record cannot be written: it does not match its topic's schema."""


class DecodeError(ContractError):
    """Bytes cannot be read as a record of the expected topic's schema."""


def reason_of(error: BaseException) -> DlqReason:
    """The dead-letter reason for ``error``: its own for contract errors, else PROCESSING_ERROR."""
    if isinstance(error, ContractError):
        return error.reason
    return DlqReason.PROCESSING_ERROR
