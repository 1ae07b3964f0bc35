"""Deterministic message ids: same send decision, same id; different decision, different id.

Contract:

- ``message_id(kind, source_id, run_id, endpoint_id, treatment_id)`` identifies
  one decision of a campaign run, journey activity run or transactional call to
  message one endpoint; ``transactional_message_id(request_id, channel,
  address=… | endpoint_id=…)`` identifies one item of a SendMessages /
  SendUsersMessages request.
- Ids are ``m-`` followed by 32 lowercase hex digits (34 characters): URL-safe,
  a valid RFC 5322 Message-ID local part, within 64 characters.
- The hex is the first 128 bits of SHA-256 over an unambiguous encoding of the
  inputs: a domain tag naming the id kind, then every field as its UTF-8 length
  and bytes, with ``None`` encoded apart from ``""``. So ("a|b", "c") and
  ("a", "b|c") differ, a missing treatment differs from an empty one, and the
  two id kinds never share an encoding. Collisions need a SHA-256 prefix
  collision (birthday bound 2**64 ids).
- Pure: depends on its arguments only; the same inputs give the same id in
  every process, replay and version of this module (changing the encoding
  would re-send messages, so ``_TAG_*`` carry a version).
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

PREFIX = "m-"
ID_LENGTH = len(PREFIX) + 32

_TAG_SEND = "lodestar.message-id.v1"
_TAG_TRANSACTIONAL = "lodestar.transactional-message-id.v1"


class SourceKind(StrEnum):
    """What decided the send (the ``SendSource`` symbols of send_request.avsc)."""

    CAMPAIGN = "CAMPAIGN"
    JOURNEY = "JOURNEY"
    TRANSACTIONAL = "TRANSACTIONAL"


def _encode(tag: str, fields: tuple[str | None, ...]) -> bytes:
    out = bytearray()
    for value in (tag, *fields):
        if value is None:
            out += b"N"
        else:
            data = value.encode("utf-8", "surrogatepass")
            out += b"S" + len(data).to_bytes(8, "big") + data
    return bytes(out)


def _id(tag: str, fields: tuple[str | None, ...]) -> str:
    return PREFIX + hashlib.sha256(_encode(tag, fields)).hexdigest()[:32]


def message_id(
    kind: SourceKind | str,
    source_id: str,
    run_id: str | None,
    endpoint_id: str,
    treatment_id: str | None = None,
    *,
    activity_id: str | None = None,
) -> str:
    """The message id of one send decision.

    ``source_id`` is the campaign id, journey id or transactional request id;
    ``run_id`` the campaign activity id (one run of a campaign) or the journey
    run id; ``activity_id`` the journey activity id (``None`` for campaigns);
    ``treatment_id`` the campaign treatment (``None`` when there is none).
    """
    source = SourceKind(kind)
    return _id(
        _TAG_SEND, (source.value, source_id, run_id, endpoint_id, treatment_id, activity_id)
    )


def transactional_message_id(
    request_id: str,
    channel: str,
    *,
    address: str | None = None,
    endpoint_id: str | None = None,
) -> str:
    """The message id of one SendMessages item: a raw ``address`` or an ``endpoint_id``
    (exactly one) on ``channel`` (``EMAIL``, ``SMS`` …) within request ``request_id``.

    An address and an endpoint id with the same text give different ids.
    """
    if (address is None) == (endpoint_id is None):
        raise ValueError("give exactly one of address and endpoint_id")
    if address is not None:
        return _id(_TAG_TRANSACTIONAL, (request_id, channel, "address", address))
    return _id(_TAG_TRANSACTIONAL, (request_id, channel, "endpoint", endpoint_id))


def is_message_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id made here."""
    return (
        len(value) == ID_LENGTH
        and value.startswith(PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(PREFIX):])
    )
