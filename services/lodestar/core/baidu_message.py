"""Baidu Cloud Push (REST API 3.0) requests and answers, as values.

Pure: no I/O. ``channels.push_baidu`` sends what this module builds and reads the
answers with it.

What Baidu documents, and this module relies on:

- push.baidu.com/doc/restapi/sdk_developer: ``POST
  http[s]://api.tuisong.baidu.com/rest/3.0/{class}/{method}`` with the parameters as
  an ``application/x-www-form-urlencoded;charset=utf-8`` body and a ``User-Agent``
  naming the SDK (``BCCS_SDK/3.0 (…) …``; the service refuses requests without
  one); every request carries ``apikey``, ``timestamp`` (Unix seconds; the signature
  is valid 10 minutes from it), ``sign`` and, for an app split per platform,
  ``device_type`` (3 Android, 4 iOS). ``sign`` (``baidu_sign``) is
  ``md5(urlencode(METHOD + url + k1=v1 + k2=v2 … (keys sorted, every parameter but
  sign, values as sent) + secret_key))`` in lower-case hex, ``urlencode`` being
  PHP's (space ``+``, everything but ``A-Za-z0-9-_.`` percent-encoded); the
  documented example's base string is
  ``POSThttp://api.tuisong.baidu.com/rest/3.0/test/echoapikey=…expires=…timestamp=…<sk>``.
- push.baidu.com/doc/restapi/restapi, ``push/single_device``: ``channel_id``
  (one device), ``msg_type`` (0 message, 1 notification; default 0), ``msg`` (JSON
  text), ``msg_expires`` (0..604800 s, default 18000), ``deploy_status`` (iOS only).
  Success: ``{"request_id", "response_params": {"msg_id", "send_time"}}``; failure:
  ``{"request_id", "error_code", "error_msg"}``.
- Error codes (Baidu's documented server codes, as its push SDK lists them): 30600
  Internal Server Error, 30601 Method Not Allowed, 30602 Request Params Not Valid,
  30603 Authentication Failed, 30604 Quota Use Up Payment Required, 30605 Data
  Required Not Found, 30606 Request Time Expires Timeout, 30607 Channel Token
  Timeout, 30608 Bind Relation Not Found, 30609 Bind Number Too Many, 30610
  Duplicate Operation, 30611 Group Not Found, 30612 Application Forbidden, 30613 App
  Need Inited First, 30699 requests too frequent.

Outcomes (``baidu_outcome``): a ``msg_id`` → ACCEPTED (the ``msg_id`` is the provider
message id). 30607 / 30608 → DEAD_ADDRESS: the device's binding expired or is gone
(it must bind again), so the endpoint becomes INACTIVE. 30600 → RETRY; 30699 →
RETRY, throttled. Every other code → PERMANENT (our request, credentials, quota or
app configuration). An answer without an ``error_code`` is read by its HTTP status
(5xx / 429 RETRY, other 4xx PERMANENT). The HTTP status Baidu pairs with each code
is not documented in what could be found, so the code decides.

Pinpoint's BaiduMessage → ``msg`` (``baidu_msg``): Pinpoint sends campaign pushes
as a Baidu pass-through message (``msg_type`` 0) whose JSON the Pinpoint/Amplify
Android SDK hands to ``NotificationClient.handleCampaignPush`` (Pinpoint developer
guide, "Handling Push Notifications from Baidu Cloud Push"; the same
``NotificationClientBase`` keys as GCM), so ``msg`` is the JSON of the map
``push_payloads.fcm_data`` builds (plus ``pinpoint.notification.icon`` for
IconReference); RawContent is sent as ``msg`` unchanged. TimeToLive →
``msg_expires`` clamped into 0..604800, and Pinpoint's documented default (604800 s,
seven days) when none is given. The address is the channel id; the Pinpoint SDK's
``userId:channelId`` registration form is accepted (the part after the last ``:``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from lodestar.core.provider_outcome import (
    ProviderOutcome,
    ProviderOutcomeKind,
    accepted,
    from_http_status,
)
from lodestar.core.push_payloads import PushNotification, compact_json, fcm_data

DEFAULT_BASE_URL = "https://api.tuisong.baidu.com/rest/3.0"
SINGLE_DEVICE = "push/single_device"
DEVICE_TYPE_ANDROID = 3
MSG_TYPE_MESSAGE = 0
MAX_MSG_EXPIRES_S = 604_800
DEFAULT_MSG_EXPIRES_S = MAX_MSG_EXPIRES_S
"""Pinpoint's documented BaiduMessage TimeToLive default (seven days)."""
CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
USER_AGENT = ("BCCS_SDK/3.0 (Linux) Python/3 (Lodestar Baidu Push Server SDK V3.0.0) "
              "cli/Unknown")
ICON_KEY = "pinpoint.notification.icon"

ERROR_NAMES: Mapping[int, str] = {
    30600: "Internal Server Error", 30601: "Method Not Allowed",
    30602: "Request Params Not Valid", 30603: "Authentication Failed",
    30604: "Quota Use Up Payment Required", 30605: "Data Required Not Found",
    30606: "Request Time Expires Timeout", 30607: "Channel Token Timeout",
    30608: "Bind Relation Not Found", 30609: "Bind Number Too Many",
    30610: "Duplicate Operation", 30611: "Group Not Found",
    30612: "Application Forbidden, Need Whitelist Authorization",
    30613: "App Need Inited First In Push-console",
    30699: "Requests Are Too Frequent To Be Temporarily Rejected",
}
DEAD_CODES = frozenset({30607, 30608})
RETRY_CODES = frozenset({30600, 30699})
THROTTLE_CODES = frozenset({30699})


_KEPT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_ESCAPED = tuple(chr(b) if b in _KEPT else "+" if b == 0x20 else f"%{b:02X}"
                 for b in range(256))


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: UTF-8, space as ``+``, all but ``A-Za-z0-9-_.`` escaped."""
    return "".join(_ESCAPED[b] for b in text.encode("utf-8"))


def sign_base(method: str, url: str, params: Mapping[str, str], secret_key: str) -> str:
    """``METHOD url k=v… secret`` (keys sorted, ``sign`` left out), before encoding."""
    pairs = "".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign")
    return f"{method.upper()}{url}{pairs}{secret_key}"


def baidu_sign(method: str, url: str, params: Mapping[str, str], secret_key: str) -> str:
    """The ``sign`` parameter of a request to ``url`` with ``params``."""
    base = php_urlencode(sign_base(method, url, params, secret_key))
    return hashlib.md5(base.encode("ascii")).hexdigest()


def channel_id(address: str) -> str:
    """The Baidu channel id of an endpoint address (``channelId`` or
    ``userId:channelId``)."""
    return address.rsplit(":", 1)[-1].strip()


def baidu_msg(notification: PushNotification, icon_reference: str | None = None) -> str:
    """The ``msg`` parameter: RawContent as given, else the JSON of Pinpoint's keys."""
    if notification.raw_content is not None:
        return notification.raw_content
    data = fcm_data(notification)
    if icon_reference:
        data[ICON_KEY] = icon_reference
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def msg_expires(ttl_s: int | None) -> int:
    """``msg_expires`` for a TimeToLive (None: Pinpoint's default)."""
    if ttl_s is None:
        return DEFAULT_MSG_EXPIRES_S
    return min(max(ttl_s, 0), MAX_MSG_EXPIRES_S)


def single_device_params(notification: PushNotification, address: str, api_key: str,
                         now_s: int, *, device_type: int = DEVICE_TYPE_ANDROID,
                         icon_reference: str | None = None) -> dict[str, str]:
    """The unsigned parameters of ``push/single_device`` for ``address``."""
    return {
        "apikey": api_key,
        "timestamp": str(now_s),
        "device_type": str(device_type),
        "channel_id": channel_id(address),
        "msg_type": str(MSG_TYPE_MESSAGE),
        "msg": baidu_msg(notification, icon_reference),
        "msg_expires": str(msg_expires(notification.ttl_s)),
    }


def signed(method: str, url: str, params: Mapping[str, str], secret_key: str
           ) -> dict[str, str]:
    """``params`` with their ``sign``."""
    out = {k: v for k, v in params.items() if k != "sign"}
    out["sign"] = baidu_sign(method, url, out, secret_key)
    return out


def baidu_outcome(status: int, body: Any, retry_after_s: float | None = None
                  ) -> ProviderOutcome:
    """The outcome of one ``push/single_device`` answer (see the module docstring)."""
    if isinstance(body, Mapping) and body.get("error_code") is None:
        params = body.get("response_params")
        if 200 <= status <= 299 and isinstance(params, Mapping) \
                and params.get("msg_id") is not None:
            return accepted(status, str(params["msg_id"]))
    code = _error_code(body)
    if code is None:
        detail = compact_json(body)[:200] if body is not None else ""
        text = f"HTTP {status} {detail}".strip()
        if 200 <= status <= 299:
            return ProviderOutcome(ProviderOutcomeKind.RETRY, status,
                                   f"unreadable answer: {text}")
        return from_http_status(status, text, retry_after_s=retry_after_s)
    message = str(body.get("error_msg") or ERROR_NAMES.get(code, "")) \
        if isinstance(body, Mapping) else ""
    text = f"{code} {message}".strip()
    if code in DEAD_CODES:
        return ProviderOutcome(ProviderOutcomeKind.DEAD_ADDRESS, status, text)
    if code in RETRY_CODES:
        return ProviderOutcome(ProviderOutcomeKind.RETRY, status, text,
                               retry_after_s=retry_after_s,
                               throttled=code in THROTTLE_CODES)
    return ProviderOutcome(ProviderOutcomeKind.PERMANENT, status, text)


def _error_code(body: Any) -> int | None:
    if not isinstance(body, Mapping):
        return None
    code = body.get("error_code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None
