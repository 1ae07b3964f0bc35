"""Amazon Device Messaging (ADM) requests and answers, as values.

Pure: no I/O. ``channels.push_adm`` sends what this module builds and reads ADM's
answers with it.

What ADM documents, and this module relies on:

- Token (developer.amazon.com/docs/adm/request-access-token): ``POST
  https://api.amazon.com/auth/o2/token``, form ``grant_type=client_credentials``,
  ``scope=messaging:push``, ``client_id``, ``client_secret``; the answer is JSON
  ``{"access_token", "expires_in", "scope", "token_type"}`` (``token_form``;
  ``core.oauth2.read_token`` reads the answer).
- Send (developer.amazon.com/docs/adm/send-message): ``POST
  /messaging/registrations/{registrationId}/messages`` with ``Authorization: Bearer``,
  ``Content-Type``/``Accept: application/json``, ``X-Amzn-Type-Version:
  com.amazon.device.messaging.ADMMessage@1.0`` and ``X-Amzn-Accept-Type:
  com.amazon.device.messaging.ADMSendResult@1.0``; body ``{"data": {str: str},
  "consolidationKey"?, "expiresAfter"? (60..2678400 s, ADM's default one week),
  "md5"?}`` with a data payload of at most 6 KB (compact JSON). ``md5`` is the
  base64 MD5 of the data's ``key:value`` pairs sorted by key (UTF-8) and joined by
  ``,`` (``adm_md5``; the same rule as Amazon's sample ADM server).
- Answers (``adm_outcome``): 200 ``{"registrationID"}`` (the app instance's current
  id: when it differs from the one sent it is the outcome's ``updated_address``, and
  the channel sender updates the endpoint's Address to it), with ``X-Amzn-RequestId``
  as the provider message id; errors ``{"reason"}``: 400 ``InvalidRegistrationId`` /
  ``Unregistered`` → DEAD_ADDRESS (the endpoint becomes INACTIVE), 400
  ``InvalidData`` / ``InvalidConsolidationKey`` / ``InvalidExpiration`` /
  ``InvalidChecksum`` / ``InvalidType`` → PERMANENT, 401 ``AccessTokenExpired``
  (the transport refreshes once), 413 ``MessageTooLarge`` → PERMANENT, 429
  ``MaxRateExceeded`` → RETRY (throttled) honouring Retry-After, 500/503 → RETRY
  honouring Retry-After (a dead-token reason with another 4xx status is read the
  same way).

``adm_options(content)`` reads ConsolidationKey / ExpiresAfter / MD5 / IconReference
from a SendRequest's ``content`` once the API carries them there.

Pinpoint's ADMMessage → ADM ``data`` (``adm_data``): the Pinpoint/Amplify Android
SDK reads ADM messages with the same ``NotificationClientBase`` as GCM
(aws-sdk-android ``ADMNotificationClient``) from the intent extras, i.e. the ADM
``data`` map, so ``data`` holds the keys ``push_payloads.fcm_data`` builds
(``pinpoint.notification.title/body/imageUrl/imageIconUrl/imageSmallIconUrl/sound/
silentPush``, ``pinpoint.openApp|url|deeplink``, ``pinpoint.campaign.*``,
``pinpoint.journey``, ``pinpoint.jsonBody`` and the custom Data) plus
``pinpoint.notification.icon`` for IconReference (the SDK's drawable-name key).
ConsolidationKey → ``consolidationKey`` (else the notification's collapse id),
ExpiresAfter → ``expiresAfter`` (else the TimeToLive), clamped into ADM's range;
MD5 → ``md5`` as given, else computed over the data sent. RawContent (Pinpoint's
documented ADM test sends a flat ``{"pinpoint.…": …}`` object) is the ``data`` map,
its non-string values as JSON text; a RawContent object that has a ``data`` object
is taken as the whole ADM message.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
)
from lodestar.core.push_payloads import PushNotification, compact_json, fcm_data

DEFAULT_BASE_URL = "https://api.amazon.com"
TOKEN_PATH = "/auth/o2/token"
ADM_SCOPE = "messaging:push"
TYPE_VERSION = "com.amazon.device.messaging.ADMMessage@1.0"
ACCEPT_TYPE = "com.amazon.device.messaging.ADMSendResult@1.0"
MAX_DATA_BYTES = 6 * 1024
MIN_EXPIRES_AFTER_S = 60
MAX_EXPIRES_AFTER_S = 2_678_400
ICON_KEY = "pinpoint.notification.icon"


class AdmReason(StrEnum):
    """ADM's documented ``reason`` values."""

    INVALID_REGISTRATION_ID = "InvalidRegistrationId"
    INVALID_DATA = "InvalidData"
    INVALID_CONSOLIDATION_KEY = "InvalidConsolidationKey"
    INVALID_EXPIRATION = "InvalidExpiration"
    INVALID_CHECKSUM = "InvalidChecksum"
    INVALID_TYPE = "InvalidType"
    UNREGISTERED = "Unregistered"
    ACCESS_TOKEN_EXPIRED = "AccessTokenExpired"
    MESSAGE_TOO_LARGE = "MessageTooLarge"
    MAX_RATE_EXCEEDED = "MaxRateExceeded"


DEAD_REASONS = frozenset({AdmReason.INVALID_REGISTRATION_ID, AdmReason.UNREGISTERED})


class AdmPayloadError(ValueError):
    """The message cannot be sent as built (RawContent unusable, data over 6 KB)."""


@dataclass(frozen=True)
class AdmOptions:
    """Pinpoint ADMMessage fields that ``PushNotification`` does not carry."""

    consolidation_key: str | None = None
    expires_after_s: int | None = None
    md5: str | None = None
    icon_reference: str | None = None


def adm_options(content: Mapping[str, Any]) -> AdmOptions:
    """``AdmOptions`` from a SendRequest's ``content`` (keys ``consolidation_key``,
    ``expires_after`` (Pinpoint's ExpiresAfter is a string of seconds), ``md5``,
    ``icon_reference``); unreadable or empty values are left out."""
    def text(name: str) -> str | None:
        value = content.get(name)
        return value if isinstance(value, str) and value else None

    expires = content.get("expires_after")
    seconds: int | None = None
    if isinstance(expires, int) and not isinstance(expires, bool):
        seconds = expires
    elif isinstance(expires, str) and expires.strip().isdigit():
        seconds = int(expires.strip())
    return AdmOptions(text("consolidation_key"), seconds, text("md5"), text("icon_reference"))


def token_form(client_id: str, client_secret: str) -> dict[str, str]:
    """The form of the client-credentials token request."""
    return {"grant_type": "client_credentials", "scope": ADM_SCOPE,
            "client_id": client_id, "client_secret": client_secret}


def adm_md5(data: Mapping[str, str]) -> str:
    """ADM's checksum of ``data``: base64(MD5(UTF-8 ``k1:v1,k2:v2`` sorted by key))."""
    pairs = sorted((k.encode("utf-8"), v.encode("utf-8")) for k, v in data.items())
    joined = b",".join(k + b":" + v for k, v in pairs)
    return base64.b64encode(hashlib.md5(joined).digest()).decode("ascii")


def data_size(data: Mapping[str, str]) -> int:
    """The payload size ADM counts: the data object as compact UTF-8 JSON."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _strings(value: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else compact_json(v) for k, v in value.items()}


def adm_data(notification: PushNotification, icon_reference: str | None = None
             ) -> dict[str, str]:
    """The ADM ``data`` map of a built (not RawContent) notification."""
    data = fcm_data(notification)
    if icon_reference:
        data[ICON_KEY] = icon_reference
    return data


def _expires_after(seconds: int) -> int:
    return min(max(seconds, MIN_EXPIRES_AFTER_S), MAX_EXPIRES_AFTER_S)


def adm_message(notification: PushNotification, options: AdmOptions | None = None
                ) -> dict[str, Any]:
    """The ADM send body (see the module docstring); ``AdmPayloadError`` when the
    RawContent is not usable or the data exceeds 6 KB."""
    options = options or AdmOptions()
    extra: dict[str, Any] = {}
    if notification.raw_content is not None:
        try:
            raw = json.loads(notification.raw_content)
        except ValueError as exc:
            raise AdmPayloadError(f"RawContent is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise AdmPayloadError("RawContent must be a JSON object")
        if isinstance(raw.get("data"), dict):
            extra = {k: raw[k] for k in ("consolidationKey", "expiresAfter", "md5")
                     if k in raw}
            data = _strings(raw["data"])
        else:
            data = _strings(raw)
    else:
        data = adm_data(notification, options.icon_reference)
    size = data_size(data)
    if size > MAX_DATA_BYTES:
        raise AdmPayloadError(f"MessageTooLarge: data is {size} bytes, ADM takes "
                              f"{MAX_DATA_BYTES}")
    body: dict[str, Any] = {"data": data}
    key = options.consolidation_key or notification.collapse_id
    if "consolidationKey" in extra:
        body["consolidationKey"] = extra["consolidationKey"]
    elif key:
        body["consolidationKey"] = key
    ttl = options.expires_after_s if options.expires_after_s is not None \
        else notification.ttl_s
    if "expiresAfter" in extra:
        body["expiresAfter"] = extra["expiresAfter"]
    elif ttl is not None:
        body["expiresAfter"] = _expires_after(ttl)
    body["md5"] = extra.get("md5") or options.md5 or adm_md5(data)
    return body


def canonical_registration_id(body: Any, sent: str) -> str | None:
    """The ``registrationID`` of a 200 answer when it differs from ``sent``, else None."""
    if isinstance(body, Mapping):
        current = body.get("registrationID")
        if isinstance(current, str) and current and current != sent:
            return current
    return None


def _reason(body: Any) -> str:
    if isinstance(body, Mapping) and body.get("reason") is not None:
        return str(body["reason"])
    return ""


def adm_outcome(status: int, body: Any, *, sent_registration_id: str = "",
                request_id: str | None = None,
                retry_after_s: float | None = None) -> ProviderOutcome:
    """The outcome of one send answer (see the module docstring)."""
    if status == 200:
        current = canonical_registration_id(body, sent_registration_id)
        if current is None:
            return accepted(status, request_id)
        return ProviderOutcome(ProviderOutcomeKind.ACCEPTED, status,
                               f"accepted; ADM's current registrationID is {current}",
                               request_id, updated_address=current)
    reason = _reason(body)
    text = f"{reason} (HTTP {status})" if reason else f"HTTP {status}"
    if 400 <= status <= 499 and reason in DEAD_REASONS:
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, text)
    if status == 413:
        return ProviderOutcome(ProviderOutcomeKind.PERMANENT, status, text)
    return from_http_status(status, text, retry_after_s=retry_after_s)
