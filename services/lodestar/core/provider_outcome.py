"""What a channel provider answered for one message, as a value.

Every non-email transport (SMS, push, voice, custom webhook) returns a
``ProviderOutcome`` from ``send``; it never raises for a provider's answer or
a network failure. The generic sender runner decides from it alone:

- ``ACCEPTED``: the provider took the message (``provider_message_id`` when it
  gave one). Pinpoint's DeliveryStatus SUCCESSFUL.
- ``RETRY``: transient (HTTP 408/425/429/5xx, timeout, connection failure);
  ``retry_after_s`` carries the provider's Retry-After when it sent one.
  Pinpoint's TEMPORARY_FAILURE (THROTTLED when ``throttled``).
- ``PERMANENT``: refused and waiting will not help (bad request, auth,
  invalid content). Pinpoint's PERMANENT_FAILURE.
- ``DEAD_ADDRESS``: the address itself is gone (FCM UNREGISTERED, APNs 410,
  Web Push 404/410, an SMS number the provider says is invalid): permanent,
  and the endpoint should become INACTIVE.

``record_status`` is the SMS ``record_status`` vocabulary (SUCCESSFUL,
INVALID, UNREACHABLE, BLOCKED …) when the provider's answer maps to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProviderOutcomeKind(StrEnum):
    ACCEPTED = "ACCEPTED"
    RETRY = "RETRY"
    PERMANENT = "PERMANENT"
    DEAD_ADDRESS = "DEAD_ADDRESS"


class DeliveryStatus(StrEnum):
    """Pinpoint's per-recipient DeliveryStatus (MessageResult / EndpointMessageResult)."""

    SUCCESSFUL = "SUCCESSFUL"
    THROTTLED = "THROTTLED"
    TEMPORARY_FAILURE = "TEMPORARY_FAILURE"
    PERMANENT_FAILURE = "PERMANENT_FAILURE"
    UNKNOWN_FAILURE = "UNKNOWN_FAILURE"
    OPT_OUT = "OPT_OUT"
    DUPLICATE = "DUPLICATE"


@dataclass(frozen=True)
class ProviderOutcome:
    """One provider answer. ``status_code`` is the HTTP status (None: no answer)."""

    kind: ProviderOutcomeKind
    status_code: int | None
    message: str
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    record_status: str | None = None
    throttled: bool = False
    stage: str | None = None
    """Where a staged protocol stopped (SMTP: connect, auth, mail, rcpt, data)."""
    updated_address: str | None = None
    """The address the provider says now stands for the recipient (ADM's current
    registrationID): the endpoint's Address should become it."""

    @property
    def accepted(self) -> bool:
        return self.kind is ProviderOutcomeKind.ACCEPTED

    @property
    def transient(self) -> bool:
        return self.kind is ProviderOutcomeKind.RETRY

    @property
    def delivery_status(self) -> DeliveryStatus:
        """The DeliveryStatus this answer stands for, as Pinpoint would report it."""
        if self.kind is ProviderOutcomeKind.ACCEPTED:
            return DeliveryStatus.SUCCESSFUL
        if self.kind is ProviderOutcomeKind.RETRY:
            return DeliveryStatus.THROTTLED if self.throttled else DeliveryStatus.TEMPORARY_FAILURE
        return DeliveryStatus.PERMANENT_FAILURE


def accepted(status_code: int | None, provider_message_id: str | None = None,
             message: str = "accepted", record_status: str | None = None) -> ProviderOutcome:
    """An ACCEPTED outcome."""
    return ProviderOutcome(ProviderOutcomeKind.ACCEPTED, status_code, message,
                           provider_message_id=provider_message_id, record_status=record_status)


def from_http_status(status: int, message: str, *, retry_after_s: float | None = None,
                     provider_message_id: str | None = None) -> ProviderOutcome:
    """The generic reading of an HTTP status: 2xx ACCEPTED; 408/425/429/5xx RETRY
    (429 is ``throttled``); anything else PERMANENT. Providers refine it (dead tokens)."""
    if 200 <= status <= 299:
        return accepted(status, provider_message_id, message)
    if status in (408, 425, 429) or status >= 500:
        return ProviderOutcome(ProviderOutcomeKind.RETRY, status, message,
                               retry_after_s=retry_after_s, throttled=status == 429)
    return ProviderOutcome(ProviderOutcomeKind.PERMANENT, status, message)


def network_failure(message: str) -> ProviderOutcome:
    """No answer (timeout, refused or reset connection, DNS, TLS): RETRY."""
    return ProviderOutcome(ProviderOutcomeKind.RETRY, None, message)
